// MediaRoom: WebRTC audio and video in a session page (meeting room, opening, evaluation). The
// signaling rides the room WebSocket (client.js: "media", "peer" and "signal" events out,
// conn.signal() in); the media flows browser to browser. One instance per page, given the page's
// RoomConnection, its media panel and its command runner.
//
// Negotiation rules (docs/protocol.md "Media signaling"):
// - One RTCPeerConnection per remote person (subject), named by a session id that whoever offers
//   picks at random; all of a session's signals go to one of the person's connections (a tab).
// - The NEWCOMER offers. On the `media` frame (after welcome): offer to everyone in `present`.
//   On `peer` joined: wait for their offer, except to a receive-only peer (`receive_only`, the
//   server's recorder), which never offers: offer it our own tracks only (sendonly); a viewer with
//   no tracks offers it nothing, until the camera is turned on.
// - Before the user chooses how to join (camera or viewer), offers wait. Joining is arriving:
//   answer the offers that waited, offer to everyone else known to be here.
// - An offer in a new session from a person we already have a session with: they reconnected (a
//   reload, a dropped socket): close the old connection, answer the new one. Signals of any other
//   session than the person's current one are stale and ignored (a `bye` included).
// - Renegotiation (a viewer turns the camera on: addTrack) is a new offer in the same session.
// - Glare: "perfect negotiation". The polite peer is the one whose subject sorts lower (string
//   compare). The impolite one ignores a colliding offer; the polite one rolls back and answers
//   (at first contact, where the two offers name two sessions, it adopts the other's session).
// - `bye` closes that session's connection and removes its tile; so does `peer` left (the room
//   no longer lets us see and hear that person: e.g. an expert who left the committee).
// - A second `media` frame (we were just seated on the committee): offer to everyone present.
// - ICE candidates trickle as `candidate` signals ("" = end of candidates), with the ICE servers
//   of the `media` frame. ICE `failed`: say that the network blocks media; restartIce() once.
// Muting is the audio track's `enabled`, camera off the video track's: nothing renegotiates. The
// chair's mute (meeting.muted naming me) turns my microphone off until meeting.unmuted.

import { fill, h } from "./dom.js";
import * as i18n from "./i18n.js";
import "./i18n-media.js";
import * as meeting from "./meeting.js";

const { t } = i18n;
const STATS_MS = 2000;
const OFFERS_KEPT = 100;
// Modest on purpose: island links are thin; 640x360 at 15 fps shows faces and papers held up.
const CONSTRAINTS = {
  audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  video: { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 15, max: 24 }, facingMode: "user" },
};
const DEVICE_ERRORS = {
  NotAllowedError: "media.error.denied",
  SecurityError: "media.error.denied",
  NotFoundError: "media.error.notFound",
  OverconstrainedError: "media.error.notFound",
  NotReadableError: "media.error.busy",
  AbortError: "media.error.busy",
};

/**
 * A connection's quality from the last interval's figures: round trip (seconds) and the share of
 * packets lost. Frames per second are shown but not graded: a camera turned off sends one black
 * frame a second, which says nothing of the network.
 */
export function grade({ rtt, loss }) {
  if (rtt === null && loss === null) return "none";
  if (rtt > 0.4 || loss > 0.08) return "poor";
  if (rtt > 0.15 || loss > 0.02) return "fair";
  return "good";
}

/** What getStats says of one peer connection; `last` holds the previous packet counts. */
export function summarise(report, last = { lost: 0, received: 0 }) {
  let pair = null;
  let lost = 0;
  let received = 0;
  let fps = null;
  let framesDecoded = 0;
  let framesSent = 0;
  for (const r of report.values()) {
    if (r.type === "transport" && r.selectedCandidatePairId) pair = report.get(r.selectedCandidatePairId) || pair;
    if (r.type === "candidate-pair" && !pair && r.nominated && r.state === "succeeded") pair = r;
    if (r.type === "outbound-rtp" && r.kind === "video") framesSent += r.framesSent || 0;
    if (r.type !== "inbound-rtp") continue;
    lost += r.packetsLost || 0;
    received += r.packetsReceived || 0;
    if (r.kind !== "video") continue;
    framesDecoded += r.framesDecoded || 0;
    if (r.framesPerSecond !== undefined) fps = r.framesPerSecond;
  }
  const rtt = pair?.currentRoundTripTime ?? null;
  const newLost = Math.max(0, lost - last.lost);
  const newReceived = Math.max(0, received - last.received);
  const loss = newLost + newReceived > 0 ? newLost / (newLost + newReceived) : pair ? 0 : null;
  return { rtt, loss, fps, framesDecoded, framesSent, lost, received, quality: grade({ rtt, loss }) };
}

