// The waterfall panel: one request's life from the trace logs (actors.tracing.views),
// drawn as rows on a shared time axis. Fetched again until the trace is complete (a
// final `s` or `f` and the request's own `envelope.handled` line) or POLL_MS passes.

const $ = (id) => document.getElementById(id);
const POLL_EVERY_MS = 300;
const POLL_MS = 5000;
const KIND_NAMES = {
  request: "request", stage: "stage", wait: "queue", job: "job", push: "push", event: "event",
};

let current = null; // {i, deadline, timer}

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

function formatUs(us) {
  if (us == null) return "";
  if (Math.abs(us) >= 1000) return `${(us / 1000).toFixed(us >= 100000 ? 1 : 2)} ms`;
  return `${us} µs`;
}

// Tick labels: "0", "250 µs", "0.5 ms", "100 ms" (no trailing zeros).
function formatTick(us, step) {
  if (us === 0) return "0";
  return step < 1000 ? `${us} µs` : `${+(us / 1000).toFixed(3)} ms`;
}

// Four to six ticks, 1, 2, 2.5 or 5 times a power of ten apart.
function tickStep(span) {
  const rough = Math.max(span, 1) / 6;
  const power = 10 ** Math.floor(Math.log10(rough));
  return Math.max(1, [1, 2, 2.5, 5, 10].map((m) => m * power).find((step) => step >= rough));
}

function traceUrl(i) {
  const pattern = $("waterfall").dataset.traceUrl; // reversed with "_" for the id
  return pattern.slice(0, -1) + encodeURIComponent(i);
}

function setStatus(text, state) {
  const status = $("wf-status");
  status.textContent = text;
  status.dataset.state = state;
}

function where(row) {
  if (row.side === "queue") return "queue";
  const side = row.side || "process";
  return row.process == null ? side : `${side} ${row.process}`;
}

function axis(span) {
  const scale = element("div", "wf-lane wf-scale");
  scale.setAttribute("aria-hidden", "true");
  const step = tickStep(span);
  $("wf-table").style.setProperty("--step", `${(100 * step) / span}%`);
  for (let at = 0; at <= span; at += step) {
    const tick = element("span", "wf-tick", formatTick(at, step));
    tick.style.left = `${(100 * at) / span}%`;
    scale.append(tick);
  }
  return scale;
}

// A cell of the timeline column: a lane the bars and markers are placed in by percent.
function lane(...children) {
  const cell = element("td", "wf-track");
  const inner = element("div", "wf-lane");
  inner.append(...children);
  cell.append(inner);
  return cell;
}

function placed(className, startUs, span, text) {
  const el = element("span", className, text);
  el.style.left = `${(100 * startUs) / span}%`;
  return el;
}

function track(row, span) {
  if (row.duration_us == null) {
    const marker = placed(`wf-marker wf-${row.kind}`, row.start_us, span);
    marker.setAttribute("aria-hidden", "true");
    return lane(marker);
  }
  const bar = placed(`wf-bar wf-${row.kind}${row.open ? " wf-running" : ""}`, row.start_us, span);
  bar.style.width = `${(100 * row.duration_us) / span}%`;
  bar.setAttribute("aria-hidden", "true");
  return lane(bar);
}

function stateRow(states, span) {
  const tr = element("tr", "wf-row wf-states-row");
  tr.dataset.kind = "states";
  const label = element("th", "wf-label");
  label.scope = "row";
  label.append(element("span", "wf-kind", "states"), " ",
    element("span", "wf-text", states.map((s) => s.state).join(" → ")));
  const marks = states.map((s) => {
    const mark = placed(`wf-state state-${s.state}`, s.at_us, span, s.state);
    mark.title = `${s.state} at +${formatUs(s.at_us)} (${s.event})`;
    mark.setAttribute("aria-hidden", "true");
    return mark;
  });
  const times = states.map((s) => `${s.state} +${formatUs(s.at_us)}`).join(", ");
  tr.append(label, element("td", "wf-where", ""), lane(...marks),
    element("td", "wf-num", ""), element("td", "wf-num", ""));
  tr.querySelector(".wf-where").append(element("span", "sr-only", times));
  return tr;
}

