// Envelope Router's JavaScript client: one ES module, no dependencies, no build step.
//
//   import { connect } from "/static/envelope/client.js";
//   const client = connect("ws://127.0.0.1:8000/ws/");
//   const reply = await client.request("echo", { text: "hi" });          // resolves on `s`
//   client.on("chat.message", (p) => console.log(p.author, p.text));     // pushes by type
//   await client.subscribe("room.lobby");                                 // kept across reconnects
//   client.presence("room.lobby", (users) => render([...users.keys()]));  // who is here
//
// A request resolves with the reply's payload when the server answers `s`, and rejects
// with an `EnvelopeError` (its `code`, `message` and whole `payload`) when it answers
// `f`, when no answer came within `timeout` ms (code "timeout"), or when the socket
// closed while the request was out (code "disconnected": the outcome is unknown).
// Requests made while the socket is down wait for it and leave when it opens.

const TRACE_CHARS = "0123456789abcdefghijklmnopqrstuvwxyz";

function randomChars(n) {
  const bytes = new Uint8Array(n);
  globalThis.crypto.getRandomValues(bytes);
  let out = "";
  for (const b of bytes) out += TRACE_CHARS[b % TRACE_CHARS.length];
  return out;
}

// One random prefix per page, then a counter: unique enough to find a trace in the
// logs, and in the protocol's alphabet (A-Za-z0-9._:-, at most 64 chars).
const tracePrefix = `c${randomChars(8)}`;
let traceCounter = 0;

/** A new trace id (`i`), e.g. "c4k2x9q0a-1f". */
export function newTraceId() {
  traceCounter += 1;
  return `${tracePrefix}-${traceCounter.toString(36)}`;
}

/** What a failed request rejects with: the `f` payload's `code` and `message`, and all of it. */
export class EnvelopeError extends Error {
  constructor(payload, { t = null, i = null } = {}) {
    const body = payload && typeof payload === "object" ? payload : {};
    super(body.message || body.code || "The request failed.");
    this.name = "EnvelopeError";
    this.code = body.code || "error";
    this.payload = body;
    this.t = t;
    this.i = i;
  }
}

const DEFAULTS = {
  timeout: 10000, // ms per request; 0 waits forever
  reconnect: true,
  minDelay: 250, // ms before the first reconnect attempt, doubled each failure...
  maxDelay: 8000, // ...up to this
  subscribeType: "topic.subscribe",
  leaveType: "topic.leave",
};

/**
 * A websocket speaking Envelope Router's protocol, reconnecting with backoff.
 *
 * Status (`client.status`, `onStatus`): "idle" before `connect()` and after `close()`,
 * "connecting", "open", "reconnecting" (waiting to try again).
 */
export class EnvelopeClient {
  constructor(url, options = {}) {
    this.url = url;
    this.options = { ...DEFAULTS, ...options };
    this.status = "idle";
    this.lastClose = null; // {code, reason, wasClean} of the last close
    this.attempts = 0; // failed attempts since the last open
    this.topics = new Set(); // what the app wants to be subscribed to
    this._subscribing = new Map(); // topic -> the promise of its pending subscribe
    this._pending = new Map(); // i -> request entry
    this._outbox = []; // entries waiting for an open socket
    this._pushHandlers = new Map(); // t -> Set of fn(p, frame)
    this._statusListeners = new Set();
    this._frameListeners = new Set();
    this._ws = null;
    this._wanted = false;
    this._retryTimer = null;
  }

  /** Open the socket (and keep it open); resolves when it is open. */
  connect() {
    this._wanted = true;
    if (!this._ws && this._retryTimer === null) this._open();
    return this.opened();
  }

  /** Resolves the next time the socket is open (at once if it is). */
  opened() {
    if (this.status === "open") return Promise.resolve(this);
    return new Promise((resolve) => {
      const stop = this.onStatus((status) => {
        if (status === "open") {
          stop();
          resolve(this);
        }
      });
    });
  }

  /** Close for good: no reconnect; requests still waiting reject with "disconnected". */
  close(code = 1000, reason = "") {
    this._wanted = false;
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    const ws = this._ws;
    this._ws = null;
    if (ws) ws.close(code, reason);
    for (const entry of [...this._pending.values()]) this._disconnected(entry);
    this._outbox = [];
    this._setStatus("idle");
  }

