// The evaluation room's view state (评标室): the snapshot bidroom/evaluation.py snapshot() writes,
// kept in its own (snake_case) shape, with the room's events folded on top of it, plus the
// questions the page asks of it (what must I do now, which flags are mine, what do my scores
// add up to) and the forms' state (the preliminary review, the score sheets) with the keys under
// which they are saved as the expert types.
//
// Rules of this file: no DOM, no socket; the clock is an argument. States are never mutated;
// every fold returns a new state. Unknown events leave the state as it was. Where what a person
// may see widens (a review or a sheet handed in, the labels revealed, an answer) the server
// follows the event with a fresh snapshot, so those folds only need to be right, not complete.

export const PHASES = [
  "forming", "signing_in", "declaring", "electing", "prechecked", "preliminary", "clarifying",
  "scoring", "deviations", "summary", "signing", "signed", "suspended", "sealed",
];
/** How many events the page keeps for the event log. */
export const LOG_LIMIT = 1000;
/** The fault limits (committee.py BEFORE_START, DURING), in ms. */
export const BEFORE_START_MS = 2 * 3600 * 1000;
export const DURING_MS = 4 * 3600 * 1000;
/** Flags an expert may answer in writing instead of re-scoring (evaluation.EXPLAINABLE). */
export const EXPLAINABLE = new Set(["abnormal"]);

const EXPERT = ["expert"];
const CHAIR = ["chair"];
const LEADER = ["expert", "chair"]; // the chair, or the expert elected leader
const SUSPEND = { "evaluation.suspend": CHAIR };

/** WebSocket commands by phase and role (evaluation.RULES ∩ ARGUMENTS): used when the server's
 *  list is for another phase than the one the events have since moved to. */
export const RULES = {
  forming: { ...SUSPEND },
  signing_in: { "evaluation.open_declarations": CHAIR, ...SUSPEND },
  declaring: { "evaluation.declare": EXPERT, ...SUSPEND },
  electing: {
    "evaluation.vote": EXPERT,
    "evaluation.close_round": CHAIR,
    "evaluation.revote": CHAIR,
    "evaluation.appoint": CHAIR,
    ...SUSPEND,
  },
  prechecked: { "evaluation.start_preliminary": LEADER, ...SUSPEND },
  preliminary: { "evaluation.submit_review": EXPERT, "evaluation.draft_question": LEADER, ...SUSPEND },
  clarifying: {
    "evaluation.draft_question": LEADER,
    "evaluation.approve_question": ["supervisor"],
    "evaluation.reject_question": ["supervisor"],
    "evaluation.close_clarification": LEADER,
    ...SUSPEND,
  },
  scoring: { "evaluation.submit_sheet": EXPERT, "evaluation.draft_question": LEADER, ...SUSPEND },
  deviations: {
    "evaluation.rescore": EXPERT,
    "evaluation.explain": EXPERT,
    "evaluation.summarise": LEADER,
    ...SUSPEND,
  },
  summary: { "evaluation.dissent": EXPERT, ...SUSPEND },
  signing: { "evaluation.refuse_signing": EXPERT },
  signed: {},
  suspended: { "evaluation.resume": CHAIR, "evaluation.seal": CHAIR },
  sealed: {},
};

/** The steps that go through the HTTP shell (SHELL_ARGUMENTS), by phase and role. */
export const SHELL = {
  forming: { "evaluation.record_draw": CHAIR },
  signing_in: { "evaluation.sign_in": EXPERT },
  declaring: { "evaluation.record_replacement": CHAIR, "evaluation.sign_in": EXPERT },
  electing: { "evaluation.precheck": CHAIR },
  clarifying: { "evaluation.answer_question": ["bidder"] },
  summary: { "evaluation.issue_report": LEADER },
  signing: { "evaluation.sign_report": EXPERT },
};

const list = (v) => (Array.isArray(v) ? v : []);
const obj = (v) => (v && typeof v === "object" && !Array.isArray(v) ? v : {});

// snapshot ------------------------------------------------------------------------------------

/** The state before the snapshot (a newcomer always gets one). */
export function initial() {
  return fromSnapshot({});
}

/**
 * A state from a snapshot frame's `state` (composite: {meeting, evaluation, allowed}) or from the
 * evaluation part itself. A bidder's snapshot holds only lot, phase and their clarification.
 */
