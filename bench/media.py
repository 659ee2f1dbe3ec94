"""Media benchmark: what the built-in aiortc backend costs per relayed viewer and per recorded
track, against one bare aiortc VP8 encode of the same frames (issue 7).

    .venv/bin/python bench/media.py               # 320x240@15 and 640x480@30, about 4 minutes
    .venv/bin/python bench/media.py --quick       # windows of 2 s, at most 4 viewers
    .venv/bin/python bench/media.py --profile 640x480@15 --window 8 --max-viewers 16

For each profile (the room's caps are set to it, so a viewer gets what the publisher sends):

1. Baseline, bare (no peer, no network, this thread): aiortc's own VP8 encoder
   (aiortc.codecs.get_encoder: Vp8Encoder, the codec browsers use by default) encodes 10 s of
   the synthetic frames; CPU seconds per second of video, i.e. cores. Beside it, for reading the
   rest: aiortc's VP8 decoder on what it encoded, and signaling.writer.SegmentWriter (H.264 by
   libx264 into Matroska, the recorder's work) on the same frames, video only.
2. Relay: a publisher (an aiortc peer sending a camera at the profile's rate, and aiortc's
   silent microphone) offers to an AiortcBackend(folder=None) in this process; then 2
   publishers; then one of them leaves and V viewers (recvonly offers with feed=the publisher)
   join, V = 0, 1, 2, 4. The figure per viewer is the slope of a least-squares line through
   those four windows of process CPU minus the viewers' own decoding (read on their aiortc
   decoder threads). What it still holds: the backend's work for a viewer (its VP8 and Opus
   encodes, packetising, SRTP) and the viewer's RTP receive on the event loop, so it is an
   upper bound for the server.
3. Scaling: V goes on (8, 12, 16, ... up to --max-viewers) until the slowest viewer receives
   under 90 % of the profile's rate or the process uses 95 % of the CPUs; the largest V that
   held is reported with its CPU. The publisher, the backend and every viewer share this
   process (and the viewers' decoding with it), so the estimate for a core given to the
   backend alone is 1 / the figure per viewer.
4. Recording: AiortcBackend(folder=a temp dir) with 1, then 2 publishers (video + audio each);
   the figure per recorded track is the extra CPU over the relay windows with as many
   publishers, summed over both windows, per track recorded. The recorder threads' own CPU
   (H.264 + Opus encoding and muxing) is read apart. Last, 2 viewers join the recorded
   publisher, as in a room that records and relays at once.

Every figure is process CPU (time.process_time: every thread, i.e. aiortc's encoder executor,
its decoder threads and the recorder's thread) over a fixed wall-clock window (--window s,
after --settle s), in CPU-seconds per second (= cores), and as a ratio to the bare encode.
"loop" is the event-loop thread alone (time.thread_time): near 1.0 it, not the CPUs, is the
limit. The synthetic picture is a textured background with a textured box moving across it (a
person before a wall): a flat picture would cost an encoder almost nothing. Traffic stays on
127.0.0.1, without TURN or STUN.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
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
from aiortc.mediastreams import MediaStreamTrack  # noqa: E402
from aiortc.rtcrtpparameters import RTCRtpCodecParameters  # noqa: E402
from av.video.frame import VideoFrame  # noqa: E402
from common import arguments, run_bounded, say  # noqa: E402  (bench/common.py)
from media_peers import drain, loopback, tone, until  # noqa: E402  (tests/media_peers.py)

from signaling.aiortc_backend import AiortcBackend  # noqa: E402
from signaling.backend import Peer  # noqa: E402
from signaling.relay import CappedVideo, Caps  # noqa: E402
from signaling.writer import SegmentWriter  # noqa: E402

VIDEO_CLOCK = Fraction(1, 90_000)
VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90_000, payloadType=96)
HOLD = 0.9  # a viewer keeps up while it receives at least this share of the rate
SATURATED = 0.95  # of the CPUs
BARE_SECONDS = 10.0  # of video for the bare encode (the median of 3 runs)
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
        self.chroma_wall = [bytes(96 + (x + y) // 8 % 64 for x in range(w // 2)) for y in range(h // 2)]
        self.frames = [self._planes(i) for i in range(2 * profile.fps)]

    def _planes(self, i: int) -> tuple[bytes, bytes, bytes]:
        w, h = self.profile.width, self.profile.height
        swing = 0.5 + 0.5 * math.sin(2 * math.pi * i / len(range(2 * self.profile.fps)))
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
        data = b"".join(self.frames[n % len(self.frames)])
        frame = VideoFrame.from_bytes(data, p.width, p.height, format="yuv420p")
        frame.pts, frame.time_base = round(Fraction(n, p.fps) / VIDEO_CLOCK), VIDEO_CLOCK
        return frame


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


def bare(picture: Picture, folder: Path) -> Bare:
    """Median of 3 runs of each over BARE_SECONDS of video, nothing else running."""
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

    return Bare(*(_cpu_median(work) / BARE_SECONDS for work in (encode, decode, record)))


def _cpu_median(work: Callable[[], None]) -> float:
    runs = []
    for _ in range(3):
        started = time.process_time()
        work()
        runs.append(time.process_time() - started)
    return sorted(runs)[1]


# ---------------------------------------------------------------------------------------------
# the room: publishers and viewers around one backend, all in this process
# ---------------------------------------------------------------------------------------------


@dataclass
class Viewer:
    pc: RTCPeerConnection
    counts: dict[str, int] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def decoder_threads(self) -> list[threading.Thread]:
        # aiortc decodes each received track in a thread of its own; it names no accessor.
        found = (getattr(r, "_RTCRtpReceiver__decoder_thread", None) for r in self.pc.getReceivers())
        return [t for t in found if isinstance(t, threading.Thread)]


class Room:
    """One AiortcBackend and the peers that offer to it, as the room's signal task would."""

    def __init__(self, backend: AiortcBackend, picture: Picture):
        self.backend = backend
        self.picture = picture
        self.cameras: dict[str, Camera] = {}
        self.viewers: list[Viewer] = []
        self.pcs: dict[str, tuple[str, RTCPeerConnection]] = {}  # subject -> session, pc

    async def publish(self, subject: str) -> None:
        camera = Camera(self.picture)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTrack(camera)
        pc.addTrack(tone())
        await self._negotiate(subject, pc, None)
        self.cameras[subject] = camera

    async def view(self, feed: str) -> None:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        viewer = Viewer(pc)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            viewer.tasks.append(asyncio.create_task(drain(track, viewer.counts)))

        pc.addTransceiver("audio", direction="recvonly")
        pc.addTransceiver("video", direction="recvonly")
        await self._negotiate(f"viewer-{len(self.viewers) + 1}", pc, feed)
        self.viewers.append(viewer)

    async def _negotiate(self, subject: str, pc: RTCPeerConnection, feed: str | None) -> None:
        session = f"{subject}-session"
        await pc.setLocalDescription(await pc.createOffer())
        peer = Peer(subject, subject, "expert", None, f"connection-{subject}")
        answer = await self.backend.offer(peer, session, pc.localDescription.sdp, feed)
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        self.pcs[subject] = (session, pc)

    async def leave(self, subject: str) -> None:
        session, pc = self.pcs.pop(subject)
        await self.backend.bye(subject, session)
        await pc.close()
        self.cameras.pop(subject, None)

    async def flowing(self, timeout: float) -> None:
        """Until every viewer and the backend have had a second of video."""
        fps = self.picture.profile.fps
        await until(lambda: all(v.counts.get("video", 0) >= fps for v in self.viewers), timeout)
        await until(lambda: all(c.sent >= fps for c in self.cameras.values()), timeout)

    async def close(self) -> None:
        await self.backend.close()
        for _, pc in self.pcs.values():
            await pc.close()
        tasks = [t for v in self.viewers for t in v.tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# ---------------------------------------------------------------------------------------------
# a measured window
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    at: float  # monotonic
    cpu: float  # process CPU seconds
    loop: float  # the event loop's thread
    decode: float  # the viewers' decoder threads
    recorder: float  # the recorder threads
    sent: tuple[int, ...]  # per camera
    received: tuple[int, ...]  # per viewer, video frames
    dropped: int  # frames the viewers' CappedVideo let pass by (pacer)


@dataclass(frozen=True)
class Sample:
    label: str
    publishers: int
    viewers: int
    cores: float
    loop: float
    decode: float
    recorder: float
    sent_fps: float  # the slowest publisher
    mean_fps: float  # per viewer
    worst_fps: float
    dropped: int
    rss: float  # MiB, at the end

    @property
    def server(self) -> float:
        """The process without the viewers' decoding."""
        return self.cores - self.decode


def thread_cpu(thread: threading.Thread) -> float:
    if thread.ident is None or not thread.is_alive():
        return 0.0
    with contextlib.suppress(OSError, ProcessLookupError):
        return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    return 0.0


def read(room: Room) -> Reading:
    decoders = [t for v in room.viewers for t in v.decoder_threads()]
    recorders = [t for t in threading.enumerate() if t.name.startswith("recorder")]
    return Reading(
        at=time.monotonic(),
        cpu=time.process_time(),
        loop=time.thread_time(),
        decode=sum(map(thread_cpu, decoders)),
        recorder=sum(map(thread_cpu, recorders)),
        sent=tuple(c.sent for c in room.cameras.values()),
        received=tuple(v.counts.get("video", 0) for v in room.viewers),
        dropped=sum(v.dropped for v in room.backend.viewers),
    )


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def window(room: Room, label: str, args: argparse.Namespace) -> Sample:
    """Settle, then measure for ``args.window`` seconds of wall clock."""
    await room.flowing(args.connect_timeout)
    await asyncio.sleep(args.settle)  # encoders ramp their bitrate; a new viewer's keyframe
    start = read(room)
    await asyncio.sleep(args.window)
    end = read(room)
    wall = end.at - start.at
    sent = [(b - a) / wall for a, b in zip(start.sent, end.sent, strict=True)]
    got = [(b - a) / wall for a, b in zip(start.received, end.received, strict=True)]
    sample = Sample(
        label=label,
        publishers=len(room.cameras),
        viewers=len(room.viewers),
        cores=(end.cpu - start.cpu) / wall,
        loop=(end.loop - start.loop) / wall,
        decode=(end.decode - start.decode) / wall,
        recorder=(end.recorder - start.recorder) / wall,
        sent_fps=min(sent, default=float("nan")),
        mean_fps=sum(got) / len(got) if got else float("nan"),
        worst_fps=min(got, default=float("nan")),
        dropped=end.dropped - start.dropped,
        rss=rss_mib(),
    )
    say(
        f"  {label}: {sample.cores:.3f} cores (loop {sample.loop:.2f}, viewers' decode "
        f"{sample.decode:.3f}), viewers {sample.mean_fps:.1f} fps (worst {sample.worst_fps:.1f})"
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


async def run_profile(profile: Profile, args: argparse.Namespace, folder: Path) -> Result:
    picture = Picture(profile)
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
        while len(room.viewers) < target:
            await room.view("publisher-1")
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
    if last.cores >= SATURATED * (os.cpu_count() or 1):
        return f"V={last.viewers}: the process used {last.cores:.2f} cores"
    if time.monotonic() > args.deadline:
        return f"V={last.viewers}: out of time (--timeout)"
    return ""


async def record(room: Room, result: Result, args: argparse.Namespace) -> None:
    say(f"{result.profile}: recording (AiortcBackend with a folder)")
    await room.publish("publisher-1")
    result.recording.append(await window(room, "1 publisher recorded", args))
    await room.publish("publisher-2")
    result.recording.append(await window(room, "2 publishers recorded", args))
    for _ in range(2):
        await room.view("publisher-1")
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
    per_viewer: float  # cores, the viewers' decode removed
    per_viewer_raw: float  # cores, everything in the process
    per_track: float  # cores per recorded track (video + audio)
    recorder_thread: float  # cores per track, the recorder's thread alone
    most: Sample | None  # the largest V that kept >= 90 %
    within_core: Sample | None  # the largest V that kept >= 90 % within one core

    @property
    def per_core(self) -> float:
        return 1 / self.per_viewer if self.per_viewer > 0 else float("inf")


def figures(r: Result) -> Figures:
    fit = [s for s in r.viewing if s.viewers in (0, *FIRST_VIEWERS)]
    extra = [(rec.cores - base.cores, rec.publishers) for rec, base in zip(r.recording, r.relay)]
    tracks = sum(n for _, n in extra)
    kept = [s for s in r.viewing[1:] if s.worst_fps >= HOLD * r.profile.fps]
    return Figures(
        per_viewer=slope([(s.viewers, s.server) for s in fit]),
        per_viewer_raw=slope([(s.viewers, s.cores) for s in fit]),
        per_track=sum(d for d, _ in extra) / tracks,
        recorder_thread=sum(s.recorder for s in r.recording[:2]) / tracks,
        most=max(kept, key=lambda s: s.viewers, default=None),
        within_core=max((s for s in kept if s.cores <= 1.0), key=lambda s: s.viewers, default=None),
    )


def table(args: argparse.Namespace, results: list[Result]) -> str:
    lines = [
        "",
        f"bidroom media: aiortc {aiortc.__version__}, PyAV {av.__version__}; {os.cpu_count()} "
        f"CPUs; windows of {args.window:g} s after {args.settle:g} s; publishers, backend and "
        "viewers in one process",
    ]
    for r in results:
        lines += profile_table(r)
    lines += ["", conclusion(results)]
    return "\n".join(lines)


def profile_table(r: Result) -> list[str]:
    f, base, fps = figures(r), r.bare.encode, r.profile.fps

    def row(label: str, cores: float, tail: str = "") -> str:
        return f"  {label:46}{cores:>8.3f}{cores / base:>9.1f}x{tail}"

    def measured(s: Sample) -> str:
        seen = f"{s.mean_fps:>6.1f}{s.worst_fps:>7.1f}" if s.viewers else f"{'-':>6}{'-':>7}"
        return row(
            s.label,
            s.cores,
            f"{s.loop:>7.2f}{s.decode:>8.3f}{s.recorder:>8.3f}{s.sent_fps:>6.1f}{seen}"
            f"{s.dropped:>6}{s.rss:>7.0f}",
        )

    lines = [
        "",
        f"{r.profile} (caps {r.profile}; fps: of {fps})",
        f"  {'':46}{'cores':>8}{'/encode':>10}{'loop':>7}{'vw dec':>8}{'recordr':>8}"
        f"{'sent':>6}{'recv':>6}{'worst':>7}{'drop':>6}{'MiB':>7}",
        row("baseline: bare VP8 encode (aiortc Vp8Encoder)", base),
        row("bare VP8 decode of those frames", r.bare.decode),
        row("bare SegmentWriter (H.264 + Matroska), video", r.bare.record),
        *(measured(s) for s in [*r.relay, *r.viewing[1:], *r.recording]),
        row("per relayed viewer (viewers' decode removed)", f.per_viewer),
        row("per relayed viewer, all in the process", f.per_viewer_raw),
        row("per recorded track (video + audio)", f.per_track),
        row("  of which the recorder's thread", f.recorder_thread),
    ]
    most = f.most
    held = (
        f"up to V={most.viewers} ({most.cores:.2f} cores, loop {most.loop:.2f})" if most else "none"
    )
    core = f"V={f.within_core.viewers}" if f.within_core else "none"
    lines += [
        f"  viewers at >= {HOLD:.0%} of {fps} fps: {held}; within 1 core: {core}; "
        f"stopped: {r.stopped}",
        f"  a core given to the backend alone: ~{f.per_core:.0f} viewers (1 / per viewer)",
        "  recorded: "
        + ", ".join(f"{n} {frames} frames in {s:.1f} s" for n, frames, s in r.recorded),
    ]
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
    results = []
    with tempfile.TemporaryDirectory(prefix="bidroom-media-") as tmp, loopback():
        for text in args.profile:
            results.append(await run_profile(Profile.parse(text), args, Path(tmp)))
    print(table(args, results), flush=True)
    return 0


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
    parser.add_argument("--connect-timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    args.profile = args.profile or ["320x240@15", "640x480@30"]
    if args.quick:
        args.window, args.settle, args.max_viewers, args.timeout = 2.0, 1.0, 4, 120.0
    return args


if __name__ == "__main__":
    sys.exit(run_bounded(main_async, parse()))
