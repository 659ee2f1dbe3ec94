// The opening room page (开标室): one page for every role, driven by the room's events.
//
// Flow: take the session token (URL fragment, this tab's room token, or the login session),
// connect (client.js), fold the snapshot and every event into the opening's view state
// (opening.js) and the meeting's (meeting.js), and re-render from them. What the page shows comes
// from events the server recorded, so a reload or a late join shows the same room.
// Consequential steps (decrypt, share, confirm, countersign) are signed with the certificate key
// in this browser (keystore.js) and go over HTTP; the rest are room commands over the socket.

import { holderKey, takeToken } from "./session.js";
import { fromHex, toHex } from "./bytes.js";
import { RoomConnection } from "./client.js";
import { byId, fill, h } from "./dom.js";
import { decryptBody, headerFromResponse, sealToRoom, unwrapDataKey } from "./handoff.js";
import * as i18n from "./i18n.js";
import "./i18n-opening.js";
import * as meeting from "./meeting.js";
import { MediaRoom } from "./media.js";
import * as opening from "./opening.js";
import * as servertime from "./servertime.js";
import { signedBody } from "./actions.js";
import { openShareFile, shareBody } from "./shares.js";

const { t } = i18n;
const TOAST_MS = 6000;
const WATCHERS = new Set(["chair", "supervisor"]);
const OBJECTION_PHASES = new Set(["decrypting", "settling", "sheet", "record"]);
const AFTER_SHEET = new Set(["sheet", "record", "countersigned", "published"]);
const HIDDEN_DATA = new Set(["sealed_key", "signature", "certificate", "sealed_share", "document", "proofs", "checkpoint", "rows"]);
const BIDDER_CAUSES = ["bidder_key_lost", "bidder_cert_revoked", "platform_fault", "ca_fault", "network_fault"];
const RESEND_MS = [1000, 2000, 4000, 8000]; // pauses before a signed step is sent again

/** A refusal the page shows by its code: the server's {code, message, detail} or our own. */
class PageError extends Error {
  constructor(code, message = code, detail = {}) {
    super(message);
    this.code = code;
    this.detail = detail;
  }
}

const page = {
  room: "",
  token: "",
  conn: null,
  media: null, // the audio and video panel (media.js)
  me: null,
  state: opening.initial(),
  meeting: meeting.initial(),
  status: { status: "connecting" },
  fatal: null,
  key: null, // the certificate key record, loaded when first needed
  myBids: null, // GET /api/lots/{lot}/bids/mine
  busy: new Set(),
  progress: { decrypt: "", share: "", chair: "", confirm: "" },
  errors: { decrypt: null, share: null },
  verified: null, // {ok, k, commitment} after "verify K"
  replayedUpTo: 0,
  historyLoaded: false, // a watcher's log: the room's earlier events, fetched once
};

// start -----------------------------------------------------------------------------------

function boot() {
  i18n.translatePage();
  byId("lang").addEventListener("click", switchLanguage);
  page.room = new URLSearchParams(location.search).get("room") || "";
  page.token = takeToken(page.room);
  renderLanguageButton();
  if (!page.room || !page.token) return showFatal("no_token");
  byId("main").hidden = false;
  wire();
  connect();
  // the browser knows before our backoff timer does that the network came back
  window.addEventListener("online", () => page.conn.retryNow());
  byId("retry").addEventListener("click", () => page.conn.retryNow());
  setInterval(tick, 1000);
  servertime.onChange(render);
  servertime.start();
  render();
}

function connect() {
  const role = new URLSearchParams(location.search).get("role");
  const conn = new RoomConnection({ room: page.room, token: page.token, role });
  page.conn = conn;
  // When what this person may see widens (the window's end for a custodian, the sheet for
  // everyone), the server follows the event with a fresh snapshot (docs/protocol.md).
  const on = (type, fn) => conn.addEventListener(type, (e) => fn(e.detail));
  on("welcome", onWelcome);
  on("snapshot", onSnapshot);
  on("event", onEvent);
  on("status", (detail) => { page.status = detail; renderStatus(); });
  on("fatal", onFatal);
  on("error", (detail) => toast(i18n.errorText(detail), "error"));
  page.media = new MediaRoom({ conn, root: byId("media-panel"), run });
  conn.connect();
}


// protocol events -------------------------------------------------------------------------

function onWelcome(frame) {
  page.me = frame.you;
  page.replayedUpTo = frame.seq;
  if (["chair", "supervisor"].includes(frame.you?.role) && !page.historyLoaded) loadHistory(frame.seq);
  render();
}

/** A watcher's event log shows the room's whole history, not only what happened since the
 *  page opened: the earlier events, a page at a time, from GET /api/rooms/{room}/events. */
async function loadHistory(upto) {
  page.historyLoaded = true;
  try {
    let after = 0;
    while (after < upto) {
      const answer = await (await api("GET", `/api/rooms/${encodeURIComponent(page.room)}/events?after=${after}`)).json();
      if (!answer.events.length) break;
      page.state = opening.withHistory(page.state, answer.events);
      after = answer.events[answer.events.length - 1].seq;
    }
  } catch (error) {
    page.historyLoaded = false; // tried again at the next welcome
    toast(i18n.errorText(error), "error");
  }
  render();
}

function onSnapshot(frame) {
  // A snapshot mid-stream (after the sheet, say) replaces the state, not the events seen so far.
  const seen = page.state?.log || [];
  page.state = { ...adoptOwnBid(opening.fromSnapshot(frame.state, page.me?.subject, page.me?.role)), log: seen };
  page.meeting = meeting.fromSnapshot(frame.state.meeting || frame.state);
  clearSettledErrors();
  loadMyBids();
  revealContribution();
  render();
}