export function fromSnapshot(snap) {
  const o = snap.evaluation || snap;
  const phase = o.phase || "forming";
  return {
    lot: o.lot || "",
    tender: o.tender || "",
    title: o.title || "",
    phase,
    resume_to: o.resume_to ?? null,
    starts_at: o.starts_at ?? null,
    venues: list(o.venues),
    draw: o.draw ?? null,
    seats: list(o.seats).map(seat),
    me_seated: Boolean(o.me_seated),
    bidders: list(o.bidders),
    election: electionFrom(o.election),
    leader: o.leader ?? null,
    appointed: Boolean(o.appointed),
    precheck: o.precheck ?? null,
    criteria: list(o.criteria),
    review_rule: o.review_rule || "majority",
    reviews: { submitted: list(o.reviews?.submitted), verdicts: obj(o.reviews?.verdicts) },
    preliminary: o.preliminary ?? null,
    items: list(o.items),
    anonymous: Boolean(o.anonymous),
    revealed: Boolean(o.revealed),
    to_score: list(o.to_score),
    sheets: list(o.sheets),
    flags: list(o.flags),
    open_flags: list(o.open_flags),
    explanations: obj(o.explanations),
    summary: o.summary ?? null,
    clarifying_from: o.clarifying_from ?? null,
    clarifications: list(o.clarifications),
    report: o.report ? reportFrom(o.report) : null,
    dissents: dissentsFrom(o.dissents ?? o.dissent),
    suspensions: list(o.suspensions),
    sealed: o.sealed ?? null,
    allowed: Array.isArray(o.allowed) ? o.allowed : null,
    actions: list(o.actions),
    allowed_phase: phase,
    log: [],
  };
}

function seat(s) {
  return {
    seat: s.seat,
    venue: s.venue || "",
    commitment: s.commitment || "",
    status: s.status || "sealed",
    expert: s.expert ?? null,
    name: s.name || "",
    declaration: s.declaration ?? null,
    left: list(s.left),
  };
}

/** The election as the snapshot gives it, with the round now open (the snapshot lists only the
 *  closed ones): its number and candidates follow from them; its votes come from the events. */
function electionFrom(e) {
  if (!e) return null;
  const rounds = list(e.rounds);
  const voting = e.phase === "voting";
  const last = rounds[rounds.length - 1];
  const candidates = !rounds.length ? list(e.members) : topOf(last);
  return {
    members: list(e.members),
    self_vote: e.self_vote !== false,
    phase: e.phase || "voting",
    rounds,
    tied: list(e.tied),
    leader: e.leader ?? null,
    appointed: Boolean(e.appointed),
    current: voting ? { round: rounds.length + 1, candidates, votes: obj(e.current?.votes) } : null,
  };
}

function topOf(round) {
  const tally = obj(round?.tally);
  const best = Math.max(...Object.values(tally), 0);
  return Object.keys(tally).filter((c) => tally[c] === best);
}

function reportFrom(r) {
  return {
    digest: r.digest || "",
    pages: r.pages || 0,
    issued_at: r.issued_at || "",
    sign_until: r.sign_until || "",
    signatures: obj(r.signatures),
    refusals: obj(r.refusals),
    closed: r.closed ?? null,
  };
}

/** Dissent written before the report, as [{expert, reason}] (a list or a mapping). */
function dissentsFrom(d) {
  if (Array.isArray(d)) return d.map((x) => ({ expert: x.expert, reason: x.reason || "" }));
  return Object.entries(obj(d)).map(([expert, reason]) => ({ expert, reason: String(reason) }));
}

// events --------------------------------------------------------------------------------------

/** Fold one event frame ({seq, name, data, actor, at}); `me` is the viewer's subject. Meeting
 *  and presence events pass by (meeting.js folds them). */
export function apply(state, event, me = null) {
  if (!event.name?.startsWith("evaluation.")) return state;
  const logged = { ...state, log: [...state.log, entry(event)].slice(-LOG_LIMIT) };
  const folder = FOLDERS[event.name] || (event.name.startsWith("evaluation.dissent") ? dissented : null);
  return folder ? folder(logged, event.data || {}, event, me) : logged;
}

export function fold(state, events, me = null) {
  return events.reduce((s, e) => apply(s, e, me), state);
}

/** The log with earlier events (a watcher's history, GET /api/rooms/{room}/events) merged in. */
export function withHistory(state, events) {
  const bySeq = new Map(state.log.map((e) => [e.seq, e]));
  for (const event of events) {
    if (event.name?.startsWith("evaluation.") && !bySeq.has(event.seq)) bySeq.set(event.seq, entry(event));
  }
  return { ...state, log: [...bySeq.values()].sort((a, b) => a.seq - b.seq).slice(-LOG_LIMIT) };
}

function entry(event) {
  return { seq: event.seq, name: event.name, data: event.data || {}, actor: event.actor || null, at: event.at || "" };
}

function withSeat(s, number, changes) {
  return { ...s, seats: s.seats.map((x) => (x.seat === number ? { ...x, ...changes } : x)) };
}

function withQuestion(s, id, changes) {
  return { ...s, clarifications: s.clarifications.map((q) => (q.question === id ? { ...q, ...changes } : q)) };
}

function withElection(s, changes) {
  return s.election ? { ...s, election: { ...s.election, ...changes } } : s;
}

