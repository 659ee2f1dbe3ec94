// The opening room's view state (开标室): a pure fold of its events, mirroring the apply() of
// bidroom/opening.py, plus the questions the page asks of it (what must I do now, how long is
// left, is K what the seed says).
//
// Rules of this file: no DOM, no socket; the clock is an argument. States are never mutated;
// every fold returns a new state. Unknown events leave the state as it was. A snapshot is the
// room as this participant may see it (a bidder sees only the count and their own bid before
// the sheet); events fold on top of it, so a reload or a late join shows the same room.

import { canonical, concat, fromHex, toHex, utf8 } from "./bytes.js";

export const PHASES = [
  "signing_in", "bids_fixed", "decrypting", "settling", "sheet", "record", "countersigned",
  "published", "terminated",
];
export const MIN_BIDS = 3;
/** Settled statuses of a bid (docs/opening.md): the sheet waits for all bids to be one. */
export const SETTLED = new Set(["decrypted", "quorum_opened", "revoked", "withdrawn"]);
/** Failure causes and how the bid is then treated (Art. 31). */
export const CAUSES = {
  bidder_key_lost: "revoked",
  bidder_absent: "revoked",
  bidder_cert_revoked: "revoked",
  bidder_entry_mismatch: "revoked", // only the custodians' open establishes it (opening.quorum_refused)
  platform_fault: "withdrawn",
  ca_fault: "withdrawn",
  network_fault: "withdrawn",
};
/** How many events the page keeps for the event log. */
export const LOG_LIMIT = 1000;

const TALK = ["decrypting", "settling", "sheet", "record"];
/** Room commands (WebSocket) by phase and role: docs/opening.md, used when no server list holds. */
export const RULES = {
  "opening.sign_in": [["bidder"], ["signing_in", "bids_fixed"]],
  "opening.decide": [["chair"], ["bids_fixed"]],
  "opening.start_window": [["chair"], ["bids_fixed"]],
  "opening.report_failure": [["bidder", "chair"], ["decrypting"]],
  "opening.close_window": [["chair"], ["decrypting"]],
  "opening.request_quorum": [["chair"], ["settling"]],
  "opening.cancel_quorum": [["chair"], ["settling"]],
  "opening.settle_failures": [["chair"], ["settling"]],
  "opening.commit_draw": [["chair"], ["bids_fixed"]],
  "opening.reveal_draw": [["chair"], ["sheet"]],
  "opening.reveal_contribution": [["bidder"], ["decrypting", "settling"]],
  "opening.object": [["bidder"], TALK],
  "opening.answer": [["chair"], TALK],
  "opening.generate_record": [["chair"], ["sheet"]],
};

/** The state before the snapshot (a newcomer always gets one). */
export function initial(config = {}) {
  return {
    lot: config.lot || "",
    title: config.title || "",
    tender: config.tender || "",
    startsAt: config.starts_at || null,
    remedy: config.remedy || null,
    sharesNeeded: null,
    sharesTotal: null,
    phase: "signing_in",
    count: null,
    decision: null,
    signedIn: [],
    bids: {}, // bidder -> {bidder, name, envelope, status, cause}
    windowEnds: null,
    quorum: null, // {bidders (every bid ever requested), reason, pending}
    shares: [], // the pending request's shares: [{index, custodian}]
    sheet: null, // {rows, ceiling_price, fields}
    draw: null, // {formula, range, commitment, seed, fixed: {at, digest}, contributions: [{bidder, commitment, value, revealed}], k}
    objections: [], // [{seq, bidder, text, at, answer}]
    record: null, // {document, digest, confirm_until}
    confirmations: {}, // bidder -> {opinion, text, at}
    deemed: null,
    countersigned: null,
    published: null,
    allowed: null, // the server's WebSocket commands for me, valid while allowedPhase holds
    actions: [], // the server's HTTP steps for me (decrypted, confirm_record, countersign, ...)
    allowedPhase: null,
    viewer: { subject: null, role: null }, // whose view this is: who sees which contribution to K
    log: [],
  };
}

