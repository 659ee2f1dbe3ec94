// The room page: one meeting as one participant sees it, live over the room WebSocket.
//
// Flow: take the sign-in token from the URL fragment, connect (client.js), fold every event into
// the view state (meeting.js), and re-render from that state. The page never guesses an outcome:
// what it shows comes from events the server recorded, so every participant sees the same room.

import { SESSION_KEY, takeToken } from "./session.js";
import { RoomConnection } from "./client.js";
import { byId, fill, h } from "./dom.js";
import * as i18n from "./i18n.js";
import * as meeting from "./meeting.js";
import { MediaRoom } from "./media.js";
import * as servertime from "./servertime.js";

const { t } = i18n;
const SPEAKERS = new Set(["chair", "bidder", "expert"]);
const WATCHERS = new Set(["chair", "supervisor"]);
const TOAST_MS = 6000;

const page = {
  room: "",
  conn: null,
  media: null, // the audio and video panel (media.js)
  state: meeting.initial(), // replaced by the snapshot every newcomer gets first
  me: null,
  replayedUpTo: 0, // events up to this seq are history (not read out as new)
  status: { status: "connecting" },
  fatal: null,
};

// start -----------------------------------------------------------------------------------

function boot() {
  i18n.translatePage();
  byId("lang").addEventListener("click", switchLanguage);
  page.room = new URLSearchParams(location.search).get("room") || "";
  const token = takeToken(page.room);
  renderLanguageButton();
  if (!page.room || !token) return showFatal("no_token");
  byId("main").hidden = false;
  wireForms();
  connect(token);
  setInterval(renderCountdown, 1000);
  servertime.onChange(render);
  servertime.start();
  render();
}

function connect(token) {
  const role = new URLSearchParams(location.search).get("role");
  const conn = new RoomConnection({ room: page.room, token, role });
  page.conn = conn;
  conn.addEventListener("welcome", (e) => onWelcome(e.detail));
  conn.addEventListener("event", (e) => onEvent(e.detail));
  conn.addEventListener("snapshot", (e) => onSnapshot(e.detail));
  conn.addEventListener("status", (e) => onStatus(e.detail));
  conn.addEventListener("fatal", (e) => onFatal(e.detail));
  conn.addEventListener("error", (e) => toast(i18n.errorText(e.detail), "error"));
  page.media = new MediaRoom({ conn, root: byId("media-panel"), run });
  // The browser knows before our backoff timer does that the network came back.
  window.addEventListener("online", () => conn.retryNow());
  byId("retry").addEventListener("click", () => conn.retryNow());
  conn.connect();
}

// protocol events -------------------------------------------------------------------------

function onWelcome(frame) {
  page.me = frame.you;
  page.replayedUpTo = frame.seq;
  render();
}

function onEvent(frame) {
  page.state = meeting.apply(page.state, frame);
  if (frame.name === "meeting.announced" && frame.seq > page.replayedUpTo) {
    byId("live").textContent = t("announcements.new", { text: frame.data.text });
  }
  render();
}

function onSnapshot(frame) {
  page.state = meeting.fromSnapshot(frame.state);
  render();
}

function onStatus(detail) {
  page.status = detail;
  renderStatus();
}

function onFatal(detail) {
  if (detail.kind === "unauthorized") {
    sessionStorage.removeItem(`bidroom.token.${page.room}`);
    sessionStorage.removeItem(SESSION_KEY);
  }
  showFatal(detail.kind, detail.message);
}

// commands --------------------------------------------------------------------------------

/** Send a command; tell the user what happened. Resolves true when the server accepted it. */
async function run(name, args = {}, okText = null, button = null) {
  if (page.conn.status !== "online") toast(t("toast.queued"), "info");
  if (button) button.disabled = true;
  try {
    await page.conn.command(name, args);
    if (okText) toast(okText, "ok");
    return true;
  } catch (error) {
    toast(i18n.errorText(error), "error");
    return false;
  } finally {
    if (button) button.disabled = false;
  }
}

function wireForms() {
  byId("open-meeting").addEventListener("click", (e) =>
    run("meeting.open", {}, t("toast.opened"), e.currentTarget));
  byId("close-meeting").addEventListener("click", closeMeeting);
  byId("announce-form").addEventListener("submit", (e) => submitText(e, "announce-text", "meeting.announce"));
  byId("message-form").addEventListener("submit", (e) => submitText(e, "message-text", "meeting.message"));
}