function withReport(s, changes) {
  return s.report ? { ...s, report: { ...s.report, ...changes } } : s;
}

function drawRecorded(s, d) {
  const draw = { pool_digest: d.pool_digest, seed_digest: d.seed_digest, replacements: 0 };
  return { ...s, phase: "signing_in", draw, seats: list(d.seats).map(seat) };
}

function declared(s, d, e, me) {
  if (d.declaration === "none") return withSeat(s, d.seat, { declaration: "none" });
  const known = s.seats.find((x) => x.seat === d.seat);
  const left = [...(known?.left || []), { expert: d.expert, bidders: list(d.bidders), reason: d.reason || "" }];
  const next = withSeat(s, d.seat, { status: "vacated", expert: null, name: "", declaration: null, left });
  return d.expert === me ? { ...next, me_seated: false } : next;
}

function replaced(s, d) {
  const draw = s.draw ? { ...s.draw, replacements: (s.draw.replacements || 0) + 1 } : s.draw;
  return { ...withSeat(s, d.seat, { status: "sealed", commitment: d.commitment }), draw };
}

function electionOpened(s, d) {
  const members = list(d.members);
  const election = {
    members, self_vote: s.election?.self_vote ?? true, phase: "voting", rounds: [], tied: [],
    leader: null, appointed: false, current: { round: 1, candidates: members, votes: {} },
  };
  return { ...s, phase: "electing", election };
}

function voted(s, d) {
  const current = s.election?.current;
  if (!current || current.round !== d.round) return s;
  return withElection(s, { current: { ...current, votes: { ...current.votes, [d.voter]: d.candidate } } });
}

function roundClosed(s, d) {
  const e = s.election;
  if (!e) return s;
  const done = { round: d.round, candidates: e.current?.candidates || [], votes: e.current?.votes || {}, tally: obj(d.tally) };
  const rounds = [...e.rounds, done];
  const tied = list(d.tied);
  const phase = !tied.length ? e.phase : rounds.length <= 1 ? "tied" : "appointing";
  return withElection(s, { rounds, tied, phase, current: null });
}

function leaderElected(s, d) {
  const next = withElection(s, { phase: "elected", leader: d.leader, appointed: Boolean(d.appointed), current: null });
  return { ...next, leader: d.leader, appointed: Boolean(d.appointed) };
}

function reviewSubmitted(s, d) {
  const submitted = s.reviews.submitted.includes(d.expert) ? s.reviews.submitted : [...s.reviews.submitted, d.expert].sort();
  return { ...s, reviews: { submitted, verdicts: { ...s.reviews.verdicts, [d.expert]: list(d.verdicts) } } };
}

function preliminaryDecided(s, d) {
  const passed = list(d.passed);
  if (!passed.length) return { ...s, preliminary: d, phase: "summary", summary: { passed: [], reason: "no_bid_passed" } };
  const toScore = s.to_score.length || s.anonymous
    ? s.to_score
    : passed.map((b) => ({ bidder: b, name: bidderName(s, b), label: null, scored: false }));
  return { ...s, preliminary: d, phase: s.items.length ? "scoring" : "deviations", to_score: toScore };
}

/** A sheet handed in or re-scored: the sheet list, and "scored" on my own bid. */
function sheetIn(s, d, e, me) {
  const same = (x) => x.expert === d.expert && (d.label ? x.label === d.label : x.bidder === d.bidder);
  const row = { expert: d.expert, ...(d.label ? { label: d.label } : { bidder: d.bidder, name: bidderName(s, d.bidder) }), scores: obj(d.scores), total: d.total ?? null };
  const sheets = s.sheets.some(same) ? s.sheets.map((x) => (same(x) ? { ...x, ...row } : x)) : [...s.sheets, row];
  const mine = d.expert === me;
  const toScore = s.to_score.map((b) => (mine && sameBid(b, d) ? { ...b, scored: true } : b));
  return { ...s, sheets, to_score: toScore };
}

function sameBid(a, b) {
  return (a.label && b.label) ? a.label === b.label : a.bidder === b.bidder;
}

function deviationsChecked(s, d) {
  const flags = list(d.flags);
  const keys = new Set(flags.map((f) => f.key));
  const explanations = Object.fromEntries(Object.entries(s.explanations).filter(([k]) => keys.has(k)));
  const open = flags.filter((f) => !EXPLAINABLE.has(f.kind) || !(f.key in explanations)).map((f) => f.key);
  return { ...s, phase: "deviations", flags, explanations, open_flags: open };
}

function flagExplained(s, d) {
  return { ...s, explanations: { ...s.explanations, [d.flag]: d.reason }, open_flags: s.open_flags.filter((k) => k !== d.flag) };
}