// snapshot ------------------------------------------------------------------------------------

const list = (v) => (Array.isArray(v) ? v : []);

function bidsFrom(snap) {
  const bids = {};
  // the core may send bids as a list of rows or as {bidder: status}
  for (const b of list(snap.bids)) bids[b.bidder] = bid(b);
  for (const [bidder, status] of Object.entries(snap.statuses || {})) {
    const known = bids[bidder] || bid({ bidder });
    bids[bidder] = typeof status === "string" ? { ...known, status } : { ...known, ...bid({ bidder, ...status }) };
  }
  return bids;
}

function bid(b) {
  return {
    bidder: b.bidder,
    name: b.name || "",
    envelope: b.envelope || null,
    status: b.status || "sealed",
    cause: b.cause || null,
    reported_by: b.reported_by || null, // who said it failed: bidder, chair, clock, custodians
  };
}

function objectionsFrom(snap) {
  return list(snap.objections).map((o) => ({
    seq: o.seq,
    bidder: o.bidder,
    text: o.text,
    at: o.at || "",
    answer: o.answer == null ? null : typeof o.answer === "string" ? { text: o.answer, at: "" } : o.answer,
  }));
}

function drawFrom(d) {
  if (!d) return null;
  return {
    formula: d.formula || null,
    range: d.range || null,
    commitment: d.commitment || null,
    seed: d.seed || null,
    fixed: d.fixed || null,
    contributions: list(d.contributions).map(contributionFrom),
    k: d.k ?? null,
  };
}

function contributionFrom(c) {
  return { bidder: c.bidder, commitment: c.commitment || null, value: c.value ?? null, revealed: c.revealed ?? null };
}

/** The draw with `bidder`'s contribution changed (added if new). */
function withContribution(s, bidder, changes) {
  const draw = s.draw || drawFrom({});
  const known = draw.contributions.find((c) => c.bidder === bidder) || contributionFrom({ bidder });
  const others = draw.contributions.filter((c) => c.bidder !== bidder);
  const contributions = [...others, { ...known, ...changes }].sort((a, b) => (a.bidder < b.bidder ? -1 : a.bidder > b.bidder ? 1 : 0));
  return { ...s, draw: { ...draw, contributions } };
}

const WATCHING = new Set(["chair", "supervisor"]);
const AFTER_SHEET = new Set(["sheet", "record", "countersigned", "published"]);

/** Before the sheet a bidder sees only their own contribution's entry; watchers every one. */
function signedIn(s, d) {
  const next = { ...s, signedIn: s.signedIn.includes(d.bidder) ? s.signedIn : [...s.signedIn, d.bidder] };
  const own = d.bidder === s.viewer?.subject;
  if (!d.contribution || !(own || WATCHING.has(s.viewer?.role))) return next;
  return withContribution(next, d.bidder, { commitment: d.contribution, revealed: own ? false : null });
}

/** Only its bidder is sent a reveal before the sheet, and sees only that it went in. */
function contributionRevealed(s, d) {
  return withContribution(s, d.bidder, AFTER_SHEET.has(s.phase) ? { value: d.value, revealed: true } : { revealed: true });
}

/** K drawn: v2 names every contribution it counted, and those absent from it. */
function drawRevealed(s, d) {
  let next = { ...s, draw: { ...(s.draw || drawFrom({})), seed: d.seed, k: d.k, range: d.range, formula: d.formula || K_V1 } };
  if (d.fixed) next = { ...next, draw: { ...next.draw, fixed: d.fixed } };
  for (const [bidder, value] of Object.entries(d.contributions || {})) next = withContribution(next, bidder, { value, revealed: true });
  for (const bidder of list(d.absent)) next = withContribution(next, bidder, { value: null, revealed: false });
  return next;
}