function onEvent(frame) {
  page.state = adoptOwnBid(opening.apply(page.state, frame));
  page.meeting = meeting.apply(page.meeting, frame);
  clearSettledErrors();
  if (frame.seq > page.replayedUpTo) announce(frame);
  revealContribution();
  render();
}

/** Read the big moments out to screen readers (and as a toast) when they happen live. */
function announce(frame) {
  const key = {
    "opening.count_published": "op.live.count",
    "opening.window_started": "op.live.window",
    "opening.window_closed": "op.live.closed",
    "opening.sheet_published": "op.live.sheet",
    "opening.draw_revealed": "op.live.k",
    "opening.record_generated": "op.live.record",
    "meeting.announced": "announcements.new",
  }[frame.name];
  if (!key) return;
  const text = t(key, { ...frame.data, text: frame.data.text || "" });
  byId("live").textContent = text;
  if (frame.name !== "meeting.announced") toast(text, "info");
}

function onFatal(detail) {
  if (detail.kind === "unauthorized") sessionStorage.removeItem(`bidroom.token.${page.room}`);
  showFatal(detail.kind, detail.message);
}

// talking to the server ---------------------------------------------------------------------

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${page.token}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  const sent = Date.now();
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new PageError("network");
  }
  servertime.learn(response, sent);
  if (!response.ok) throw await serverError(response);
  return response;
}

async function serverError(response) {
  try {
    const body = await response.json();
    return new PageError(body.code || `http_${response.status}`, body.message, body.detail || {});
  } catch {
    return new PageError(`http_${response.status}`, response.statusText);
  }
}

const roomPath = (step) => `/api/openings/${encodeURIComponent(page.room)}/${step}`;
const lotPath = (step) => `/api/lots/${encodeURIComponent(page.state.lot)}/${step}`;

/** Send a room command; resolves true when the server accepted it. */
async function run(name, args = {}, okKey = null, button = null) {
  if (page.conn.status !== "online") toast(t("toast.queued"), "info");
  if (button) button.disabled = true;
  try {
    await page.conn.command(name, args);
    if (okKey) toast(t(okKey), "ok");
    return true;
  } catch (error) {
    toast(i18n.errorText(error), "error");
    return false;
  } finally {
    if (button) button.disabled = false;
  }
}

/** A command the bidder signs as a signed action over the room and `fields` (opening.SIGNED). */
async function runSigned(name, fields, okKey = null, button = null) {
  let body;
  try {
    body = await signedBody(await keyRecord(), name, { room: page.room, ...fields });
  } catch (error) {
    toast(i18n.errorText(error), "error");
    return false;
  }
  return run(name, body, okKey, button);
}

/** Run one long step once at a time, its progress and error shown under `slot`. */
async function step(slot, action) {
  if (page.busy.has(slot)) return;
  page.busy.add(slot);
  page.errors[slot] = null;
  render();
  try {
    await action((key) => { page.progress[slot] = key ? t(key) : ""; render(); });
  } catch (error) {
    page.progress[slot] = "";
    const shown = error?.code ? error : new PageError("unexpected", error?.message || String(error));
    if (slot in page.errors) page.errors[slot] = shown;
    else toast(i18n.errorText(shown), "error");
  } finally {
    page.busy.delete(slot);
    render();
  }
}

/** The certificate key of the signed-in holder, from this browser's key store (login.js). */
async function keyRecord() {
  if (page.key) return page.key;
  const record = await holderKey();
  if (!record) throw new PageError("key_missing");
  page.key = record;
  return record;
}

async function loadMyBids() {
  if (page.me?.role !== "bidder" || !page.state.lot || page.myBids) return;
  try {
    const body = await (await api("GET", lotPath("bids/mine"))).json();
    page.myBids = Array.isArray(body) ? body : body.bids || [];
  } catch {
    page.myBids = [];
  }
  page.state = adoptOwnBid(page.state);
  render();
}

/** A bidder's own current bid, known from bids/mine, once the bids are fixed (see withOwnBid). */
function adoptOwnBid(state) {
  const bid = role() === "bidder" ? currentBid() : null;
  return bid ? opening.withOwnBid(state, page.me.subject, bid.envelope_sha256) : state;
}

function currentBid() {
  return (page.myBids || []).find((b) => b.status === "current") || null;
}

// the bidder's steps ----------------------------------------------------------------------------

function decrypt() {
  return step("decrypt", async (say) => {
    const record = await keyRecord();
    say("op.progress.envelope");
    const bid = currentBid();
    const envelopeSha = bid?.envelope_sha256 || page.state.bids[page.me.subject]?.envelope;
    if (!envelopeSha) throw new PageError("no_bid");
    const header = await headerFromResponse(await api("GET", lotPath("bids/mine/envelope")));
    say("op.progress.unwrap");
    const dataKey = await unwrapDataKey(header, record);
    say("op.progress.seal");
    const { public_key: roomKey } = await (await api("GET", roomPath("key"))).json();
    const sealedKey = await sealToRoom(dataKey, roomKey, page.room, envelopeSha);
    dataKey.fill(0);
    say("op.progress.sign");
    const body = await decryptBody(record, page.room, envelopeSha, sealedKey);
    say("op.progress.send");
    await postSigned(roomPath("decrypt"), body, () => page.state.bids[page.me.subject]?.status === "decrypted");
    say("op.progress.done");
  });
}

