"""PyAV decoding of video into RGB uint8 frames sampled on a grid of stream time.

:func:`iter_video` opens a path or a bytes payload (the same way as
:func:`dfstream.engine.media.decode.iter_audio`), decodes the first video stream and samples
it at ``fps`` on the grid of absolute stream times ``g / fps`` (integer ``g``),
so that cutting a stream into chunks never moves the grid. Each grid point
takes the frame displayed at that time, the latest decoded frame whose PTS is
at or before it (sample-and-hold), which handles variable frame rates, gaps
shorter than ``limits.max_gap_seconds`` and streams that start late. The stream
ends at its last frame's time plus that frame's duration.

Every frame of one decode has the shape of the first frame's display size
(pixel aspect ratio and display rotation applied) scaled down, aspect kept,
until its longer side is at most ``max_side``. Scaling happens in FFmpeg
(swscale), so a large frame is never materialized at full size in NumPy; one
scaler per decode is set up once and reused for every sampled frame.

Each decoder runs on the calling thread (``thread_count`` 1): the engine's
parallelism is its pool of decode workers, one chunk each, and a chunk's own
decoder threads would only be created, torn down and preempted per chunk. On the
real-material test split's 2 s chunks (320x240 H.264) the two cut the CPU time of
decoding and converting frames by about a quarter, frames identical.

Only the frames a grid point shows are needed, and only a reference picture is
needed to decode others: a packet whose frame no grid point shows (its time and
the next frame's time, in display order, are known from the demuxer a few packets
ahead) is sent with ``skip_frame = NONREF``, so the decoder drops it when nothing
refers to it (H.264's and HEVC's non-reference pictures; other codecs decode it
anyway). The sampled frames are the same (``tests/test_video_decode.py``), and the
gap check sees the skipped frames' times as if they had been decoded. On the
real-material test split's 2 s chunks (25 fps H.264 with B-frames, sampled at 5
fps) 43 % of the packets are non-reference; decoding and converting the 315 chunks
took 3.0-3.2 CPU-s against 3.4-3.7 (three alternated runs, one thread), frames identical.

A packet the decoder rejects, or a frame it flags corrupt, is dropped and
counted in :attr:`VideoBlock.dropped`; the frame before it is held in its
place. Untrusted media is bounded by :class:`dfstream.engine.media.limits.LimitsConfig`:
frame size (``frame-too-large``), timestamp jumps (``timestamp-jump``), and
for chunks (bytes payloads) the number of sampled frames (``too-many-frames``)
and the wall time spent decoding (``decode-timeout``, checked between packets).
"""

from __future__ import annotations

import heapq
import math
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np

from dfstream.engine.core.errors import MediaError
from dfstream.engine.media.decode import Extent, check_complete, check_deadline, check_gap, demux, is_chunk, open_media
from dfstream.engine.media.limits import LIMITS, LimitsConfig

_TOLERANCE = 1e-6  # seconds: a frame whose PTS is this close after a grid point still covers it
_LOOKAHEAD = 8  # packets demuxed ahead of the decoder, to know the next frame's time past B-frame reordering
_RECENT = 32  # packet times kept for that


@dataclass(frozen=True)
class VideoBlock:
    """Sampled video: ``frames`` uint8, shape ``(N, H, W, 3)``, RGB; frame ``i`` is at
    stream time ``t0 + i / fps`` seconds, ``t0`` a grid point ``g0 / fps``. ``dropped``
    counts the corrupt packets and frames dropped while decoding this block."""

    frames: np.ndarray
    t0: float
    fps: float
    dropped: int = 0

    @property
    def duration(self) -> float:
        """Seconds covered: ``N / fps``."""
        return len(self.frames) / self.fps