function quorumFrom(q, bids) {
  const requested = list(q.requested);
  // the snapshot lists every bid ever requested; the open request is the ones still failed
  const current = q.pending ? requested.filter((b) => (bids[b]?.status ?? "failed") === "failed") : [];
  return { bidders: requested, current, reason: q.reason || "", pending: Boolean(q.pending) };
}

/**
 * A state from a snapshot frame's `state` (composite: {meeting, opening, allowed}), as
 * bidroom/opening.py snapshot() writes it. `me` (the subject) places "me_signed_in" for a bidder,
 * who is not shown the others' sign-ins.
 */
export function fromSnapshot(snap, me = null, role = null) {
  const o = snap.opening || snap;
  const base = initial(o);
  const q = o.quorum || null;
  const record = o.record || null;
  const signedIn = list(o.signed_in);
  if (o.me_signed_in && me && !signedIn.includes(me)) signedIn.push(me);
  return {
    ...base,
    remedy: o.remedy ?? null,
    sharesNeeded: q?.k ?? null,
    sharesTotal: q?.n ?? null,
    phase: o.phase || base.phase,
    count: o.count ?? null,
    decision: o.decision || null,
    signedIn,
    bids: bidsFrom(o),
    windowEnds: o.window_ends || null,
    quorum: q && q.requested?.length ? quorumFrom(q, bidsFrom(o)) : null,
    shares: q?.requested?.length ? list(q.submitted).map((index) => ({ index, custodian: null })) : [],
    sheet: o.sheet || null,
    draw: drawFrom(o.draw),
    objections: objectionsFrom(o),
    record: record && { document: record.document, digest: record.digest, confirm_until: record.confirm_until },
    confirmations: record?.confirmations || {},
    deemed: record?.deemed || null,
    countersigned: record?.countersigned || null,
    published: record?.published || null,
    allowed: list(o.allowed),
    actions: list(o.actions),
    allowedPhase: o.phase || base.phase,
    viewer: { subject: me, role },
  };
}

// events --------------------------------------------------------------------------------------

/** Fold one event frame ({seq, name, data, actor, at}). Meeting and presence events pass by. */
export function apply(state, event) {
  const folder = FOLDERS[event.name];
  if (!event.name?.startsWith("opening.")) return state;
  const logged = { ...state, log: [...state.log, entry(event)].slice(-LOG_LIMIT) };
  return folder ? folder(logged, event.data || {}, event) : logged;
}

export function fold(state, events) {
  return events.reduce(apply, state);
}

/** The log with earlier events (a watcher's history, GET /api/rooms/{room}/events) merged in. */
export function withHistory(state, events) {
  const bySeq = new Map(state.log.map((e) => [e.seq, e]));
  for (const event of events) {
    if (event.name?.startsWith("opening.") && !bySeq.has(event.seq)) bySeq.set(event.seq, entry(event));
  }
  const log = [...bySeq.values()].sort((a, b) => a.seq - b.seq).slice(-LOG_LIMIT);
  return { ...state, log };
}

function entry(event) {
  return { seq: event.seq, name: event.name, data: event.data || {}, actor: event.actor || null, at: event.at || "" };
}

function withBid(state, bidder, changes) {
  const known = state.bids[bidder] || bid({ bidder });
  return { ...state, bids: { ...state.bids, [bidder]: { ...known, ...changes } } };
}

function fixed(s, d) {
  const bids = {};
  for (const b of list(d.bids)) bids[b.bidder] = { ...bid(b), ...(s.bids[b.bidder] ? { status: s.bids[b.bidder].status } : {}) };
  // K counts the contributions of bidders with a bid
  const draw = s.draw && { ...s.draw, contributions: s.draw.contributions.filter((c) => c.bidder in bids) };
  return { ...s, phase: "bids_fixed", bids, count: list(d.bids).length, draw };
}