/**
 * POST a signed step. An answer lost on the way (a network error after the server may have
 * acted) is asked again with the same body, which the server applies once (one signed attempt,
 * one command id); it stops early when the room already shows the step done (`done()`).
 */
async function postSigned(path, body, done) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await api("POST", path, body);
    } catch (error) {
      if (error.code !== "network" || attempt >= RESEND_MS.length) throw error;
      if (done()) return null;
      await new Promise((resolve) => setTimeout(resolve, RESEND_MS[attempt]));
      if (done()) return null;
    }
  }
}

/** A step's error goes once the room shows the step done (its answer was lost, not the step). */
function clearSettledErrors() {
  const mine = page.state.bids[page.me?.subject];
  if (page.errors.decrypt && mine && mine.status !== "sealed") page.errors.decrypt = null;
  if (page.errors.share && page.me && opening.submittedShare(page.state, meForTasks())) page.errors.share = null;
}

function submitShare() {
  return step("share", async (say) => {
    const record = await keyRecord();
    say("op.progress.share");
    const file = await (await api("GET", lotPath("share"))).text();
    say("op.progress.shareOpen");
    const share = await openShareFile(file, record);
    say("op.progress.sign");
    const { public_key: roomKey } = await (await api("GET", roomPath("key"))).json();
    const body = await shareBody(record, page.room, share, roomKey);
    share.mnemonic = "";
    say("op.progress.send");
    await postSigned(roomPath("share"), body, () => opening.submittedShare(page.state, { ...meForTasks(), shareIndex: share.index }));
    sessionStorage.setItem(shareKey(), String(share.index)); // the snapshot lists indices only
    say("op.progress.shareDone");
  });
}

function confirmRecord(event) {
  event.preventDefault();
  const opinion = event.target.querySelector("input[name=opinion]:checked")?.value || "confirm";
  const text = byId("confirm-text").value.trim();
  if (opinion === "dissent" && !text) return toast(t("op.record.dissentText"), "error");
  return step("confirm", async (say) => {
    const record = await keyRecord();
    say("op.progress.sign");
    const fields = { room: page.room, digest: page.state.record.digest, opinion, text };
    const body = await signedBody(record, "opening.confirm", fields);
    say("op.progress.send");
    await api("POST", roomPath("confirm"), body);
    say("op.progress.signed");
  });
}

async function reportOwnFailure(event) {
  event.preventDefault();
  const cause = byId("failure-cause").value;
  const answer = await ask({ title: t("op.failure.report"), body: t("op.failure.confirm", { cause: t(`op.cause.${cause}`) }) });
  // Their own word settles their bid: signed with the certificate key, never a session's alone.
  if (answer !== null) runSigned("opening.report_failure", { cause }, "op.toast.reported");
}

async function raiseObjection(event) {
  event.preventDefault();
  const field = byId("objection-text");
  const text = field.value.trim();
  if (text && (await run("opening.object", { text }, "op.toast.objected", event.submitter))) field.value = "";
}

// the chair's steps -----------------------------------------------------------------------------

async function decide(event) {
  event.preventDefault();
  const reason = byId("decision-reason").value.trim();
  if (reason) run("opening.decide", { decision: byId("decision").value, reason }, null, event.submitter);
}

async function failFor(bid) {
  const answer = await ask({
    title: t("op.failure.for", { name: bidName(bid.bidder) }),
    // Only causes that do not blame the bidder: those are theirs to report (or the window's end).
    choice: { label: t("op.failure.label"), options: Object.entries(opening.CAUSES).filter(([, treated]) => treated !== "revoked").map(([c]) => [c, t(`op.cause.${c}`)]) },
  });
  if (answer) run("opening.report_failure", { bidder: bid.bidder, cause: answer.choice }, "op.toast.reported");
}

async function requestQuorum(event) {
  const button = event.currentTarget;
  const failed = opening.unasked(page.state);
  const answer = await ask({
    title: t("op.requestQuorum"),
    body: t("op.quorum.confirm", { names: failed.map(bidName).join(t("op.listSep")) }),
    input: t("op.reason"),
  });
  if (answer?.text) run("opening.request_quorum", { bidders: failed, reason: answer.text }, null, button);
}

async function confirmThen(event, name, titleKey, bodyKey, okKey = null) {
  const button = event.currentTarget;
  const answer = await ask({ title: t(titleKey), body: t(bodyKey) });
  if (answer !== null) run(name, {}, okKey, button);
}

function chairHttp(stepName, { sign = false } = {}) {
  return step("chair", async (say) => {
    let body;
    if (sign) {
      const record = await keyRecord();
      say("op.progress.sign");
      body = await signedBody(record, `opening.${stepName}`, { room: page.room, digest: page.state.record.digest });
    }
    say(`op.progress.${stepName}`);
    await api("POST", roomPath(stepName), body);
    say("");
  });
}

const drawKey = () => `bidroom.draw.${page.room}`;
// A bidder's contribution to K stays in this browser (never sealed to the platform's key, which
// its operator holds) from the sign-in until the page reveals it in the window.
const contributionKey = () => `bidroom.contribution.${page.room}.${page.me?.subject}`;

/** Sign in; on a lot that draws K, with the commitment of 32 random bytes made here. */
async function signIn(event) {
  const button = event.currentTarget;
  if (!page.state.draw?.range) return run("opening.sign_in", {}, "op.toast.signedIn", button);
  let value = localStorage.getItem(contributionKey());
  if (!value) {
    value = toHex(crypto.getRandomValues(new Uint8Array(32)));
    localStorage.setItem(contributionKey(), value);
  }
  const contribution = await opening.commitmentOf(fromHex(value));
  // The commitment is the bidder's own: signed, so no minted session can make one for them.
  return runSigned("opening.sign_in", { contribution }, "op.toast.signedIn", button);
}

