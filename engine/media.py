"""Decoded media of one chunk or file block: audio, video, or both, on stream time.

A :class:`MediaBlock` is what the streaming path consumes. Its ``video`` is a
:class:`engine.video.VideoBlock` of decoded frames when it leaves the decoder
and a :class:`FrameBlock` of encoder-ready crops once the visual branch has
prepared it (:meth:`engine.detector.Detector.prepare`, CPU work that runs off
the model thread). Either track may be missing: an audio file has no video, a
silent video no audio.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from engine.config import Config
from engine.decode import AudioBlock, Demuxed, decode_audio, decode_chunk, is_raw_pcm, iter_audio
from engine.errors import MediaError
from engine.types import Chunk
from engine.video import VideoBlock, decode_video, has_video, iter_video, video_stream


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

    Audio and video are decoded by two incremental decoders and paired block by
    block; each track keeps its own timestamps (the stream state aligns them on
    stream time). Raises MediaError when the file has none of the tracks.
    """
    audio_wanted, video_wanted = _wants(config)
    limits, visual = config.limits, config.visual
    audio = iter_audio(path, block_seconds, limits) if audio_wanted else iter(())
    video = iter(())
    if video_wanted:
        if has_video(path):
            video = iter_video(path, visual.fps, visual.decode_side, block_seconds, limits)
    first = True
    while True:
        a = _next(audio, tolerate_missing=video_wanted and first)
        v = next(video, None)
        if a is None and v is None:
            if first:
                raise MediaError("no audio or video stream this model can use", "no-audio")
            return
        first = False
        yield MediaBlock(a, v)


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


def _next(blocks, tolerate_missing: bool):
    try:
        return next(blocks, None)
    except MediaError as e:
        if tolerate_missing and e.reason == "no-audio":
            return None
        raise
