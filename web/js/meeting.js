// The meeting room's view state: a pure fold of its events, mirroring bidroom/meeting.py apply().
//
// Rules of this file: no DOM, no socket, no clock. State objects are never mutated; every fold
// returns a new state. Unknown events leave the state as it was (a newer server may send more).

/** Which role may send which command in which phase (meeting.py RULES, client commands only). */
export const RULES = {
  scheduled: { "meeting.open": ["chair"] },
  open: {
    "meeting.announce": ["chair"],
    "meeting.message": ["chair", "bidder", "expert"],
    "meeting.mute": ["chair"],
    "meeting.unmute": ["chair"],
    "meeting.remove": ["chair"],
    "meeting.close": ["chair"],
  },
  closed: {},
};

/** The state before the first snapshot (a newcomer always gets one, with title and start time). */
export function initial({ title = "", starts_at = null } = {}) {
  return {
    title,
    startsAt: starts_at,
    phase: "scheduled",
    participants: {},
    announcements: [],
    messages: [],
    allowed: null, // the server's list from the last snapshot, valid for allowedPhase only
    allowedPhase: null,
  };
}

/**
 * A state from a snapshot frame's `state`. Each participant carries its open connections, so the
 * presence events that follow (joined, left, expired: all by connection id) keep "online" exact.
 * The participants are those this actor may see: a bidder sees only the chair and themself.
 */
export function fromSnapshot(snap) {
  const participants = {};
  for (const p of snap.participants || []) {
    participants[p.subject] = participant(p, {
      connections: [...(p.connections || [])],
      muted: Boolean(p.muted),
      removed: Boolean(p.removed),
    });
  }
  return {
    ...initial(snap),
    phase: snap.phase,
    participants,
    announcements: (snap.announcements || []).map(note),
    messages: (snap.messages || []).map(note),
    allowed: snap.allowed || null,
    allowedPhase: snap.phase,
  };
}

/** Fold one event frame ({name, data, seq, at, actor}). */
export function apply(state, event) {
  const folder = FOLDERS[event.name];
  return folder ? folder(state, event) : state;
}

/** Fold a list of event frames in order. */
export function fold(state, events) {
  return events.reduce(apply, state);
}

// participants ------------------------------------------------------------------------------

function participant(actor, extra = {}) {
  return {
    subject: actor.subject,
    name: actor.name || "",
    role: actor.role,
    venue: actor.venue ?? null,
    organisation: actor.organisation ?? null,
    connections: [],
    muted: false,
    removed: false,
    ...extra,
  };
}

/** Online while the server holds at least one open connection for this participant. */
export function isOnline(p) {
  return p.connections.length > 0;
}

function withParticipant(state, subject, changes) {
  const known = state.participants[subject];
  if (!known) return state; // the server never names a stranger; ignore rather than crash
  return { ...state, participants: { ...state.participants, [subject]: { ...known, ...changes } } };
}

/** Drop connections from one participant ({subject, connection(s)} as presence events name them). */
function withoutConnections(state, subject, gone) {
  const known = state.participants[subject];
  if (!known) return state; // someone this actor may not see
  const kept = known.connections.filter((c) => !gone.has(c));
  if (kept.length === known.connections.length) return state;
  return { ...state, participants: { ...state.participants, [subject]: { ...known, connections: kept } } };
}

function foldJoined(state, { data }) {
  const known = state.participants[data.subject];
  const base = known || participant(data);
  const connections = base.connections.includes(data.connection)
    ? base.connections
    : [...base.connections, data.connection];
  const updated = { ...base, ...actorFields(data), connections };
  return { ...state, participants: { ...state.participants, [data.subject]: updated } };
}

function actorFields(data) {
  return {
    name: data.name || "",
    role: data.role,
    venue: data.venue ?? null,
    organisation: data.organisation ?? null,
  };
}

// notes (announcements and messages) --------------------------------------------------------

function note(m) {
  return { seq: m.seq, from: m.from, to: m.to ?? null, text: String(m.text), at: m.at || "" };
}

function foldAnnounced(state, event) {
  const from = event.actor ? event.actor.subject : "system";
  const item = note({ seq: event.seq, from, to: null, text: event.data.text, at: event.at });
  return { ...state, announcements: [...state.announcements, item] };
}

function foldMessage(state, event) {
  const { data } = event;
  const item = note({ seq: event.seq, from: data.from, to: data.to, text: data.text, at: event.at });
  return { ...state, messages: [...state.messages, item] };
}

const FOLDERS = {
  "meeting.opened": (s) => ({ ...s, phase: "open" }),
  "meeting.closed": (s) => ({ ...s, phase: "closed" }),
  "meeting.announced": foldAnnounced,
  "meeting.message_sent": foldMessage,
  "meeting.muted": (s, e) => withParticipant(s, e.data.subject, { muted: true }),
  "meeting.unmuted": (s, e) => withParticipant(s, e.data.subject, { muted: false }),
  "meeting.removed": (s, e) => withParticipant(s, e.data.subject, { removed: true }),
  "presence.joined": foldJoined,
  "presence.left": (s, e) => withoutConnections(s, e.data.subject, new Set([e.data.connection])),
  "presence.expired": (s, e) => withoutConnections(s, e.data.subject, new Set(e.data.connections)),
};

// questions the page asks -------------------------------------------------------------------

/** Commands `role` may send now: the server's list while its phase holds, else RULES. */
export function allowedFor(state, role) {
  if (state.allowed && state.allowedPhase === state.phase) {
    return state.allowed.filter((name) => name.startsWith("meeting."));
  }
  const table = RULES[state.phase] || {};
  return Object.keys(table).filter((name) => table[name].includes(role));
}

/** Participants the chair may address or act on: everyone but chairs and the removed. */
export function addressable(state) {
  return Object.values(state.participants).filter((p) => p.role !== "chair" && !p.removed);
}