/** My contribution's entry in the draw, if I committed one. */
function myContribution() {
  return (page.state.draw?.contributions || []).find((c) => c.bidder === page.me?.subject) || null;
}

let revealing = false;
let revealRefused = false; // a refusal (not a lost connection: the client resends) is final

/** Once the window has fixed K's last input, the page reveals the contribution by itself (up to
 *  the sheet; unrevealed by then, it is absent from K: docs/opening.md). */
async function revealContribution() {
  const mine = myContribution();
  const value = localStorage.getItem(contributionKey());
  if (revealing || revealRefused || role() !== "bidder" || !mine || mine.revealed !== false || !value) return;
  if (!["decrypting", "settling"].includes(page.state.phase)) return;
  revealing = true;
  try {
    await page.conn.command("opening.reveal_contribution", { value });
  } catch (error) {
    revealRefused = true;
    if (error?.code !== "already_revealed") toast(i18n.errorText(error), "error");
  } finally {
    revealing = false;
  }
}
const shareKey = () => `bidroom.share.${page.room}`;

/** Me, as the task list needs me: a custodian also by the share index they submitted. */
function meForTasks() {
  return page.me && { ...page.me, shareIndex: Number(sessionStorage.getItem(shareKey())) || null };
}

async function commitDraw(event) {
  const button = event.currentTarget;
  let seed = localStorage.getItem(drawKey());
  if (!seed) {
    seed = toHex(crypto.getRandomValues(new Uint8Array(32)));
    localStorage.setItem(drawKey(), seed); // on this computer until the reveal, a reload or not
  }
  const commitment = await opening.commitmentOf(fromHex(seed));
  // A copy sealed to the room (bound to the commitment): the draw can still be revealed after
  // the sheet if this browser loses the seed. Only the platform opens it, and only K's seed.
  const { public_key: roomKey } = await (await api("GET", roomPath("key"))).json();
  const sealed_seed = await sealToRoom(fromHex(seed), roomKey, page.room, commitment);
  run("opening.commit_draw", { commitment, sealed_seed }, "op.toast.committed", button);
}

function revealDraw(event) {
  const seed = localStorage.getItem(drawKey());
  if (seed) return run("opening.reveal_draw", { seed }, null, event.currentTarget);
  // this browser lost the seed: the platform opens the copy sealed at the commitment
  return step("chair", async () => {
    await api("POST", roomPath("reveal"));
  });
}

async function answerObjection(o) {
  const answer = await ask({ title: t("op.objections.answer"), body: o.text, input: t("op.objections.answerLabel") });
  if (answer?.text) run("opening.answer", { objection: o.seq, text: answer.text });
}

async function verifyK() {
  const { draw, lot } = page.state;
  page.verified = await opening.verifyDraw(draw, lot);
  render();
}

// wiring ----------------------------------------------------------------------------------------

function wire() {
  const click = (id, fn) => byId(id).addEventListener("click", fn);
  click("sign-in", signIn);
  click("decrypt", decrypt);
  byId("failure-form").addEventListener("submit", reportOwnFailure);
  byId("decide-form").addEventListener("submit", decide);
  click("start-window", (e) => confirmThen(e, "opening.start_window", "op.startWindow", "op.startWindow.confirm"));
  click("close-window", (e) => confirmThen(e, "opening.close_window", "op.closeWindow", "op.closeWindow.confirm"));
  click("request-quorum", requestQuorum);
  click("cancel-quorum", async (e) => {
    const button = e.currentTarget;
    const answer = await ask({ title: t("op.cancelQuorum"), body: t("op.cancelQuorum.confirm"), input: t("op.reason") });
    if (answer?.text) run("opening.cancel_quorum", { reason: answer.text }, null, button);
  });
  click("settle-failures", (e) => confirmThen(e, "opening.settle_failures", "op.settleFailures", "op.settleFailures.confirm"));
  click("publish-sheet", () => chairHttp("sheet"));
  click("commit-draw", commitDraw);
  click("reveal-draw", revealDraw);
  click("generate-record", (e) => confirmThen(e, "opening.generate_record", "op.generateRecord", "op.generateRecord.confirm"));
  click("countersign", () => chairHttp("countersign", { sign: true }));
  click("publish", () => chairHttp("publish"));
  click("submit-share", submitShare);
  click("verify-k", verifyK);
  byId("objection-form").addEventListener("submit", raiseObjection);
  byId("confirm-form").addEventListener("submit", confirmRecord);
  byId("announce-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const field = byId("announce-text");
    if (field.value.trim() && (await run("meeting.announce", { text: field.value.trim() }, null, e.submitter))) field.value = "";
  });
  click("open-meeting", (e) => run("meeting.open", {}, "toast.opened", e.currentTarget));
  fill(byId("failure-cause"), BIDDER_CAUSES.map((c) => h("option", { value: c }, t(`op.cause.${c}`))));
}

/** A modal question: resolves {text, choice} (or {} without fields), or null if cancelled. */
function ask({ title, body = "", input = null, choice = null }) {
  const dialog = byId("ask");
  byId("ask-title").textContent = title;
  byId("ask-body").textContent = body;
  const field = byId("ask-input");
  field.value = "";
  byId("ask-label").textContent = input || "";
  field.hidden = byId("ask-label").hidden = !input;
  field.required = Boolean(input);
  byId("ask-choice-row").hidden = !choice;
  if (choice) {
    byId("ask-choice-label").textContent = choice.label;
    fill(byId("ask-choice"), choice.options.map(([value, text]) => h("option", { value }, text)));
  }
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "ok" ? { text: field.value.trim(), choice: byId("ask-choice").value } : null);
    }, { once: true });
  });
}