/** One remote person: their session, its peer connection, its tile. */
class Peer {
  constructor(info, session, connection, polite, sendOnly) {
    this.info = info;
    this.session = session;
    this.connection = connection;
    this.polite = polite;
    this.sendOnly = sendOnly; // a receive-only peer (the recorder): we send, it never shows
    this.pc = null;
    this.stream = new MediaStream();
    this.tile = null;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.established = false; // a remote description was applied once
    this.restarted = false;
    this.failed = false;
    this.stats = { quality: "none", framesDecoded: 0, framesSent: 0, lost: 0, received: 0 };
  }
}

export class MediaRoom {
  /**
   * @param {{conn: import("./client.js").RoomConnection, root: HTMLElement,
   *          run: (name: string, args: object, okKey: string|null, button: HTMLElement|null) => Promise<boolean>}} options
   */
  constructor({ conn, root, run }) {
    this.conn = conn;
    this.root = root;
    this.run = run;
    this.me = null;
    this.iceServers = [];
    this.receiveOnly = new Set(["recorder"]);
    this.available = false; // a media frame came: this role may see and hear someone here
    this.mode = null; // null until the user joins: "camera" or "viewer"
    this.local = null; // our MediaStream
    this.micOn = true;
    this.cameraOn = true;
    this.mutedByChair = false;
    this.chairNotice = null;
    this.deviceNotice = null; // {key, params}
    this.opening = false;
    this.known = new Map(); // subject -> {subject, name, role, venue, organisation, connection}
    this.peers = new Map(); // subject -> Peer
    this.waiting = new Map(); // subject -> {session, frames}: signals before the user joined
    this.queues = new Map(); // subject -> the promise its signals are handled after, in order
    this.offers = new Map(); // signal id -> Peer: a refusal of our offer closes that session
    this.meeting = meeting.initial();
    this.timer = null;
    this.el = this.build();
    this.listen();
    window.bidroomMedia = this; // for tests and support staff: report(), sample()
  }

  // frames from the room ------------------------------------------------------------------

  listen() {
    const on = (type, fn) => this.conn.addEventListener(type, (e) => fn.call(this, e.detail));
    on("welcome", (frame) => { this.me = frame.you; this.render(); });
    on("media", this.onMedia);
    on("peer", this.onPeer);
    on("signal", this.onSignal);
    on("signal-error", this.onSignalError);
    on("snapshot", (frame) => this.onMeeting(meeting.fromSnapshot(frame.state.meeting || frame.state), false));
    on("event", (frame) => this.onMeeting(meeting.apply(this.meeting, frame), true));
    on("fatal", () => this.stop());
  }

  onMedia(frame) {
    this.available = true;
    this.iceServers = frame.ice_servers || [];
    this.receiveOnly = new Set(frame.receive_only || ["recorder"]);
    // `present` may be missing (an older server): then nobody is offered to; they offer to us.
    const present = frame.present || [];
    this.known = new Map(present.map((p) => [p.subject, { ...p, connection: p.connections?.at(-1) }]));
    // A media frame after a reconnect: our old connection's peers were told `bye`; start anew.
    if (this.mode) {
      for (const subject of [...this.peers.keys()]) this.drop(subject, false);
      for (const info of this.known.values()) this.offerTo(info);
    }
    this.render();
  }

  onPeer(frame) {
    if (!frame.peer) return;
    if (frame.event === "left") {
      // No longer ours to see and hear (an expert left the committee, or we did): hang up.
      this.known.delete(frame.peer.subject);
      this.waiting.delete(frame.peer.subject);
      if (this.peers.has(frame.peer.subject)) this.drop(frame.peer.subject, false);
      this.render();
      return;
    }
    if (frame.event !== "joined") return;
    this.known.set(frame.peer.subject, frame.peer);
    if (this.mode && this.receiveOnly.has(frame.peer.role)) this.offerTo(frame.peer);
  }