function windowClosed(s, d) {
  let next = { ...s, phase: "settling" };
  for (const bidder of list(d.failed)) next = withBid(next, bidder, { status: "failed", cause: "bidder_absent" });
  return next;
}

function settledFailures(s, d) {
  let next = s;
  for (const [bidder, status] of Object.entries(d.settled || {})) next = withBid(next, bidder, { status });
  return next;
}

function objection(s, d, e) {
  return { ...s, objections: [...s.objections, { seq: e.seq, bidder: d.bidder, text: d.text, at: e.at || "", answer: null }] };
}

function answer(s, d, e) {
  const objections = s.objections.map((o) =>
    o.seq === d.objection ? { ...o, answer: { text: d.text, at: e.at || "" } } : o);
  return { ...s, objections };
}

function confirmed(s, d, e) {
  const row = { opinion: d.opinion, text: d.text || "", at: e.at || "" };
  return { ...s, confirmations: { ...s.confirmations, [d.bidder]: row } };
}

/** A bid opened by the custodians; the request is over when none of its bids is left. */
function quorumOpened(s, d) {
  return quorumDone(s, d, { status: "quorum_opened" });
}

/** A bid the custodians' key could not open through its bidder's fault: revoked at once. */
function quorumRefused(s, d) {
  return quorumDone(s, d, { status: "revoked", cause: d.cause, reported_by: "custodians" });
}

function quorumDone(s, d, changes) {
  const next = withBid(s, d.bidder, changes);
  if (!next.quorum) return next;
  const waiting = next.quorum.current.filter((b) => b !== d.bidder && (next.bids[b]?.status ?? "failed") === "failed");
  return waiting.length ? next : { ...next, quorum: { ...next.quorum, pending: false }, shares: [] };
}

const FOLDERS = {
  "opening.signed_in": signedIn,
  "opening.bids_fixed": fixed,
  "opening.count_published": (s, d) => ({ ...s, phase: s.phase === "signing_in" ? "bids_fixed" : s.phase, count: d.count }),
  "opening.decided": (s, d) => ({
    ...s,
    decision: { decision: d.decision, reason: d.reason, count: d.count },
    phase: d.decision === "terminate" ? "terminated" : s.phase,
  }),
  "opening.window_started": (s, d) => {
    const next = { ...s, phase: "decrypting", windowEnds: d.ends };
    return d.draw_input ? { ...next, draw: { ...(s.draw || drawFrom({})), fixed: d.draw_input, formula: K_V2 } } : next;
  },
  // a bidder's own reveal (no one else is sent it before the sheet)
  "opening.contribution_revealed": contributionRevealed,
  "opening.bid_decrypted": (s, d) => withBid(s, d.bidder, { status: "decrypted", cause: null }),
  "opening.failure_reported": (s, d) => withBid(s, d.bidder, { status: "failed", cause: d.cause, reported_by: d.by ?? null }),
  // an earlier core's name for the same step, settled at once
  "opening.bid_failed": (s, d) => withBid(s, d.bidder, { status: d.treated_as || "failed", cause: d.cause }),
  "opening.window_closed": windowClosed,
  "opening.quorum_requested": (s, d) => ({
    ...s,
    quorum: {
      bidders: [...(s.quorum?.bidders || []), ...list(d.bidders)],
      current: list(d.bidders),
      reason: d.reason || "",
      pending: true,
    },
    shares: [],
  }),
  "opening.quorum_cancelled": (s) => ({ ...s, quorum: s.quorum && { ...s.quorum, pending: false }, shares: [] }),
  // a bidder sees shares come in but not the request (it names other bidders): not theirs to show
  "opening.share_submitted": (s, d) => (!s.quorum ? s : {
    ...s, shares: [...s.shares.filter((x) => x.index !== d.index), { index: d.index, custodian: d.custodian }],
  }),
  "opening.quorum_opened": quorumOpened,
  "opening.quorum_refused": quorumRefused,
  "opening.failures_settled": settledFailures,
  "opening.sheet_published": (s, d) => ({
    ...s,
    phase: "sheet",
    sheet: { rows: list(d.rows), ceiling_price: d.ceiling_price ?? null, fields: list(d.fields) },
    bids: sheetBids(s, list(d.rows)),
  }),
  "opening.draw_committed": (s, d) => ({ ...s, draw: { ...(s.draw || drawFrom({})), commitment: d.commitment } }),
  "opening.draw_revealed": drawRevealed,
  "opening.objection": objection,
  "opening.answer": answer,
  "opening.record_generated": (s, d) => ({
    ...s, phase: "record", record: { document: d.document, digest: d.digest, confirm_until: d.confirm_until },
  }),
  "opening.record_confirmed": confirmed,
  "opening.confirmations_closed": (s, d) => ({ ...s, deemed: d.deemed || {} }),
  "opening.countersigned": (s, d, e) => ({ ...s, phase: "countersigned", countersigned: { chair: d.chair, at: e.at || "" } }),
  "opening.record_published": (s, d) => ({
    ...s, phase: "published", published: { digest: d.digest, checkpoint: d.checkpoint, proofs: d.proofs },
  }),
};