// rendering -------------------------------------------------------------------------------------

const role = () => page.me?.role || "";
const isChair = () => role() === "chair";
const can = (name) => opening.allowedFor(page.state, role()).includes(name);

function render() {
  if (page.fatal) return;
  servertime.renderSkew();
  renderHead();
  renderStatus();
  renderBidder();
  renderChair();
  renderCustodian();
  renderStatuses();
  renderSheet();
  renderDraw();
  renderObjections();
  renderRecord();
  renderLog();
  renderMeeting();
}

function renderHead() {
  const s = page.state;
  byId("tender").textContent = s.tender ? t("op.tender", { tender: s.tender }) : "";
  byId("title").textContent = s.title || page.room;
  document.title = `${s.title || page.room} · ${t("op.page")}`;
  const phase = byId("phase");
  phase.textContent = t(`op.phase.${s.phase}`);
  phase.className = `badge op-phase op-phase-${s.phase}`;
  phase.dataset.phase = s.phase;
  byId("starts").textContent = s.startsAt ? t("op.startsAt", { time: i18n.formatDateTime(s.startsAt) }) : "";
  const me = page.me;
  byId("me").textContent = me ? `${me.name || me.subject} · ${t(`role.${me.role}`)}` : "";
  const tasks = me ? opening.tasks(s, meForTasks(), servertime.now()) : [];
  const el = byId("tasks");
  el.textContent = tasks.length ? t("op.tasks", { list: tasks.map((k) => t(`op.task.${k}`)).join(t("op.listSep")) }) : "";
  el.dataset.tasks = tasks.join(" ");
  el.hidden = !tasks.length;
  renderClock();
}

function renderClock() {
  const left = opening.timeLeft(page.state, servertime.now());
  const el = byId("countdown");
  el.textContent = left ? `${t(`op.clock.${left.kind}`)} ${left.ms > 0 ? i18n.formatCountdown(left.ms) : t("op.clock.due")}` : "";
  el.dataset.ms = left ? String(Math.max(0, left.ms)) : "";
}

function tick() {
  if (page.fatal) return;
  renderClock();
  const left = opening.timeLeft(page.state, servertime.now());
  // only a bid still sealed counts down (as renderStatuses draws it)
  for (const cell of document.querySelectorAll("tr.st-sealed td.left")) cell.textContent = left?.kind === "window" ? i18n.formatCountdown(left.ms) : "";
  // the chair's "close window" appears when the time is up, without an event
  if (isChair() && page.state.phase === "decrypting") renderChair();
}

function renderStatus() {
  const { status, retrying } = page.status;
  const shown = status === "online" ? "online" : retrying || (status === "connecting" && page.me) ? "reconnecting" : status;
  const pill = byId("status");
  pill.textContent = t(`status.${shown}`);
  pill.className = `pill status-${shown}`;
  pill.dataset.status = shown;
  byId("retry").hidden = !(status === "offline" && !retrying && !page.fatal);
}

function show(id, shown) {
  byId(id).hidden = !shown;
  return shown;
}

function renderBidder() {
  if (!show("bidder-panel", role() === "bidder")) return;
  const s = page.state;
  const mine = s.bids[page.me.subject];
  const bid = currentBid();
  fill(byId("my-bid"), bid ? [
    h("dt", {}, t("op.bid.version")), h("dd", {}, String(bid.version)),
    h("dt", {}, t("op.bid.received")), h("dd", {}, i18n.formatDateTime(bid.received_at)),
    h("dt", {}, t("op.bid.digest")), h("dd", {}, h("code", { title: bid.envelope_sha256 }, `${bid.envelope_sha256.slice(0, 16)}…`)),
  ] : [h("dt", {}, t("op.bid.none")), h("dd", {}, page.myBids ? t("op.bid.noneHint") : "…")]);
  const status = byId("my-status");
  status.textContent = mine ? statusText(mine) : t(s.count === null ? "op.status.waiting" : "op.status.nobid");
  status.dataset.status = mine?.status || "";
  const signedIn = s.signedIn.includes(page.me.subject);
  show("sign-in", can("opening.sign_in") && !signedIn);
  show("signed-in", signedIn);
  // Within the window the bidder's own key prevails over a failure reported for them, and their
  // own report replaces one the chair made (docs/opening.md): the buttons stay theirs.
  const decrypting = s.phase === "decrypting" && (mine?.status === "sealed" || mine?.status === "failed");
  show("decrypt", decrypting);
  byId("decrypt").disabled = page.busy.has("decrypt");
  byId("decrypt-progress").textContent = page.progress.decrypt;
  showError("decrypt-error", page.errors.decrypt);
  show("failure-form", decrypting && mine?.reported_by !== "bidder" && can("opening.report_failure"));
  const byChair = decrypting && mine?.status === "failed" && mine.reported_by === "chair";
  byId("failure-by-chair").textContent = show("failure-by-chair", byChair) ? t("op.failure.byChair") : "";
}

function showError(id, error) {
  const el = byId(id);
  el.hidden = !error;
  el.textContent = error ? t("op.error", { text: i18n.errorText(error), code: error.code }) : "";
  el.dataset.code = error?.code || "";
}