  onSignal(frame) {
    const subject = frame.from?.subject;
    if (!subject || !this.me || subject === this.me.subject) return;
    if (frame.kind === "offer") this.known.set(subject, { ...frame.from });
    if (!this.mode) return this.keep(frame);
    this.inOrder(subject, () => this.handle(frame));
  }

  onSignalError(frame) {
    const peer = this.offers.get(frame.id);
    if (!peer || this.peers.get(peer.info.subject) !== peer) return;
    // Gone, or not ours to reach: no tile for them (they offer to us when they come back).
    this.known.delete(peer.info.subject);
    this.drop(peer.info.subject, false);
    this.render();
  }

  onMeeting(state, live) {
    this.meeting = state;
    const muted = Boolean(this.me && state.participants[this.me.subject]?.muted);
    if (muted !== this.mutedByChair) {
      this.mutedByChair = muted;
      if (muted) this.micOn = false;
      this.chairNotice = muted ? "media.mutedByChair" : live ? "media.unmutedByChair" : null;
      this.applyTracks();
    }
    this.render();
  }

  /** Signals before the user joined: the latest offer per person and what followed it. */
  keep(frame) {
    const subject = frame.from.subject;
    const kept = this.waiting.get(subject);
    if (frame.kind === "offer" && kept?.session !== frame.session) {
      this.waiting.set(subject, { session: frame.session, frames: [frame] });
    } else if (kept?.session === frame.session) {
      if (frame.kind === "bye") this.waiting.delete(subject);
      else kept.frames.push(frame);
    }
  }

  /** Handle one person's signals one after another: a candidate never overtakes its offer. */
  inOrder(subject, task) {
    const next = (this.queues.get(subject) || Promise.resolve()).then(task).catch(() => {});
    this.queues.set(subject, next);
    return next;
  }

  // negotiation ---------------------------------------------------------------------------

  async handle(frame) {
    const from = frame.from;
    let peer = this.peers.get(from.subject);
    if (frame.kind === "offer" && peer?.session !== frame.session) {
      const ourFirstOffer = peer && !peer.established && (peer.makingOffer || peer.pc.signalingState === "have-local-offer");
      if (ourFirstOffer && !peer.polite) return; // glare at first contact: our session stands
      this.drop(from.subject, Boolean(peer));
      peer = this.open(from, frame.session, from.connection);
    }
    if (!peer || peer.session !== frame.session) return; // stale: an old session's signal
    if (frame.kind === "offer") await this.onOffer(peer, frame);
    else if (frame.kind === "answer") await this.onAnswer(peer, frame);
    else if (frame.kind === "candidate") await this.onCandidate(peer, frame);
    else if (frame.kind === "bye") this.drop(from.subject, false);
    this.render();
  }

  async onOffer(peer, frame) {
    const pc = peer.pc;
    const collision = peer.makingOffer || pc.signalingState !== "stable";
    peer.ignoreOffer = !peer.polite && collision;
    if (peer.ignoreOffer) return;
    await pc.setRemoteDescription({ type: "offer", sdp: frame.sdp }); // rolls our offer back
    peer.established = true;
    await this.attach(peer);
    await pc.setLocalDescription();
    this.send(peer, { kind: "answer", sdp: pc.localDescription.sdp });
  }

  async onAnswer(peer, frame) {
    if (peer.pc.signalingState !== "have-local-offer") return; // an answer to an offer rolled back
    await peer.pc.setRemoteDescription({ type: "answer", sdp: frame.sdp });
    peer.established = true;
  }

  async onCandidate(peer, frame) {
    const candidate = { candidate: frame.candidate, sdpMid: frame.sdpMid ?? null, sdpMLineIndex: frame.sdpMLineIndex ?? null };
    if (candidate.sdpMid === null && candidate.sdpMLineIndex === null) candidate.sdpMLineIndex = 0;
    try {
      await peer.pc.addIceCandidate(candidate);
    } catch (error) {
      if (!peer.ignoreOffer && frame.candidate) peer.candidateError = String(error);
    }
  }

  /** Our offer (or renegotiation): whenever the connection says it needs one. */
  async negotiate(peer) {
    const pc = peer.pc;
    try {
      peer.makingOffer = true;
      await pc.setLocalDescription();
      const { type, sdp } = pc.localDescription;
      this.send(peer, { kind: type, sdp });
    } catch {
      // closed meanwhile, or an offer arrived first: perfect negotiation sorts it out
    } finally {
      peer.makingOffer = false;
    }
  }