/** From the sheet on everyone sees every bid: the rows name them all. */
function sheetBids(s, rows) {
  const bids = { ...s.bids };
  for (const r of rows) bids[r.bidder] = { ...(bids[r.bidder] || bid(r)), name: r.name || bids[r.bidder]?.name || "", status: r.status };
  return bids;
}

/**
 * A bidder is not shown the list of fixed bids (it names the others), only the count: their own
 * bid enters the state from the snapshot, or here, from their own bid list (bids/mine), once the
 * bids are fixed. Events about it (decrypted, failed) then fold as for anyone.
 */
export function withOwnBid(state, subject, envelope) {
  if (!subject || state.bids[subject] || !state.count || ["signing_in", "terminated"].includes(state.phase)) return state;
  return withBid(state, subject, { envelope, status: "sealed" });
}

// questions the page asks ---------------------------------------------------------------------

/** The bids this participant sees, sorted by name. */
export function bidList(state) {
  return Object.values(state.bids).sort((a, b) =>
    (a.name || a.bidder).localeCompare(b.name || b.bidder, "zh-CN"));
}

/** Decrypted, or failed on the bidder's own word: nothing left for them in the window (the
 *  core's Bid.settled_by_bidder). */
export function settledByBidder(b) {
  return !["sealed", "failed"].includes(b.status) || b.reported_by === "bidder";
}

export function isSettled(b) {
  return SETTLED.has(b.status);
}

/** {total, decrypted, failed, settled, sealed} over the bids this participant sees. */
export function tally(state) {
  const bids = Object.values(state.bids);
  const count = (test) => bids.filter(test).length;
  return {
    total: state.count ?? bids.length,
    sealed: count((b) => b.status === "sealed"),
    decrypted: count((b) => b.status === "decrypted" || b.status === "quorum_opened"),
    failed: count((b) => b.status === "failed"),
    settled: count(isSettled),
  };
}

/** Unanswered objections, oldest first. */
export function openObjections(state) {
  return state.objections.filter((o) => !o.answer);
}

/** Bids that failed and wait for the custodians (an open request, not yet opened). */
export function quorumPending(state) {
  if (!state.quorum?.pending) return [];
  // a custodian may not have seen a bid fail (before the window closed): asked = failed then
  return state.quorum.bidders.filter((b) => (state.bids[b]?.status ?? "failed") === "failed");
}

/** Whether `me` ({subject, shareIndex}) has a share in the open request. */
export function submittedShare(state, me) {
  return state.shares.some((x) => x.custodian === me.subject || (me.shareIndex && x.index === me.shareIndex));
}

/** Failed bids the custodians were never asked to open. */
export function unasked(state) {
  const asked = new Set(state.quorum?.bidders || []);
  return Object.values(state.bids).filter((b) => b.status === "failed" && !asked.has(b.bidder)).map((b) => b.bidder);
}