function questionDrafted(s, d) {
  const named = d.label ? { label: d.label } : { bidder: d.bidder, name: bidderName(s, d.bidder) };
  const q = { ...named, question: d.question, text: d.text, deadline: d.deadline, drafted_by: d.drafted_by, status: "draft", rejection: "", answer: null };
  return { ...s, clarifications: [...s.clarifications, q] };
}

/** Approved: a bidder meets the question here for the first time (the event is self-contained). */
function questionApproved(s, d) {
  if (s.clarifications.some((q) => q.question === d.question)) return withQuestion(s, d.question, { status: "approved" });
  const q = { question: d.question, text: d.text, deadline: d.deadline, status: "approved", answer: null };
  return { ...s, clarifications: [...s.clarifications, q] };
}

function clarificationClosed(s, d) {
  const ended = Object.fromEntries(list(d.closed).map((c) => [c.question, c.status]));
  const clarifications = s.clarifications.map((q) => (q.question in ended ? { ...q, status: ended[q.question] } : q));
  return { ...s, phase: d.to || "preliminary", clarifying_from: null, clarifications };
}

function reportIssued(s, d) {
  const report = { digest: d.digest, pages: d.pages, issued_at: d.at, sign_until: d.sign_until, signatures: {}, refusals: {}, closed: null };
  return { ...s, phase: "signing", report };
}

function suspended(s, d, e) {
  const stop = { start: d.at || e.at, end: null, reason: d.reason, phase: d.phase || s.phase };
  return { ...s, phase: "suspended", resume_to: s.phase, suspensions: [...s.suspensions, stop] };
}

function endSuspension(s, d, e) {
  if (!s.suspensions.length) return s;
  const last = { ...s.suspensions[s.suspensions.length - 1], end: d.at || e.at, clocks: d.clocks ?? null };
  return { ...s, suspensions: [...s.suspensions.slice(0, -1), last] };
}

function dissented(s, d, e) {
  const expert = d.expert || e.actor?.subject;
  return { ...s, dissents: [...s.dissents.filter((x) => x.expert !== expert), { expert, reason: d.reason || "" }] };
}

const FOLDERS = {
  "evaluation.draw_recorded": drawRecorded,
  "evaluation.expert_seated": (s, d, e, me) => ({
    ...withSeat(s, d.seat, { status: "seated", expert: d.expert, name: d.name || "" }),
    me_seated: s.me_seated || d.expert === me,
  }),
  "evaluation.declarations_opened": (s, d) => ({ ...s, phase: "declaring", bidders: list(d.bidders).length ? list(d.bidders) : s.bidders }),
  "evaluation.declared": declared,
  "evaluation.seat_replaced": replaced,
  "evaluation.election_opened": electionOpened,
  "evaluation.voted": voted,
  "evaluation.round_closed": roundClosed,
  "evaluation.revote_opened": (s, d) => withElection(s, { phase: "voting", current: { round: d.round, candidates: list(d.candidates), votes: {} } }),
  "evaluation.leader_elected": leaderElected,
  "evaluation.prechecked": (s, d) => ({ ...s, phase: "prechecked", precheck: d.result ?? null }),
  "evaluation.preliminary_started": (s, d) => ({ ...s, phase: "preliminary", criteria: list(d.criteria).length ? list(d.criteria) : s.criteria }),
  "evaluation.review_submitted": reviewSubmitted,
  "evaluation.preliminary_decided": preliminaryDecided,
  "evaluation.sheet_submitted": sheetIn,
  "evaluation.sheet_rescored": sheetIn,
  "evaluation.deviations_checked": deviationsChecked,
  "evaluation.flag_explained": flagExplained,
  "evaluation.labels_revealed": (s) => ({ ...s, revealed: true }),
  "evaluation.summarised": (s, d) => ({ ...s, phase: "summary", summary: d }),
  "evaluation.clarification_opened": (s, d) => ({ ...s, phase: "clarifying", clarifying_from: d.from }),
  "evaluation.question_drafted": questionDrafted,
  "evaluation.question_approved": questionApproved,
  "evaluation.question_rejected": (s, d) => withQuestion(s, d.question, { status: "rejected", rejection: d.reason || "" }),
  "evaluation.question_answered": (s, d) => withQuestion(s, d.question, { status: "answered", answer: { text: d.text, at: d.at } }),
  "evaluation.clarification_closed": clarificationClosed,
  "evaluation.report_issued": reportIssued,
  "evaluation.report_signed": (s, d, e) => withReport(s, { signatures: { ...s.report?.signatures, [d.expert]: { at: d.at || e.at } } }),
  "evaluation.signing_refused": (s, d) => withReport(s, { refusals: { ...s.report?.refusals, [d.expert]: d.reason } }),
  "evaluation.signing_closed": (s, d) => ({ ...withReport(s, { closed: d }), phase: "signed" }),
  "evaluation.suspended": suspended,
  "evaluation.resumed": (s, d, e) => ({ ...endSuspension(s, d, e), phase: s.resume_to || "forming", resume_to: null }),
  "evaluation.sealed": (s, d, e) => ({ ...endSuspension(s, d, e), phase: "sealed", sealed: { at: d.at || e.at, reason: d.reason } }),
};