  /** Offer to a person: everything we have, and room to receive what we lack. */
  offerTo(info) {
    const sendOnly = this.receiveOnly.has(info.role);
    const tracks = this.tracks();
    if (sendOnly && !tracks.length) return; // a viewer gives the recorder nothing to record
    this.drop(info.subject, true);
    const peer = this.open(info, crypto.randomUUID(), info.connection);
    for (const track of tracks) {
      if (sendOnly) peer.pc.addTransceiver(track, { direction: "sendonly", streams: [this.local] });
      else peer.pc.addTrack(track, this.local);
    }
    if (sendOnly) return;
    for (const kind of ["audio", "video"]) {
      if (!tracks.some((x) => x.kind === kind)) peer.pc.addTransceiver(kind, { direction: "recvonly" });
    }
  }

  /** Our tracks on a connection: in a free transceiver of their kind, or added (renegotiates). */
  async attach(peer) {
    const pc = peer.pc;
    for (const track of this.tracks()) {
      if (pc.getSenders().some((s) => s.track === track)) continue;
      const free = pc.getTransceivers().find((x) =>
        !x.stopped && x.mid !== null && !x.sender.track && x.receiver.track.kind === track.kind);
      if (!free) {
        pc.addTrack(track, this.local);
        continue;
      }
      free.direction = peer.sendOnly ? "sendonly" : "sendrecv";
      await free.sender.replaceTrack(track);
      free.sender.setStreams?.(this.local);
    }
  }

  open(info, session, connection) {
    const sendOnly = this.receiveOnly.has(info.role);
    const peer = new Peer(info, session, connection, this.me.subject < info.subject, sendOnly);
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    peer.pc = pc;
    pc.onnegotiationneeded = () => this.negotiate(peer);
    pc.onicecandidate = ({ candidate }) => this.sendCandidate(peer, candidate);
    pc.ontrack = ({ track }) => this.showTrack(peer, track);
    pc.oniceconnectionstatechange = () => this.onIceState(peer);
    pc.onconnectionstatechange = () => this.renderTile(peer);
    this.peers.set(info.subject, peer);
    if (!sendOnly) {
      peer.tile = this.tile(peer.info, false);
      this.el.tiles.append(peer.tile.root);
    }
    return peer;
  }

  sendCandidate(peer, candidate) {
    if (candidate && !candidate.candidate) return; // Chrome's own end marker: we send ours below
    const fields = { kind: "candidate", candidate: candidate ? candidate.candidate : "" };
    if (candidate?.sdpMid != null) fields.sdpMid = candidate.sdpMid;
    if (candidate?.sdpMLineIndex != null) fields.sdpMLineIndex = candidate.sdpMLineIndex;
    this.send(peer, fields);
  }

  send(peer, fields) {
    const frame = { ...fields, to: peer.info.subject, session: peer.session };
    if (peer.connection) frame.connection = peer.connection;
    const id = this.conn.signal(frame);
    if (id && fields.kind === "offer") {
      this.offers.set(id, peer);
      if (this.offers.size > OFFERS_KEPT) this.offers.delete(this.offers.keys().next().value);
    }
  }

  /** Close a person's session; `bye` tells their tab (stale ones ignore it). */
  drop(subject, bye) {
    const peer = this.peers.get(subject);
    if (!peer) return;
    this.peers.delete(subject);
    if (bye) this.send(peer, { kind: "bye" });
    peer.pc.close();
    peer.tile?.root.remove();
  }

  onIceState(peer) {
    const state = peer.pc.iceConnectionState;
    if (state === "failed") {
      peer.failed = true;
      if (!peer.restarted) {
        peer.restarted = true;
        peer.pc.restartIce();
      }
    } else if (state === "connected" || state === "completed") {
      peer.failed = false;
    }
    this.render();
  }

  showTrack(peer, track) {
    peer.stream.addTrack(track);
    if (!peer.tile) return;
    const video = peer.tile.video;
    if (video.srcObject !== peer.stream) video.srcObject = peer.stream;
    track.addEventListener("ended", () => peer.stream.removeTrack(track));
  }