/** The opening commands `role` may send now: the server's list while its phase holds, else RULES. */
export function allowedFor(state, role) {
  if (state.allowed && state.allowedPhase === state.phase) {
    return state.allowed.filter((name) => name.startsWith("opening."));
  }
  return Object.keys(RULES).filter((name) => RULES[name][0].includes(role) && RULES[name][1].includes(state.phase));
}

/** What the clock in the header counts down to: {kind: "start"|"window"|"confirm", ms} or null. */
export function timeLeft(state, now) {
  const at = (iso) => new Date(iso).getTime() - now;
  if (state.phase === "signing_in" && state.startsAt) return { kind: "start", ms: at(state.startsAt) };
  if (state.phase === "decrypting" && state.windowEnds) return { kind: "window", ms: at(state.windowEnds) };
  if (state.phase === "record" && state.record?.confirm_until && !state.deemed) {
    return { kind: "confirm", ms: at(state.record.confirm_until) };
  }
  return null;
}

/**
 * What `me` ({subject, role}) must do now, most urgent first: keys of the page's tasks
 * ("sign_in", "decrypt", "confirm", "decide", "start_window", ...). Empty: nothing to do.
 */
export function tasks(state, me, now) {
  const fn = TASKS[me?.role];
  return fn ? fn(state, me, now) : [];
}

const TASKS = {
  bidder: (s, me) => {
    const mine = s.bids[me.subject];
    const out = [];
    if (["signing_in", "bids_fixed"].includes(s.phase) && !s.signedIn.includes(me.subject)) out.push("sign_in");
    if (s.phase === "decrypting" && mine?.status === "sealed") out.push("decrypt");
    if (s.phase === "record" && mine && !s.confirmations[me.subject] && !s.deemed) out.push("confirm");
    return out;
  },
  chair: (s, me, now) => {
    const t = tally(s);
    const out = [];
    if (s.phase === "bids_fixed" && (s.count ?? 0) < MIN_BIDS && !s.decision) out.push("decide");
    else if (s.phase === "bids_fixed" && !(s.draw?.range && !s.draw.commitment)) out.push("start_window");
    if (s.phase === "decrypting") {
      const over = s.windowEnds && new Date(s.windowEnds).getTime() <= now;
      // early only once every bid is settled by its own bidder (a failure the chair reported
      // leaves the bid to its bidder until the end): the core refuses it otherwise
      if (over || Object.values(s.bids).every(settledByBidder)) out.push("close_window");
    }
    if (s.phase === "settling") {
      const failed = Object.values(s.bids).filter((b) => b.status === "failed");
      const pending = quorumPending(s);
      if (unasked(s).length && s.remedy !== "none" && !pending.length) out.push("request_quorum");
      if (failed.length && !pending.length) out.push("settle_failures");
      if (!failed.length && t.settled === Object.keys(s.bids).length) out.push("publish_sheet");
    }
    if (s.draw?.range && !s.draw.commitment && s.phase === "bids_fixed") out.push("commit_draw");
    if (s.phase === "sheet" && s.draw?.commitment && s.draw.k == null) out.push("reveal_draw");
    if (openObjections(s).length) out.push("answer");
    if (s.phase === "sheet" && !openObjections(s).length && (!s.draw?.range || s.draw.k != null)) out.push("generate_record");
    if (s.phase === "record" && s.deemed && !openObjections(s).length) out.push("countersign");
    if (s.phase === "countersigned") out.push("publish");
    return out;
  },
  custodian: (s, me) => (s.phase === "settling" && quorumPending(s).length && !submittedShare(s, me) ? ["submit_share"] : []),
  supervisor: () => [],
};

// the coefficient K ---------------------------------------------------------------------------