// who may do what now ---------------------------------------------------------------------------

/** The WebSocket commands `role` may send now: the server's list while its phase holds. */
export function allowedFor(state, role) {
  if (state.allowed && state.allowed_phase === state.phase) {
    return state.allowed.filter((name) => name.startsWith("evaluation."));
  }
  return fromTable(RULES, state.phase, role);
}

/** The HTTP steps `role` may take now (sign in, draw, answer, sign the report, ...). */
export function actionsFor(state, role) {
  if (state.allowed_phase === state.phase && state.allowed) return state.actions;
  return fromTable(SHELL, state.phase, role);
}

function fromTable(table, phase, role) {
  const commands = table[phase] || {};
  return Object.keys(commands).filter((name) => commands[name].includes(role));
}

export function isLeader(state, subject) {
  return Boolean(subject) && state.leader === subject;
}

/** Whether `me` ({subject, role}) may act as the leader (组长): the chair, or the leader. */
export function leads(state, me) {
  return me?.role === "chair" || (me?.role === "expert" && isLeader(state, me.subject));
}

// names ------------------------------------------------------------------------------------------

export function bidderName(state, bidder) {
  return state.bidders.find((b) => b.bidder === bidder)?.name || "";
}

/** An expert's name from the seats (a seated expert), else their subject. */
export function memberName(state, subject) {
  if (!subject) return "";
  const seated = state.seats.find((x) => x.expert === subject);
  return seated?.name || subject;
}

/** Whether bids are still named by their labels ("Bid A") for the experts. */
export function labelled(state) {
  return state.anonymous && !state.revealed;
}

/**
 * How a bid entry ({bidder?, name?, label?}) is named on screen: {label} while it is known by
 * its label only, else {name}. Watchers also see the label beside the name.
 */
export function bidShown(state, b) {
  if (!b.bidder) {
    const owner = labelOwner(state, b.label);
    return owner ? bidShown(state, { ...b, bidder: owner }) : { label: b.label || "?", name: null };
  }
  const name = b.name || bidderName(state, b.bidder) || b.bidder;
  return { label: labelled(state) ? b.label || null : null, name };
}

/** The bidder behind a label, where this viewer may know it (a watcher; anyone after the reveal):
 *  from the bids to score, which name both then. */
export function labelOwner(state, label) {
  if (!label) return null;
  return state.to_score.find((b) => b.label === label && b.bidder)?.bidder || null;
}

/** The name a command gives a bid: its label while anonymous, else its bidder (the core's rule). */
export function bidKey(state, b) {
  return labelled(state) ? b.label || b.bidder : b.bidder || b.label;
}

// the committee ----------------------------------------------------------------------------------

export function mySeat(state, subject) {
  return state.seats.find((x) => x.status === "seated" && x.expert === subject) || null;
}

export function vacatedSeats(state) {
  return state.seats.filter((x) => x.status === "vacated");
}

export function allSeated(state) {
  return state.seats.length > 0 && state.seats.every((x) => x.status === "seated");
}

/**
 * My vote, {round, candidate}: in the open round (from its events, or from this browser's memory
 * of my own vote: the snapshot lists no open round's votes), else in the last closed round.
 */
export function myVote(state, subject, remembered = null) {
  const e = state.election;
  if (!e) return null;
  const current = e.current;
  if (current) {
    const candidate = current.votes[subject] || (remembered?.round === current.round ? remembered.candidate : null);
    return candidate ? { round: current.round, candidate } : null;
  }
  const last = e.rounds[e.rounds.length - 1];
  return last?.votes?.[subject] ? { round: last.round, candidate: last.votes[subject] } : null;
}

// the preliminary review --------------------------------------------------------------------------

/** An empty review form: bidder -> criterion -> {passed: null|true|false, reason}. */
export function emptyReview(state) {
  const form = {};
  for (const b of state.bidders) {
    form[b.bidder] = {};
    for (const c of state.criteria) form[b.bidder][c.id] = { passed: null, reason: "" };
  }
  return form;
}

/** A saved form over an empty one: only cells of this session's bids and criteria are kept. */
export function restoreReview(state, saved) {
  const form = emptyReview(state);
  for (const [bidder, row] of Object.entries(obj(saved))) {
    for (const [criterion, cell] of Object.entries(obj(row))) {
      if (form[bidder]?.[criterion]) form[bidder][criterion] = { passed: typeof cell.passed === "boolean" ? cell.passed : null, reason: String(cell.reason || "") };
    }
  }
  return form;
}