function renderChair() {
  if (!show("chair-panel", isChair())) return;
  const s = page.state;
  const tasks = new Set(opening.tasks(s, meForTasks(), servertime.now()));
  const tally = opening.tally(s);
  fill(byId("signed-in-count"), String(s.signedIn.length), s.signedIn.length ? h("span", { class: "muted" }, ` (${s.signedIn.map(bidName).join(t("op.listSep"))})`) : null);
  byId("bid-count").textContent = s.count === null ? t("op.count.unknown") : String(s.count);
  byId("settled-count").textContent = `${tally.settled} / ${Object.keys(s.bids).length}`;
  show("decide-form", tasks.has("decide") && can("opening.decide"));
  const decision = byId("decision-shown");
  decision.hidden = !s.decision;
  decision.textContent = s.decision ? t(`op.decided.${s.decision.decision}`, { reason: s.decision.reason }) : "";
  const buttons = {
    "start-window": ["opening.start_window", tasks.has("start_window")],
    "close-window": ["opening.close_window", tasks.has("close_window")],
    "request-quorum": ["opening.request_quorum", tasks.has("request_quorum")],
    "cancel-quorum": ["opening.cancel_quorum", opening.quorumPending(s).length > 0],
    "settle-failures": ["opening.settle_failures", tasks.has("settle_failures")],
    "publish-sheet": [null, tasks.has("publish_sheet")],
    "commit-draw": ["opening.commit_draw", tasks.has("commit_draw")],
    "reveal-draw": ["opening.reveal_draw", tasks.has("reveal_draw")],
    "generate-record": ["opening.generate_record", tasks.has("generate_record")],
    "countersign": [null, tasks.has("countersign")],
    "publish": [null, tasks.has("publish")],
  };
  for (const [id, [command, wanted]] of Object.entries(buttons)) {
    show(id, wanted && (!command || can(command)));
    byId(id).disabled = page.busy.has("chair");
  }
  byId("chair-progress").textContent = page.progress.chair;
}

function renderCustodian() {
  const s = page.state;
  const pending = opening.quorumPending(s);
  const shown = role() === "custodian" || (isChair() && pending.length > 0);
  if (!show("custodian-panel", shown)) return;
  const need = s.sharesNeeded;
  byId("quorum-info").textContent = s.quorum
    ? t("op.quorum.info", { names: s.quorum.bidders.map(bidName).join(t("op.listSep")), reason: s.quorum.reason })
    : t("op.quorum.none");
  const indices = s.shares.map((x) => x.index).sort((a, b) => a - b);
  const sharesEl = byId("shares");
  sharesEl.textContent = need ? t("op.shares.of", { have: indices.length, k: need, list: indices.join(", ") || "—" })
    : t("op.shares.list", { have: indices.length, list: indices.join(", ") || "—" });
  sharesEl.dataset.count = String(indices.length);
  const mine = opening.submittedShare(s, meForTasks());
  show("submit-share", s.phase === "settling" && pending.length > 0 && !mine);
  byId("submit-share").disabled = page.busy.has("share");
  byId("share-progress").textContent = mine && pending.length ? t("op.progress.shareDone") : page.progress.share;
  showError("share-error", page.errors.share);
}

function bidName(subject) {
  const bid = page.state.bids[subject];
  return bid?.name || page.meeting.participants[subject]?.organisation || page.meeting.participants[subject]?.name || subject;
}

function statusText(b) {
  const status = t(`op.status.${b.status}`);
  return b.cause ? `${status}（${t(`op.cause.${b.cause}`)}）` : status;
}

function renderStatuses() {
  const s = page.state;
  const everyone = WATCHERS.has(role()) || ["sheet", "record", "countersigned", "published"].includes(s.phase);
  byId("statuses-hint").textContent = everyone
    ? t("op.statuses.hint", opening.tally(s))
    : t("op.statuses.own", { count: s.count ?? "—" });
  const left = opening.timeLeft(s, servertime.now());
  const rows = opening.bidList(s).map((b) => h("tr", { "data-testid": `row-${b.bidder}`, class: `st-${b.status}` },
    h("th", { scope: "row" }, bidName(b.bidder), b.bidder === page.me?.subject ? t("participants.you") : ""),
    h("td", {}, s.signedIn.includes(b.bidder) ? t("op.yes") : "—"),
    h("td", { "data-testid": `status-${b.bidder}`, "data-status": b.status },
      h("span", { class: `st st-${b.status}` }, statusText(b))),
    h("td", { class: "left" }, b.status === "sealed" && left?.kind === "window" ? i18n.formatCountdown(left.ms) : ""),
    h("td", {}, isChair() && s.phase === "decrypting" && b.status === "sealed" && can("opening.report_failure")
      ? h("button", { type: "button", class: "small danger", "data-testid": `fail-${b.bidder}`, onclick: () => failFor(b) }, t("op.failure.short"))
      : null),
  ));
  fill(byId("status-rows"), rows.length ? rows : h("tr", {}, h("td", { colspan: 5, class: "empty" }, t(s.count === null ? "op.statuses.before" : "op.statuses.empty"))));
}

const FIELD_KEYS = ["price", "duration_days", "quality", "project_manager", "guarantee", "warranty_months", "discount_rate"];

