"""Decoded media of one chunk or file block: audio, video, or both, on stream time.

A :class:`MediaBlock` is what the decoders hand the runtime: an
:class:`~dfstream.engine.media.decode.AudioBlock` and/or a
:class:`~dfstream.engine.media.video.VideoBlock`; either may be missing (an audio
file has no video, a silent video no audio). Which tracks are decoded, and how
video is sampled, is a :class:`MediaRequest`: what the branches of a model read
(each branch says what it needs; the runtime merges them), so that this layer
knows no branch.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from dfstream.engine.core.errors import ConfigError, MediaError
from dfstream.engine.core.types import Chunk
from dfstream.engine.media.decode import (
    SAMPLE_RATE,
    AudioBlock,
    Demuxed,
    decode_audio,
    decode_chunk,
    is_raw_pcm,
    iter_audio,
)
from dfstream.engine.media.limits import LIMITS, LimitsConfig
from dfstream.engine.media.video import VideoBlock, decode_video, has_video, iter_video, video_stream


@dataclass(frozen=True)
class VideoSampling:
    """How video is decoded: sampled at ``fps`` on the grid ``g / fps`` of stream time, scaled so that the
    longer side is at most ``max_side`` pixels."""

    fps: float
    max_side: int


@dataclass(frozen=True)
class MediaRequest:
    """Which tracks to decode: ``audio`` (16 kHz mono), ``video`` (sampled as it says, or None)."""

    audio: bool = False
    video: VideoSampling | None = None

    def merge(self, other: MediaRequest) -> MediaRequest:
        """Both requests at once; ConfigError when they sample video differently."""
        if self.video is not None and other.video is not None and self.video != other.video:
            raise ConfigError(
                f"branches sample video differently ({self.video} and {other.video}): one sampling per model"
            )
        return MediaRequest(self.audio or other.audio, self.video or other.video)


@dataclass(frozen=True)
class MediaBlock:
    """One block of a stream: ``audio`` and/or ``video`` (see module doc)."""

    audio: AudioBlock | None = None
    video: VideoBlock | None = None

    def __post_init__(self):
        if self.audio is None and self.video is None:
            raise ValueError("a MediaBlock needs audio or video")

    @property
    def t0(self) -> float:
        """Stream time (s) where the earliest track starts."""
        return min(m.t0 for m in (self.audio, self.video) if m is not None)

    @property
    def end(self) -> float:
        """Stream time (s) where the latest track ends."""
        return max(m.t0 + m.duration for m in (self.audio, self.video) if m is not None)

    @property
    def duration(self) -> float:
        return self.end - self.t0


def as_media(block) -> MediaBlock:
    """A :class:`MediaBlock` from itself or an audio-only :class:`AudioBlock`."""
    return block if isinstance(block, MediaBlock) else MediaBlock(audio=block)


def decode_media(chunk: Chunk, request: MediaRequest, limits: LimitsConfig = LIMITS) -> MediaBlock:
    """Decode the tracks ``request`` names from one chunk (MediaError when it has none of them).

    ``chunk.t0`` (if set) is the stream time of the chunk's start: both tracks
    shift by the same amount, so their alignment from the container is kept.
    """
    if is_raw_pcm(chunk.content_type):
        if not request.audio:
            raise MediaError("raw PCM carries audio only and this model reads no audio", "no-video")
        return MediaBlock(audio=decode_chunk(chunk, limits))
    sampling = request.video
    source = Demuxed(chunk.payload, _tracks) if request.audio and sampling else chunk.payload
    try:  # both tracks from one open and one pass over the payload (see Demuxed)
        video = decode_video(source, sampling.fps, sampling.max_side, limits) if sampling else None
        audio = None
        if request.audio:
            try:
                audio = decode_audio(source, limits)
            except MediaError as e:
                if video is None or e.reason != "no-audio":
                    raise
    finally:
        if isinstance(source, Demuxed):
            source.close()
    if audio is None and video is None:
        raise MediaError("no video stream, and this model reads no audio", "no-video")
    if chunk.t0 is not None:
        shift = chunk.t0 - MediaBlock(audio, video).t0
        if audio is not None:
            audio = AudioBlock(audio.samples, audio.t0 + shift)
        if video is not None:
            video = VideoBlock(video.frames, video.t0 + shift, video.fps, video.dropped)
    return MediaBlock(audio, video)


def _tracks(container) -> list:
    """The streams :func:`decode_video` and :func:`decode_audio` decode, those present."""
    audio = container.streams.audio[0] if container.streams.audio else None
    return [s for s in (video_stream(container), audio) if s is not None]


def iter_media(
    path, block_seconds: float, request: MediaRequest, limits: LimitsConfig = LIMITS
) -> Iterator[MediaBlock]:
    """A file's tracks (those ``request`` names) in blocks of ``block_seconds`` of stream time.

    Audio and video are decoded by two incremental decoders and cut at the same stream times,
    ``origin + k * block_seconds``, ``origin`` the start of the track that starts first: block
    ``k`` holds what each track has in ``[origin + k * block_seconds, origin + (k + 1) *
    block_seconds)``, so a track that starts late, ends early or starts before 0 (a negative
    start time) lands in the blocks of its own times; a block where neither track has media is
    skipped. Each track keeps its own timestamps. Raises MediaError when the file has none of
    the tracks.
    """
    if not block_seconds > 0:
        raise ValueError(f"block_seconds must be > 0, got {block_seconds}")
    tracks = {}  # MediaBlock field -> its track
    if request.audio:
        audio = _Track(
            iter_audio(path, None, limits),
            SAMPLE_RATE,
            lambda b: b.samples,
            lambda b, data, t0: AudioBlock(data, t0),
        )
        if audio.start(tolerate_missing=request.video is not None):
            tracks["audio"] = audio
    sampling = request.video
    if sampling is not None and has_video(path):
        video = _Track(
            iter_video(path, sampling.fps, sampling.max_side, None, limits),
            sampling.fps,
            lambda b: b.frames,
            lambda b, data, t0: VideoBlock(data, t0, b.fps, b.dropped),
        )
        if video.start(tolerate_missing=False):
            tracks["video"] = video
    if not tracks:
        raise MediaError("no audio or video stream this model can use", "no-audio")
    origin = min(t.t0 for t in tracks.values())
    cuts = {name: t.cut(origin, block_seconds) for name, t in tracks.items()}
    heads = {name: next(c, None) for name, c in cuts.items()}
    while any(h is not None for h in heads.values()):
        k = min(h[0] for h in heads.values() if h is not None)
        parts = {}
        for name, h in heads.items():
            if h is not None and h[0] == k:
                parts[name], heads[name] = h[1], next(cuts[name], None)
        yield MediaBlock(**parts)


class _Track:
    """One decoded track of a file, re-cut at given stream times (see :func:`iter_media`).

    ``blocks`` are consecutive, gapless blocks (AudioBlock or VideoBlock) whose element ``i``
    is at ``t0 + i / rate``; ``data(block)`` is a block's array (samples, frames) and
    ``rebuild(block, array, t0)`` makes a block of the same kind.
    """

    def __init__(self, blocks: Iterator, rate: float, data, rebuild):
        self.blocks, self.rate, self.data, self.rebuild = blocks, rate, data, rebuild
        self.first = None
        self.t0 = 0.0

    def start(self, tolerate_missing: bool) -> bool:
        """Decode the first block (its ``t0`` is the track's start); False for a missing track that
        may be missing (no audio stream in a video), or one that decodes to nothing."""
        try:
            self.first = next(self.blocks, None)
        except MediaError as e:
            if tolerate_missing and e.reason == "no-audio":
                return False
            raise
        if self.first is None:
            return False
        self.t0 = self.first.t0
        return True

    def cut(self, origin: float, seconds: float) -> Iterator[tuple[int, object]]:
        """``(k, block)``: the part of the track in ``[origin + k * seconds, origin + (k + 1) * seconds)``."""
        pending, held, emitted = [], 0, 0  # arrays not yet cut, their length, elements already cut
        k = max(0, math.floor((self.t0 - origin) / seconds + 1e-9))
        last = self.first
        for block in itertools.chain([self.first], self.blocks):
            last = block
            pending.append(self.data(block))
            held += len(pending[-1])
            while True:  # elements before the end of block k, counted from the track's start
                end = math.ceil((origin + (k + 1) * seconds - self.t0) * self.rate - 1e-6)
                if end > emitted + held:
                    break
                whole = np.concatenate(pending) if len(pending) > 1 else pending[0]
                n = end - emitted
                if n > 0:
                    yield k, self.rebuild(block, whole[:n], self.t0 + emitted / self.rate)
                pending, held, emitted = [whole[n:]], held - max(n, 0), emitted + max(n, 0)
                k += 1
        if held:
            whole = np.concatenate(pending) if len(pending) > 1 else pending[0]
            yield k, self.rebuild(last, whole, self.t0 + emitted / self.rate)


def with_final(items) -> Iterator[tuple[object, bool]]:
    """``(item, final)`` pairs of an iterable of non-None items: ``final`` is True for the
    last one only (one item of look-ahead)."""
    previous = None
    for item in items:
        if previous is not None:
            yield previous, False
        previous = item
    if previous is not None:
        yield previous, True