/** What stops the review from going: [{bidder, criterion, problem: "unset" | "reason"}]. */
export function reviewProblems(state, form) {
  const problems = [];
  for (const b of state.bidders) {
    for (const c of state.criteria) {
      const cell = form[b.bidder]?.[c.id];
      if (!cell || cell.passed === null) problems.push({ bidder: b.bidder, criterion: c.id, problem: "unset" });
      else if (!cell.passed && !cell.reason.trim()) problems.push({ bidder: b.bidder, criterion: c.id, problem: "reason" });
    }
  }
  return problems;
}

/** The verdicts evaluation.submit_review takes. */
export function verdicts(state, form) {
  return state.bidders.flatMap((b) => state.criteria.map((c) => {
    const cell = form[b.bidder][c.id];
    return { bidder: b.bidder, criterion: c.id, passed: cell.passed, reason: cell.passed ? "" : cell.reason.trim() };
  }));
}

// detailed scoring --------------------------------------------------------------------------------

/** A decimal string as {units: BigInt, scale}, or null when it is not a plain decimal. */
export function parseDecimal(text) {
  const m = /^\s*(\d{1,12})(?:\.(\d{1,4}))?\s*$/.exec(String(text ?? ""));
  if (!m) return null;
  const frac = m[2] || "";
  return { units: BigInt(m[1] + frac), scale: frac.length };
}

function formatUnits(units, scale) {
  const digits = units.toString().padStart(scale + 1, "0");
  return scale ? `${digits.slice(0, -scale)}.${digits.slice(-scale)}` : digits;
}

function compare(a, b) {
  const scale = Math.max(a.scale, b.scale);
  const x = a.units * 10n ** BigInt(scale - a.scale);
  const y = b.units * 10n ** BigInt(scale - b.scale);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The exact sum of decimal strings (blanks and non-numbers left out), e.g. "45.5". */
export function sumOf(values) {
  const parsed = values.map(parseDecimal).filter(Boolean);
  const scale = Math.max(0, ...parsed.map((p) => p.scale));
  const units = parsed.reduce((acc, p) => acc + p.units * 10n ** BigInt(scale - p.scale), 0n);
  return formatUnits(units, scale);
}

/** The sum of the items' maxima: what a sheet can reach. */
export function maxTotal(items) {
  return sumOf(items.map((i) => i.max));
}

/** An empty sheet form: item -> "" (the expert types decimal strings). */
export function emptySheet(items) {
  return Object.fromEntries(items.map((i) => [i.id, ""]));
}

/** A saved (or submitted) sheet over an empty one: only the lot's items are kept. */
export function restoreSheet(items, saved) {
  const form = emptySheet(items);
  for (const [item, value] of Object.entries(obj(saved))) if (item in form) form[item] = String(value ?? "");
  return form;
}

/** item -> problem ("missing" | "number" | "range") for each item not ready to send. */
export function sheetProblems(items, form) {
  const problems = {};
  for (const item of items) {
    const text = String(form[item.id] ?? "").trim();
    const value = parseDecimal(text);
    const max = parseDecimal(item.max);
    if (!text) problems[item.id] = "missing";
    else if (!value) problems[item.id] = "number";
    else if (max && compare(value, max) > 0) problems[item.id] = "range";
  }
  return problems;
}

// the expert's signed acts ------------------------------------------------------------------------

/**
 * The expert's acts, each signed with their certificate key in this browser (evaluation.SIGNED,
 * docs/evaluation.md "Signed acts"): the fields each signature covers besides `room`.
 */
export const SIGNED = {
  "evaluation.declare": ["declaration", "bidders", "reason"],
  "evaluation.vote": ["candidate", "round"],
  "evaluation.submit_review": ["verdicts"],
  "evaluation.submit_sheet": ["bid", "scores", "total"],
  "evaluation.rescore": ["bid", "scores", "total"],
  "evaluation.explain": ["flag", "reason"],
  "evaluation.dissent": ["reason"],
  "evaluation.refuse_signing": ["reason"],
};
const SIGNED_DEFAULTS = { bidders: [], reason: "", total: null };

// White space as the server's edge trims it (pydantic: Unicode's White_Space, which is not JS's
// trim(): \x85 is in it, \ufeff is not).
const SPACE = "[\\t\\n\\x0b\\x0c\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
const EDGES = new RegExp(`^${SPACE}+|${SPACE}+$`, "gu");
const strip = (text) => text.replace(EDGES, "");

function trimmed(value) {
  if (typeof value === "string") return strip(value);
  if (Array.isArray(value)) return value.map(trimmed);
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [strip(k), trimmed(v)]));
  return value;
}

/**
 * A signed act's fields as the server rebuilds them from the arguments it takes: every covered
 * field (an absent one at its default), strings (and object keys) trimmed at every depth. They
 * are sent as signed.
 */