  // the user's choices --------------------------------------------------------------------

  /** Join with camera and microphone; on a device error, say why and stay out (or audio only). */
  async joinWithCamera(button) {
    const stream = await this.openDevices(button);
    if (!stream) return;
    this.local = stream;
    this.join("camera");
  }

  joinAsViewer() {
    this.join("viewer");
  }

  join(mode) {
    this.mode = mode;
    this.applyTracks();
    this.renderLocalTile();
    const kept = [...this.waiting.values()];
    this.waiting.clear();
    for (const { frames } of kept) for (const frame of frames) this.inOrder(frame.from.subject, () => this.handle(frame));
    const answering = new Set(kept.map(({ frames }) => frames[0].from.subject));
    for (const info of this.known.values()) if (!answering.has(info.subject)) this.offerTo(info);
    clearInterval(this.timer);
    this.timer = setInterval(() => this.sample(), STATS_MS);
    this.render();
  }

  /** A viewer turns on camera and microphone: add the tracks (a renegotiation per peer). */
  async upgrade(button) {
    const stream = await this.openDevices(button);
    if (!stream) return;
    this.local = stream;
    this.mode = "camera";
    this.micOn = !this.mutedByChair;
    this.cameraOn = true;
    this.applyTracks();
    this.renderLocalTile();
    for (const peer of this.peers.values()) this.inOrder(peer.info.subject, () => this.attach(peer));
    for (const info of this.known.values()) {
      if (this.receiveOnly.has(info.role) && !this.peers.has(info.subject)) this.offerTo(info);
    }
    this.render();
  }

  async openDevices(button) {
    if (!navigator.mediaDevices?.getUserMedia) {
      this.deviceNotice = { key: window.isSecureContext ? "media.error.unsupported" : "media.error.insecure" };
      this.render();
      return null;
    }
    this.opening = true;
    this.deviceNotice = null;
    if (button) button.disabled = true;
    this.render();
    try {
      return await this.getUserMedia();
    } catch (error) {
      this.deviceNotice = { key: DEVICE_ERRORS[error?.name] || "media.error.other", params: { name: error?.name || String(error) } };
      return null;
    } finally {
      this.opening = false;
      if (button) button.disabled = false;
      this.render();
    }
  }

  /** Camera and microphone; without a camera, the microphone alone (and say so). */
  async getUserMedia() {
    try {
      return await navigator.mediaDevices.getUserMedia(CONSTRAINTS);
    } catch (error) {
      if (error?.name !== "NotFoundError" && error?.name !== "OverconstrainedError") throw error;
      const stream = await navigator.mediaDevices.getUserMedia({ audio: CONSTRAINTS.audio }).catch(() => null);
      if (!stream) throw error;
      this.deviceNotice = { key: "media.error.noCamera" };
      return stream;
    }
  }

  toggleMic() {
    if (this.mutedByChair) return;
    this.micOn = !this.micOn;
    this.chairNotice = null;
    this.applyTracks();
    this.render();
  }

  toggleCamera() {
    this.cameraOn = !this.cameraOn;
    this.applyTracks();
    this.render();
  }

  applyTracks() {
    for (const track of this.local?.getAudioTracks() || []) track.enabled = this.micOn && !this.mutedByChair;
    for (const track of this.local?.getVideoTracks() || []) track.enabled = this.cameraOn;
  }

  tracks() {
    return this.local ? this.local.getTracks() : [];
  }

  /** Leave for good (the room ended our session): close everything, release the devices. */
  stop() {
    clearInterval(this.timer);
    for (const subject of [...this.peers.keys()]) this.drop(subject, false);
    for (const track of this.tracks()) track.stop();
    this.local = null;
    this.mode = null;
    this.available = false;
    this.render();
  }

  // quality -------------------------------------------------------------------------------

  /** Read every connection's statistics now; resolves with report(). */
  async sample() {
    await Promise.all([...this.peers.values()].map(async (peer) => {
      try {
        peer.stats = summarise(await peer.pc.getStats(), peer.stats);
      } catch {
        return; // closed meanwhile
      }
      this.renderTile(peer);
    }));
    return this.report();
  }