async function submitText(event, fieldId, name) {
  event.preventDefault();
  const field = byId(fieldId);
  const text = field.value.trim();
  if (!text) return;
  const args = { text };
  if (name === "meeting.message" && page.me?.role === "chair") {
    args.to = byId("message-to").value;
    if (!args.to) return toast(t("messages.pick"), "error");
  }
  const submit = event.target.querySelector("button[type=submit]");
  if (await run(name, args, null, submit)) field.value = "";
}

async function closeMeeting(event) {
  const button = event.currentTarget;
  const answer = await ask({ title: t("chair.close"), body: t("chair.close.confirm") });
  if (answer !== null) run("meeting.close", {}, t("toast.closed"), button);
}

async function removeParticipant(p) {
  const reason = await ask({
    title: t("chair.remove.title", { name: p.name }),
    label: t("chair.remove.reason"),
    input: true,
  });
  if (reason) run("meeting.remove", { subject: p.subject, reason });
}

/** A modal question; resolves with the typed text ("" without input), or null if cancelled. */
function ask({ title, body = "", label = "", input = false }) {
  const dialog = byId("ask");
  byId("ask-title").textContent = title;
  byId("ask-body").textContent = body;
  byId("ask-label").textContent = label;
  const field = byId("ask-input");
  field.value = "";
  field.hidden = byId("ask-label").hidden = !input;
  field.required = input;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "ok" ? field.value.trim() : null);
    }, { once: true });
  });
}

// rendering -------------------------------------------------------------------------------

function render() {
  servertime.renderSkew();
  renderHead();
  renderStatus();
  renderMe();
  renderChairPanel();
  renderParticipants();
  renderAnnouncements();
  renderMessages();
}

function roomTitle() {
  return page.state.title || page.room;
}

function renderHead() {
  byId("title").textContent = roomTitle();
  document.title = `${roomTitle()} · ${t("app.name")}`;
  const phase = byId("phase");
  phase.textContent = t(`phase.${page.state.phase}`);
  phase.className = `badge phase-${page.state.phase}`;
  const starts = page.state.startsAt;
  byId("starts").textContent = starts ? t("starts.at", { time: i18n.formatDateTime(starts) }) : "";
  renderCountdown();
}

function renderCountdown() {
  const el = byId("countdown");
  const { phase, startsAt } = page.state;
  if (phase !== "scheduled") {
    el.textContent = "";
    return;
  }
  const left = startsAt ? new Date(startsAt).getTime() - servertime.now() : NaN;
  if (Number.isNaN(left)) el.textContent = t("countdown.unknown");
  else if (left > 0) el.textContent = `${t("countdown.label")} ${i18n.formatCountdown(left)}`;
  else el.textContent = t("countdown.due");
}

function renderStatus() {
  const { status, retrying } = page.status;
  const shown = status === "online" ? "online" : retrying || status === "connecting" && page.me ? "reconnecting" : status;
  const pill = byId("status");
  pill.textContent = t(`status.${shown}`);
  pill.className = `pill status-${shown}`;
  byId("retry").hidden = !(status === "offline" && !retrying && !page.fatal);
}

function renderMe() {
  const me = page.me;
  if (!me) return fill(byId("me"));
  fill(byId("me"),
    h("dt", {}, me.name || me.subject),
    h("dd", {}, h("span", { class: `role role-${me.role}` }, t(`role.${me.role}`))),
    me.organisation && [h("dt", { class: "muted" }, t("me.organisation")), h("dd", {}, me.organisation)],
    me.venue && [h("dt", { class: "muted" }, t("me.venue")), h("dd", {}, me.venue)],
  );
}

function allowed() {
  return new Set(page.me ? meeting.allowedFor(page.state, page.me.role) : []);
}

function renderChairPanel() {
  const can = allowed();
  const isChair = page.me?.role === "chair";
  const shown = ["meeting.open", "meeting.close", "meeting.announce"].filter((name) => can.has(name));
  // Once the meeting is closed the chair has nothing left to do here: no empty panel.
  byId("chair-panel").hidden = !isChair || shown.length === 0;
  byId("open-meeting").hidden = !can.has("meeting.open");
  byId("close-meeting").hidden = !can.has("meeting.close");
  byId("announce-form").hidden = !can.has("meeting.announce");
}

/**
 * The server shows everyone's presence to watchers (chair, supervisor) only; anyone else sees the
 * chair and themself. The panel says which view it is, so a bidder does not take it for the room.
 */
