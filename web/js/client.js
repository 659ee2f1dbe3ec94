// RoomConnection: the browser half of the room WebSocket protocol (bidroom/protocol.py).
//
// Rules of this file: no DOM and no room logic. It says hello, answers pings, keeps the last seq
// it holds so a reconnect resumes exactly where it stopped, and carries commands with a client id
// so that a command retried after a reconnect is applied once by the server. Media frames
// (`media`, `peer`, `signal`) pass through as events of their own name for web/js/media.js;
// signals are ephemeral: sent only while joined, never queued, never re-sent.

/** Close codes after which the protocol says: reconnect and resume (protocol.RECONNECT + 1006). */
export const RETRY_CODES = new Set([1001, 1006, 1011, 1012, 4008, 4009]);

/** Close codes that end the session for good; retrying would fail the same way. */
export const FATAL_CODES = new Map([
  [4001, "unauthorized"],
  [4002, "protocol_violation"],
  [4003, "forbidden"],
  [4004, "room_not_found"],
  [4010, "removed"],
  [4011, "room_tampered"],
  [4029, "connection_replaced"],
]);

const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 15000; // docs/protocol.md: the reconnect delay caps at 15 s
// The server pings every welcome.limits.heartbeat seconds (15 by default); hearing nothing for
// three of them means a dead link that the browser has not noticed (a sleeping laptop, a dropped
// Wi-Fi), so we close and resume. Until the first welcome, three default intervals.
const SILENCE_MS = 45000;
const SILENCE_HEARTBEATS = 3;
const SIGNAL_IDS_KEPT = 500;

export class RoomConnection extends EventTarget {
  /**
   * @param {{room: string, token: string, role?: string, url?: string, since?: number}} options
   */
  constructor({ room, token, role = null, url = defaultUrl(), since = 0 }) {
    super();
    this.room = room;
    this.token = token;
    this.role = role;
    this.url = url;
    this.lastSeq = since;
    this.status = "offline";
    this.you = null;
    this._ws = null;
    this._joined = false;
    this._attempt = 0;
    this._retryTimer = null;
    this._silenceTimer = null;
    this._stopped = false;
    this._lastError = null;
    /** id -> {name, args, resolve, reject}: unanswered commands, re-sent after a reconnect. */
    this._pending = new Map();
    /** ids of signals sent lately: a refusal naming one goes to media.js, not to the page. */
    this._signalIds = new Set();
  }

  /** Open the socket (again). Safe to call when already connecting. */
  connect() {
    if (this._ws || this._stopped) return;
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    this._joined = false;
    this._lastError = null;
    this._setStatus("connecting", { retrying: this._attempt > 0 });
    const ws = new WebSocket(this.url);
    this._ws = ws;
    ws.onopen = () => this._sendHello();
    ws.onmessage = (msg) => this._onFrame(msg.data);
    ws.onclose = (ev) => this._onClose(ws, ev.code, ev.reason);
    // An error is always followed by a close event, which decides what to do.
    ws.onerror = () => {};
  }

  /** Leave for good: no reconnect; unanswered commands are rejected. */
  close() {
    this._stopped = true;
    clearTimeout(this._retryTimer);
    this._drop(1000, "client closed");
    this._rejectAll({ type: "error", code: "closed", message: "connection closed" });
    this._setStatus("offline");
  }

  /**
   * Send a command; resolves with the ack frame, rejects with the error frame.
   * While offline the command waits and goes out after the next welcome, with the same id.
   */
  command(name, args = {}) {
    const id = crypto.randomUUID();
    return new Promise((resolve, reject) => {
      this._pending.set(id, { name, args, resolve, reject });
      if (this._joined) this._sendCommand(id);
    });
  }

  /**
   * Send a media `signal` frame ({kind, to, session, ...}) now, or drop it while offline: a
   * signal is not worth resending after a reconnect (the peers negotiate anew). Returns its id;
   * a refusal comes back as a "signal-error" event carrying that id.
   */
  signal(fields) {
    const id = crypto.randomUUID();
    if (!this._joined) return null;
    this._signalIds.add(id);
    if (this._signalIds.size > SIGNAL_IDS_KEPT) this._signalIds.delete(this._signalIds.values().next().value);
    this._send({ type: "signal", ...fields, id });
    return id;
  }

  get pendingCount() {
    return this._pending.size;
  }

  // frames in ------------------------------------------------------------------------------