  /** The panel's state as data (tests read it; so can a technician in the console). */
  report() {
    const audio = this.local?.getAudioTracks()[0];
    const video = this.local?.getVideoTracks()[0];
    return {
      mode: this.mode,
      mutedByChair: this.mutedByChair,
      audio: audio ? { enabled: audio.enabled, state: audio.readyState } : null,
      video: video ? { enabled: video.enabled, state: video.readyState } : null,
      notice: this.deviceNotice?.key || null,
      peers: [...this.peers.values()].map((p) => ({
        subject: p.info.subject,
        role: p.info.role,
        session: p.session,
        state: p.pc.connectionState,
        ice: p.pc.iceConnectionState,
        sending: p.pc.getSenders().filter((s) => s.track).map((s) => s.track.kind),
        ...p.stats,
      })),
    };
  }

  // the panel -----------------------------------------------------------------------------

  build() {
    const button = (testid, onclick, cls = "") => h("button", { type: "button", class: cls, "data-testid": testid, onclick });
    const el = {
      hint: h("p", { class: "hint", "data-testid": "media-hint" }),
      join: h("div", { class: "actions media-join", "data-testid": "media-join" }),
      joinCamera: button("media-join-camera", (e) => this.joinWithCamera(e.currentTarget), "primary"),
      joinViewer: button("media-join-viewer", () => this.joinAsViewer()),
      controls: h("div", { class: "actions media-controls", "data-testid": "media-controls" }),
      mic: button("media-mic", () => this.toggleMic()),
      camera: button("media-camera", () => this.toggleCamera()),
      upgrade: button("media-upgrade", (e) => this.upgrade(e.currentTarget)),
      device: h("p", { class: "error-box media-notice", role: "alert", "data-testid": "media-notice" }),
      network: h("p", { class: "error-box media-notice", role: "alert", "data-testid": "media-network" }),
      chair: h("p", { class: "hint warn media-chair", role: "status", "data-testid": "media-chair" }),
      tiles: h("div", { class: "media-tiles", "data-testid": "media-tiles" }),
      alone: h("p", { class: "hint media-alone", "data-testid": "media-alone" }),
      local: null,
    };
    el.join.append(el.joinCamera, el.joinViewer);
    el.controls.append(el.mic, el.camera, el.upgrade);
    this.root.append(h("div", { class: "media-body" },
      el.hint, el.join, el.device, el.network, el.chair, el.controls, el.tiles, el.alone));
    return el;
  }

  /** A video tile: the picture, and a caption with name, role, venue, quality and buttons. */
  tile(info, local) {
    const video = h("video", { autoplay: true, playsinline: true, muted: local });
    video.muted = local; // the attribute sets the default; our own voice must never play back
    const caption = h("figcaption", { class: "tile-caption" });
    const root = h("figure", {
      class: `tile${local ? " tile-local" : ""}`,
      "data-testid": local ? "tile-local" : `tile-${info.subject}`,
      "data-subject": info.subject,
      "data-role": info.role,
    }, video, caption);
    return { root, video, caption, info, local };
  }

  renderLocalTile() {
    if (this.mode !== "camera" || !this.local) return;
    if (!this.el.local) {
      this.el.local = this.tile(this.me, true);
      this.el.tiles.prepend(this.el.local.root);
    }
    this.el.local.video.srcObject = this.local;
  }

  render() {
    const el = this.el;
    this.root.hidden = !this.available;
    if (!this.available) return;
    const joined = Boolean(this.mode);
    el.hint.textContent = joined ? (this.mode === "viewer" ? t("media.viewing") : "") : t("media.hint");
    el.hint.hidden = !el.hint.textContent;
    el.join.hidden = joined;
    el.joinCamera.textContent = t(this.opening ? "media.joining" : "media.join.camera");
    el.joinViewer.textContent = t("media.join.viewer");
    el.joinCamera.disabled = el.joinViewer.disabled = this.opening;
    el.controls.hidden = !joined;
    this.renderControls();
    this.renderNotices();
    el.alone.textContent = t("media.alone");
    el.alone.hidden = !joined || [...this.peers.values()].some((p) => !p.sendOnly);
    if (el.local) this.renderCaption(el.local, null);
    for (const peer of this.peers.values()) this.renderTile(peer);
  }