function fieldValue(name, value) {
  if (value === null || value === undefined) return "—";
  if (name === "guarantee" && typeof value === "object") {
    return [t(`op.guarantee.${value.kind}`), value.issuer, value.number, value.amount && `¥${value.amount}`].filter(Boolean).join(" · ");
  }
  if (name === "price") return `¥${value}`;
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

function renderSheet() {
  const sheet = page.state.sheet;
  if (!show("sheet-panel", Boolean(sheet))) return;
  const fields = sheet.fields.length ? sheet.fields : FIELD_KEYS.filter((f) => sheet.rows.some((r) => r.fields && f in r.fields));
  byId("sheet-ceiling").textContent = sheet.ceiling_price ? t("op.sheet.ceiling", { price: sheet.ceiling_price }) : "";
  const label = (f) => (FIELD_KEYS.includes(f) ? t(`op.field.${f}`) : f);
  fill(byId("sheet-head"), h("tr", {}, h("th", {}, t("op.col.bidder")), fields.map((f) => h("th", {}, label(f))),
    h("th", {}, t("op.col.guaranteeCheck")), h("th", {}, t("op.col.status"))));
  fill(byId("sheet-rows"), sheet.rows.map((r) => h("tr", { "data-testid": `sheet-row-${r.bidder}`, class: r.over_ceiling ? "over" : "" },
    h("th", { scope: "row" }, r.name || bidName(r.bidder)),
    fields.map((f) => h("td", { "data-field": f }, r.fields ? fieldValue(f, r.fields[f]) : "—")),
    h("td", {}, r.guarantee_check ? t(`op.check.${r.guarantee_check}`) : "—"),
    h("td", {}, [t(`op.status.${r.status}`), r.over_ceiling && ` · ${t("op.sheet.over")}`, r.form_error && ` · ${i18n.errorText({ code: r.form_error })}`].filter(Boolean).join("")),
  )));
}

function renderDraw() {
  const draw = page.state.draw;
  if (!show("draw-panel", Boolean(draw && (draw.range || draw.commitment)))) return;
  const [low, high, stepSize] = draw.range || [];
  const fact = (key, value, testid) => [h("dt", {}, t(key)), h("dd", { "data-testid": testid }, value)];
  fill(byId("draw-facts"),
    draw.range && fact("op.draw.range", t("op.draw.rangeValue", { low, high, step: stepSize }), "draw-range"),
    fact("op.draw.commitment", draw.commitment ? h("code", { class: "hash" }, draw.commitment) : t("op.draw.notYet"), "draw-commitment"),
    fact("op.draw.seed", draw.seed ? h("code", { class: "hash" }, draw.seed) : t("op.draw.afterSheet"), "draw-seed"),
    draw.fixed && fact("op.draw.fixed", [h("code", { class: "hash" }, draw.fixed.digest), " · ", i18n.formatDateTime(draw.fixed.at)], "draw-fixed"),
    draw.contributions.length > 0 && fact("op.draw.contributions", contributionList(draw), "draw-contributions"),
    draw.formula && fact("op.draw.formula", draw.formula, "draw-formula"),
    fact("op.draw.k", draw.k ?? "—", "draw-k"));
  show("verify-k", Boolean(draw.seed && draw.range));
  const v = page.verified;
  const result = byId("verify-result");
  result.textContent = v ? t(v.ok ? "op.draw.verified" : "op.draw.mismatch", { k: v.k }) : "";
  result.className = `hint ${v ? (v.ok ? "ok" : "danger") : ""}`;
  result.dataset.ok = v ? String(v.ok) : "";
}

/** Each bidder's contribution: its commitment, and its value once the sheet shows them all; a
 *  bidder's own line says whether the page has revealed it. */
function contributionList(draw) {
  return h("ul", { class: "plain" }, draw.contributions.map((c) => {
    const own = c.bidder === page.me?.subject;
    const state = c.value ? h("code", { class: "hash" }, c.value)
      : c.revealed === true ? t("op.draw.revealedHidden")
      : c.revealed === false ? t(AFTER_SHEET.has(page.state.phase) ? "op.draw.absent" : "op.draw.notRevealed")
      : t("op.draw.afterSheet");
    return h("li", { "data-testid": `contribution-${c.bidder}`, "data-revealed": String(c.revealed) },
      own ? t("op.draw.mine") : bidName(c.bidder), "：", h("code", { class: "hash" }, c.commitment), " → ", state);
  }));
}

function renderObjections() {
  const s = page.state;
  const open = OBJECTION_PHASES.has(s.phase);
  if (!show("objections-panel", open || s.objections.length > 0)) return;
  const items = s.objections.map((o) => h("li", { class: "note", "data-testid": `objection-${o.seq}` },
    h("div", { class: "note-head muted" }, bidName(o.bidder), o.at && ` · ${i18n.formatTime(o.at)}`),
    h("p", { class: "note-text" }, o.text),
    o.answer
      ? h("p", { class: "note-text answer", "data-testid": `answer-text-${o.seq}` }, t("op.objections.answered", { text: o.answer.text }))
      : isChair() && can("opening.answer")
        ? h("button", { type: "button", class: "small primary", "data-testid": `answer-${o.seq}`, onclick: () => answerObjection(o) }, t("op.objections.answer"))
        : h("p", { class: "hint warn" }, t("op.objections.waiting")),
  ));
  fill(byId("objections"), items.length ? items : h("li", { class: "empty" }, t("op.objections.empty")));
  show("objection-form", role() === "bidder" && can("opening.object"));
}

function renderDocument(doc) {
  if (doc === null || doc === undefined) return [];
  if (typeof doc === "string") return h("pre", { class: "doc-text" }, doc);
  return h("pre", { class: "doc-text" }, JSON.stringify(doc, null, 2));
}

function renderRecord() {
  const s = page.state;
  if (!show("record-panel", Boolean(s.record))) return;
  byId("record-digest").textContent = s.record.digest || "";
  fill(byId("record-document"), renderDocument(s.record.document));
  const mine = s.bids[page.me?.subject];
  const answered = s.confirmations[page.me?.subject];
  show("confirm-form", role() === "bidder" && Boolean(mine) && s.phase === "record" && !answered && !s.deemed);
  byId("confirm-silence").textContent = s.record.confirm_until ? t("op.record.until", { time: i18n.formatDateTime(s.record.confirm_until) }) : "";
  byId("confirm-form").querySelector("button[type=submit]").disabled = page.busy.has("confirm");
  byId("confirm-progress").textContent = page.progress.confirm;
  const bidders = [...new Set([...Object.keys(s.confirmations), ...Object.keys(s.deemed || {})])];
  fill(byId("confirmation-rows"), bidders.map((b) => {
    const c = s.confirmations[b];
    const opinion = c ? t(`op.opinion.${c.opinion}`) : t(`op.deemed.${s.deemed?.[b]}`);
    return h("tr", { "data-testid": `confirmation-${b}` }, h("th", { scope: "row" }, bidName(b)), h("td", {}, opinion), h("td", { class: "note-text" }, c?.text || ""));
  }));
  const cs = byId("countersigned");
  cs.hidden = !s.countersigned;
  cs.textContent = s.countersigned ? t("op.record.countersigned", { time: i18n.formatDateTime(s.countersigned.at) }) : "";
  const pub = byId("published");
  pub.hidden = !s.published;
  fill(pub, s.published ? [t("op.record.published"), " ",
    h("a", { href: roomPath("record"), target: "_blank", rel: "noopener", "data-testid": "record-link" }, t("op.record.link"))] : []);
}

function logSummary(data) {
  const shown = Object.entries(data).filter(([k]) => !HIDDEN_DATA.has(k));
  const text = (v) => (Array.isArray(v) && v.some((x) => x && typeof x === "object") ? `[${v.length}]`
    : typeof v === "object" && v !== null ? JSON.stringify(v) : String(v));
  return shown.map(([k, v]) => `${k}: ${text(v)}`).join(" · ");
}

function renderLog() {
  if (!show("log-panel", WATCHERS.has(role()))) return;
  const items = [...page.state.log].reverse().map((e) => h("li", { "data-testid": `log-${e.seq}`, "data-event": e.name },
    h("time", { datetime: e.at }, i18n.formatTime(e.at)), " ",
    h("span", { class: "log-actor" }, e.actor?.role === "system" || !e.actor ? t("role.system") : `${e.actor.name || e.actor.subject} (${t(`role.${e.actor.role}`)})`), " ",
    h("strong", {}, t(`op.event.${e.name}`) === `op.event.${e.name}` ? e.name : t(`op.event.${e.name}`)), " ",
    h("span", { class: "muted" }, logSummary(e.data)),
  ));
  fill(byId("event-log"), items.length ? items : h("li", { class: "empty" }, t("op.log.empty")));
}

function renderMeeting() {
  const m = page.meeting;
  const allowedMeeting = new Set(page.me ? meeting.allowedFor(m, role()) : []);
  show("announce-form", isChair() && allowedMeeting.has("meeting.announce"));
  show("open-meeting", isChair() && allowedMeeting.has("meeting.open"));
  const notes = [...m.announcements].reverse().map((a) => h("li", { class: "note announcement" },
    h("div", { class: "note-head muted" }, h("time", { datetime: a.at }, i18n.formatDateTime(a.at))),
    h("p", { class: "note-text" }, a.text)));
  fill(byId("announcements"), notes.length ? notes : h("li", { class: "empty" }, t("announcements.empty")));
  const people = Object.values(m.participants).filter((p) => meeting.isOnline(p));
  byId("people-count").textContent = `(${people.length})`;
  fill(byId("participants"), people.length ? people.map((p) => h("li", { class: "person", "data-testid": `person-${p.subject}` },
    h("span", { class: "dot on", "aria-hidden": "true" }),
    h("div", { class: "person-main" },
      h("div", { class: "person-name" }, p.name || p.subject),
      h("div", { class: "person-meta" }, h("span", { class: `role role-${p.role}` }, t(`role.${p.role}`)),
        page.state.signedIn.includes(p.subject) && h("span", { class: "ok" }, t("op.signedIn")))))) : h("li", { class: "empty" }, t("participants.empty")));
}

// page-level states -----------------------------------------------------------------------------

function showFatal(kind, serverMessage = "") {
  page.fatal = { kind, serverMessage };
  byId("main").hidden = true;
  byId("fatal").hidden = false;
  byId("fatal-title").textContent = t(`fatal.title.${kind}`);
  byId("fatal-body").textContent = t(`fatal.body.${kind}`);
  byId("fatal-server").textContent = serverMessage ? t("fatal.server", { message: serverMessage }) : "";
  const login = byId("fatal-login");
  login.hidden = !(kind === "no_token" || kind === "unauthorized");
  login.href = `/login.html${page.room ? `?room=${encodeURIComponent(page.room)}` : ""}`;
  login.textContent = t("fatal.login");
  renderStatus();
}

function toast(text, kind = "info") {
  const item = h("div", { class: `toast toast-${kind}`, role: kind === "error" ? "alert" : "status", "data-testid": `toast-${kind}` },
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
  fill(byId("failure-cause"), BIDDER_CAUSES.map((c) => h("option", { value: c }, t(`op.cause.${c}`))));
  if (page.fatal) showFatal(page.fatal.kind, page.fatal.serverMessage);
  else render();
}

function renderLanguageButton() {
  const button = byId("lang");
  button.textContent = t("lang.switch");
  button.setAttribute("aria-label", t("lang.switch.label"));
}

boot();