export function signedFields(name, args) {
  return Object.fromEntries(SIGNED[name].map((k) => [k, trimmed(k in args ? args[k] : SIGNED_DEFAULTS[k] ?? null)]));
}

/** What evaluation.submit_sheet / rescore take: {bid, scores, total} (the total = the sum). */
export function sheetArgs(items, form, bid) {
  const scores = Object.fromEntries(items.map((i) => [i.id, normalise(form[i.id])]));
  return { bid, scores, total: sumOf(Object.values(scores)) };
}

function normalise(text) {
  const p = parseDecimal(text);
  return p ? formatUnits(p.units, p.scale) : String(text).trim();
}

/** My submitted sheet for a bid entry (from to_score), if the snapshot shows it to me. */
export function mySheet(state, subject, b) {
  return state.sheets.find((x) => x.expert === subject && sameBid(x, b)) || null;
}

/** The other members' sheets for a bid entry: visible once my own is in. */
export function othersSheets(state, subject, b) {
  return state.sheets.filter((x) => x.expert !== subject && sameBid(x, b));
}

// what the browser keeps while an expert types ------------------------------------------------------

const DRAFT_PREFIX = "bidroom.evaluation";

/**
 * The localStorage key of a form draft: per room, expert, kind ("review", "sheet", "rescore")
 * and bid. A reload, a reconnect or a crash finds the draft under the same key; another room,
 * another expert on the same computer, or another bid never does.
 */
export function draftKey(room, expert, kind, bid = "") {
  return [DRAFT_PREFIX, room, expert, kind, bid].map((p) => encodeURIComponent(p)).join("|");
}

// the deviation check -------------------------------------------------------------------------------

/** The flags that concern `subject`: their own, and committee flags on a bid they scored. */
export function myFlags(state, subject) {
  const scored = state.sheets.filter((x) => x.expert === subject);
  return state.flags.filter((f) => f.expert === subject || (f.expert == null && scored.some((x) => sameBid(x, f))));
}

export function flagOpen(state, flag) {
  return state.open_flags.includes(flag.key);
}

/** A ratio as a percentage for display: "0.4167" -> "41.67". */
export function percent(ratio) {
  const p = parseDecimal(ratio);
  if (!p) return String(ratio ?? "");
  const shifted = p.units * 100n;
  return formatUnits(shifted, p.scale).replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, "");
}

// the summary ------------------------------------------------------------------------------------

/**
 * The summary's rows, by rank: {bidder, name, rank, tied, price, price_score, items, total,
 * evaluated, recommended, undecided}; [] before the summary or when no bid passed.
 */
export function summaryRows(state) {
  const c = state.summary?.computation;
  if (!c) return [];
  const totals = Object.fromEntries(list(c.totals).map((t) => [t.bidder, t]));
  const recommended = list(c.recommended);
  const undecided = list(c.undecided);
  return list(c.ranking).map((r) => ({
    ...totals[r.bidder],
    bidder: r.bidder,
    name: bidderName(state, r.bidder) || r.bidder,
    rank: r.rank,
    tied: Boolean(r.tied),
    recommended: recommended.indexOf(r.bidder) + 1 || null,
    undecided: undecided.includes(r.bidder),
  }));
}

// clarification -------------------------------------------------------------------------------------

/** ms left before a question's deadline (negative once passed). */
export function timeLeft(iso, now) {
  return new Date(iso).getTime() - now;
}

const SHANGHAI_MS = 8 * 3600 * 1000; // China has one zone, no daylight saving

/** A date as a datetime-local value in Beijing time ("2026-12-01T10:30"). */
export function beijingInput(date) {
  return new Date(date.getTime() + SHANGHAI_MS).toISOString().slice(0, 16);
}

/** A datetime-local value read as Beijing time, as ISO 8601 with its offset; "" if invalid. */
export function deadlineIso(value) {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(?::(\d{2}))?$/.exec(String(value || ""));
  if (!m) return "";
  const iso = `${m[1]}T${m[2]}:${m[3] || "00"}+08:00`;
  return Number.isNaN(Date.parse(iso)) ? "" : iso;
}

/** The bids a question may go to, as the asker names them: [{key, bid}] (labels while anonymous). */
export function askable(state) {
  if (labelled(state) && state.to_score.length) return state.to_score.map((b) => ({ key: bidKey(state, b), bid: b }));
  return state.bidders.map((b) => ({ key: b.bidder, bid: b }));
}

export function drafts(state) {
  return state.clarifications.filter((q) => q.status === "draft");
}

/** Approved questions still waiting for an answer or their deadline. */
export function answersPending(state, now) {
  return state.clarifications.filter((q) => q.status === "approved" && timeLeft(q.deadline, now) > 0);
}

// faults --------------------------------------------------------------------------------------------

