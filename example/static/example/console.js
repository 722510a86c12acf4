// The console page: a thin view over the JavaScript client (envelope/client.js).

import { EnvelopeClient } from "envelope/client";
import { examplePayload } from "./schema.js";
import { showWaterfall } from "./waterfall.js";

const $ = (id) => document.getElementById(id);
const TRACE_LOG = document.body.dataset.traceLog || "trace.log";
const TERMINAL = new Set(["s", "f", "timeout", "disconnected"]);

const types = new Map(); // message type -> {schema, extension} from the contract (/api/schema)
let definitions = {}; // the contract's components.schemas
const groups = new Map(); // trace id -> {el, started}
const topicState = new Map(); // topic -> "pending" | "subscribed" | "refused: <code>"
let client = null;

$("url").value = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/`;

// -- connection -------------------------------------------------------------------------

function clientFor(url) {
  if (client && client.url === url) return client;
  if (client) client.close();
  client = new EnvelopeClient(url);
  client.onStatus(showStatus);
  client.onFrame(showFrame);
  client.on("*", showPush);
  return client;
}

function showStatus(status) {
  const badge = $("status");
  badge.textContent = status;
  badge.dataset.status = status;
}

function connect() {
  clientFor($("url").value.trim()).connect();
}

async function reconnect() {
  if (client && client.status !== "idle") {
    client.close();
    await client.connect();
  }
}

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

async function post(path, fields = {}) {
  // Form-encoded: an empty multipart body is one Django's parser refuses (400).
  const response = await fetch(path, {
    method: "POST",
    body: new URLSearchParams(fields),
    headers: { "X-CSRFToken": csrfToken() },
    credentials: "same-origin",
  });
  const data = await response.json().catch(() => ({ message: response.statusText }));
  if (!response.ok) throw new Error(data.message || `HTTP ${response.status}`);
  return data;
}

async function setUser(action) {
  const error = $("auth-error");
  error.hidden = true;
  try {
    const data = action === "login"
      ? await post("/api/login", {
        username: document.body.dataset.demoUsername,
        password: document.body.dataset.demoPassword,
      })
      : await post("/api/logout");
    document.body.dataset.user = data.user || "";
    $("user").textContent = data.user ? `user: ${data.user}` : "anonymous";
    // The socket read the session when it opened: open it again as the new user.
    await reconnect();
  } catch (exc) {
    error.textContent = `${action} failed: ${exc.message}`;
    error.hidden = false;
  }
}

// -- composing --------------------------------------------------------------------------

// The type list and the payload examples come from the contract (AsyncAPI 3.0): one
// `receive` operation per type a client may send, its request message's payload schema.
async function loadTypes() {
  const response = await fetch("/api/schema");
  const document = await response.json();
  definitions = document.components.schemas;
  const messages = document.channels.envelope.messages;
  for (const operation of Object.values(document.operations)) {
    if (operation.action !== "receive") continue;
    const request = messages[operation.messages[0].$ref.split("/").pop()];
    const extension = operation["x-envelope"];
    types.set(extension.type, { ...extension, schema: definitions[request["x-envelope"].model] });
  }
  const select = $("type");
  for (const name of [...types.keys()].sort()) select.append(new Option(name, name));
  select.value = types.has("ping") ? "ping" : select.value;
  chooseType();
}

function chooseType() {
  const description = types.get($("type").value);
  if (!description) return;
  const payload = examplePayload(description.schema, definitions);
  $("payload").value = payload === null ? "" : JSON.stringify(payload, null, 2);
  const notes = [];
  if (description.deferred) notes.push(`deferred: ${description.states.join(" → ")}`);
  if (description.concurrent) notes.push("concurrent");
  if (description.permission) notes.push(`permission: ${description.permission}`);
  notes.push(`codes: ${description.codes.join(", ")}`);
  $("type-info").textContent = notes.join(" · ");
}

function send() {
  const error = $("payload-error");
  error.hidden = true;
  let payload = null;
  const text = $("payload").value.trim();
  if (text) {
    try {
      payload = JSON.parse(text);
    } catch (exc) {
      error.textContent = `The payload is not JSON: ${exc.message}`;
      error.hidden = false;
      return;
    }
  }
  if (!client) connect();
  const timeout = Number($("timeout").value) || 0;
  const request = client.request($("type").value, payload, { timeout });
  // `f` replies are on the wire (and shown from there); these two are the client's own.
  request.catch((exc) => {
    if (exc.code === "timeout" || exc.code === "disconnected") {
      addState(request.i, exc.code, performance.now(), { code: exc.code, message: exc.message });
    }
  });
}

// -- topics -----------------------------------------------------------------------------

function showTopics() {
  const list = $("topic-list");
  list.replaceChildren();
  for (const [topic, state] of topicState) {
    const item = document.createElement("li");
    item.dataset.topic = topic;
    item.dataset.state = state;
    item.textContent = `${topic} — ${state}`;
    list.append(item);
  }
}

function subscribe() {
  const topic = $("topic").value.trim();
  if (!topic) return;
  if (!client) connect();
  topicState.set(topic, "pending");
  showTopics();
  client.subscribe(topic).then(
    () => topicState.set(topic, "subscribed"),
    (exc) => topicState.set(topic, `refused: ${exc.code}`),
  ).finally(showTopics);
}

function leave() {
  const topic = $("topic").value.trim();
  topicState.delete(topic);
  showTopics();
  if (client) client.leave(topic).catch(() => {});
}

// -- the frame log ----------------------------------------------------------------------

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

function groupFor(i, t, at) {
  let group = groups.get(i);
  if (group) return group;
  const el = element("div", "request");
  el.dataset.i = i;
  el.dataset.t = t;
  el.dataset.state = "sent";
  const head = element("div", "head");
  const open = element("button", "small show-waterfall", "waterfall");
  open.setAttribute("aria-label", `Show the waterfall of ${i}`);
  head.append(element("span", "t", t), element("code", "i", i), element("span", "final", "…"), open);
  const trace = element("div", "trace muted", "trace: ");
  trace.append(element("code", "trace-command", `envelope trace ${i} ${TRACE_LOG}`));
  el.append(head, element("ol", "states"), element("pre", "payload"), trace);
  el.querySelector(".payload").hidden = true;
  $("request-list").prepend(el);
  group = { el, started: at };
  groups.set(i, group);
  return group;
}

function addState(i, state, at, payload, label = state) {
  const group = groups.get(i);
  if (!group) return;
  const { el, started } = group;
  const item = element("li", `state-${state}`, `${label} +${(at - started).toFixed(1)} ms`);
  item.dataset.state = state;
  if (state === "r" && payload) item.title = JSON.stringify(payload); // progress, on hover
  el.querySelector(".states").append(item);
  if (payload !== undefined && payload !== null && state !== "push") {
    const pre = el.querySelector(".payload");
    pre.textContent = JSON.stringify(payload, null, 2);
    pre.hidden = false;
  }
  if (state !== "push") {
    el.dataset.state = state;
    const final = el.querySelector(".final");
    final.textContent = TERMINAL.has(state) ? state : `${state}…`;
    final.className = `final state-${state}`;
  }
}

function showFrame(direction, frame, at) {
  if (direction === "out") {
    groupFor(frame.i, frame.t, at);
    addState(frame.i, "sent", at, undefined);
  } else if (frame.s) {
    const i = frame.i == null ? "" : String(frame.i);
    if (!groups.has(i)) groupFor(i, frame.t, at); // e.g. an answer to a frame not sent here
    addState(i, frame.s, at, frame.p);
  } else if (frame.i != null && groups.has(String(frame.i))) {
    addState(String(frame.i), "push", at, undefined, `push ${frame.t}`);
  }
}

function showPush(payload, frame) {
  const item = element("li", "push");
  item.dataset.t = frame.t;
  if (frame.i != null) item.dataset.i = String(frame.i); // the request that caused it
  item.append(element("strong", "", frame.t), " ", element("code", "", JSON.stringify(payload)));
  $("pushes").prepend(item);
}

// -- wiring -----------------------------------------------------------------------------

$("connect").addEventListener("click", connect);
$("disconnect").addEventListener("click", () => client && client.close());
$("login").addEventListener("click", () => setUser("login"));
$("logout").addEventListener("click", () => setUser("logout"));
$("type").addEventListener("change", chooseType);
$("send").addEventListener("click", send);
$("subscribe").addEventListener("click", subscribe);
$("leave").addEventListener("click", leave);
// Selecting a request - its entry (any of its frames) or a push it caused - shows its
// waterfall.
function select(event) {
  const chosen = event.target.closest("[data-i]");
  if (!chosen?.dataset.i || event.target.closest("pre, code.trace-command")) return;
  for (const el of document.querySelectorAll(".selected")) el.classList.remove("selected");
  chosen.classList.add("selected");
  showWaterfall(chosen.dataset.i);
}
$("request-list").addEventListener("click", select);
$("pushes").addEventListener("click", select);
$("clear").addEventListener("click", () => {
  groups.clear();
  $("request-list").replaceChildren();
});

// The type list first: when the badge says "open", every type can be chosen and sent.
try {
  await loadTypes();
} catch (exc) {
  $("type-info").textContent = `could not load the message types: ${exc.message}`;
}
document.body.dataset.ready = "1";
connect();