def video_stream(container):
    """The first video stream that is not cover art, or None."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def has_video(source) -> bool:
    """Whether ``source`` (path or bytes) declares a video stream (cover art does not count).

    Reads the container header only. Raises MediaError when it cannot be opened.
    """
    with open_media(source) as container:
        return video_stream(container) is not None


def _check_pixels(width: int, height: int, limits: LimitsConfig) -> None:
    if width * height > limits.max_frame_pixels:
        raise MediaError(
            f"video frame {width}x{height} exceeds {limits.max_frame_pixels} pixels (limits.max_frame_pixels)",
            "frame-too-large",
        )


def _orientation(frame: av.VideoFrame) -> tuple[int, bool]:
    """The display transform of ``frame`` as (quarter turns counter-clockwise, mirror after).

    Follows the ``ffmpeg`` command line's autorotation: the display matrix's
    rotation, with flips read from the signs of its entries. Rotations that are
    not multiples of 90 degrees are ignored.
    """
    side = frame.side_data.get("DISPLAYMATRIX")
    if side is None:
        return 0, False
    m = np.frombuffer(bytes(side), np.int32)
    theta = -float(frame.rotation)  # clockwise degrees, as ffmpeg's get_rotation
    theta -= 360 * math.floor(theta / 360 + 0.9 / 360)
    if abs(theta - 90) < 1:
        return -1, bool(m[3] > 0)  # clockwise; mirrored: transpose
    if abs(theta - 270) < 1:
        return 1, bool(m[3] < 0)  # counter-clockwise; mirrored: anti-transpose
    if abs(theta - 180) < 1 or abs(theta) < 1:
        hflip, vflip = bool(m[0] < 0), bool(m[4] < 0)
        return (2 if vflip else 0), hflip != vflip  # a vertical flip is a half turn, mirrored
    return 0, False


def _display_size(stream, frame: av.VideoFrame, turns: int) -> tuple[int, int]:
    """(width, height) in pixels as displayed: pixel aspect ratio, then rotation."""
    width, height = frame.width, frame.height
    sar = stream.codec_context.sample_aspect_ratio or stream.sample_aspect_ratio
    if sar and sar > 0 and sar != 1:
        width = max(1, round(width * sar))
    return (height, width) if turns % 2 else (width, height)


def _fit(width: int, height: int, max_side: int) -> tuple[int, int]:
    """Scale (width, height) down, aspect kept, so the longer side is at most ``max_side``."""
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


class _Sampler:
    """Sample-and-hold of decoded frames onto the grid ``g / fps``.

    Holds one decoded frame (and its RGB conversion once a grid point needs
    it); :meth:`push` and :meth:`end` yield one ``(H, W, 3)`` array per grid
    point covered.
    """

    def __init__(self, stream, fps: float, max_side: int, limits: LimitsConfig):
        self.stream, self.fps, self.max_side, self.limits = stream, fps, max_side, limits
        rate = stream.average_rate or stream.guessed_rate
        self.step = 1.0 / float(rate) if rate else 1.0 / fps  # native frame period (s)
        self.g = self.g0 = None  # next and first grid index
        self.size = None  # (W, H) of every output frame
        self.held, self.held_rgb = None, None
        self.held_time = self.held_end = 0.0
        self.skipped: list[tuple[float, float]] = []  # heap of (time, end) of frames maybe not decoded (skip)
        self.scaler = av.video.reformatter.VideoReformatter()  # its swscale context is kept between frames

    def shows(self, t: float, later: float) -> bool:
        """Whether a frame at time ``t`` held until ``later`` (the next frame's time) covers a grid point."""
        first = math.ceil((t - _TOLERANCE) * self.fps)
        return any(
            g / self.fps >= t - _TOLERANCE and g / self.fps < later - _TOLERANCE for g in (first - 1, first, first + 1)
        )  # neighbours too: float rounding of the product

    def skip(self, t: float, end: float) -> None:
        """A frame from ``t`` to ``end`` that no grid point shows was sent to be dropped; if the
        decoder drops it, the gap check still sees it (:meth:`push`)."""
        heapq.heappush(self.skipped, (t, end))

    def _passed(self, t: float) -> None:
        """The gap checks of the frames before ``t`` that the decoder dropped, as if they had been
        decoded; one that came out after all (a reference picture) has time ``t`` itself."""
        while self.skipped and self.skipped[0][0] <= t:
            skipped, end = heapq.heappop(self.skipped)
            if skipped < t:
                check_gap(skipped - self.held_end, self.limits.max_gap_seconds)
                self.held_end = end

    def push(self, frame: av.VideoFrame) -> Iterator[np.ndarray]:
        """Hold ``frame``; yield the previous frame for the grid points before its time."""
        _check_pixels(frame.width, frame.height, self.limits)
        if frame.time is not None:
            t = float(frame.time)
        else:
            t = self.held_time + self.step if self.held is not None else 0.0
        if self.held is None:
            self.g = self.g0 = math.ceil((t - _TOLERANCE) * self.fps)
            turns, _ = _orientation(frame)
            self.size = _fit(*_display_size(self.stream, frame, turns), self.max_side)
        else:
            self._passed(t)
            check_gap(t - self.held_end, self.limits.max_gap_seconds)
            yield from self._emit_until(t)
        if frame.duration and frame.time_base is not None:
            duration = float(frame.duration * frame.time_base)
        else:
            duration = self.step
        self.held, self.held_rgb, self.held_time, self.held_end = frame, None, t, t + duration

    def end(self) -> Iterator[np.ndarray]:
        """Yield the held frame for the grid points before the stream's end."""
        if self.held is not None:
            yield from self._emit_until(self.held_end)

    def _emit_until(self, t: float) -> Iterator[np.ndarray]:
        while self.g / self.fps < t - _TOLERANCE:
            if self.held_rgb is None:
                self.held_rgb = self._rgb(self.held)
            yield self.held_rgb
            self.g += 1

    def _rgb(self, frame: av.VideoFrame) -> np.ndarray:
        turns, mirror = _orientation(frame)
        width, height = self.size if turns % 2 == 0 else self.size[::-1]
        rgb = self.scaler.reformat(frame, width=width, height=height, format="rgb24").to_ndarray()
        rgb = np.rot90(rgb, turns)
        return rgb[:, ::-1] if mirror else rgb


def _decoded(
    container,
    stream,
    sampler: _Sampler,
    counter: list[int],
    deadline: float | None,
    limits: LimitsConfig,
    extent: Extent,
) -> Iterator[av.VideoFrame]:
    """Decoded frames of ``stream``; undecodable packets and corrupt frames are counted in ``counter[0]``.
    Packets whose frames ``sampler`` would not show go to the decoder to be dropped when it can
    (``skip_frame = NONREF``, see the module doc)."""
    codec = stream.codec_context
    ahead: deque[av.Packet] = deque()
    times: deque[float] = deque(maxlen=_RECENT)

    def decode(packet: av.Packet):
        check_deadline(deadline, limits)
        unshown = _unshown(packet, sampler, times)
        if unshown is not None:
            sampler.skip(*unshown)
        codec.skip_frame = "DEFAULT" if unshown is None else "NONREF"
        try:
            frames = packet.decode()
        except av.error.DecoderNotFoundError:
            raise
        except av.error.FFmpegError:
            counter[0] += 1
            return
        for frame in frames:
            if frame.is_corrupt:
                counter[0] += 1
            else:
                yield frame

    for packet in demux(container, stream, extent):
        if packet.pts is not None and packet.time_base:
            times.append(_seconds(packet))
        ahead.append(packet)
        if len(ahead) > _LOOKAHEAD:
            yield from decode(ahead.popleft())
    while ahead:
        yield from decode(ahead.popleft())


def _seconds(packet: av.Packet) -> float:
    """``packet``'s time in seconds, computed as PyAV computes ``frame.time`` (the same float)."""
    return float(packet.pts) * packet.time_base.numerator / packet.time_base.denominator


def _unshown(packet: av.Packet, sampler: _Sampler, times) -> tuple[float, float] | None:
    """``packet``'s frame as ``(time, end)`` when no grid point shows it, else None: its time and
    the next known frame time (in ``times``) are known, and the sampler has its first frame (which
    fixes the grid's start). A later frame that turns up between the two only shortens the span
    this one is held."""
    if packet.pts is None or not packet.time_base or sampler.held is None:
        return None
    t = _seconds(packet)
    later = min((x for x in times if x > t), default=None)
    if later is None or sampler.shows(t, later):
        return None
    return t, t + (float(packet.duration * packet.time_base) if packet.duration else sampler.step)


def _no_decoder() -> MediaError:
    return MediaError("unsupported codec: FFmpeg has no decoder for this video stream", "unsupported-codec")


def _sampled(
    container, stream, sampler: _Sampler, dropped: list[int], chunk: bool, limits: LimitsConfig
) -> Iterator[np.ndarray]:
    """One ``(H, W, 3)`` array per grid point, from the first frame's time to the stream's end."""
    deadline = time.monotonic() + limits.decode_timeout_seconds if chunk else None
    extent = Extent()
    try:
        codec = stream.codec_context
        if codec is None:  # PyAV opens no decoder for a codec id it does not know (fuzzing found it)
            raise _no_decoder()
        if codec.width and codec.height:
            _check_pixels(codec.width, codec.height, limits)  # before the decoder allocates anything
        codec.thread_count = 1  # decoded on this thread: the decode workers are the parallelism
        for frame in _decoded(container, stream, sampler, dropped, deadline, limits, extent):
            yield from sampler.push(frame)
    except av.error.DecoderNotFoundError:
        raise _no_decoder() from None
    except av.error.FFmpegError as e:  # the demuxer, not a packet's decode
        raise MediaError(
            f"corrupt or truncated media after {sampler.held_time:.2f} s ({e.__class__.__name__})", "corrupt"
        ) from None
    if sampler.held is None:
        if dropped[0]:
            raise MediaError(f"corrupt: no video frame decodes ({dropped[0]} packets dropped)", "corrupt")
        raise MediaError("video stream holds no decodable frames", "no-video")
    yield from sampler.end()
    check_complete(container, stream, sampler.held_end, extent)


def _blocks(
    source, fps: float, max_side: int, block: int, limits: LimitsConfig, missing_ok: bool, result: list
) -> Iterator[VideoBlock]:
    """Consecutive blocks of at most ``block`` frames; ``result`` receives the sampler.

    A full block is yielded only when the next frame arrives (or at the end), so
    that drops counted after its last frame still land in a block.
    """
    if not (math.isfinite(fps) and fps > 0) or max_side < 1:
        raise ValueError(f"fps must be > 0 and max_side >= 1, got fps={fps}, max_side={max_side}")
    chunk = is_chunk(source)
    with open_media(source) as container:
        stream = video_stream(container)
        if stream is None:
            if missing_ok:
                return
            raise MediaError("no video stream", "no-video")
        sampler = _Sampler(stream, fps, max_side, limits)
        result.append(sampler)
        dropped = [0]
        frames, n, emitted = None, 0, 0
        for rgb in _sampled(container, stream, sampler, dropped, chunk, limits):
            if n == block:
                yield VideoBlock(frames, (sampler.g0 + emitted) / fps, fps, dropped[0])
                frames, n, emitted, dropped[0] = None, 0, emitted + n, 0
            if chunk and emitted + n >= limits.max_chunk_frames:
                raise MediaError(
                    f"chunk samples to more than {limits.max_chunk_frames} video frames at "
                    f"{fps:g} fps (limits.max_chunk_frames)",
                    "too-many-frames",
                )
            if frames is None:  # filled in place: the pages of a short last block are never touched
                frames = np.empty((block, *rgb.shape), np.uint8)
            frames[n] = rgb
            n += 1
        if n:
            yield VideoBlock(frames[:n], (sampler.g0 + emitted) / fps, fps, dropped[0])


def iter_video(
    source, fps: float, max_side: int, block_seconds: float | None = None, limits: LimitsConfig = LIMITS
) -> Iterator[VideoBlock]:
    """Decode the first video stream of ``source`` incrementally, sampled at ``fps``.

    Parameters
    ----------
    source : str | Path | bytes
        A media file path, or the bytes of a self-contained container.
    fps : float
        Sampling rate (frames per second) of the grid ``g / fps`` of stream time.
    max_side : int
        Longest side (pixels) of the output frames; smaller frames are not upscaled.
    block_seconds : float, optional
        Yield blocks of exactly ``round(block_seconds * fps)`` frames (at least 1;
        the last may be shorter); ``None`` yields blocks of at most one second
        (``round(fps)`` frames).
    limits : LimitsConfig
        Bounds (see module doc); frame count and decode time apply to bytes only.

    Yields
    ------
    VideoBlock
        Consecutive blocks: frames uint8 ``(N, H, W, 3)`` RGB, one shape for the
        whole decode; each block's ``t0`` follows the previous block's end.

    Raises
    ------
    MediaError
        Missing, empty, unreadable or video-less (``no-video``) input, an
        unsupported codec, a stream of which nothing decodes (``corrupt``), or
        input beyond ``limits``.
    """
    if block_seconds is not None and not block_seconds > 0:
        raise ValueError(f"block_seconds must be > 0 or None, got {block_seconds}")
    seconds = 1.0 if block_seconds is None else block_seconds
    yield from _blocks(source, fps, max_side, max(1, round(seconds * fps)), limits, False, [])


def decode_video(source, fps: float, max_side: int, limits: LimitsConfig = LIMITS) -> VideoBlock | None:
    """All sampled frames of ``source`` in one :class:`VideoBlock` (see :func:`iter_video`).

    Returns None when ``source`` has no video stream. A stream too short to
    reach a grid point gives a block of zero frames, shape ``(0, H, W, 3)``.
    """
    result: list[_Sampler] = []
    blocks = list(_blocks(source, fps, max_side, max(1, round(fps)), limits, True, result))
    if not result:
        return None
    if not blocks:
        width, height = result[0].size
        return VideoBlock(np.zeros((0, height, width, 3), np.uint8), result[0].g0 / fps, fps)
    frames = blocks[0].frames if len(blocks) == 1 else np.concatenate([b.frames for b in blocks])
    return VideoBlock(frames, blocks[0].t0, fps, sum(b.dropped for b in blocks))
