"""Media benchmark: what the built-in aiortc backend costs per relayed viewer and per recorded
track, against one bare aiortc VP8 encode of the same frames (issue 7).

    .venv/bin/python bench/media.py               # 320x240@15 and 640x480@30, about 4 minutes
    .venv/bin/python bench/media.py --quick       # windows of 2 s, at most 4 viewers, ~90 s
    .venv/bin/python bench/media.py --profile 640x480@15 --window 8 --max-viewers 16

Defaults: both profiles, windows of 5 s after 2 s to settle, viewers up to 32, --timeout 420.
For each profile WxH@F:

1. Baseline, bare (no peer, no network, one thread): aiortc's own VP8 encoder
   (aiortc.codecs.get_encoder: Vp8Encoder, the codec browsers use by default) encodes 10 s of
   the synthetic frames: CPU seconds per second of video, i.e. cores (the median of 3). Beside
   it, to read the rest by: aiortc's VP8 decoder on what it encoded, and
   signaling.writer.SegmentWriter (H.264 by libx264 into Matroska: the recorder's work) on the
   same frames, video only.
2. Relay: in this process, a publisher (an aiortc peer sending the camera at F fps and aiortc's
   silent microphone) offers to an AiortcBackend(folder=None); then 2 publishers; then one
   leaves and V viewers join: recvonly offers with feed=the publisher, answered by
   backend.offer as the room's signal task would. The viewers live in a child process (aiortc
   too), so this process holds the publisher and the server's work alone. The figure per
   viewer is the slope of a least-squares line through the windows V = 0, 1, 2, 4 of this
   process's CPU against the viewers served, counted by the frames they got (4 viewers at half
   the rate count as 2): the backend's VP8 and Opus encode, packetising and SRTP for one.
3. Scaling: V goes on (8, 12, 16, ... up to --max-viewers) until the slowest viewer receives
   under 90 % of F or the machine's CPUs are 95 % busy; the largest V that held is reported
   with its CPU. The viewers' process shares the machine, so the estimate for one core
   given to the server is also printed: 1 / the figure per viewer.
4. Recording: AiortcBackend(folder=a temp dir) with 1, then 2 publishers (video + audio each);
   per recorded track: the CPU over the relay windows with as many publishers, summed over both
   windows, per track recorded. Last, 2 viewers join a recorded publisher, as in a room that
   records and relays at once.

Both rooms' caps are exactly WxH@F (the profile). The "Pacer" line checks, on the stamps
aiortc's encoder produces, that a sender at exactly the cap passes whole (an earlier Pacer let 2
frames in 3 through: this benchmark found it). The CPU figures are for viewers who get every
frame.

Every figure is process CPU (time.process_time: every thread, i.e. aiortc's encoder executor,
its decoder threads, the recorder's thread, x264's) over a fixed wall-clock window, in
CPU-seconds per second (= cores), and as a ratio to the bare encode. "loop" is the event-loop
thread alone (time.thread_time): near 1.0 it, not the CPUs, is the limit. "others": cores
the rest of the machine used meanwhile (/proc/stat; it is shared). "paced": frames the
viewers' CappedVideo held back; "stall": viewers that got no video in the window; "dead": the
backend's RTP senders aiortc reported dead (exception logged, sending stopped). The picture is
a textured wall with a textured box moving across it (a person before a wall): a flat picture
would cost an encoder almost nothing. Traffic stays on 127.0.0.1, without STUN or TURN; every
child dies with this process, and the run is bounded by --timeout. Exit status 1 when a
viewer's video stopped (a stalled viewer or a dead sender), 2 when the run ran out of time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import multiprocessing as mp
import os
import random
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import aiortc  # noqa: E402
import av  # noqa: E402
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.codecs import get_encoder  # noqa: E402
from aiortc.codecs.vpx import Vp8Decoder, vp8_depayload  # noqa: E402
from aiortc.jitterbuffer import JitterFrame  # noqa: E402
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack  # noqa: E402
from aiortc.rtcrtpparameters import RTCRtpCodecParameters  # noqa: E402
from av.video.frame import VideoFrame  # noqa: E402
from common import arguments, die_with_parent, run_bounded, say  # noqa: E402  (bench/common.py)
from media_peers import loopback, tone  # noqa: E402  (tests/media_peers.py)

from signaling.aiortc_backend import AiortcBackend, pin_host_addresses  # noqa: E402
from signaling.backend import Peer, RecordedFile  # noqa: E402
from signaling.relay import Caps, Pacer  # noqa: E402
from signaling.writer import SegmentWriter  # noqa: E402

VIDEO_CLOCK = Fraction(1, 90_000)
VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90_000, payloadType=96)
HOLD = 0.9  # a viewer keeps up while it receives at least this share of the rate
SATURATED = 0.95  # of the CPUs
BARE_SECONDS = 10.0  # of video for each bare measurement
FIRST_VIEWERS = (1, 2, 4)  # the windows the figure per viewer is fitted on (with V = 0)


@dataclass(frozen=True)
class Profile:
    width: int
    height: int
    fps: int

    @classmethod
    def parse(cls, text: str) -> Profile:
        size, _, rate = text.partition("@")
        width, _, height = size.partition("x")
        return cls(int(width), int(height), int(rate or 15))

    def __str__(self) -> str:
        return f"{self.width}x{self.height}@{self.fps}"


# ---------------------------------------------------------------------------------------------
# the synthetic camera
# ---------------------------------------------------------------------------------------------


class Picture:
    """Two seconds of frames, repeated: a textured wall and a textured box (w/3 x h/2) that
    swings across it while its texture scrolls. Built once, so a frame costs a copy."""

    def __init__(self, profile: Profile, seed: int = 7):
        self.profile = profile
        rng = random.Random(seed)
        w, h = profile.width, profile.height
        self.box_w, self.box_h = w // 3 // 2 * 2, h // 2 // 2 * 2
        self.wall = [_texture(w, y, rng, 40) for y in range(h)]
        self.skin = [_texture(self.box_w, y, rng, 90) for y in range(self.box_h)]
        self.chroma_wall = [
            bytes(96 + (x + y) // 8 % 64 for x in range(w // 2)) for y in range(h // 2)
        ]
        self.frames = [self._planes(i) for i in range(2 * profile.fps)]

    def _planes(self, i: int) -> tuple[bytes, bytes, bytes]:
        w, h = self.profile.width, self.profile.height
        swing = 0.5 + 0.5 * math.sin(math.pi * i / self.profile.fps)  # once in 2 s
        x0 = int((w - self.box_w) * swing) // 2 * 2
        y0 = (h - self.box_h) // 2 // 2 * 2
        luma = b"".join(
            row[:x0] + self.skin[(y - y0 + i) % self.box_h] + row[x0 + self.box_w :]
            if y0 <= y < y0 + self.box_h
            else row
            for y, row in enumerate(self.wall)
        )
        tint = [bytes([150]) * (self.box_w // 2), bytes([110]) * (self.box_w // 2)]
        chroma = []
        for shade in tint:
            rows = (
                row[: x0 // 2] + shade + row[(x0 + self.box_w) // 2 :]
                if y0 // 2 <= y < (y0 + self.box_h) // 2
                else row
                for y, row in enumerate(self.chroma_wall)
            )
            chroma.append(b"".join(rows))
        return luma, chroma[0], chroma[1]

    def frame(self, n: int) -> VideoFrame:
        p = self.profile
        frame = VideoFrame(p.width, p.height, "yuv420p")
        for plane, data in zip(frame.planes, self.frames[n % len(self.frames)], strict=True):
            plane.update(_padded(data, plane.width, plane.line_size))
        frame.pts, frame.time_base = round(Fraction(n, p.fps) / VIDEO_CLOCK), VIDEO_CLOCK
        return frame


def _padded(data: bytes, width: int, line_size: int) -> bytes:
    """Rows of ``width`` bytes laid out ``line_size`` apart, as the frame's plane holds them."""
    if line_size == width:
        return data
    pad = bytes(line_size - width)
    return b"".join(data[i : i + width] + pad for i in range(0, len(data), width))