/**
 * committee.fault_clocks at `now`: {status, before_start, during} with each clock's
 * {limit, elapsed, running, exceeded} in ms; null without a scheduled start.
 */
export function faultClocks(startsAt, suspensions, now) {
  const start = Date.parse(startsAt || "");
  if (Number.isNaN(start)) return null;
  const spans = suspensions.map((s) => ({ start: Date.parse(s.start), end: s.end ? Date.parse(s.end) : null }));
  const end = (s) => (s.end === null ? now : s.end);
  const before = spans.filter((s) => s.start <= start).map((s) => [s, Math.max(end(s) - start, 0)]);
  const during = spans.filter((s) => s.start > start).map((s) => [s, end(s) - s.start]);
  const first = clock(BEFORE_START_MS, before);
  const second = clock(DURING_MS, during);
  const status = second.exceeded ? "must_seal_and_reform" : first.exceeded ? "tenderee_decides" : "ok";
  return { status, before_start: first, during: second };
}

function clock(limit, faults) {
  const open = faults.filter(([s]) => s.end === null);
  const longest = Math.max(0, ...faults.map(([, t]) => t));
  return { limit, elapsed: open.length ? open[0][1] : longest, running: open.length > 0, exceeded: longest > limit };
}

// the report -----------------------------------------------------------------------------------------

/** Each member's answer to the report: [{expert, name, state: "signed"|"refused"|"deemed"|"waiting", reason}]. */
export function signingRows(state) {
  const r = state.report;
  if (!r) return [];
  const deemed = new Set(list(r.closed?.deemed));
  return state.seats.filter((x) => x.status === "seated" && x.expert).map((x) => {
    const answer = x.expert in r.signatures ? "signed" : x.expert in r.refusals ? "refused" : deemed.has(x.expert) ? "deemed" : "waiting";
    return { expert: x.expert, name: x.name || x.expert, state: answer, reason: r.refusals[x.expert] || "" };
  });
}

// what to do now ----------------------------------------------------------------------------------

/**
 * What `me` ({subject, role}) must do now, most urgent first: keys of the page's tasks. `extra`
 * carries what only this browser knows ({voted}: my vote in the open round).
 */
export function tasks(state, me, now, extra = {}) {
  if (!me) return [];
  const out = [...(TASKS[me.role]?.(state, me, now, extra) || [])];
  if (me.role !== "chair" && leads(state, me)) out.push(...leaderTasks(state, now));
  return out;
}

function expertTasks(s, me, now, extra) {
  const out = [];
  const seat = mySeat(s, me.subject);
  const left = s.seats.some((x) => x.left.some((l) => l.expert === me.subject)); // stepped aside
  if (!seat && !left && ["signing_in", "declaring"].includes(s.phase)) out.push("sign_in");
  if (seat && s.phase === "declaring" && !seat.declaration) out.push("declare");
  if (seat && s.election?.phase === "voting" && s.phase === "electing" && !extra.voted) out.push("vote");
  if (seat && s.phase === "preliminary" && !s.reviews.submitted.includes(me.subject)) out.push("review");
  if (seat && s.phase === "scoring" && s.to_score.some((b) => !b.scored)) out.push("score");
  if (seat && s.phase === "deviations" && myFlags(s, me.subject).some((f) => flagOpen(s, f))) out.push("flags");
  if (seat && s.phase === "signing" && s.report && !(me.subject in s.report.signatures) && !(me.subject in s.report.refusals)) out.push("sign");
  return out;
}

function leaderTasks(s, now) {
  const out = [];
  if (s.phase === "prechecked") out.push("start_preliminary");
  if (s.phase === "clarifying" && !answersPending(s, now).length) out.push("close_clarification");
  if (s.phase === "deviations" && !s.open_flags.length) out.push("summarise");
  if (s.phase === "summary" && s.summary?.computation) out.push("issue_report");
  return out;
}

function chairTasks(s, me, now) {
  const out = [];
  if (s.phase === "forming") out.push("draw");
  if (s.phase === "signing_in" && allSeated(s)) out.push("open_declarations");
  if (s.phase === "declaring" && vacatedSeats(s).length) out.push("replace");
  const e = s.election;
  if (s.phase === "electing" && e?.phase === "tied") out.push("revote");
  if (s.phase === "electing" && e?.phase === "appointing") out.push("appoint");
  if (s.phase === "electing" && s.leader) out.push("precheck");
  if (s.phase === "suspended") out.push("resume_or_seal");
  return [...out, ...leaderTasks(s, now)];
}

const TASKS = {
  expert: expertTasks,
  chair: chairTasks,
  supervisor: (s) => (drafts(s).length ? ["approve"] : []),
  bidder: (s, me, now) => (s.clarifications.some((q) => q.status === "approved") ? ["answer"] : []),
};