/** A decimal string as {units: BigInt, scale}: "0.005" -> {5n, 3}. */
function decimal(text) {
  const [whole, frac = ""] = String(text).trim().split(".");
  const negative = whole.startsWith("-");
  const units = BigInt((negative ? whole.slice(1) : whole) + frac) * (negative ? -1n : 1n);
  return { units, scale: frac.length };
}

function rescale({ units, scale }, to) {
  return units * 10n ** BigInt(to - scale);
}

function formatDecimal(units, scale) {
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString().padStart(scale + 1, "0");
  const text = scale ? `${digits.slice(0, -scale)}.${digits.slice(-scale)}` : digits;
  return negative ? `-${text}` : text;
}

/**
 * K from the revealed seed (bytes), as bidroom.opening.draw_k computes it:
 * n = SHA-256("bidroom K v1\n" || lot || "\n" || seed) big-endian; steps = (high - low) / step + 1;
 * K = low + (n mod steps) * step, written with the scale Python's Decimal gives it.
 */
export async function drawK(seed, lot, range) {
  return kOf(await sha256(concat(utf8(`${K_V1}\n`), utf8(lot), utf8("\n"), seed)), range);
}

/** Hex SHA-256 of the seed: the commitment published before the sheet. */
export async function commitmentOf(seed) {
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", seed)));
}

export const K_V1 = "bidroom K v1";
export const K_V2 = "bidroom K v2";

/** K from its digest: low + (n mod steps) * step, with the scale Python's Decimal gives it. */
function kOf(digest, [low, high, step]) {
  const [lo, hi, st] = [decimal(low), decimal(high), decimal(step)];
  const scale = Math.max(lo.scale, hi.scale, st.scale);
  const steps = (rescale(hi, scale) - rescale(lo, scale)) / rescale(st, scale) + 1n;
  const n = BigInt(`0x${toHex(digest)}`) % steps;
  const out = Math.max(lo.scale, st.scale);
  return formatDecimal(rescale(lo, out) + n * rescale(st, out), out);
}

const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));

/**
 * K v2, as bidroom.opening.draw_k_v2 computes it (docs/opening.md, "The draw of K"):
 * n = SHA-256("bidroom K v2\n" || canonical {lot, range, seed, fixed, contributions}).
 */
export async function drawKv2({ lot, range, seed, fixed, contributions }) {
  const body = { lot, range, seed, fixed, contributions };
  return kOf(await sha256(concat(utf8(`${K_V2}\n`), canonical(body))), range);
}

/** K's input fixed at the window's start: hex SHA-256("bidroom K input v2\n" || canonical {...}). */
export async function fixedInput({ lot, commitment, contributions, at }) {
  return toHex(await sha256(concat(utf8("bidroom K input v2\n"), canonical({ lot, commitment, contributions, at }))));
}

/**
 * Check the drawn K from what the room published ({ok, k, commitment}): every value against its
 * commitment, the fixed input against its parts (v2), and K recomputed from them all.
 */
export async function verifyDraw(draw, lot) {
  const seed = fromHex(draw.seed);
  const commitment = await commitmentOf(seed);
  let k;
  let ok = !draw.commitment || commitment === draw.commitment;
  if (draw.formula === K_V2) {
    const counted = Object.fromEntries(draw.contributions.map((c) => [c.bidder, c.commitment]));
    const revealed = {};
    for (const c of draw.contributions) {
      if (c.value == null) continue;
      revealed[c.bidder] = c.value;
      ok = ok && (await commitmentOf(fromHex(c.value))) === c.commitment;
    }
    const fixed = await fixedInput({ lot, commitment: draw.commitment, contributions: counted, at: draw.fixed?.at });
    ok = ok && fixed === draw.fixed?.digest;
    k = await drawKv2({ lot, range: draw.range, seed: draw.seed, fixed: draw.fixed?.digest, contributions: revealed });
  } else {
    k = await drawK(seed, lot, draw.range);
  }
  return { k, ok: ok && k === String(draw.k), commitment };
}