function stateList(states) {
  const list = $("wf-states");
  list.replaceChildren();
  for (const s of states) {
    const item = element("li", `state-${s.state}`, `${s.state} +${formatUs(s.at_us)}`);
    item.dataset.state = s.state;
    item.title = s.event;
    list.append(item);
  }
}

function render(trace) {
  const span = Math.max(trace.span_us, 1);
  const processes = trace.processes
    .map((p) => `${p.kind || "process"} ${p.process}`).join(", ");
  const total = trace.complete ? ` · ${trace.state} after ${formatUs(trace.span_us)}` : "";
  $("wf-summary").textContent = trace.events.length
    ? `${trace.t || "?"}${total} · ${trace.events.length} events from ${processes}`
    : "no event with this id in the trace log yet";
  const head = $("wf-axis");
  head.replaceChildren(element("span", "sr-only", "timeline"), axis(span));
  const body = $("wf-rows");
  body.replaceChildren();
  stateList(trace.states);
  if (trace.states.length) body.append(stateRow(trace.states, span));
  for (const row of trace.rows) {
    const tr = element("tr", `wf-row wf-row-${row.kind}`);
    tr.dataset.kind = row.kind;
    const label = element("th", "wf-label");
    label.scope = "row";
    label.append(element("span", "wf-kind", KIND_NAMES[row.kind] || row.kind), " ",
      element("span", "wf-text", row.label));
    const duration = row.duration_us == null ? "" : formatUs(row.duration_us);
    tr.append(
      label,
      element("td", "wf-where", where(row)),
      track(row, span),
      element("td", "wf-num", row.start_us ? `+${formatUs(row.start_us)}` : "0"),
      element("td", "wf-num", row.open ? `${duration}… running` : duration),
    );
    body.append(tr);
  }
  const cut = trace.files.filter((f) => f.truncated).map((f) => f.path);
  $("wf-note").textContent = cut.length
    ? `Only the last ${Math.round(trace.max_bytes / 1048576)} MiB of ${cut.join(", ")} were read.`
    : "";
}

async function poll(state) {
  if (current !== state) return; // another request was chosen meanwhile
  let response;
  let data;
  try {
    response = await fetch(traceUrl(state.i), { credentials: "same-origin" });
    data = await response.json();
  } catch (exc) {
    setStatus(`could not read the trace: ${exc.message}`, "error");
    return;
  }
  if (current !== state) return;
  if (!response.ok) {
    setStatus(data.message || `HTTP ${response.status}`, "error");
    return;
  }
  render(data);
  if (data.complete) {
    setStatus("complete", "complete");
  } else if (performance.now() < state.deadline) {
    setStatus("waiting for the trace log…", "waiting");
    state.timer = setTimeout(() => poll(state), POLL_EVERY_MS);
  } else {
    setStatus(`not complete after ${POLL_MS / 1000} s: refresh to read it again`, "incomplete");
  }
}

export function showWaterfall(i) {
  if (current) clearTimeout(current.timer);
  current = { i, deadline: performance.now() + POLL_MS, timer: null };
  const panel = $("waterfall");
  panel.hidden = false;
  panel.dataset.i = i;
  document.body.classList.add("wf-open");
  $("wf-i").textContent = i;
  $("wf-summary").textContent = "";
  $("wf-rows").replaceChildren();
  $("wf-states").replaceChildren();
  setStatus("reading the trace log…", "waiting");
  poll(current);
}

export function closeWaterfall() {
  if (current) clearTimeout(current.timer);
  current = null;
  $("waterfall").hidden = true;
  document.body.classList.remove("wf-open");
}

$("wf-close").addEventListener("click", closeWaterfall);
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && current) closeWaterfall();
});
$("wf-refresh").addEventListener("click", () => current && showWaterfall(current.i));