function renderParticipants() {
  const role = page.me?.role;
  const everyone = !role || WATCHERS.has(role);
  const people = Object.values(page.state.participants).sort(byRoleThenName);
  byId("people-title").textContent = t(everyone ? "participants.title" : "participants.title.self");
  const count = byId("people-count");
  count.textContent = everyone ? `(${people.filter((p) => meeting.isOnline(p) && !p.removed).length}/${people.length})` : "";
  count.title = everyone ? t("participants.count.label") : "";
  const hint = byId("people-hint");
  hint.hidden = everyone;
  hint.textContent = everyone ? "" : t("participants.hint.self");
  const items = people.map(participantItem);
  if (!everyone && page.me && !people.some((p) => p.role === "chair")) {
    items.unshift(h("li", { class: "empty" }, t("participants.noChair")));
  }
  fill(byId("participants"), items.length ? items : h("li", { class: "empty" }, t("participants.empty")));
}

const ROLE_ORDER = ["chair", "supervisor", "custodian", "expert", "bidder", "public"];

function byRoleThenName(a, b) {
  const rank = (p) => (ROLE_ORDER.indexOf(p.role) + ROLE_ORDER.length + 1) % (ROLE_ORDER.length + 1);
  return rank(a) - rank(b) || (a.name || a.subject).localeCompare(b.name || b.subject, "zh-CN");
}

function participantItem(p) {
  const online = meeting.isOnline(p) && !p.removed;
  const you = p.subject === page.me?.subject ? t("participants.you") : "";
  return h("li", { class: `person${p.removed ? " removed" : ""}` },
    h("span", { class: `dot ${online ? "on" : "off"}`, "aria-hidden": "true" }),
    h("div", { class: "person-main" },
      h("div", { class: "person-name" }, p.name || p.subject, you),
      h("div", { class: "person-meta" },
        h("span", { class: `role role-${p.role}` }, t(`role.${p.role}`)),
        h("span", { class: online ? "ok" : "muted" }, t(online ? "participants.online" : "participants.offline")),
        p.muted && h("span", { class: "flag warn" }, t("participants.muted")),
        p.removed && h("span", { class: "flag danger" }, t("participants.removed")),
      ),
      p.organisation && h("div", { class: "person-org muted" }, p.organisation),
    ),
    participantActions(p),
  );
}

/** The chair's buttons on one participant: only those the phase and the target allow. */
function participantActions(p) {
  const can = allowed();
  if (p.role === "chair" || p.removed) return null;
  const name = p.name || p.subject;
  const button = (command, key, cls, onclick) =>
    can.has(command) && h("button", {
      type: "button", class: `small ${cls}`, onclick,
      "aria-label": t("chair.action.label", { action: t(key), name }),
    }, t(key));
  const buttons = [
    p.muted
      ? button("meeting.unmute", "chair.unmute", "", (e) => run("meeting.unmute", { subject: p.subject }, null, e.currentTarget))
      : button("meeting.mute", "chair.mute", "", (e) => run("meeting.mute", { subject: p.subject }, null, e.currentTarget)),
    button("meeting.remove", "chair.remove", "danger", () => removeParticipant(p)),
  ].filter(Boolean);
  return buttons.length ? h("div", { class: "person-actions" }, buttons) : null;
}

function renderAnnouncements() {
  const list = page.state.announcements;
  const items = [...list].reverse().map((a) => h("li", { class: "note announcement" },
    h("div", { class: "note-head muted" }, nameOf(a.from), " · ", h("time", { datetime: a.at }, i18n.formatDateTime(a.at))),
    h("p", { class: "note-text" }, a.text),
  ));
  fill(byId("announcements"), items.length ? items : h("li", { class: "empty" }, t("announcements.empty")));
}

function nameOf(subject) {
  if (subject === null || subject === undefined) return t("messages.to.chair");
  return page.state.participants[subject]?.name || subject;
}

function renderMessages() {
  const role = page.me?.role;
  const panel = byId("messages-panel");
  // Public viewers take no part in the message channel and may read none of it.
  panel.hidden = !role || !(SPEAKERS.has(role) || WATCHERS.has(role));
  if (panel.hidden) return;
  byId("messages-hint").textContent = t(role === "chair" ? "messages.hint.chair" : SPEAKERS.has(role) ? "messages.hint.bidder" : "messages.hint.watch");
  renderMessageList(role);
  renderComposer(role);
}