  renderControls() {
    const el = this.el;
    const audio = this.local?.getAudioTracks().length > 0;
    const video = this.local?.getVideoTracks().length > 0;
    el.mic.hidden = !audio;
    el.mic.textContent = t(this.micOn && !this.mutedByChair ? "media.mic.mute" : "media.mic.unmute");
    el.mic.disabled = this.mutedByChair;
    el.mic.setAttribute("aria-pressed", String(!this.micOn || this.mutedByChair));
    el.camera.hidden = !video;
    el.camera.textContent = t(this.cameraOn ? "media.camera.off" : "media.camera.on");
    el.camera.setAttribute("aria-pressed", String(!this.cameraOn));
    el.upgrade.hidden = this.mode !== "viewer";
    el.upgrade.textContent = t(this.opening ? "media.joining" : "media.upgrade");
  }

  renderNotices() {
    const el = this.el;
    const device = this.deviceNotice;
    el.device.textContent = device ? t(device.key, device.params) : "";
    el.device.hidden = !device;
    el.device.classList.toggle("info", device?.key === "media.error.noCamera");
    const blocked = [...this.peers.values()].some((p) => p.failed);
    el.network.textContent = blocked ? t("media.error.network") : "";
    el.network.hidden = !blocked;
    el.chair.textContent = this.chairNotice ? t(this.chairNotice) : "";
    el.chair.hidden = !this.chairNotice;
  }

  renderTile(peer) {
    if (!peer.tile) return;
    const s = peer.stats;
    const root = peer.tile.root;
    root.dataset.state = peer.pc.connectionState;
    root.dataset.quality = s.quality;
    root.dataset.framesDecoded = String(s.framesDecoded);
    root.dataset.rtt = s.rtt ?? "";
    root.dataset.loss = s.loss ?? "";
    root.dataset.fps = s.fps ?? "";
    this.renderCaption(peer.tile, peer);
  }

  renderCaption(tile, peer) {
    const info = tile.info || {};
    const person = this.meeting.participants[info.subject];
    const name = info.name || person?.name || info.subject;
    const flags = tile.local
      ? [!this.micOn || this.mutedByChair ? t("media.micOff") : null, !this.cameraOn ? t("media.cameraOff") : null]
      : [];
    if (person?.muted) flags.push(t("media.chairMuted"));
    const state = peer && peer.pc.connectionState !== "connected" ? t(`media.state.${peer.pc.connectionState}`) : "";
    fill(tile.caption,
      h("span", { class: "tile-name" }, name, tile.local ? t("media.you") : ""),
      info.role && h("span", { class: `role role-${info.role}` }, t(`role.${info.role}`)),
      info.venue && h("span", { class: "tile-venue" }, info.venue),
      peer && this.badge(peer.stats),
      flags.filter(Boolean).map((f) => h("span", { class: "flag warn tile-flag" }, f)),
      state && h("span", { class: "tile-state", "data-testid": "tile-state" }, state),
      peer && this.chairButton(info, person, name));
  }

  badge(stats) {
    const pct = (x) => (x === null || x === undefined ? t("media.quality.na") : `${(x * 100).toFixed(1)}%`);
    const title = t("media.quality.title", {
      rtt: stats.rtt === null || stats.rtt === undefined ? t("media.quality.na") : `${Math.round(stats.rtt * 1000)} ms`,
      loss: pct(stats.loss),
      fps: stats.fps === null || stats.fps === undefined ? t("media.quality.na") : Math.round(stats.fps),
    });
    return h("span", {
      class: `quality quality-${stats.quality}`,
      title,
      "aria-label": `${t("media.quality.label")}: ${t(`media.quality.${stats.quality}`)} (${title})`,
      "data-testid": "quality",
    }, t(`media.quality.${stats.quality}`));
  }

  /** The chair's mute or unmute on someone else's tile, while the meeting allows it. */
  chairButton(info, person, name) {
    if (this.me?.role !== "chair" || !person || person.role === "chair") return null;
    const command = person.muted ? "meeting.unmute" : "meeting.mute";
    if (!meeting.allowedFor(this.meeting, "chair").includes(command)) return null;
    const action = t(person.muted ? "media.chair.unmute" : "media.chair.mute");
    return h("button", {
      type: "button",
      class: "small tile-mute",
      "data-testid": "tile-mute",
      "aria-label": t("media.chair.label", { action, name }),
      onclick: (e) => this.run(command, { subject: info.subject }, null, e.currentTarget),
    }, action);
  }
}