  /**
   * Send `t` with payload `p`; resolves with the `s` payload, rejects with an
   * `EnvelopeError` on `f`, timeout or disconnect. `onState(state, payload, frame)` sees
   * every reply to it (`a`, `q`, `r` with progress, then `s` or `f`). The promise has the
   * request's trace id as `.i`.
   */
  request(t, p = null, { timeout = this.options.timeout, onState = null, i = null } = {}) {
    const entry = { t, i: i === null ? newTraceId() : String(i), p, onState, sent: false };
    const promise = new Promise((resolve, reject) => {
      entry.resolve = resolve;
      entry.reject = reject;
    });
    this._pending.set(entry.i, entry);
    if (timeout > 0) {
      entry.timer = setTimeout(() => {
        const message = `No answer to ${t} within ${timeout} ms.`;
        this._settle(entry, new EnvelopeError({ code: "timeout", message }, entry), true);
      }, timeout);
    }
    if (this.status === "open") this._transmit(entry);
    else this._outbox.push(entry);
    promise.i = entry.i;
    return promise;
  }

  /**
   * Send `t` with payload `p` and expect no answer (for handlers declared `reply=False`):
   * nothing waits for a reply; an `f` reply to it reaches `onFrame` listeners only.
   * Sent now when the socket is open, else when it opens. Returns the trace id.
   */
  send(t, p = null, { i = null } = {}) {
    const entry = { t, i: i === null ? newTraceId() : String(i), p, sent: false };
    if (this.status === "open") this._transmit(entry);
    else this._outbox.push(entry);
    return entry.i;
  }

  /** Call `fn(payload, frame)` for every push of type `t` ("*": every push); returns an unsubscribe. */
  on(t, fn) {
    let set = this._pushHandlers.get(t);
    if (!set) this._pushHandlers.set(t, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  /** Subscribe to `topic`, now and after every reconnect; resolves with the server's answer. */
  subscribe(topic, options = {}) {
    this.topics.add(topic);
    return this._subscribe(topic, options);
  }

  /** Stop wanting `topic`; tells the server when the socket is open. */
  leave(topic, options = {}) {
    this.topics.delete(topic);
    if (this.status !== "open") return Promise.resolve(null);
    return this.request(this.options.leaveType, { topic }, options);
  }

  /**
   * Who is in `topic` (declared with `presence=True`): subscribes to it (kept across
   * reconnects), asks `presence.list` after every (re)connect, and applies the
   * `presence.diff` pushes by the rule of the docs (an entry counts when its `v` is newer
   * than the list's `version` and the user's last entry). `onChange(users)` is called with
   * the Map user -> info after each change. Returns `{ users, stop() }`; `stop()` ends the
   * tracking (the subscription stays: `leave(topic)` to leave).
   */
  presence(topic, onChange = () => {}) {
    const users = new Map();
    const last = new Map(); // user -> the `v` of the entry applied last
    let version = null; // null until a list answered: diffs wait in `early`
    let early = [];
    let stopped = false;
    const apply = (diff) => {
      const entries = [
        ...(diff.joins || []).map((entry) => [entry, true]),
        ...(diff.leaves || []).map((entry) => [entry, false]),
      ];
      for (const [entry, joined] of entries) {
        if (entry.v <= Math.max(version, last.get(entry.user) || 0)) continue;
        last.set(entry.user, entry.v);
        if (joined) users.set(entry.user, entry.info || {});
        else users.delete(entry.user);
      }
    };
    const offDiff = this.on("presence.diff", (p) => {
      if (stopped || !p || p.topic !== topic) return;
      if (version === null) early.push(p);
      else {
        apply(p);
        onChange(users);
      }
    });
    const refresh = async () => {
      version = null;
      try {
        await this.subscribe(topic);
        const state = await this.request("presence.list", { topic });
        if (stopped) return;
        users.clear();
        last.clear();
        for (const entry of state.users) users.set(entry.user, entry.info || {});
        version = state.version;
        const waiting = early;
        early = [];
        for (const diff of waiting) apply(diff);
        onChange(users);
      } catch (error) {
        // Redis away (`topics_unavailable`) or the socket dropped: try again while open.
        if (!stopped && this.status === "open") setTimeout(refresh, this.options.maxDelay / 4);
      }
    };
    const offStatus = this.onStatus((status) => {
      if (status === "open" && !stopped) refresh();
    });
    if (this.status === "open") refresh();
    return {
      users,
      stop: () => {
        stopped = true;
        offDiff();
        offStatus();
      },
    };
  }

  /** `fn(status, client)` on every status change; returns an unsubscribe. */
  onStatus(fn) {
    this._statusListeners.add(fn);
    return () => this._statusListeners.delete(fn);
  }

  /** `fn(direction, frame, at)` for every frame sent ("out") or received ("in"). */
  onFrame(fn) {
    this._frameListeners.add(fn);
    return () => this._frameListeners.delete(fn);
  }

  // -- socket ---------------------------------------------------------------------------

  _open() {
    const Socket = this.options.WebSocket || globalThis.WebSocket;
    const ws = new Socket(this.url);
    this._ws = ws;
    this._setStatus(this.attempts > 0 ? "reconnecting" : "connecting");
    ws.onopen = () => {
      if (this._ws !== ws) return;
      this.attempts = 0;
      this._setStatus("open");
      for (const topic of this.topics) {
        if (!this._subscribing.has(topic)) this._subscribe(topic).catch(() => {});
      }
      const waiting = this._outbox;
      this._outbox = [];
      for (const entry of waiting) {
        // A request that timed out while waiting is not sent; a `send` always is.
        if (!entry.resolve || this._pending.has(entry.i)) this._transmit(entry);
      }
    };
    ws.onmessage = (event) => {
      if (this._ws === ws) this._receive(event.data);
    };
    ws.onclose = (event) => {
      if (this._ws !== ws) return;
      this._ws = null;
      this.lastClose = { code: event.code, reason: event.reason, wasClean: event.wasClean };
      // Requests that were out: the server dropped them with the connection.
      for (const entry of [...this._pending.values()]) if (entry.sent) this._disconnected(entry);
      if (this._wanted && this.options.reconnect) this._scheduleRetry();
      else this._setStatus("idle");
    };
  }

  _scheduleRetry() {
    const { minDelay, maxDelay } = this.options;
    const base = Math.min(maxDelay, minDelay * 2 ** this.attempts);
    // Jitter, so that many clients dropped together do not come back together.
    const delay = base / 2 + Math.random() * (base / 2);
    this.attempts += 1;
    this._setStatus("reconnecting");
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      if (this._wanted) this._open();
    }, delay);
  }