  _onFrame(text) {
    this._heard();
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return this._emit("error", { code: "bad_json", message: "server sent a non-JSON frame" });
    }
    const handler = this._handlers[frame.type];
    if (handler) handler.call(this, frame);
  }

  get _handlers() {
    return {
      welcome: this._onWelcome,
      event: this._onEvent,
      snapshot: this._onSnapshot,
      ack: this._onAck,
      error: this._onError,
      media: (frame) => this._emit("media", frame),
      peer: (frame) => this._emit("peer", frame),
      signal: (frame) => this._emit("signal", frame),
      ping: () => this._send({ type: "pong" }),
      pong: () => {},
    };
  }

  _onWelcome(frame) {
    // welcome.seq is the head when we were greeted; we do not adopt it as ours, because the
    // replayed events behind it may still be on the wire if the socket drops now.
    this._joined = true;
    this._attempt = 0;
    this.you = frame.you;
    const heartbeat = Number(frame.limits && frame.limits.heartbeat);
    if (heartbeat > 0) this._silenceMs = SILENCE_HEARTBEATS * heartbeat * 1000;
    this._heard();
    this._setStatus("online");
    this._emit("welcome", frame);
    for (const id of this._pending.keys()) this._sendCommand(id);
  }

  _onEvent(frame) {
    if (frame.seq <= this.lastSeq) return; // already folded (defensive: resume is exact)
    this.lastSeq = frame.seq;
    this._emit("event", frame);
  }

  _onSnapshot(frame) {
    this.lastSeq = frame.seq;
    this._emit("snapshot", frame);
  }

  _onAck(frame) {
    const waiting = this._pending.get(frame.id);
    if (!waiting) return;
    this._pending.delete(frame.id);
    waiting.resolve(frame);
  }

  _onError(frame) {
    if (frame.id && this._signalIds.delete(frame.id)) return this._emit("signal-error", frame);
    const waiting = frame.id ? this._pending.get(frame.id) : null;
    if (waiting) {
      this._pending.delete(frame.id);
      waiting.reject(frame);
      return;
    }
    // An error without a command id before a refusal close explains that close.
    this._lastError = frame;
    this._emit("error", frame);
  }

  // closing and reconnecting ---------------------------------------------------------------

  _onClose(ws, code, reason) {
    if (ws !== this._ws) return; // a socket we already dropped
    this._ws = null;
    this._joined = false;
    clearTimeout(this._silenceTimer);
    if (this._stopped) return;
    if (FATAL_CODES.has(code)) return this._fatal(code, reason);
    if (RETRY_CODES.has(code)) return this._scheduleRetry(code);
    // Any other code (1000 normal, 1009 too big, ...): the server did not ask us to come back.
    this._setStatus("offline", { code, reason });
  }

  _fatal(code, reason) {
    this._stopped = true;
    const error = this._lastError;
    const message = error?.message || reason || FATAL_CODES.get(code);
    this._rejectAll({ type: "error", code: error?.code || FATAL_CODES.get(code), message });
    this._setStatus("offline", { code, reason });
    this._emit("fatal", { code, kind: FATAL_CODES.get(code), error, message });
  }

  _scheduleRetry(code) {
    // Full jitter: clients dropped together by a restart must not all return in the same instant.
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** this._attempt);
    const delay = Math.round(Math.random() * ceiling);
    this._attempt += 1;
    this._setStatus("offline", { code, retrying: true, delay, attempt: this._attempt });
    this._retryTimer = setTimeout(() => this.connect(), delay);
  }

  /** Reconnect now (a user's "retry" click, or the browser saying the network is back). */
  retryNow() {
    if (this._stopped || this._ws) return;
    this._attempt = 0;
    this.connect();
  }

  _heard() {
    clearTimeout(this._silenceTimer);
    this._silenceTimer = setTimeout(() => this._onSilence(), this._silenceMs || SILENCE_MS);
  }

  _onSilence() {
    if (!this._ws) return;
    this._drop(4000, "no heartbeat heard");
    this._scheduleRetry(4009);
  }

  /** Close our socket ourselves; its close event is then ignored (see _onClose). */
  _drop(code, reason) {
    const ws = this._ws;
    if (!ws) return;
    this._ws = null;
    this._joined = false;
    clearTimeout(this._silenceTimer);
    try {
      ws.close(code, reason);
    } catch {
      // closing a socket that never opened may throw; it is gone either way
    }
  }

  // frames out -----------------------------------------------------------------------------

  _sendHello() {
    const hello = { type: "hello", token: this.token, room: this.room, since: this.lastSeq };
    if (this.role) hello.role = this.role;
    this._send(hello);
    this._heard();
  }

  _sendCommand(id) {
    const { name, args } = this._pending.get(id);
    this._send({ type: "command", id, name, args });
  }

  _send(frame) {
    if (this._ws && this._ws.readyState === WebSocket.OPEN) this._ws.send(JSON.stringify(frame));
  }

  _rejectAll(error) {
    for (const [id, waiting] of this._pending) waiting.reject({ ...error, id });
    this._pending.clear();
  }

  _setStatus(status, detail = {}) {
    this.status = status;
    this._emit("status", { status, ...detail });
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

function defaultUrl() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}/ws`;
}