function renderMessageList(role) {
  const list = byId("messages");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const items = page.state.messages.map((m) => messageItem(m, role));
  fill(list, items.length ? items : h("li", { class: "empty" }, t("messages.empty")));
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function messageItem(m, role) {
  const mine = m.from === page.me?.subject;
  const reply = role === "chair" && !mine && page.state.phase === "open" &&
    h("button", { type: "button", class: "small link", onclick: () => replyTo(m.from),
      "aria-label": t("chair.action.label", { action: t("messages.reply"), name: nameOf(m.from) }) }, t("messages.reply"));
  return h("li", { class: `note message${mine ? " mine" : ""}` },
    h("div", { class: "note-head muted" },
      t("messages.arrow", { from: nameOf(m.from), to: nameOf(m.to) }), " · ",
      h("time", { datetime: m.at }, i18n.formatTime(m.at)), reply && " ", reply),
    h("p", { class: "note-text" }, m.text),
  );
}

function replyTo(subject) {
  byId("message-to").value = subject;
  byId("message-text").focus();
}

function renderComposer(role) {
  const form = byId("message-form");
  form.hidden = !SPEAKERS.has(role);
  if (form.hidden) return;
  const me = page.state.participants[page.me.subject];
  const blocked = me?.muted ? t("messages.muted") : !allowed().has("meeting.message") ? t("messages.closedPhase") : "";
  byId("message-blocked").textContent = blocked;
  byId("message-blocked").hidden = !blocked;
  for (const el of form.querySelectorAll("textarea, select, button")) el.disabled = Boolean(blocked);
  byId("message-to-row").hidden = role !== "chair";
  if (role === "chair") renderRecipients();
}

/** The chair's addressee list, keeping the current choice across re-renders. */
function renderRecipients() {
  const select = byId("message-to");
  const chosen = select.value;
  const options = meeting.addressable(page.state).map((p) =>
    h("option", { value: p.subject }, `${p.name || p.subject} · ${t(`role.${p.role}`)}`));
  fill(select, h("option", { value: "" }, t("messages.pick")), options);
  select.value = options.some((o) => o.value === chosen) ? chosen : "";
}

// page-level states -----------------------------------------------------------------------

function showFatal(kind, serverMessage = "") {
  page.fatal = { kind, serverMessage };
  byId("main").hidden = true;
  byId("fatal").hidden = false;
  renderFatal();
  renderStatus();
}

function renderFatal() {
  if (!page.fatal) return;
  const { kind, serverMessage } = page.fatal;
  byId("fatal-title").textContent = t(`fatal.title.${kind}`);
  byId("fatal-body").textContent = t(`fatal.body.${kind}`);
  byId("fatal-server").textContent = serverMessage ? t("fatal.server", { message: serverMessage }) : "";
  renderLoginLink(kind === "no_token" || kind === "unauthorized");
  document.title = `${t(`fatal.title.${kind}`)} · ${t("app.name")}`;
}

/** Without a (valid) token: a link to the certificate login page, which comes back here. */
function renderLoginLink(shown) {
  let link = byId("fatal-login");
  if (!shown) return link?.parentElement.remove();
  if (!link) {
    link = h("a", { id: "fatal-login", class: "button primary" });
    byId("fatal-server").after(h("p", {}, link));
  }
  link.href = `/login.html${page.room ? `?room=${encodeURIComponent(page.room)}` : ""}`;
  link.textContent = t("fatal.login");
}

function toast(text, kind = "info") {
  const item = h("div", { class: `toast toast-${kind}`, role: kind === "error" ? "alert" : "status" },
    h("span", {}, text),
    h("button", { type: "button", class: "toast-close", "aria-label": t("toast.dismiss"), onclick: () => item.remove() }, "×"));
  byId("toasts").append(item);
  setTimeout(() => item.remove(), kind === "error" ? 2 * TOAST_MS : TOAST_MS);
}

function switchLanguage() {
  i18n.setLang(i18n.lang() === "zh-CN" ? "en" : "zh-CN");
  i18n.translatePage();
  renderLanguageButton();
  page.media?.render();
  if (page.fatal) renderFatal();
  else render();
}

function renderLanguageButton() {
  const button = byId("lang");
  button.textContent = t("lang.switch");
  button.setAttribute("aria-label", t("lang.switch.label"));
  button.lang = i18n.lang() === "zh-CN" ? "en" : "zh-CN";
}

boot();
