"""Decoded media of one chunk or file block: audio, video, or both, on stream time.

A :class:`MediaBlock` is what the streaming path consumes. Its ``video`` is a
:class:`dfstream.engine.media.video.VideoBlock` of decoded frames when it leaves the decoder
and a :class:`FrameBlock` of encoder-ready crops once the visual branch has
prepared it (:meth:`dfstream.engine.runtime.detector.Detector.prepare`, CPU work that runs off
the model thread). Either track may be missing: an audio file has no video, a
silent video no audio.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from dfstream.engine.core.config import Config
from dfstream.engine.media.decode import SAMPLE_RATE, AudioBlock, Demuxed, decode_audio, decode_chunk, is_raw_pcm, iter_audio
from dfstream.engine.core.errors import MediaError
from dfstream.engine.core.types import Chunk
from dfstream.engine.media.video import VideoBlock, decode_video, has_video, iter_video, video_stream


@dataclass(frozen=True)
class FrameBlock:
    """Visual input ready for the encoder.

    Attributes
    ----------
    images : ndarray, uint8, shape (N, S, S, 3)
        RGB crops (of the tracked face, or whole frames).
    faces : ndarray, bool, shape (N,)
        Whether frame ``i`` showed a face; frames without one are scored as
        absent visual evidence (always True in whole-frame mode).
    t0 : float
        Stream time (s) of ``images[0]``; frame ``i`` is at ``t0 + i / fps``.
    fps : float
        Frames per second.
    dropped : int
        Corrupt frames the decoder dropped.
    """

    images: np.ndarray
    faces: np.ndarray
    t0: float
    fps: float
    dropped: int = 0

    @property
    def duration(self) -> float:
        return len(self.images) / self.fps


@dataclass(frozen=True)
class MediaBlock:
    """One block of a stream: ``audio`` and/or ``video`` (see module doc)."""

    audio: AudioBlock | None = None
    video: VideoBlock | FrameBlock | None = None

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


def _wants(config: Config) -> tuple[bool, bool]:
    return "audio" in config.branches, "visual" in config.branches


def decode_media(chunk: Chunk, config: Config) -> MediaBlock:
    """Decode the tracks ``config.branches`` use from one chunk (MediaError when it has none of them).

    ``chunk.t0`` (if set) is the stream time of the chunk's start: both tracks
    shift by the same amount, so their alignment from the container is kept.
    """
    audio_wanted, video_wanted = _wants(config)
    limits, visual = config.limits, config.visual
    if is_raw_pcm(chunk.content_type):
        if not audio_wanted:
            raise MediaError("raw PCM carries audio only and this model has no audio branch", "no-video")
        return MediaBlock(audio=decode_chunk(chunk, limits))
    source = Demuxed(chunk.payload, _tracks) if audio_wanted and video_wanted else chunk.payload
    try:  # both tracks from one open and one pass over the payload (see Demuxed)
        video = decode_video(source, visual.fps, visual.decode_side, limits) if video_wanted else None
        audio = None
        if audio_wanted:
            try:
                audio = decode_audio(source, limits)
            except MediaError as e:
                if video is None or e.reason != "no-audio":
                    raise
    finally:
        if isinstance(source, Demuxed):
            source.close()
    if audio is None and video is None:
        raise MediaError("no video stream, and this model has no audio branch", "no-video")
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


def iter_media(path, block_seconds: float, config: Config) -> Iterator[MediaBlock]:
    """A file's tracks (those ``config.branches`` use) in blocks of ``block_seconds`` of stream time.

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
    audio_wanted, video_wanted = _wants(config)
    limits, visual = config.limits, config.visual
    tracks = []
    if audio_wanted:
        audio = _Track(iter_audio(path, None, limits), SAMPLE_RATE, "samples",
                       lambda b, data, t0: AudioBlock(data, t0))
        if audio.start(tolerate_missing=video_wanted):
            tracks.append(audio)
    if video_wanted and has_video(path):
        video = _Track(iter_video(path, visual.fps, visual.decode_side, None, limits), visual.fps, "frames",
                       lambda b, data, t0: VideoBlock(data, t0, b.fps, b.dropped))
        if video.start(tolerate_missing=False):
            tracks.append(video)
    if not tracks:
        raise MediaError("no audio or video stream this model can use", "no-audio")
    origin = min(t.t0 for t in tracks)
    cuts = [t.cut(origin, block_seconds) for t in tracks]
    heads = [next(c, None) for c in cuts]
    while any(h is not None for h in heads):
        k = min(h[0] for h in heads if h is not None)
        parts = [None] * len(tracks)
        for i, h in enumerate(heads):
            if h is not None and h[0] == k:
                parts[i], heads[i] = h[1], next(cuts[i], None)
        by_kind = dict(zip((t.kind for t in tracks), parts))
        yield MediaBlock(by_kind.get("samples"), by_kind.get("frames"))


class _Track:
    """One decoded track of a file, re-cut at given stream times (see :func:`iter_media`).

    ``blocks`` are consecutive, gapless blocks (AudioBlock or VideoBlock) whose element ``i``
    is at ``t0 + i / rate``; ``kind`` names their array (``samples`` or ``frames``); ``rebuild(block,
    array, t0)`` makes a block of the same kind.
    """

    def __init__(self, blocks: Iterator, rate: float, kind: str, rebuild):
        self.blocks, self.rate, self.kind, self.rebuild = blocks, rate, kind, rebuild
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
            pending.append(getattr(block, self.kind))
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