  _subscribe(topic, options = {}) {
    const promise = this.request(this.options.subscribeType, { topic }, options);
    this._subscribing.set(topic, promise);
    promise.then(
      () => this._subscribing.delete(topic),
      (error) => {
        this._subscribing.delete(topic);
        // Refused (forbidden, unknown topic...): stop asking. Timeouts and drops retry.
        if (error.code !== "timeout" && error.code !== "disconnected") this.topics.delete(topic);
      },
    );
    return promise;
  }

  _transmit(entry) {
    const frame = { t: entry.t, i: entry.i };
    if (entry.p !== null && entry.p !== undefined) frame.p = entry.p;
    entry.sent = true;
    this._ws.send(JSON.stringify(frame));
    this._emitFrame("out", frame);
  }

  _receive(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return; // the server only sends JSON; nothing sensible to do with anything else
    }
    this._emitFrame("in", frame);
    if (frame.s) {
      const entry = frame.i == null ? undefined : this._pending.get(String(frame.i));
      if (entry === undefined) return; // a late reply to a request that timed out
      if (entry.onState) safely(entry.onState, frame.s, frame.p ?? null, frame);
      if (frame.s === "s") this._settle(entry, frame.p ?? null, false);
      else if (frame.s === "f") this._settle(entry, new EnvelopeError(frame.p, frame), true);
      return;
    }
    for (const key of [frame.t, "*"]) {
      const set = this._pushHandlers.get(key);
      if (set) for (const fn of [...set]) safely(fn, frame.p ?? null, frame);
    }
  }

  _settle(entry, value, failed) {
    if (!this._pending.delete(entry.i)) return;
    clearTimeout(entry.timer);
    if (failed) entry.reject(value);
    else entry.resolve(value);
  }

  _disconnected(entry) {
    const message = "The connection closed before the answer came; the outcome is unknown.";
    this._settle(entry, new EnvelopeError({ code: "disconnected", message }, entry), true);
  }

  _setStatus(status) {
    if (status === this.status) return;
    this.status = status;
    for (const fn of [...this._statusListeners]) safely(fn, status, this);
  }

  _emitFrame(direction, frame) {
    const at = globalThis.performance ? globalThis.performance.now() : Date.now();
    for (const fn of [...this._frameListeners]) safely(fn, direction, frame, at);
  }
}

function safely(fn, ...args) {
  try {
    fn(...args);
  } catch (error) {
    // A listener's bug must not break the client's bookkeeping.
    console.error(error);
  }
}

/** `new EnvelopeClient(url, options)`, connecting at once. */
export function connect(url, options = {}) {
  const client = new EnvelopeClient(url, options);
  client.connect();
  return client;
}
