// The evaluation room page (评标室): one page for every role, driven by the room's events.
//
// Flow, as the opening page: take the session token (URL fragment, this tab's room token, or the
// login session), connect (client.js), fold the snapshot and every event into the evaluation's
// view state (evaluation.js) and the meeting's (meeting.js), and re-render from them.
// Steps the shell must check (an expert's sign-in at a seat, a bidder's signed answer, the
// chair's draw, replacement and pre-check, the report and its signatures) go over HTTP; the rest
// are room commands over the socket, listed in the snapshot's `allowed`.
//
// The review and the score sheets are saved in this browser as the expert types (localStorage,
// keyed by room, expert and bid: evaluation.draftKey), restored after a reload or a reconnect,
// and dropped once the server has them. Forms are rebuilt only when what they show changes
// (a bid scored, a phase moved), never under the expert's fingers; a rebuild keeps the focus.

import { holderKey, takeToken } from "./session.js";
import { signedBody } from "./actions.js";
import { toBase64 } from "./bytes.js";
import { RoomConnection } from "./client.js";
import { byId, fill, h } from "./dom.js";
import * as ev from "./evaluation.js";
import * as i18n from "./i18n.js";
import "./i18n-evaluation.js";
import * as meeting from "./meeting.js";
import { MediaRoom } from "./media.js";
import * as servertime from "./servertime.js";

const { t } = i18n;
const TOAST_MS = 6000;
const WATCHERS = new Set(["chair", "supervisor"]);
const READS_REFRESH_MS = 30 * 1000;
const PREPARE_ATTEMPTS = 10; // report_moved: another member signed meanwhile; prepare again
const PREPARE_PAUSE_MS = 1000; // at most, random: members signing together do not collide again
const HIDDEN_DATA = new Set(["sealed", "base", "document", "signature", "certificate", "timestamp", "salt", "draw", "result", "record", "computation", "verdicts", "flags", "seats", "sheets"]);

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
  state: ev.initial(),
  meeting: meeting.initial(),
  status: { status: "connecting" },
  fatal: null,
  key: null, // the certificate key record, loaded when first needed
  busy: new Set(),
  progress: { seat: "", chair: "", leader: "", sign: "", recording: "" },
  errors: { seat: null, sign: null },
  review: null, // the preliminary review form (evaluation.emptyReview's shape)
  sheets: {}, // bid key -> score form (item -> text)
  reads: null, // the supervisor's list of plaintext reads (GET /api/lots/{lot}/reads)
  readsAt: 0,
  readsLoading: false,
  rescoring: null, // the bid key whose sheet is being re-scored
  rescoreForm: null, // its form (item -> text), saved as kind "rescore"
  answers: {}, // question -> the bidder's answer text
  answerErrors: {}, // question -> the server's refusal of the answer
  bidViews: {}, // bid key -> what GET /api/evaluations/{room}/bids/{key} shows this member
  recording: null, // the snapshot's `recording` part: {status, started_at, node, files, allowed}
  built: {}, // container id -> the key of what it was last built from
  replayedUpTo: 0,
  historyLoaded: false,
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
  if (WATCHERS.has(frame.you?.role) && !page.historyLoaded) loadHistory(frame.seq);
  render();
}

/** A watcher's event log shows the room's whole history (GET /api/rooms/{room}/events). */
async function loadHistory(upto) {
  page.historyLoaded = true;
  try {
    let after = 0;
    while (after < upto) {
      const answer = await (await api("GET", `/api/rooms/${encodeURIComponent(page.room)}/events?after=${after}`)).json();
      if (!answer.events.length) break;
      page.state = ev.withHistory(page.state, answer.events);
      after = answer.events[answer.events.length - 1].seq;
    }
  } catch (error) {
    page.historyLoaded = false; // tried again at the next welcome
    toast(i18n.errorText(error), "error");
  }
  render();
}

function onSnapshot(frame) {
  // A snapshot mid-stream (after a reveal) replaces the state, not the events seen so far.
  const seen = page.state.log;
  page.state = { ...ev.fromSnapshot(frame.state), log: seen };
  page.meeting = meeting.fromSnapshot(frame.state.meeting || frame.state);
  if (frame.state.recording) page.recording = frame.state.recording;
  dropHandedIn();
  render();
}

function onEvent(frame) {
  page.state = ev.apply(page.state, frame, page.me?.subject);
  page.meeting = meeting.apply(page.meeting, frame);
  page.recording = recordingAfter(page.recording, frame);
  dropHandedIn();
  if (frame.seq > page.replayedUpTo) announce(frame);
  render();
}

/** The recording part after recording.started / recording.stopped (seen by all but bidders). */
function recordingAfter(r, frame) {
  const d = frame.data || {};
  const base = r || { status: "off", started_at: null, node: null, files: [], allowed: [] };
  if (frame.name === "recording.started") return { ...base, status: "on", started_at: d.at || frame.at, node: d.node ?? null };
  if (frame.name !== "recording.stopped") return r;
  const stopped = new Set((d.files || []).map((f) => f.name));
  return { ...base, status: "off", node: null, files: [...base.files.filter((f) => !stopped.has(f.name)), ...(d.files || [])] };
}

/** Drafts the server already holds (an ack lost in a reconnect) are not drafts any more. */
function dropHandedIn() {
  const s = page.state;
  const me = page.me?.subject;
  if (!me || role() !== "expert") return;
  if (s.reviews.submitted.includes(me)) forget("review");
  for (const b of s.to_score) if (b.scored) forget("sheet", ev.bidKey(s, b));
  if (s.phase !== "deviations" && page.rescoring) page.rescoring = null;
}

/** Read the big moments out to screen readers (and as a toast) when they happen live. */
function announce(frame) {
  const d = frame.data || {};
  const params = {
    ...d,
    name: ev.memberName(page.state, d.leader),
    count: Array.isArray(d.flags) ? d.flags.length : "",
    text: d.text || "",
  };
  const key = {
    "evaluation.draw_recorded": "ev.live.drawn",
    "evaluation.declarations_opened": "ev.live.declaring",
    "evaluation.election_opened": "ev.live.electing",
    "evaluation.leader_elected": "ev.live.leader",
    "evaluation.prechecked": "ev.live.prechecked",
    "evaluation.preliminary_started": "ev.live.preliminary",
    "evaluation.preliminary_decided": "ev.live.decided",
    "evaluation.clarification_opened": "ev.live.clarifying",
    "evaluation.question_approved": role() === "bidder" ? "ev.live.question" : null,
    "evaluation.deviations_checked": "ev.live.flags",
    "evaluation.summarised": "ev.live.summary",
    "evaluation.report_issued": "ev.live.report",
    "evaluation.signing_closed": "ev.live.signed",
    "evaluation.suspended": "ev.live.suspended",
    "evaluation.resumed": "ev.live.resumed",
    "evaluation.sealed": "ev.live.sealed",
    "recording.started": "ev.live.recStarted",
    "recording.stopped": "ev.live.recStopped",
    "meeting.announced": "announcements.new",
  }[frame.name];
  if (!key) return;
  const text = t(key, params);
  byId("live").textContent = text;
  if (frame.name !== "meeting.announced") toast(text, "info");
}

function onFatal(detail) {
  if (detail.kind === "unauthorized") sessionStorage.removeItem(`bidroom.token.${page.room}`);
  showFatal(detail.kind, detail.message);
}

// talking to the server ---------------------------------------------------------------------

async function api(method, path, body, accept = "application/json") {
  const headers = { Authorization: `Bearer ${page.token}`, Accept: accept };
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
    const answer = await response.json();
    const body = answer.error && typeof answer.error === "object" ? answer.error : answer; // either style
    return new PageError(body.code || `http_${response.status}`, body.message, body.detail || {});
  } catch {
    return new PageError(`http_${response.status}`, response.statusText);
  }
}

const evalPath = (step) => `/api/evaluations/${encodeURIComponent(page.room)}/${step}`;

/** Send a room command; resolves true when the server accepted it. An expert's act
 *  (ev.SIGNED) is signed first with their certificate key, which never leaves this browser. */