def _texture(width: int, y: int, rng: random.Random, depth: int) -> bytes:
    """A row of a gradient with grain and soft vertical stripes."""
    grain = rng.randbytes(width)
    return bytes(
        (40 + (x * 3 + y * 2) % 120 + grain[x] % depth + (32 if x // 24 % 2 else 0)) % 236 + 16
        for x in range(width)
    )


class Camera(MediaStreamTrack):
    """The picture at its profile's rate, stamped with the time each frame was due, as
    tests/media_peers.Pattern; ``sent`` counts the frames handed to the encoder."""

    kind = "video"

    def __init__(self, picture: Picture):
        super().__init__()
        self.picture = picture
        self.sent = 0
        self.start: float | None = None

    async def recv(self) -> VideoFrame:
        if self.start is None:
            self.start = time.monotonic()
        due = self.start + self.sent / self.picture.profile.fps
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        frame = self.picture.frame(self.sent)
        self.sent += 1
        return frame


# ---------------------------------------------------------------------------------------------
# 1. the bare baseline
# ---------------------------------------------------------------------------------------------


@dataclass
class Bare:
    encode: float  # cores: CPU seconds per second of video
    decode: float
    record: float
    paced_rtp: float = 1.0  # the share a Pacer at the frame rate admits: the RTP stamps
    paced_rebased: float = 1.0  # the stamps an encoder left on the frames it encoded


def bare(picture: Picture, folder: Path) -> Bare:
    """Each the median of 3 runs over BARE_SECONDS of video, nothing else running."""
    fps = picture.profile.fps
    frames = [picture.frame(n) for n in range(round(BARE_SECONDS * fps))]
    encoded: list[tuple[bytes, int]] = []

    def encode() -> None:
        encoder = get_encoder(VP8)
        encoded.clear()
        for frame in frames:
            payloads, stamp = encoder.encode(frame)
            encoded.append((b"".join(vp8_depayload(p) for p in payloads), stamp))

    def decode() -> None:
        decoder = Vp8Decoder()
        for data, stamp in encoded:
            decoder.decode(JitterFrame(data, stamp))

    def record() -> None:
        writer = SegmentWriter(folder / "bare.mkv", audio=False, video=True)
        for n, frame in enumerate(frames):
            writer.write(frame, n / fps)
        writer.close()
        (folder / "bare.mkv").unlink()

    result = Bare(_cpu_median(encode) / BARE_SECONDS, _cpu_median(decode) / BARE_SECONDS, 0.0)
    # The encoder restamps the frames it encodes (PyAV rebases them to its time base, in
    # place): read the stamps now, before the writer restamps them again.
    result.paced_rtp = paced([Fraction(stamp) * VIDEO_CLOCK for _, stamp in encoded], fps)
    result.paced_rebased = paced([Fraction(f.pts or 0) * (f.time_base or 0) for f in frames], fps)
    result.record = _cpu_median(record) / BARE_SECONDS
    return result


def paced(stamps: list[Fraction], fps: int) -> float:
    """The share of ``stamps`` signaling.relay.Pacer lets through at ``fps``."""
    pacer = Pacer(float(fps))
    return sum(pacer.admit(at) for at in stamps) / len(stamps)


def _cpu_median(work: Callable[[], None]) -> float:
    runs = []
    for _ in range(3):
        started = time.process_time()
        work()
        runs.append(time.process_time() - started)
    return sorted(runs)[1]


# ---------------------------------------------------------------------------------------------
# the viewers, in a child process
# ---------------------------------------------------------------------------------------------


@dataclass
class Viewer:
    pc: RTCPeerConnection
    video: int = 0  # frames received
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def receive(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                self.video += track.kind == "video"

    def decoder_threads(self) -> list[threading.Thread]:
        # aiortc decodes each received track in a thread of its own; it names no accessor.
        found = (
            getattr(r, "_RTCRtpReceiver__decoder_thread", None) for r in self.pc.getReceivers()
        )
        return [t for t in found if isinstance(t, threading.Thread)]


def viewers_main(pipe: Any) -> None:
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pin_host_addresses(["127.0.0.1"])
    asyncio.run(_viewers(pipe))


async def _viewers(pipe: Any) -> None:
    """Serve the parent's commands: offer N, answer them, read, exit."""
    viewers: list[Viewer] = []
    fresh: list[Viewer] = []
    while True:
        command, argument = await asyncio.to_thread(pipe.recv)
        if command == "offer":
            fresh = [await _viewer() for _ in range(argument)]
            viewers += fresh
            pipe.send([v.pc.localDescription.sdp for v in fresh])
        elif command == "answer":
            for viewer, sdp in zip(fresh, argument, strict=True):
                await viewer.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
            pipe.send(None)
        elif command == "read":
            decoders = [t for v in viewers for t in v.decoder_threads()]
            decode = sum(map(thread_cpu, decoders))
            pipe.send((time.process_time(), decode, [v.video for v in viewers]))
        else:
            for viewer in viewers:
                await viewer.pc.close()
            pipe.send(None)
            return


async def _viewer() -> Viewer:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    viewer = Viewer(pc)

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        viewer.tasks.append(asyncio.create_task(viewer.receive(track)))

    pc.addTransceiver("audio", direction="recvonly")
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return viewer


class Viewers:
    """The parent's handle on the viewers' process (started on the first call)."""

    def __init__(self) -> None:
        self.count = 0
        self.pipe: Any = None
        self.process: Any = None

    async def call(self, command: str, argument: Any = None, timeout: float = 30.0) -> Any:
        if self.process is None:
            context = mp.get_context("spawn")
            self.pipe, child = context.Pipe()
            self.process = context.Process(target=viewers_main, args=(child,), daemon=True)
            self.process.start()

        def exchange() -> Any:
            self.pipe.send((command, argument))
            if not self.pipe.poll(timeout):
                raise TimeoutError(f"the viewers' process did not answer {command}")
            return self.pipe.recv()

        return await asyncio.to_thread(exchange)

    async def read(self) -> tuple[float, float, list[int]]:
        if self.process is None:
            return 0.0, 0.0, []
        cpu, decode, counts = await self.call("read")
        return cpu, decode, counts

    async def close(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(Exception):
            await self.call("exit", timeout=10)
        await asyncio.to_thread(self.process.join, 5)
        if self.process.is_alive():
            self.process.kill()


# ---------------------------------------------------------------------------------------------
# the room: publishers here, viewers there, one backend
# ---------------------------------------------------------------------------------------------


class Room:
    """One AiortcBackend and the peers that offer to it, as the room's signal task would."""

    def __init__(self, backend: AiortcBackend, picture: Picture):
        self.backend = backend
        self.picture = picture
        self.cameras: dict[str, Camera] = {}
        self.pcs: dict[str, tuple[str, RTCPeerConnection]] = {}  # subject -> session, pc
        self.viewers = Viewers()

    async def publish(self, subject: str) -> None:
        camera = Camera(self.picture)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTrack(camera)
        pc.addTrack(tone())
        await pc.setLocalDescription(await pc.createOffer())
        session = f"{subject}-session"
        answer = await self.backend.offer(_peer(subject), session, pc.localDescription.sdp, None)
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        self.pcs[subject] = (session, pc)
        self.cameras[subject] = camera

    async def view(self, feed: str, count: int) -> None:
        offers = await self.viewers.call("offer", count)
        answers = []
        for sdp in offers:
            self.viewers.count += 1
            subject = f"viewer-{self.viewers.count}"
            answers.append(await self.backend.offer(_peer(subject), subject, sdp, feed))
        await self.viewers.call("answer", answers)

    async def leave(self, subject: str) -> None:
        session, pc = self.pcs.pop(subject)
        await self.backend.bye(subject, session)
        await pc.close()
        self.cameras.pop(subject, None)

    async def flowing(self, timeout: float) -> bool:
        """Until every camera and viewer has had a second of video; False if one has not
        within ``timeout`` (a viewer whose video froze: the window still measures it)."""
        fps = self.picture.profile.fps
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end:
            _, _, counts = await self.viewers.read()
            if all(c.sent >= fps for c in self.cameras.values()) and all(n >= fps for n in counts):
                return True
            await asyncio.sleep(0.1)
        return False

    async def close(self) -> list[RecordedFile]:
        files = await self.backend.close()
        for _, pc in self.pcs.values():
            await pc.close()
        await self.viewers.close()
        return files


def _peer(subject: str) -> Peer:
    return Peer(subject, subject, "expert", None, f"connection-{subject}")


# ---------------------------------------------------------------------------------------------
# a measured window
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    at: float  # monotonic
    cpu: float  # this process's CPU seconds
    loop: float  # its event loop's thread
    viewers_cpu: float  # the viewers' process
    machine: float  # every CPU's busy seconds (/proc/stat)
    sent: tuple[int, ...]  # per camera
    received: tuple[int, ...]  # per viewer, video frames
    paced: int  # frames the viewers' CappedVideo held back


@dataclass(frozen=True)
class Sample:
    label: str
    publishers: int
    viewers: int
    cores: float  # this process: the publishers and the backend
    loop: float
    viewers_cores: float  # the viewers' process
    others: float  # cores the rest of the machine used meanwhile (it is shared)
    sent_fps: float  # the slowest publisher
    mean_fps: float  # per viewer
    worst_fps: float
    paced: int
    stalled: int  # viewers that received no video in the window
    failed: int  # the backend's video senders that died so far
    rss: float  # MiB of this process, at the end

    def delivered(self, fps: int) -> float:
        """Viewers that got every frame, as many as the frames say (4 at half rate: 2)."""
        return self.viewers * self.mean_fps / fps if self.viewers else 0.0


class SenderFailures(logging.Handler):
    """Counts the RTP senders aiortc reports dead (it logs the exception and stops sending)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.failures = 0
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.failures += 1
        self.last = record.getMessage().strip().splitlines()[-1][-120:]


SENDERS = SenderFailures()


def thread_cpu(thread: threading.Thread) -> float:
    if thread.ident is None or not thread.is_alive():
        return 0.0
    with contextlib.suppress(OSError, ProcessLookupError):
        return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    return 0.0


async def read(room: Room) -> Reading:
    viewers_cpu, _, counts = await room.viewers.read()
    return Reading(
        at=time.monotonic(),
        cpu=time.process_time(),
        loop=time.thread_time(),
        viewers_cpu=viewers_cpu,
        machine=machine_busy(),
        sent=tuple(c.sent for c in room.cameras.values()),
        received=tuple(counts),
        paced=sum(v.dropped for v in room.backend.viewers),
    )


def machine_busy() -> float:
    """Seconds every CPU spent busy since boot (all but idle and iowait)."""
    with open("/proc/stat") as stat:
        ticks = [int(x) for x in stat.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def window(room: Room, label: str, args: argparse.Namespace) -> Sample:
    """Settle, then measure for ``args.window`` seconds of wall clock."""
    await room.flowing(args.connect_timeout)
    await asyncio.sleep(args.settle)  # encoders ramp their bitrate; a new viewer's keyframe
    start = await read(room)
    await asyncio.sleep(args.window)
    end = await read(room)
    wall = end.at - start.at
    sent = [(b - a) / wall for a, b in zip(start.sent, end.sent, strict=True)]
    got = [(b - a) / wall for a, b in zip(start.received, end.received, strict=True)]
    cores = (end.cpu - start.cpu) / wall
    viewers_cores = (end.viewers_cpu - start.viewers_cpu) / wall
    sample = Sample(
        label=label,
        publishers=len(room.cameras),
        viewers=len(got),
        cores=cores,
        loop=(end.loop - start.loop) / wall,
        viewers_cores=viewers_cores,
        others=max(0.0, (end.machine - start.machine) / wall - cores - viewers_cores),
        sent_fps=min(sent, default=float("nan")),
        mean_fps=sum(got) / len(got) if got else float("nan"),
        worst_fps=min(got, default=float("nan")),
        paced=end.paced - start.paced,
        stalled=sum(n == 0 for n in got),
        failed=SENDERS.failures,
        rss=rss_mib(),
    )
    say(
        f"  {label}: {sample.cores:.3f} cores (loop {sample.loop:.2f}; viewers' process "
        f"{sample.viewers_cores:.3f}, others {sample.others:.2f}), viewers "
        f"{sample.mean_fps:.1f} fps (worst {sample.worst_fps:.1f}, {sample.stalled} stalled), "
        f"senders dead {sample.failed}"
    )
    return sample


# ---------------------------------------------------------------------------------------------
# one profile
# ---------------------------------------------------------------------------------------------


@dataclass
class Result:
    profile: Profile
    bare: Bare
    relay: list[Sample] = field(default_factory=list)  # 1 and 2 publishers, no viewer
    viewing: list[Sample] = field(default_factory=list)  # 1 publisher, V = 0, 1, 2, 4, ...
    recording: list[Sample] = field(default_factory=list)  # 1, 2 publishers; + 2 viewers
    recorded: list[tuple[str, int, float]] = field(default_factory=list)  # name, frames, s
    stopped: str = ""  # why the scaling stopped
    failure: str = ""  # the last exception a dying sender logged

    @property
    def broken(self) -> bool:
        return any(s.stalled or s.failed for s in [*self.relay, *self.viewing, *self.recording])


async def run_profile(profile: Profile, args: argparse.Namespace, folder: Path) -> Result:
    picture = Picture(profile)
    SENDERS.failures, SENDERS.last = 0, ""
    say(f"{profile}: bare encode, decode and recording write of {BARE_SECONDS:g} s of video")
    result = Result(profile, bare(picture, folder))
    caps = Caps(profile.width, profile.height, float(profile.fps))
    room = Room(AiortcBackend(None, caps=caps), picture)
    try:
        await relay(room, result, args)
    finally:
        await room.close()
    room = Room(AiortcBackend(folder / str(profile), caps=caps), picture)
    try:
        await record(room, result, args)
    finally:
        files = await room.close()
    result.recorded = [(f.name, f.video_frames, f.seconds) for f in files]
    result.failure = SENDERS.last
    return result


async def relay(room: Room, result: Result, args: argparse.Namespace) -> None:
    say(f"{result.profile}: relay (AiortcBackend without a folder)")
    await room.publish("publisher-1")
    result.relay.append(await window(room, "1 publisher", args))
    await room.publish("publisher-2")
    result.relay.append(await window(room, "2 publishers", args))
    await room.leave("publisher-2")
    result.viewing.append(result.relay[0])
    for target in viewer_steps(args.max_viewers):
        if len(result.viewing) > len(FIRST_VIEWERS) and (stop := held(result, args)):
            result.stopped = stop
            return
        await room.view("publisher-1", target - room.viewers.count)
        result.viewing.append(await window(room, f"V={target}", args))
    result.stopped = held(result, args) or f"--max-viewers {args.max_viewers} reached"


def viewer_steps(most: int) -> list[int]:
    steps = [1, 2, 4, 8, *range(12, most + 1, 4)]
    return [v for v in steps if v <= most]


def held(result: Result, args: argparse.Namespace) -> str:
    """Why the last window ends the scaling ("" if it does not)."""
    last, fps = result.viewing[-1], result.profile.fps
    if last.viewers and last.worst_fps < HOLD * fps:
        return f"V={last.viewers}: the slowest viewer got {last.worst_fps:.1f} fps"
    busy = last.cores + last.viewers_cores + last.others
    if busy >= SATURATED * (os.cpu_count() or 1):
        return f"V={last.viewers}: the machine's CPUs were busy ({busy:.2f} cores)"
    if time.monotonic() > args.deadline:
        return f"V={last.viewers}: out of time (--timeout)"
    return ""


async def record(room: Room, result: Result, args: argparse.Namespace) -> None:
    say(f"{result.profile}: recording (AiortcBackend with a folder)")
    await room.publish("publisher-1")
    result.recording.append(await window(room, "1 publisher recorded", args))
    await room.publish("publisher-2")
    result.recording.append(await window(room, "2 publishers recorded", args))
    await room.view("publisher-1", 2)
    result.recording.append(await window(room, "2 recorded + 2 viewers", args))


# ---------------------------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------------------------


def slope(points: list[tuple[float, float]]) -> float:
    """Least squares: the y added per x."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else float("nan")


@dataclass(frozen=True)
class Figures:
    per_viewer: float  # cores of the server's process
    viewer_side: float  # cores of the viewers' process, per viewer (its receive and decode)
    per_track: float  # cores per recorded track (video + audio)
    most: Sample | None  # the largest V that kept >= 90 %
    within_core: Sample | None  # the largest V that kept >= 90 % with the server in one core

    @property
    def per_core(self) -> float:
        return 1 / self.per_viewer if self.per_viewer > 0 else float("inf")


def figures(r: Result) -> Figures:
    fit = [s for s in r.viewing if s.viewers in (0, *FIRST_VIEWERS)]
    extra = [
        (rec.cores - base.cores, rec.publishers)
        for rec, base in zip(r.recording[:2], r.relay, strict=True)
    ]
    kept = [s for s in r.viewing[1:] if s.worst_fps >= HOLD * r.profile.fps]
    return Figures(
        per_viewer=slope([(s.delivered(r.profile.fps), s.cores) for s in fit]),
        viewer_side=slope([(s.delivered(r.profile.fps), s.viewers_cores) for s in fit]),
        per_track=sum(d for d, _ in extra) / sum(n for _, n in extra),
        most=max(kept, key=lambda s: s.viewers, default=None),
        within_core=max((s for s in kept if s.cores <= 1.0), key=lambda s: s.viewers, default=None),
    )


def table(args: argparse.Namespace, results: list[Result]) -> str:
    lines = [
        "",
        f"bidroom media: aiortc {aiortc.__version__}, PyAV {av.__version__}; {os.cpu_count()} "
        f"CPUs; windows of {args.window:g} s after {args.settle:g} s; publishers and backend in "
        "one process, viewers in another",
    ]
    for r in results:
        lines += profile_table(r)
    lines += ["", conclusion(results)]
    if any(r.broken for r in results):
        lines.append("FAILED: a viewer's video stopped (stall / dead columns)")
    return "\n".join(lines)


def profile_table(r: Result) -> list[str]:
    f, base, fps = figures(r), r.bare.encode, r.profile.fps

    def row(label: str, cores: float, tail: str = "") -> str:
        return f"  {label:46}{cores:>7.3f}{cores / base:>8.1f}x{tail}"

    def measured(s: Sample) -> str:
        seen = f"{s.mean_fps:>6.1f}{s.worst_fps:>6.1f}" if s.viewers else f"{'-':>6}{'-':>6}"
        return row(
            s.label,
            s.cores,
            f"{s.loop:>6.2f}{s.viewers_cores:>8.3f}{s.others:>7.2f}{s.sent_fps:>6.1f}{seen}"
            f"{s.paced:>6}{s.stalled:>6}{s.failed:>5}{s.rss:>6.0f}",
        )

    lines = [
        "",
        f"{r.profile}: relay and recording caps {r.profile}",
        f"  {'':46}{'cores':>7}{'/encode':>9}{'loop':>6}{'viewers':>8}{'others':>7}"
        f"{'sent':>6}{'recv':>6}{'worst':>6}{'paced':>6}{'stall':>6}{'dead':>5}{'MiB':>6}",
        row("baseline: bare VP8 encode (aiortc Vp8Encoder)", base),
        row("bare VP8 decode of those frames", r.bare.decode),
        row("bare SegmentWriter (H.264 + Matroska), video", r.bare.record),
        *(measured(s) for s in [*r.relay, *r.viewing[1:], *r.recording]),
        row("per relayed viewer (the server's process)", f.per_viewer),
        row("  a viewer's own receive + decode (theirs)", f.viewer_side),
        row("per recorded track (video + audio)", f.per_track),
    ]
    most = f.most
    held = (
        f"up to V={most.viewers} (server {most.cores:.2f} cores, loop {most.loop:.2f}; viewers "
        f"{most.viewers_cores:.2f})"
        if most
        else "none"
    )
    core = f"V={f.within_core.viewers}" if f.within_core else "none"
    lines += [
        f"  viewers at >= {HOLD:.0%} of {fps} fps: {held}; server within 1 core: {core}",
        f"  stopped: {r.stopped}; one core for the server alone: ~{f.per_core:.0f} viewers",
        "  recorded: "
        + ", ".join(f"{n} {frames} frames in {s:.1f} s" for n, frames, s in r.recorded),
        f"  Pacer at caps = the rate lets through {r.bare.paced_rtp:.0%} of the frames of an "
        f"aiortc publisher, {r.bare.paced_rebased:.0%} of frames an encoder restamped",
    ]
    if r.failure:
        lines.append(f"  a video sender died: {r.failure}")
    return lines


def conclusion(results: list[Result]) -> str:
    parts = []
    for r in results:
        f = figures(r)
        parts.append(
            f"{r.profile}: a viewer {f.per_viewer / r.bare.encode:.1f} bare encodes "
            f"(~{f.per_core:.0f} per core), a recorded track {f.per_track / r.bare.encode:.1f}"
        )
    return "conclusion: " + "; ".join(parts)


async def main_async(args: argparse.Namespace) -> int:
    args.deadline = time.monotonic() + 0.8 * args.timeout
    senders = logging.getLogger("aiortc.rtcrtpsender")
    senders.addHandler(SENDERS)
    senders.propagate = False  # counted and shown in the table, not printed as they come
    results = []
    with tempfile.TemporaryDirectory(prefix="bidroom-media-") as tmp, loopback():
        for text in args.profile:
            results.append(await run_profile(Profile.parse(text), args, Path(tmp)))
    print(table(args, results), flush=True)
    return 1 if any(r.broken for r in results) else 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = arguments(__doc__, quick="windows of 2 s, at most 4 viewers", timeout=420.0)
    parser.add_argument(
        "--profile",
        action="append",
        help="WxH@FPS, repeatable (default: 320x240@15 and 640x480@30)",
    )
    parser.add_argument("--window", type=float, default=5.0, help="seconds measured per step")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds before each window")
    parser.add_argument("--max-viewers", type=int, default=32)
    parser.add_argument("--connect-timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    args.profile = args.profile or ["320x240@15", "640x480@30"]
    if args.quick:
        args.window, args.settle, args.max_viewers, args.timeout = 2.0, 1.0, 4, 150.0
    return args


if __name__ == "__main__":
    sys.exit(run_bounded(main_async, parse()))