async function run(name, args = {}, okKey = null, button = null) {
  if (page.conn.status !== "online") toast(t("toast.queued"), "info");
  if (button) button.disabled = true;
  try {
    if (ev.SIGNED[name]) args = await signedBody(await keyRecord(), name, { room: page.room, ...ev.signedFields(name, args) });
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

/** Run one long step once at a time, its progress and error shown under `slot`. */
async function step(slot, action) {
  if (page.busy.has(slot)) return false;
  page.busy.add(slot);
  if (slot in page.errors) page.errors[slot] = null;
  render();
  try {
    await action((key, params) => { page.progress[slot] = key ? t(key, params) : ""; render(); });
    return true;
  } catch (error) {
    page.progress[slot] = "";
    const shown = error?.code ? error : new PageError("unexpected", error?.message || String(error));
    if (slot in page.errors) page.errors[slot] = shown;
    else toast(i18n.errorText(shown), "error");
    return false;
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

// drafts kept in this browser -----------------------------------------------------------------

function draftKey(kind, bid = "") {
  return ev.draftKey(page.room, page.me?.subject || "", kind, bid);
}

function recall(kind, bid = "") {
  try {
    return JSON.parse(localStorage.getItem(draftKey(kind, bid)) || "null");
  } catch {
    return null;
  }
}

function keep(kind, bid, value) {
  try {
    localStorage.setItem(draftKey(kind, bid), JSON.stringify(value));
    return true;
  } catch {
    return false; // storage full or blocked: the form still works, unsaved
  }
}

function forget(kind, bid = "") {
  try {
    localStorage.removeItem(draftKey(kind, bid));
  } catch {
    // nothing kept
  }
  if (kind === "review") page.review = null;
  if (kind === "sheet") delete page.sheets[bid];
}

// the expert's steps ------------------------------------------------------------------------------

function signIn(event) {
  event.preventDefault();
  const venue = byId("venue").value;
  if (!venue) return;
  step("seat", async (say) => {
    const record = await keyRecord();
    say("ev.progress.sign");
    const body = await signedBody(record, "evaluation.sign_in", { room: page.room, venue });
    say("ev.progress.send");
    await api("POST", evalPath("sign-in"), body);
    say("ev.progress.seated");
  });
}

async function declare(event) {
  event.preventDefault();
  const declaration = event.target.querySelector("input[name=declaration]:checked")?.value || "none";
  const bidders = [...byId("conflict-bidders").querySelectorAll("input:checked")].map((x) => x.value);
  const reason = byId("declare-reason").value.trim();
  if (declaration === "conflict" && (!bidders.length || !reason)) return toast(t("ev.declare.needed"), "error");
  const body = declaration === "conflict" ? t("ev.declare.confirmConflict") : t("ev.declare.confirmNone");
  if ((await ask({ title: t("ev.declare.submit"), body })) === null) return;
  run("evaluation.declare", { declaration, bidders: declaration === "conflict" ? bidders : [], reason: declaration === "conflict" ? reason : "" }, "ev.toast.declared", event.submitter);
}

async function vote(event) {
  event.preventDefault();
  const round = page.state.election?.current?.round;
  const candidate = byId("vote-candidate").value;
  if (!round || !candidate) return;
  if (await run("evaluation.vote", { candidate, round }, "ev.toast.voted", event.submitter)) {
    keep("vote", "", { round, candidate });
    render();
  }
}

function reviewForm() {
  const complete = page.review && page.state.bidders.every((b) => page.review[b.bidder]);
  if (!complete) page.review = ev.restoreReview(page.state, page.review || recall("review"));
  return page.review;
}

async function submitReview(event) {
  event.preventDefault();
  const form = reviewForm();
  const problems = ev.reviewProblems(page.state, form);
  if (problems.length) return renderReviewProblems(true);
  const fails = ev.verdicts(page.state, form).filter((v) => !v.passed).length;
  if ((await ask({ title: t("ev.review.submit"), body: t("ev.review.confirm", { fails }) })) === null) return;
  if (await run("evaluation.submit_review", { verdicts: ev.verdicts(page.state, form) }, "ev.toast.reviewed", event.submitter)) forget("review");
  render();
}

function sheetForm(key, kind = "sheet", from = null) {
  const store = kind === "sheet" ? page.sheets : page;
  const slot = kind === "sheet" ? key : "rescoreForm";
  if (!store[slot]) store[slot] = ev.restoreSheet(page.state.items, recall(kind, key) || from || {});
  return store[slot];
}

async function submitSheet(entry, kind, button) {
  const s = page.state;
  const key = ev.bidKey(s, entry);
  const form = sheetForm(key, kind);
  const problems = ev.sheetProblems(s.items, form);
  if (Object.keys(problems).length) {
    renderSheetChecks(key, kind, true);
    return toast(t("ev.sheet.fix"), "error");
  }
  const args = ev.sheetArgs(s.items, form, key);
  const title = t(kind === "sheet" ? "ev.sheet.submit" : "ev.sheet.rescore");
  if ((await ask({ title, body: t("ev.sheet.confirm", { bid: bidText(entry), total: args.total }) })) === null) return;
  const name = kind === "sheet" ? "evaluation.submit_sheet" : "evaluation.rescore";
  if (!(await run(name, args, kind === "sheet" ? "ev.toast.scored" : "ev.toast.rescored", button))) return;
  forget(kind, key);
  if (kind === "rescore") {
    page.rescoring = null;
    page.rescoreForm = null;
  }
  render();
}

function startRescore(entry) {
  const s = page.state;
  const key = ev.bidKey(s, entry);
  page.rescoring = key;
  page.rescoreForm = null;
  sheetForm(key, "rescore", ev.mySheet(s, page.me.subject, entry)?.scores);
  render();
  byId("sheets").querySelector(`[data-bid="${CSS.escape(key)}"]`)?.scrollIntoView({ behavior: "smooth", block: "start" });
}

async function explainFlag(flag) {
  const answer = await ask({ title: t("ev.flags.explain"), body: flagText(flag), input: t("ev.flags.reason") });
  if (answer?.text) run("evaluation.explain", { flag: flag.key, reason: answer.text }, "ev.toast.explained");
}

async function dissent(event) {
  event.preventDefault();
  const field = byId("dissent-text");
  const reason = field.value.trim();
  if (reason && (await run("evaluation.dissent", { reason }, "ev.toast.dissent", event.submitter)) && field.value.trim() === reason) field.value = "";
}

/** Sign the report: prepare on the current revision, sign in this browser, finish; when another
 *  member signed meanwhile (409 report_moved) prepare again on the new revision. */
function signReport() {
  return step("sign", async (say) => {
    const record = await keyRecord();
    const pades = await import("./pades.js").catch(() => {
      throw new PageError("signer_unavailable");
    });
    const identity = { certificate: toBase64(record.certificate), chain: (record.chain || []).map((der) => toBase64(der)) };
    for (let attempt = 1; ; attempt += 1) {
      say("ev.progress.prepare");
      const prepared = await (await api("POST", evalPath("report/prepare"), identity)).json();
      say("ev.progress.sign");
      const signature = await pades.signPrepared(record, prepared.to_sign);
      say("ev.progress.send");
      try {
        await api("POST", evalPath("report/sign"), { token: prepared.token, signature });
        break;
      } catch (error) {
        if (error.code !== "report_moved" || attempt >= PREPARE_ATTEMPTS) throw error;
        say("ev.progress.moved");
        await new Promise((resolve) => setTimeout(resolve, Math.random() * PREPARE_PAUSE_MS));
      }
    }
    say("ev.progress.reportSigned");
  });
}

async function refuseSigning(event) {
  event.preventDefault();
  const reason = byId("refuse-reason").value.trim();
  if (!reason) return toast(t("ev.report.reasonNeeded"), "error");
  if ((await ask({ title: t("ev.report.refuse"), body: t("ev.report.refuseConfirm") })) === null) return;
  if (await run("evaluation.refuse_signing", { reason }, "ev.toast.refused", event.submitter)) byId("refuse-reason").value = "";
}

/** The report as last signed: fetched with the session (a plain link carries no token). */
function openReport() {
  const view = window.open("", "_blank"); // opened during the click, or a popup blocker stops it
  return step("report", async () => {
    try {
      const blob = await (await api("GET", evalPath("report.pdf"), undefined, "application/pdf")).blob();
      const url = URL.createObjectURL(blob);
      if (view) view.location.href = url;
      else location.assign(url);
      setTimeout(() => URL.revokeObjectURL(url), 10 * 60_000);
    } catch (error) {
      view?.close();
      throw error;
    }
  });
}

// the bidder's step ---------------------------------------------------------------------------------

function answerQuestion(q) {
  const text = String(page.answers[q.question] || "").trim();
  if (!text) return toast(t("ev.answer.empty"), "error");
  const slot = `answer-${q.question}`;
  delete page.answerErrors[q.question];
  return step(slot, async (say) => {
    try {
      const record = await keyRecord();
      const body = await signedBody(record, "evaluation.answer_question", { room: page.room, question: q.question, text });
      await api("POST", evalPath("answer"), body);
      forget("answer", q.question);
      delete page.answers[q.question];
      toast(t("ev.toast.answered"), "ok");
      say("");
    } catch (error) {
      page.answerErrors[q.question] = error?.code ? error : new PageError("unexpected", String(error));
    }
  });
}

// the leader's and the chair's steps ----------------------------------------------------------------

function shellStep(slot, path, body = {}, doneKey = null) {
  return step(slot, async (say) => {
    say("ev.progress.working");
    await api("POST", evalPath(path), body);
    say("");
    if (doneKey) toast(t(doneKey), "ok");
  });
}

/** The chair starts or stops the session's recording (POST .../recording/start|stop). */
function recording(action) {
  return step("recording", async (say) => {
    say("ev.progress.working");
    const answer = await (await api("POST", evalPath(`recording/${action}`), {})).json().catch(() => null);
    if (answer?.status) page.recording = answer;
    // after a stop, the files as the server lists them (names, sizes, SHA-256)
    if (action === "stop") page.recording = await (await api("GET", evalPath("recording"))).json();
    say(""); // the room's recording.started / recording.stopped event tells everyone
  });
}

async function confirmRun(event, name, titleKey, bodyKey, okKey = null) {
  const button = event.currentTarget;
  if ((await ask({ title: t(titleKey), body: t(bodyKey) })) !== null) run(name, {}, okKey, button);
}

async function withReason(event, name, titleKey, bodyKey, okKey = null) {
  const button = event.currentTarget;
  const answer = await ask({ title: t(titleKey), body: t(bodyKey), input: t("ev.reason") });
  if (answer?.text) run(name, { reason: answer.text }, okKey, button);
}

async function draftQuestion(event) {
  event.preventDefault();
  const deadline = ev.deadlineIso(byId("question-deadline").value);
  if (!deadline) return toast(i18n.errorText({ code: "deadline_invalid" }), "error");
  const args = { bidder: byId("question-bidder").value, text: byId("question-text").value.trim(), deadline };
  if (!args.bidder || !args.text) return;
  const field = byId("question-text");
  // clear what was sent, not what the leader may have typed since
  if ((await run("evaluation.draft_question", args, "ev.toast.drafted", event.submitter)) && field.value.trim() === args.text) field.value = "";
}

async function rejectQuestion(q) {
  const answer = await ask({ title: t("ev.question.reject"), body: q.text, input: t("ev.reason") });
  if (answer?.text) run("evaluation.reject_question", { question: q.question, reason: answer.text }, "ev.toast.rejected");
}

async function replaceSeat(seat, button) {
  const answer = await ask({ title: t("ev.chair.replace"), body: t("ev.chair.replaceConfirm", { seat: seat.seat, venue: seat.venue }) });
  if (answer !== null) shellStep("chair", "replace", { seat: seat.seat }, "ev.toast.replaced");
  button.blur();
}

// wiring ----------------------------------------------------------------------------------------

function wire() {
  const click = (id, fn) => byId(id).addEventListener("click", fn);
  byId("sign-in-form").addEventListener("submit", signIn);
  byId("declare-form").addEventListener("submit", declare);
  byId("declare-form").addEventListener("change", () => { byId("conflict-fields").hidden = !byId("declare-form").querySelector("input[value=conflict]").checked; });
  byId("vote-form").addEventListener("submit", vote);
  byId("review-form").addEventListener("submit", submitReview);
  byId("dissent-form").addEventListener("submit", dissent);
  byId("refuse-form").addEventListener("submit", refuseSigning);
  byId("question-form").addEventListener("submit", draftQuestion);
  click("report-link", openReport);
  click("sign-report", signReport);
  click("draw", async () => {
    if ((await ask({ title: t("ev.chair.draw"), body: t("ev.chair.drawConfirm") })) !== null) shellStep("chair", "draw", {}, "ev.toast.drawn");
  });
  click("open-declarations", (e) => confirmRun(e, "evaluation.open_declarations", "ev.chair.openDeclarations", "ev.chair.openConfirm"));
  click("close-round", (e) => confirmRun(e, "evaluation.close_round", "ev.chair.closeRound", "ev.chair.closeRoundConfirm"));
  click("revote", (e) => confirmRun(e, "evaluation.revote", "ev.chair.revote", "ev.chair.revoteConfirm"));
  byId("appoint-form").addEventListener("submit", (e) => {
    e.preventDefault();
    run("evaluation.appoint", { expert: byId("appoint-expert").value }, null, e.submitter);
  });
  click("precheck", () => shellStep("chair", "precheck", {}, "ev.toast.prechecked"));
  click("suspend", (e) => withReason(e, "evaluation.suspend", "ev.chair.suspend", "ev.chair.suspendConfirm"));
  click("resume", (e) => withReason(e, "evaluation.resume", "ev.chair.resume", "ev.chair.resumeConfirm"));
  click("seal", (e) => withReason(e, "evaluation.seal", "ev.chair.seal", "ev.chair.sealConfirm"));
  click("start-preliminary", (e) => confirmRun(e, "evaluation.start_preliminary", "ev.leader.startPreliminary", "ev.leader.startConfirm"));
  click("close-clarification", (e) => confirmRun(e, "evaluation.close_clarification", "ev.leader.closeClarification", "ev.leader.closeConfirm"));
  click("summarise", (e) => confirmRun(e, "evaluation.summarise", "ev.leader.summarise", "ev.leader.summariseConfirm"));
  click("issue-report", async () => {
    if ((await ask({ title: t("ev.leader.issueReport"), body: t("ev.leader.issueConfirm") })) !== null) shellStep("leader", "report", {}, "ev.toast.issued");
  });
  byId("announce-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const field = byId("announce-text");
    if (field.value.trim() && (await run("meeting.announce", { text: field.value.trim() }, null, e.submitter))) field.value = "";
  });
  click("open-meeting", (e) => run("meeting.open", {}, "toast.opened", e.currentTarget));
  click("recording-start", () => recording("start"));
  click("recording-stop", async () => {
    if ((await ask({ title: t("ev.rec.stop"), body: t("ev.rec.stopConfirm") })) !== null) recording("stop");
  });
}

/** A modal question: resolves {text} (or {text: ""} without a field), or null if cancelled. */
function ask({ title, body = "", input = null }) {
  const dialog = byId("ask");
  byId("ask-title").textContent = title;
  byId("ask-body").textContent = body;
  const field = byId("ask-input");
  field.value = "";
  byId("ask-label").textContent = input || "";
  field.hidden = byId("ask-label").hidden = !input;
  field.required = Boolean(input);
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok" ? { text: field.value.trim() } : null), { once: true });
  });
}

// rendering: helpers ------------------------------------------------------------------------------

const role = () => page.me?.role || "";
const isChair = () => role() === "chair";
const isExpert = () => role() === "expert";
const allowed = () => ev.allowedFor(page.state, role());
const can = (name) => allowed().includes(name);
const canHttp = (name) => ev.actionsFor(page.state, role()).includes(name);
const leads = () => ev.leads(page.state, page.me);
const seated = () => Boolean(page.me && ev.mySeat(page.state, page.me.subject));

function show(id, shown) {
  byId(id).hidden = !shown;
  return shown;
}

/** Rebuild a container only when `key` (what it shows) changed, keeping the focused field. */
function rebuild(id, key, build) {
  if (page.built[id] === key) return false;
  page.built[id] = key;
  keepFocus(() => fill(byId(id), build()));
  return true;
}

function keepFocus(build) {
  const active = document.activeElement;
  const id = active?.dataset?.testid;
  const range = id && typeof active.selectionStart === "number" ? [active.selectionStart, active.selectionEnd] : null;
  build();
  if (!id || document.activeElement === active) return;
  const again = document.querySelector(`[data-testid="${CSS.escape(id)}"]`);
  if (!again) return;
  again.focus();
  if (range && again.setSelectionRange) {
    try {
      again.setSelectionRange(...range);
    } catch {
      // not a text field any more
    }
  }
}

/** "投标文件A" while a bid is known by its label, else its bidder's name (a watcher sees both). */
function bidText(entry) {
  const shown = ev.bidShown(page.state, entry);
  if (!shown.name) return t("ev.bidLabel", { label: shown.label });
  return shown.label ? `${shown.name}（${t("ev.bidLabel", { label: shown.label })}）` : shown.name;
}

function nameOf(bidder) {
  return ev.bidderName(page.state, bidder) || bidder;
}

function showError(id, error) {
  const el = byId(id);
  el.hidden = !error;
  el.textContent = error ? t("ev.error", { text: i18n.errorText(error), code: error.code }) : "";
  el.dataset.code = error?.code || "";
}

function beijing(iso) {
  return iso ? t("ev.beijing", { time: i18n.formatDateTime(iso) }) : "";
}

function duration(ms) {
  return i18n.formatCountdown(ms);
}

/** A countdown cell, kept ticking by tick(): the time left to `iso`, or "past" once it passed. */
function until(iso, testid = null) {
  return h("span", { class: "countdown left", "data-until": iso, "data-testid": testid }, leftText(iso));
}

function leftText(iso) {
  const ms = ev.timeLeft(iso, servertime.now());
  return ms > 0 ? t("ev.left", { time: duration(ms) }) : t("ev.past");
}

// rendering ---------------------------------------------------------------------------------------

/** The panel where this person's next step is: shown first (CSS order), under the task line. */
const TASK_PANELS = {
  sign_in: "seat-panel", declare: "declare-panel", vote: "vote-panel", review: "review-panel", score: "scoring-panel",
  flags: "flags-panel", sign: "report-panel", start_preliminary: "leader-panel", close_clarification: "leader-panel",
  summarise: "leader-panel", issue_report: "leader-panel", draw: "chair-panel", open_declarations: "chair-panel",
  replace: "committee-panel", revote: "chair-panel", appoint: "chair-panel", precheck: "chair-panel",
  resume_or_seal: "faults-panel", approve: "questions-panel", answer: "bidder-panel",
};

function renderFocus() {
  const tasks = ev.tasks(page.state, page.me, servertime.now(), { voted: Boolean(myVoteNow()) });
  const first = tasks.map((k) => TASK_PANELS[k]).find((id) => id && !byId(id).hidden) || null;
  for (const el of document.querySelectorAll(".panel-now")) if (el.id !== first) el.classList.remove("panel-now");
  if (first) byId(first).classList.add("panel-now");
}

function render() {
  if (page.fatal) return;
  servertime.renderSkew();
  renderHead();
  renderStatus();
  renderBidder();
  renderSeat();
  renderDeclare();
  renderVote();
  renderChair();
  renderFaults();
  renderRecording();
  renderLeader();
  renderSupervisor();
  renderCommittee();
  renderPrecheck();
  renderReview();
  renderQuestions();
  renderScoring();
  renderFlags();
  renderSummary();
  renderReport();
  renderLog();
  renderMeeting();
  renderFocus();
}

function renderHead() {
  const s = page.state;
  byId("tender").textContent = s.tender ? t("ev.tender", { tender: s.tender }) : "";
  const title = s.title || page.meeting.title || page.room;
  byId("title").textContent = title;
  document.title = `${title} · ${t("ev.page")}`;
  const phase = byId("phase");
  phase.textContent = t(`ev.phase.${s.phase}`) + (s.phase === "clarifying" && s.clarifying_from ? t("ev.phase.from", { phase: t(`ev.phase.${s.clarifying_from}`) }) : "");
  phase.className = `badge op-phase ev-phase-${s.phase}`;
  phase.dataset.phase = s.phase;
  // A bidder is sent the phase only in snapshots (at a reveal), never as it moves: not shown,
  // or it would stay at whatever it was at the last one.
  phase.hidden = role() === "bidder";
  byId("starts").textContent = s.starts_at ? t("ev.startsAt", { time: i18n.formatDateTime(s.starts_at) }) : "";
  const me = page.me;
  const venue = me && (ev.mySeat(s, me.subject)?.venue || me.venue);
  byId("me").textContent = me ? [me.name || me.subject, t(`role.${me.role}`), venue, ev.isLeader(s, me.subject) ? t("ev.leaderMark") : ""].filter(Boolean).join(" · ") : "";
  const tasks = ev.tasks(s, me, servertime.now(), { voted: Boolean(myVoteNow()) });
  const el = byId("tasks");
  el.textContent = tasks.length ? t("ev.tasks", { list: tasks.map((k) => t(`ev.task.${k}`)).join(t("ev.listSep")) }) : "";
  el.dataset.tasks = tasks.join(" ");
  el.hidden = !tasks.length;
  const sealed = byId("sealed-note");
  sealed.hidden = !s.sealed;
  sealed.textContent = s.sealed ? t("ev.sealedNote", { time: beijing(s.sealed.at), reason: s.sealed.reason }) : "";
  renderClock();
}

/** What the header counts down to: the start, an answer's deadline, or the signing deadline. */
function clockTarget() {
  const s = page.state;
  const now = servertime.now();
  if (s.phase === "signing" && s.report?.sign_until) return ["ev.clock.signing", s.report.sign_until];
  const pending = ev.answersPending(s, now).sort((a, b) => Date.parse(a.deadline) - Date.parse(b.deadline));
  if (s.phase === "clarifying" && pending.length) return ["ev.clock.answer", pending[0].deadline];
  if (["forming", "signing_in"].includes(s.phase) && s.starts_at && ev.timeLeft(s.starts_at, now) > 0) return ["ev.clock.start", s.starts_at];
  return null;
}

function renderClock() {
  const target = clockTarget();
  const el = byId("countdown");
  const ms = target ? ev.timeLeft(target[1], servertime.now()) : 0;
  el.textContent = target ? `${t(target[0])} ${ms > 0 ? duration(ms) : t("ev.past")}` : "";
  el.dataset.ms = target ? String(Math.max(0, ms)) : "";
}

function tick() {
  if (page.fatal) return;
  renderClock();
  for (const el of document.querySelectorAll("[data-until]")) el.textContent = leftText(el.dataset.until);
  renderFaults();
  if (leads() && page.state.phase === "clarifying") renderLeader();
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

// the bidder ---------------------------------------------------------------------------------------

function renderBidder() {
  if (!show("bidder-panel", role() === "bidder")) return;
  const qs = page.state.clarifications;
  const key = JSON.stringify([i18n.lang(), qs.map((q) => [q.question, q.status, q.answer?.at]), [...page.busy], Object.keys(page.answerErrors)]);
  rebuild("my-questions", key, () => (qs.length ? qs.map(bidderQuestion) : h("li", { class: "empty" }, t("ev.bidder.none"))));
}

function bidderQuestion(q) {
  const open = q.status === "approved";
  const slot = `answer-${q.question}`;
  const error = page.answerErrors[q.question];
  if (open && page.answers[q.question] === undefined) page.answers[q.question] = recall("answer", q.question) || "";
  return h("li", { class: "note question", "data-testid": `question-${q.question}`, "data-status": q.status },
    h("div", { class: "note-head muted" }, t("ev.question.number", { id: q.question }), " · ", t(`ev.qstatus.${q.status}`)),
    h("p", { class: "note-text" }, q.text),
    h("p", { class: "hint" }, t("ev.question.deadlineAt", { time: beijing(q.deadline) }), " ",
      open ? until(q.deadline, `deadline-${q.question}`) : null),
    q.answer && h("p", { class: "note-text answer", "data-testid": `answered-${q.question}` }, t("ev.answer.mine", { text: q.answer.text, time: beijing(q.answer.at) })),
    open && h("div", { class: "composer" },
      h("label", { for: `answer-text-${q.question}` }, t("ev.answer.label")),
      h("p", { class: "hint" }, t("ev.answer.hint")),
      h("textarea", { id: `answer-text-${q.question}`, rows: 4, maxlength: 20000, "data-testid": `answer-text-${q.question}`,
        oninput: (e) => { page.answers[q.question] = e.target.value; keep("answer", q.question, e.target.value); } }, page.answers[q.question]),
      h("button", { type: "button", class: "primary", disabled: page.busy.has(slot), "data-testid": `answer-${q.question}`, onclick: () => answerQuestion(q) }, t("ev.answer.submit"))),
    error && h("p", { class: "error-box", role: "alert", "data-testid": `answer-error-${q.question}`, "data-code": error.code },
      t("ev.error", { text: i18n.errorText(error), code: error.code })),
  );
}

// the expert's seat, declaration and vote ---------------------------------------------------------------

function renderSeat() {
  if (!show("seat-panel", isExpert())) return;
  const s = page.state;
  const mine = ev.mySeat(s, page.me.subject);
  const left = s.seats.find((x) => x.left.some((l) => l.expert === page.me.subject));
  const stateText = mine ? t("ev.seat.seated", { seat: mine.seat, venue: mine.venue })
    : left ? t("ev.seat.left", { seat: left.seat })
      : s.phase === "forming" ? t("ev.seat.notDrawn") : s.seats.length ? t("ev.seat.notYet") : "";
  const el = byId("seat-state");
  el.textContent = stateText;
  el.dataset.seat = mine ? String(mine.seat) : "";
  const done = byId("declared");
  done.hidden = !mine?.declaration;
  done.textContent = mine?.declaration ? t(`ev.declared.${mine.declaration}`) : "";
  const signing = !mine && !left && canHttp("evaluation.sign_in");
  show("sign-in-form", signing);
  if (signing) renderVenues();
  byId("sign-in-form").querySelector("button").disabled = page.busy.has("seat");
  byId("seat-progress").textContent = page.progress.seat;
  showError("seat-error", page.errors.seat);
}

function renderVenues() {
  const venues = page.state.venues.map((v) => v.venue);
  const select = byId("venue");
  const key = JSON.stringify(venues);
  if (select.dataset.key === key) return;
  select.dataset.key = key;
  fill(select, venues.map((v) => h("option", { value: v }, v)));
  if (venues.includes(page.me?.venue)) select.value = page.me.venue;
}

function renderDeclare() {
  const s = page.state;
  const mine = ev.mySeat(s, page.me?.subject);
  const shown = isExpert() && Boolean(mine) && s.phase === "declaring";
  if (!show("declare-panel", shown)) return;
  const key = JSON.stringify([i18n.lang(), s.bidders]);
  rebuild("declare-bidders", key, () => s.bidders.map((b) => h("li", {}, b.name || b.bidder)));
  rebuild("conflict-bidders", key, () => s.bidders.map((b) => h("label", { class: "check" },
    h("input", { type: "checkbox", value: b.bidder, "data-testid": `conflict-bidder-${b.bidder}` }), " ", b.name || b.bidder)));
  show("declare-form", mine.declaration === null && can("evaluation.declare"));
}

function myVoteNow() {
  if (!page.me || !isExpert()) return null;
  return ev.myVote(page.state, page.me.subject, recall("vote"));
}

function renderVote() {
  const s = page.state;
  const e = s.election;
  if (!show("vote-panel", isExpert() && seated() && Boolean(e) && s.phase === "electing")) return;
  const current = e.current;
  byId("vote-round").textContent = current ? t("ev.vote.round", { round: current.round, count: Object.keys(current.votes).length, members: e.members.length })
    : t(`ev.election.${e.phase}`);
  const mine = myVoteNow();
  const open = Boolean(current) && !mine && can("evaluation.vote");
  show("vote-form", open);
  if (open) {
    const candidates = current.candidates.filter((c) => e.self_vote || c !== page.me.subject);
    const select = byId("vote-candidate");
    const key = JSON.stringify([current.round, candidates, i18n.lang()]);
    if (select.dataset.key !== key) {
      select.dataset.key = key;
      fill(select, candidates.map((c) => h("option", { value: c }, ev.memberName(s, c) + (c === page.me.subject ? t("participants.you") : ""))));
    }
  }
  const voted = byId("voted");
  voted.hidden = !mine;
  voted.textContent = mine ? t("ev.vote.done", { name: ev.memberName(s, mine.candidate), round: mine.round }) : "";
}

// the chair ---------------------------------------------------------------------------------------

function renderChair() {
  if (!show("chair-panel", isChair())) return;
  const s = page.state;
  const e = s.election;
  const busy = page.busy.has("chair");
  const buttons = {
    draw: canHttp("evaluation.record_draw"),
    "open-declarations": can("evaluation.open_declarations"),
    "close-round": can("evaluation.close_round") && e?.phase === "voting",
    revote: can("evaluation.revote") && e?.phase === "tied",
    precheck: canHttp("evaluation.precheck") && Boolean(s.leader),
  };
  for (const [id, wanted] of Object.entries(buttons)) {
    show(id, wanted);
    byId(id).disabled = busy;
  }
  byId("open-declarations").disabled = busy || !ev.allSeated(s);
  const hint = byId("open-hint");
  hint.hidden = !(buttons["open-declarations"] && !ev.allSeated(s));
  hint.textContent = t("ev.chair.openWait", { seated: s.seats.filter((x) => x.status === "seated").length, seats: s.seats.length });
  renderAppoint();
  byId("chair-progress").textContent = page.progress.chair;
  const appointing = !byId("appoint-form").hidden;
  show("chair-panel", appointing || !hint.hidden || Object.values(buttons).some(Boolean) || Boolean(page.progress.chair));
}

function renderAppoint() {
  const e = page.state.election;
  const open = can("evaluation.appoint") && e?.phase === "appointing";
  if (!show("appoint-form", open)) return;
  const select = byId("appoint-expert");
  const key = JSON.stringify([e.tied, i18n.lang()]);
  if (select.dataset.key === key) return;
  select.dataset.key = key;
  fill(select, e.tied.map((c) => h("option", { value: c }, ev.memberName(page.state, c))));
}

/** The fault clocks: the chair's and the supervisor's always, everyone's once a fault happened. */
function renderFaults() {
  const s = page.state;
  const shown = WATCHERS.has(role()) || (isExpert() && (s.suspensions.length > 0 || s.phase === "sealed"));
  if (!show("faults-panel", shown)) return;
  for (const [id, name] of [["suspend", "evaluation.suspend"], ["resume", "evaluation.resume"], ["seal", "evaluation.seal"]]) {
    show(id, isChair() && can(name));
    byId(id).disabled = page.busy.has("chair");
  }
  const clocks = ev.faultClocks(s.starts_at, s.suspensions, servertime.now());
  const row = (rule, c) => h("tr", { "data-testid": `clock-${rule}`, class: c.exceeded ? "over" : "" },
    h("th", { scope: "row" }, t(`ev.fault.${rule}`)),
    h("td", { class: "left" }, duration(c.elapsed), c.running ? ` ${t("ev.fault.running")}` : ""),
    h("td", {}, duration(c.limit)),
    h("td", {}, t(c.exceeded ? "ev.fault.exceeded" : "ev.fault.within")));
  fill(byId("fault-rows"), clocks ? [row("before_start", clocks.before_start), row("during", clocks.during)]
    : h("tr", {}, h("td", { colspan: 4, class: "empty" }, t("ev.fault.noSchedule"))));
  const status = byId("fault-status");
  status.textContent = clocks ? t(`ev.fault.status.${clocks.status}`) : "";
  status.dataset.status = clocks?.status || "";
  renderSuspensions();
}

function renderSuspensions() {
  const items = page.state.suspensions.map((x, n) => h("li", { class: "note", "data-testid": `suspension-${n + 1}` },
    h("div", { class: "note-head muted" }, beijing(x.start), " → ", x.end ? beijing(x.end) : t("ev.fault.open"), " · ", t(`ev.phase.${x.phase}`)),
    h("p", { class: "note-text" }, x.reason)));
  fill(byId("suspensions"), items);
}

// the recording ------------------------------------------------------------------------------------

/** 录像中 for every committee member while on; the chair's buttons; the files once stopped. */
function renderRecording() {
  const r = page.recording;
  const on = r?.status === "on";
  show("recording-badge", on && role() !== "bidder");
  if (!show("recording-panel", Boolean(r) && WATCHERS.has(role()))) return;
  const busy = page.busy.has("recording");
  show("recording-actions", isChair());
  for (const [id, wanted] of [["recording-start", !on], ["recording-stop", on]]) {
    show(id, isChair() && wanted);
    byId(id).disabled = busy;
  }
  const files = r.files || [];
  const state = byId("recording-state");
  state.textContent = on ? t("ev.rec.since", { time: beijing(r.started_at) }) : t(files.length ? "ev.rec.stopped" : "ev.rec.off");
  state.dataset.status = r.status;
  byId("recording-progress").textContent = page.progress.recording;
  fill(byId("recording-files"), files.map((f) => h("li", { "data-testid": "recording-file", "data-name": f.name, "data-sha256": f.sha256 },
    h("div", {}, h("strong", {}, f.name), " · ", page.meeting.participants[f.subject]?.name || ev.memberName(page.state, f.subject), f.venue ? ` · ${f.venue}` : "",
      " · ", t("ev.rec.figures", { seconds: Number(f.seconds ?? 0).toFixed(1), frames: f.frames ?? 0, bytes: Number(f.bytes ?? 0).toLocaleString(i18n.lang()) })),
    h("div", { class: "muted" }, "SHA-256 ", h("code", {}, f.sha256)))));
}

// the leader ---------------------------------------------------------------------------------------

function renderLeader() {
  const s = page.state;
  const working = !["signed", "sealed", "suspended"].includes(s.phase);
  if (!show("leader-panel", leads() && working)) return;
  const now = servertime.now();
  const busy = page.busy.has("leader");
  const buttons = {
    "start-preliminary": can("evaluation.start_preliminary"),
    "close-clarification": can("evaluation.close_clarification"),
    summarise: can("evaluation.summarise"),
    "issue-report": canHttp("evaluation.issue_report") && Boolean(s.summary?.computation),
  };
  for (const [id, wanted] of Object.entries(buttons)) {
    show(id, wanted);
    byId(id).disabled = busy;
  }
  const pending = ev.answersPending(s, now);
  const hints = [
    buttons["close-clarification"] && pending.length && t("ev.leader.waiting", { list: pending.map((q) => q.question).join(t("ev.listSep")) }),
    buttons.summarise && s.open_flags.length && t("ev.leader.flagsOpen", { count: s.open_flags.length }),
    s.phase === "summary" && !s.summary?.computation && s.summary?.reason && t(`ev.summary.${s.summary.reason}`),
  ].filter(Boolean);
  byId("leader-hint").textContent = hints.join(" ");
  const drafting = renderQuestionForm();
  byId("leader-progress").textContent = page.progress.leader;
  show("leader-panel", drafting || hints.length > 0 || Object.values(buttons).some(Boolean) || Boolean(page.progress.leader));
}

/** The question form, while the leader may draft; whether it is shown. */
function renderQuestionForm() {
  const s = page.state;
  if (!show("question-form", can("evaluation.draft_question"))) return false;
  const targets = ev.askable(s);
  const select = byId("question-bidder");
  const key = JSON.stringify([targets.map((x) => x.key), i18n.lang(), s.revealed]);
  if (select.dataset.key !== key) {
    select.dataset.key = key;
    fill(select, targets.map((x) => h("option", { value: x.key }, bidText(x.bid))));
  }
  const deadline = byId("question-deadline");
  if (!deadline.value) deadline.value = ev.beijingInput(new Date(servertime.now() + 3600 * 1000));
  return true;
}

// the supervisor -------------------------------------------------------------------------------------

function renderSupervisor() {
  if (!show("supervisor-panel", role() === "supervisor")) return;
  const count = ev.drafts(page.state).length;
  const el = byId("supervisor-drafts");
  el.textContent = count ? t("ev.supervisor.drafts", { count }) : t("ev.supervisor.none");
  el.dataset.count = String(count);
  renderReads();
}

/** Every read of the lot's bids' plaintext (the audit log's bid.read.* entries), for the supervisor. */
async function loadReads() {
  if (!page.state.lot || page.readsLoading) return;
  page.readsLoading = true;
  try {
    const answer = await (await api("GET", `/api/lots/${encodeURIComponent(page.state.lot)}/reads`)).json();
    page.reads = answer;
  } catch (err) {
    page.reads = { error: err.code || "network" };
  } finally {
    page.readsAt = Date.now();
    page.readsLoading = false;
    render();
  }
}

function renderReads() {
  const body = byId("reads-body");
  const note = byId("reads-note");
  if (!page.reads || Date.now() - (page.readsAt || 0) > READS_REFRESH_MS) loadReads(); // the list grows as people read
  if (!page.reads) {
    note.textContent = t("ev.reads.loading");
    return;
  }
  if (page.reads.error) {
    note.textContent = t("ev.reads.error", { code: page.reads.error });
    return;
  }
  const reads = page.reads.reads || [];
  note.textContent = reads.length ? t("ev.reads.count", { count: reads.length }) : t("ev.reads.none");
  fill(body, reads.map((r) => h("tr", { "data-testid": "read-row", "data-part": r.part },
    h("td", {}, beijing(r.at)),
    h("td", {}, r.reader),
    h("td", {}, t(`ev.reads.part.${r.part}`)),
    h("td", { class: "mono", title: r.envelope || "" }, (r.envelope || "").slice(0, 16)),
  )));
}

// the committee ------------------------------------------------------------------------------------

function renderCommittee() {
  const s = page.state;
  if (!show("committee-panel", role() !== "bidder" && Boolean(page.me))) return;
  byId("draw-facts").textContent = s.draw ? t("ev.committee.draw", { pool: s.draw.pool_digest.slice(0, 16), seed: s.draw.seed_digest.slice(0, 16), replacements: s.draw.replacements || 0 })
    : t("ev.committee.notDrawn");
  const rows = s.seats.map((x) => h("tr", { "data-testid": `seat-${x.seat}`, "data-status": x.status },
    h("th", { scope: "row" }, String(x.seat)),
    h("td", {}, x.venue),
    h("td", {}, h("span", { class: `st seat-${x.status}` }, t(`ev.seatStatus.${x.status}`))),
    h("td", { "data-testid": `seat-expert-${x.seat}` }, x.status === "seated" ? x.name || x.expert : "—",
      x.expert && x.expert === page.me?.subject ? t("participants.you") : "",
      x.expert && x.expert === s.leader ? ` ${t("ev.leaderMark")}` : ""),
    h("td", {}, x.declaration ? t(`ev.declaration.${x.declaration}`) : "—",
      x.left.map((l) => h("div", { class: "hint" }, t("ev.committee.left", { bidders: l.bidders.map(nameOf).join(t("ev.listSep")), reason: l.reason })))),
    h("td", {}, x.status === "vacated" && isChair() && canHttp("evaluation.record_replacement")
      ? h("button", { type: "button", class: "small primary", "data-testid": `replace-${x.seat}`, disabled: page.busy.has("chair"), onclick: (e) => replaceSeat(x, e.currentTarget) }, t("ev.chair.replace"))
      : null)));
  fill(byId("seat-rows"), rows.length ? rows : h("tr", {}, h("td", { colspan: 6, class: "empty" }, t("ev.committee.noSeats"))));
  renderElection();
}

function renderElection() {
  const s = page.state;
  const e = s.election;
  const el = byId("election");
  if (!e) return fill(el);
  const name = (c) => ev.memberName(s, c);
  const rounds = e.rounds.map((r) => h("li", { "data-testid": `round-${r.round}` },
    t("ev.election.roundResult", { round: r.round, tally: Object.entries(r.tally).map(([c, n]) => `${name(c)} ${n}`).join(t("ev.listSep")) })));
  const current = e.current && h("p", { class: "hint", "data-testid": "round-open" },
    t("ev.vote.round", { round: e.current.round, count: Object.keys(e.current.votes).length, members: e.members.length }));
  const leader = s.leader && h("p", { class: "ok", "data-testid": "leader" }, t(s.appointed ? "ev.election.byAppointment" : "ev.election.byVote", { name: name(s.leader) }));
  fill(el, h("h3", {}, t("ev.vote.title")), h("p", { class: "hint" }, t(`ev.election.${e.phase}`)), rounds.length ? h("ol", { class: "plain-list" }, rounds) : null, current, leader);
}

// the pre-check ---------------------------------------------------------------------------------------

function renderPrecheck() {
  const p = page.state.precheck;
  if (!show("precheck-panel", role() !== "bidder" && Boolean(p))) return;
  const findings = Array.isArray(p.findings) ? p.findings : [];
  const sev = p.summary?.severities || {};
  byId("precheck-summary").textContent = t("ev.precheck.summary", { signal: sev.signal ?? 0, info: sev.info ?? 0 });
  const names = Object.fromEntries((p.bids || []).map((b) => [b.bidder, b.name || b.bidder]));
  rebuild("findings", JSON.stringify([i18n.lang(), findings.length, p.lot]), () => (findings.length ? findings.map((f, n) => finding(f, n, names))
    : h("li", { class: "empty" }, t("ev.precheck.none"))));
}

function finding(f, n, names) {
  return h("li", { class: `note finding sev-${f.severity}`, "data-testid": `finding-${n + 1}`, "data-kind": f.kind },
    h("div", { class: "note-head" }, h("strong", {}, known(`ev.finding.${f.kind}`, f.kind)), " · ",
      h("span", { class: `sev sev-${f.severity}` }, t(`ev.severity.${f.severity}`))),
    h("p", { class: "note-text" }, known(`ev.findingHelp.${f.kind}`, "")),
    h("p", { class: "hint" }, t("ev.precheck.bids", { bids: (f.bids || []).map((b) => names[b] || nameOf(b)).join(t("ev.listSep")) })),
    h("dl", { class: "facts evidence" }, Object.entries(f.evidence || {}).flatMap(([k, v]) => [
      h("dt", {}, known(`ev.evidence.${k}`, k)), h("dd", {}, evidenceText(v))])));
}

/** A translation, or `fallback` when the key has none. */
function known(key, fallback) {
  const text = t(key);
  return text === key ? fallback : text;
}

function evidenceText(v) {
  if (Array.isArray(v)) return v.map(evidenceText).join(t("ev.listSep"));
  if (v && typeof v === "object") {
    return Object.entries(v).map(([k, x]) => `${known(`ev.evidence.${k}`, k)} ${k === "bidder" ? nameOf(x) : evidenceText(x)}`).join(t("ev.listSep"));
  }
  if (typeof v === "boolean") return t(v ? "ev.yes" : "ev.no");
  return String(v ?? "—");
}

// the preliminary review -------------------------------------------------------------------------------

function renderReview() {
  const s = page.state;
  const reached = s.reviews.submitted.length > 0 || Boolean(s.preliminary) || s.phase === "preliminary";
  if (!show("review-panel", role() !== "bidder" && Boolean(page.me) && reached)) return;
  byId("review-rule").textContent = t(`ev.review.rule.${s.review_rule}`);
  const me = page.me.subject;
  const open = isExpert() && seated() && can("evaluation.submit_review") && !s.reviews.submitted.includes(me);
  if (show("review-form", open)) renderReviewGrid();
  const members = s.seats.filter((x) => x.status === "seated").length;
  const progress = byId("review-progress");
  progress.textContent = t("ev.review.progress", { done: s.reviews.submitted.length, members, names: s.reviews.submitted.map((e) => ev.memberName(s, e)).join(t("ev.listSep")) || "—" });
  progress.dataset.done = String(s.reviews.submitted.length);
  renderVerdicts();
  renderReviewResult();
}

function renderReviewGrid() {
  const s = page.state;
  const form = reviewForm();
  const key = JSON.stringify([i18n.lang(), s.criteria, s.bidders]);
  rebuild("review-head", key, () => h("tr", {}, h("th", {}, t("ev.col.criterion")), s.bidders.map((b) => h("th", {}, b.name || b.bidder))));
  rebuild("review-rows", key, () => s.criteria.map((c) => h("tr", {},
    h("th", { scope: "row" }, h("strong", {}, c.id), h("div", { class: "hint" }, c.text)),
    s.bidders.map((b) => reviewCell(form, b.bidder, c.id)))));
  renderReviewProblems(false);
}

function reviewCell(form, bidder, criterion) {
  const cell = form[bidder][criterion];
  const id = `${bidder}-${criterion}`;
  const reason = h("textarea", { rows: 2, maxlength: 2000, class: "reason", hidden: cell.passed !== false, placeholder: t("ev.review.reason"),
    "aria-label": t("ev.review.reason"), "data-testid": `review-reason-${id}`, oninput: (e) => { cell.reason = e.target.value; saveReview(); } }, cell.reason);
  const choose = (passed) => () => { cell.passed = passed; reason.hidden = passed; saveReview(); if (!passed) reason.focus(); };
  const radio = (value, passed) => h("label", { class: `verdict-choice ${value}` },
    h("input", { type: "radio", name: `review-${id}`, value, checked: cell.passed === passed, "data-testid": `review-${value}-${id}`, onchange: choose(passed) }),
    " ", t(`ev.review.${value}`));
  return h("td", { "data-testid": `review-cell-${id}` }, h("div", { class: "verdict-choices" }, radio("pass", true), radio("fail", false)), reason);
}

function saveReview() {
  const saved = keep("review", "", page.review);
  byId("review-saved").textContent = saved ? t("ev.saved", { time: i18n.formatTime(new Date().toISOString()) }) : t("ev.notSaved");
  renderReviewProblems(false);
}

function renderReviewProblems(loud) {
  const problems = ev.reviewProblems(page.state, reviewForm());
  const el = byId("review-problems");
  const unset = problems.filter((p) => p.problem === "unset").length;
  const reasons = problems.filter((p) => p.problem === "reason").length;
  el.textContent = problems.length ? t("ev.review.problems", { unset, reasons }) : "";
  el.dataset.count = String(problems.length);
  if (loud && problems.length) toast(el.textContent, "error");
}

function renderVerdicts() {
  const s = page.state;
  const criteria = Object.fromEntries(s.criteria.map((c) => [c.id, c.text || c.id]));
  const blocks = Object.entries(s.reviews.verdicts).map(([expert, verdicts]) => {
    const fails = verdicts.filter((v) => !v.passed);
    return h("div", { class: "verdicts", "data-testid": `verdicts-${expert}` },
      h("h3", {}, ev.memberName(s, expert), expert === page.me?.subject ? t("participants.you") : ""),
      fails.length ? h("ul", { class: "plain-list" }, fails.map((v) => h("li", {}, t("ev.review.failed", { bidder: nameOf(v.bidder), criterion: criteria[v.criterion] || v.criterion, reason: v.reason }))))
        : h("p", { class: "hint" }, t("ev.review.allPassed")));
  });
  const open = !s.preliminary; // once decided, the result leads and the opinions fold away
  fill(byId("review-verdicts"), blocks.length ? h("details", { open, class: "verdict-details" }, h("summary", {}, t("ev.review.opinions", { count: blocks.length })), blocks) : null);
}

function renderReviewResult() {
  const s = page.state;
  const p = s.preliminary;
  const el = byId("review-result");
  if (!p?.criteria) return fill(el);
  const head = h("tr", {}, h("th", {}, t("ev.col.bidder")), s.criteria.map((c) => h("th", {}, c.id)), h("th", {}, t("ev.col.result")));
  const rows = Object.entries(p.criteria).map(([bidder, per]) => h("tr", { "data-testid": `result-${bidder}`, "data-passed": String(p.passed.includes(bidder)) },
    h("th", { scope: "row" }, nameOf(bidder)),
    s.criteria.map((c) => {
      const x = per[c.id] || {};
      return h("td", { class: x.result === "fail" ? "danger" : "" }, t(`ev.review.${x.result || "pass"}`), h("span", { class: "muted" }, ` ${x.pass ?? 0}:${x.fail ?? 0}`));
    }),
    h("td", {}, h("strong", { class: p.passed.includes(bidder) ? "ok" : "danger" }, t(p.passed.includes(bidder) ? "ev.review.passedBid" : "ev.review.failedBid")))));
  fill(el, h("h3", {}, t("ev.review.result")), h("div", { class: "table-wrap" }, h("table", { class: "grid", "data-testid": "review-table" }, h("thead", {}, head), h("tbody", {}, rows))));
}

// clarification questions -------------------------------------------------------------------------------

function renderQuestions() {
  const s = page.state;
  const shown = role() !== "bidder" && Boolean(page.me) && (s.clarifications.length > 0 || s.phase === "clarifying");
  if (!show("questions-panel", shown)) return;
  const items = s.clarifications.map((q) => h("li", { class: "note question", "data-testid": `question-${q.question}`, "data-status": q.status },
    h("div", { class: "note-head muted" }, t("ev.question.number", { id: q.question }), " → ", bidText(q), " · ",
      h("strong", { "data-testid": `question-status-${q.question}` }, t(`ev.qstatus.${q.status}`)),
      q.drafted_by ? ` · ${t("ev.question.by", { name: ev.memberName(s, q.drafted_by) })}` : ""),
    h("p", { class: "note-text" }, q.text),
    h("p", { class: "hint" }, t("ev.question.deadlineAt", { time: beijing(q.deadline) }), " ", ["draft", "approved"].includes(q.status) ? until(q.deadline) : null),
    q.rejection && h("p", { class: "hint danger" }, t("ev.question.rejected", { reason: q.rejection })),
    q.answer && h("p", { class: "note-text answer", "data-testid": `answer-shown-${q.question}` }, t("ev.answer.shown", { text: q.answer.text, time: beijing(q.answer.at) })),
    q.status === "draft" && role() === "supervisor" && h("div", { class: "actions" },
      can("evaluation.approve_question") && h("button", { type: "button", class: "small primary", "data-testid": `approve-${q.question}`, onclick: (e) => run("evaluation.approve_question", { question: q.question }, "ev.toast.approved", e.currentTarget) }, t("ev.question.approve")),
      can("evaluation.reject_question") && h("button", { type: "button", class: "small danger", "data-testid": `reject-${q.question}`, onclick: () => rejectQuestion(q) }, t("ev.question.reject")))));
  fill(byId("questions"), items.length ? items : h("li", { class: "empty" }, t("ev.questions.none")));
}

// detailed scoring --------------------------------------------------------------------------------------

function renderScoring() {
  const s = page.state;
  const reached = s.to_score.length > 0 || s.sheets.length > 0;
  if (!show("scoring-panel", role() !== "bidder" && Boolean(page.me) && reached)) return;
  const hint = !isExpert() ? "ev.scoring.watch" : ev.labelled(s) ? "ev.scoring.anonymous" : "ev.scoring.hint";
  byId("scoring-hint").textContent = t(hint, { max: ev.maxTotal(s.items) });
  const cards = isExpert() && seated() ? s.to_score : [];
  const key = JSON.stringify([i18n.lang(), s.phase, s.revealed, s.items.map((i) => i.id), cards.map((b) => [ev.bidKey(s, b), b.scored]),
    page.rescoring, s.sheets.map((x) => [x.expert, x.label || x.bidder, x.total]), allowed(), Object.keys(page.bidViews)]);
  rebuild("sheets", key, () => cards.map(sheetCard));
  renderSheetTable();
}

function sheetCard(entry) {
  const s = page.state;
  const key = ev.bidKey(s, entry);
  const mine = ev.mySheet(s, page.me.subject, entry);
  const rescoring = page.rescoring === key && can("evaluation.rescore");
  const writing = (!entry.scored && can("evaluation.submit_sheet")) || rescoring;
  const kind = rescoring ? "rescore" : "sheet";
  return h("fieldset", { class: `sheet-card ${entry.scored && !rescoring ? "done" : ""}`, "data-testid": `sheet-${key}`, "data-bid": key, "data-scored": String(entry.scored) },
    h("legend", {}, bidText(entry)),
    bidView(key),
    writing ? sheetInputs(entry, key, kind) : entry.scored && mine ? submittedSheet(mine) : h("p", { class: "hint" }, t(entry.scored ? "ev.sheet.scored" : "ev.sheet.notNow")),
    entry.scored && othersTable(entry));
}

/** What this member may read of a bid (the shell's bid view): shown on demand, folded. */
function bidView(key) {
  const view = page.bidViews[key];
  if (!view) {
    return h("button", { type: "button", class: "small link", "data-testid": `view-bid-${key}`, onclick: () => loadBid(key) }, t("ev.bid.view"));
  }
  const form = view.form && typeof view.form === "object" ? Object.entries(view.form).filter(([k]) => !["format", "version", "lot"].includes(k)) : [];
  return h("details", { class: "bid-view", open: true, "data-testid": `bid-view-${key}` },
    h("summary", {}, t("ev.bid.title")),
    view.anonymous && h("p", { class: "hint" }, t("ev.bid.anonymous")),
    form.length > 0 && h("dl", { class: "facts evidence" }, form.flatMap(([k, v]) => [h("dt", {}, known(`ev.evidence.${k}`, k)), h("dd", {}, evidenceText(v))])),
    Array.isArray(view.price_list?.lines) && h("p", { class: "hint" }, t("ev.bid.priceList", { count: view.price_list.lines.length })),
    (view.files || []).length ? h("ul", { class: "plain-list files" }, view.files.map((f) => h("li", {}, f.name, f.size != null ? h("span", { class: "muted" }, ` (${f.size} B)`) : null)))
      : h("p", { class: "hint" }, t("ev.bid.noFiles")),
    view.error && h("p", { class: "hint danger" }, i18n.errorText({ code: view.error, message: view.error })));
}

function loadBid(key) {
  return step(`bid-${key}`, async () => {
    page.bidViews[key] = await (await api("GET", evalPath(`bids/${encodeURIComponent(key)}`))).json();
  });
}

function sheetInputs(entry, key, kind) {
  const s = page.state;
  const form = sheetForm(key, kind);
  const rows = s.items.map((item) => h("div", { class: "score-row" },
    h("label", { for: `score-${kind}-${key}-${item.id}` }, h("strong", {}, item.id), " ",
      h("span", { class: "muted" }, t(`ev.item.${item.kind}`), " · ", t("ev.item.range", { max: item.max }))),
    h("input", { id: `score-${kind}-${key}-${item.id}`, type: "text", inputmode: "decimal", autocomplete: "off", value: form[item.id],
      "data-testid": `score-${key}-${item.id}`, "data-item": item.id,
      oninput: (e) => { form[item.id] = e.target.value; keep(kind, key, form); renderSheetChecks(key, kind); } }),
    h("span", { class: "score-problem danger", "data-problem-for": item.id })));
  const button = h("button", { type: "button", class: "primary", "data-testid": `${kind === "sheet" ? "submit-sheet" : "submit-rescore"}-${key}` },
    t(kind === "sheet" ? "ev.sheet.submit" : "ev.sheet.rescore"));
  button.addEventListener("click", () => submitSheet(entry, kind, button));
  const card = h("div", { class: "score-form", "data-form": `${kind}-${key}` },
    kind === "rescore" && h("p", { class: "hint warn" }, t("ev.sheet.rescoreHint")),
    rows,
    h("p", { class: "sum" }, t("ev.sheet.sum"), " ", h("strong", { "data-testid": `sum-${key}` }, ev.sumOf(Object.values(form))), ` / ${ev.maxTotal(s.items)}`),
    h("p", { class: "hint", "data-testid": `saved-${key}` }, recall(kind, key) ? t("ev.restored") : ""),
    h("div", { class: "actions" }, button,
      kind === "rescore" && h("button", { type: "button", onclick: () => { page.rescoring = null; render(); } }, t("dialog.cancel"))));
  queueMicrotask(() => renderSheetChecks(key, kind));
  return card;
}

/** The live sum and each item's problem, updated in place as the expert types. */
function renderSheetChecks(key, kind, loud = false) {
  const box = byId("sheets").querySelector(`[data-form="${CSS.escape(`${kind}-${key}`)}"]`);
  if (!box) return;
  const form = sheetForm(key, kind);
  const problems = ev.sheetProblems(page.state.items, form);
  for (const el of box.querySelectorAll("[data-problem-for]")) {
    const item = el.dataset.problemFor;
    const problem = form[item] === "" && !loud ? null : problems[item]; // "missing" only on submit
    const max = page.state.items.find((i) => i.id === item)?.max;
    el.textContent = problem ? t(`ev.sheet.problem.${problem}`, { max }) : "";
    box.querySelector(`input[data-item="${CSS.escape(item)}"]`)?.setAttribute("aria-invalid", String(Boolean(problem)));
  }
  box.querySelector(`[data-testid="${CSS.escape(`sum-${key}`)}"]`).textContent = ev.sumOf(Object.values(form));
  const saved = box.querySelector(`[data-testid="${CSS.escape(`saved-${key}`)}"]`);
  if (saved && document.activeElement?.closest?.(".score-form") === box) saved.textContent = t("ev.saved", { time: i18n.formatTime(new Date().toISOString()) });
}

function submittedSheet(sheet) {
  const s = page.state;
  return h("div", { class: "submitted" },
    h("p", { class: "ok" }, t("ev.sheet.submitted", { total: sheet.total ?? ev.sumOf(Object.values(sheet.scores)) })),
    h("ul", { class: "plain-list" }, s.items.map((i) => h("li", {}, `${i.id}：${sheet.scores[i.id] ?? "—"}`))));
}

function othersTable(entry) {
  const s = page.state;
  const others = ev.othersSheets(s, page.me.subject, entry);
  if (!others.length) return h("p", { class: "hint" }, t("ev.sheet.othersWait"));
  return h("div", { class: "table-wrap" }, h("table", { class: "grid" },
    h("thead", {}, h("tr", {}, h("th", {}, t("ev.col.expert")), s.items.map((i) => h("th", {}, i.id)), h("th", {}, t("ev.col.total")))),
    h("tbody", {}, others.map((x) => h("tr", {}, h("th", { scope: "row" }, ev.memberName(s, x.expert)),
      s.items.map((i) => h("td", {}, x.scores[i.id] ?? "—")), h("td", {}, x.total ?? "—"))))));
}

/** Every sheet this person may see, expert × bid (a watcher sees them all as they come in). */
function renderSheetTable() {
  const s = page.state;
  const el = byId("sheet-table");
  if (isExpert() || !s.sheets.length) return fill(el, isExpert() ? null : h("p", { class: "hint" }, t("ev.sheet.noneYet")));
  const members = s.seats.filter((x) => x.status === "seated").length;
  fill(el, h("p", { class: "hint", "data-testid": "sheet-progress" }, t("ev.sheet.progress", { count: s.sheets.length, expected: members * s.to_score.length })),
    h("div", { class: "table-wrap" }, h("table", { class: "grid" },
      h("thead", {}, h("tr", {}, h("th", {}, t("ev.col.expert")), h("th", {}, t("ev.col.bid")), s.items.map((i) => h("th", {}, i.id)), h("th", {}, t("ev.col.total")))),
      h("tbody", {}, s.sheets.map((x) => h("tr", {}, h("th", { scope: "row" }, ev.memberName(s, x.expert)), h("td", {}, bidText(x)),
        s.items.map((i) => h("td", {}, x.scores[i.id] ?? "—")), h("td", {}, x.total ?? "—")))))));
}

// the deviation check ------------------------------------------------------------------------------------

function flagText(f) {
  const s = page.state;
  const e = f.evidence || {};
  const scores = Object.entries(e.scores || {}).map(([x, v]) => `${ev.memberName(s, x)} ${v}`).join(t("ev.listSep"));
  return t(`ev.flag.${f.kind}`, {
    ...e, bid: bidText(f), item: f.item || "", expert: ev.memberName(s, f.expert), scores,
    ratio: e.ratio == null ? "—" : ev.percent(e.ratio), threshold: ev.percent(e.threshold),
  });
}

function renderFlags() {
  const s = page.state;
  const me = page.me?.subject;
  const flags = isExpert() ? ev.myFlags(s, me) : s.flags;
  const shown = role() !== "bidder" && Boolean(page.me) && (s.flags.length > 0 || s.phase === "deviations");
  if (!show("flags-panel", shown)) return;
  byId("flags-hint").textContent = !s.flags.length ? t("ev.flags.none")
    : isExpert() ? t(flags.length ? "ev.flags.mine" : "ev.flags.notMine", { open: s.open_flags.length })
      : t("ev.flags.all", { count: s.flags.length, open: s.open_flags.length });
  byId("flags-hint").dataset.open = String(s.open_flags.length);
  fill(byId("flags"), flags.map((f) => flagItem(f, me)));
}

function flagItem(f, me) {
  const s = page.state;
  const open = ev.flagOpen(s, f);
  const mine = isExpert() && (f.expert === me || f.expert == null);
  const entry = s.to_score.find((b) => (f.label ? b.label === f.label : b.bidder === f.bidder));
  const explained = s.explanations[f.key];
  return h("li", { class: `note flag-item ${open ? "open" : "closed"}`, "data-testid": `flag-${f.key}`, "data-kind": f.kind, "data-open": String(open) },
    h("div", { class: "note-head" }, h("strong", {}, t(`ev.flagKind.${f.kind}`)), " · ", bidText(f), f.item ? ` · ${f.item}` : "",
      !isExpert() && f.expert ? ` · ${ev.memberName(s, f.expert)}` : "", " · ", h("span", { class: open ? "warn" : "ok" }, t(open ? "ev.flags.open" : "ev.flags.resolved"))),
    h("p", { class: "note-text" }, flagText(f)),
    explained && h("p", { class: "note-text answer" }, t("ev.flags.explained", { reason: explained })),
    mine && open && s.phase === "deviations" && h("div", { class: "actions" },
      entry && can("evaluation.rescore") && h("button", { type: "button", class: "small primary", "data-testid": `rescore-${f.key}`, onclick: () => startRescore(entry) }, t("ev.flags.rescore")),
      ev.EXPLAINABLE.has(f.kind) && f.expert === me && can("evaluation.explain") && h("button", { type: "button", class: "small", "data-testid": `explain-${f.key}`, onclick: () => explainFlag(f) }, t("ev.flags.explain"))));
}

// the summary and the report ---------------------------------------------------------------------------------

function renderSummary() {
  const s = page.state;
  if (!show("summary-panel", role() !== "bidder" && Boolean(s.summary))) return;
  const rows = ev.summaryRows(s);
  byId("summary-hint").textContent = s.summary.reason ? t(`ev.summary.${s.summary.reason}`) : t("ev.summary.hint", { count: rows.filter((r) => r.recommended).length });
  fill(byId("summary-rows"), rows.map((r) => h("tr", { "data-testid": `rank-${r.bidder}`, "data-rank": String(r.rank), class: r.recommended ? "candidate" : "" },
    h("td", {}, String(r.rank), r.tied ? ` ${t("ev.summary.tied")}` : ""),
    h("th", { scope: "row" }, r.name),
    h("td", {}, r.price ? `¥${r.price}` : "—"),
    h("td", {}, r.price_score ?? "—"),
    h("td", {}, r.items ?? "—"),
    h("td", {}, h("strong", {}, r.total ?? r.evaluated ?? "—")),
    h("td", {}, r.recommended ? t("ev.summary.candidate", { n: r.recommended }) : r.undecided ? t("ev.summary.undecided") : ""))));
  fill(byId("dissents"), s.dissents.map((d) => h("li", { class: "note", "data-testid": `dissent-${d.expert}` },
    h("div", { class: "note-head muted" }, t("ev.dissent.by", { name: ev.memberName(s, d.expert) })), h("p", { class: "note-text" }, d.reason))));
  show("dissent-form", isExpert() && seated() && can("evaluation.dissent"));
}

function renderReport() {
  const s = page.state;
  const r = s.report;
  if (!show("report-panel", role() !== "bidder" && Boolean(page.me) && Boolean(r))) return;
  byId("report-facts").textContent = t("ev.report.facts", { pages: r.pages, digest: r.digest.slice(0, 16), issued: beijing(r.issued_at), until: beijing(r.sign_until) });
  const me = page.me.subject;
  const answered = me in r.signatures || me in r.refusals;
  const signing = isExpert() && seated() && s.phase === "signing" && !answered;
  show("sign-report", signing && canHttp("evaluation.sign_report"));
  byId("sign-report").disabled = page.busy.has("sign");
  byId("report-link").disabled = page.busy.has("report");
  byId("sign-progress").textContent = page.progress.sign;
  showError("sign-error", page.errors.sign);
  show("refuse-form", signing && can("evaluation.refuse_signing"));
  const rows = ev.signingRows(s);
  fill(byId("signature-rows"), rows.map((x) => h("tr", { "data-testid": `signature-${x.expert}`, "data-state": x.state },
    h("th", { scope: "row" }, x.name, x.expert === me ? t("participants.you") : ""),
    h("td", {}, t(`ev.report.state.${x.state}`)),
    h("td", { class: "note-text" }, x.reason))));
}

// the event log and the meeting -------------------------------------------------------------------------------

/** An event's data in a line: people by name, bidders by name, long digests cut short. */
function logSummary(data) {
  const s = page.state;
  const one = (v) => {
    const text = String(v);
    const person = s.seats.some((x) => x.expert === text || x.left.some((l) => l.expert === text)) ? ev.memberName(s, text) : null;
    const shown = person || ev.bidderName(s, text) || text;
    return shown.length > 40 ? `${shown.slice(0, 16)}…` : shown;
  };
  const text = (v) => (Array.isArray(v) ? (v.some((x) => x && typeof x === "object") ? `[${v.length}]` : v.map(one).join(t("ev.listSep")))
    : typeof v === "object" && v !== null ? `{${Object.keys(v).length}}` : one(v));
  return Object.entries(data).filter(([k]) => !HIDDEN_DATA.has(k)).map(([k, v]) => `${k}: ${text(v)}`).join(" · ");
}

function renderLog() {
  if (!show("log-panel", WATCHERS.has(role()))) return;
  const items = [...page.state.log].reverse().map((e) => h("li", { "data-testid": `log-${e.seq}`, "data-event": e.name },
    h("time", { datetime: e.at }, i18n.formatDateTime(e.at)), " ",
    h("span", { class: "log-actor" }, e.actor?.role === "system" || !e.actor ? t("role.system") : `${e.actor.name || e.actor.subject} (${t(`role.${e.actor.role}`)})`), " ",
    h("strong", {}, known(`ev.event.${e.name}`, e.name)), " ",
    h("span", { class: "muted" }, logSummary(e.data))));
  fill(byId("event-log"), items.length ? items : h("li", { class: "empty" }, t("ev.log.empty")));
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
      h("div", { class: "person-meta" }, h("span", { class: `role role-${p.role}` }, t(`role.${p.role}`)), p.venue && h("span", { class: "muted" }, p.venue))))) : h("li", { class: "empty" }, t("participants.empty")));
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
  // login.js continues to a same-site `next` page; the session it keeps is found by takeToken
  login.href = `/login.html?next=${encodeURIComponent(location.pathname + location.search)}`;
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
  page.built = {};
  for (const select of document.querySelectorAll("select[data-key]")) delete select.dataset.key;
  if (page.fatal) showFatal(page.fatal.kind, page.fatal.serverMessage);
  else render();
}

function renderLanguageButton() {
  const button = byId("lang");
  button.textContent = t("lang.switch");
  button.setAttribute("aria-label", t("lang.switch.label"));
}

boot();
