"""What a report shows of one stream, gathered chunk by chunk while it is scored.

A :class:`StreamTimeline` keeps a min/max envelope of the waveform (100 bins
per second), the frame probabilities of every verdict's trace (fused and per
branch), thumbnails of the face crops the visual branch saw (the first frame
with a face in each quarter second, at most 48 px a side), the detections and
the errors. It reads the media from each verdict (``Verdict.media``: a processor
built with ``keep_media``). Memory grows with the stream's duration, not with
its sample rate: about 1.5 kB per second of audio, and while the stream runs
28 kB per second of video with faces; when it ends, only the thumbnails near its
visual spans are kept (what a report shows). Imports no torch and no plotting
library.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from dfstream.engine.core.branch import BranchInput
from dfstream.engine.core.types import Detection, Span, Verdict
from dfstream.engine.media.decode import SAMPLE_RATE, AudioBlock

ENVELOPE_RATE = 100  # envelope bins per second of audio
THUMB_RATE = 4  # face-crop thumbnails kept per second of video (the first frame with a face in each bin)
THUMB_SIDE = 48  # largest side (pixels) of a thumbnail; smaller crops are kept as they are
THUMB_MARGIN = 0.5  # seconds around a visual span whose thumbnails are kept once the stream has ended


@dataclass(frozen=True)
class Thumbnail:
    """A downscaled face crop: ``image`` uint8 ``(S, S, 3)`` RGB, shown at stream time ``time`` (s)."""

    time: float
    image: np.ndarray


@dataclass
class Curve:
    """Frame probabilities on a regular grid: frame ``i`` starts at ``times[i]`` seconds."""

    times: np.ndarray
    fused: np.ndarray
    branches: dict


@dataclass
class StreamTimeline:
    """The report's record of one stream (a file, or a key of a topic)."""

    stream_id: str
    detections: list[Detection] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    score: float | None = None
    end: float = 0.0
    video: bool = False  # some chunk carried video
    thumbnails: list[Thumbnail] = field(default_factory=list, repr=False)
    _envelope: list = field(default_factory=list, repr=False)  # (t0, mins, maxs)
    _traces: list = field(default_factory=list, repr=False)  # dfstream.engine.core.types.Trace

    def add(self, verdict: Verdict) -> None:
        """Account for one chunk's verdict and, when it carries them, the media the branches saw
        (``verdict.media``: a :class:`dfstream.engine.core.branch.Prepared` block): the waveform of an
        audio branch's input, the crops of a visual branch's."""
        if verdict.media is not None:
            for given in verdict.media.inputs.values():
                if given.modality == "audio" and given.units.ndim == 1:
                    self.add_audio(AudioBlock(given.units, given.t0))
                elif given.modality == "visual":
                    self.add_video(given)
        self.add_verdict(verdict)
        if verdict.final:
            self.keep_thumbnails_near_spans()

    def keep_thumbnails_near_spans(self) -> None:
        """Drop the thumbnails further than THUMB_MARGIN from every visual or audio-visual detection
        (a stream that ended: no later span can want them)."""
        spans = [d.span for d in self.detections if d.modality != "audio"]
        self.thumbnails = [
            t for t in self.thumbnails if any(s.start - THUMB_MARGIN <= t.time < s.end + THUMB_MARGIN for s in spans)
        ]

    def add_video(self, frames: BranchInput) -> None:
        """Thumbnails of a visual branch's input (crops ``units`` ``(N, S, S, 3)``, ``present`` where a
        face was found): per 1 / THUMB_RATE s of stream time, the first frame that shows a face."""
        self.video = True
        images, faces = frames.units, frames.present
        if images.ndim != 4 or not len(images):
            return
        side = images.shape[1]
        pick = np.arange(min(side, THUMB_SIDE)) * side // min(side, THUMB_SIDE)  # nearest-neighbour downscale
        last = math.floor(self.thumbnails[-1].time * THUMB_RATE + 1e-6) if self.thumbnails else None
        for i in np.flatnonzero(np.asarray(faces, bool)):
            t = frames.t0 + i / frames.rate
            slot = math.floor(t * THUMB_RATE + 1e-6)
            if slot != last:
                self.thumbnails.append(Thumbnail(t, np.ascontiguousarray(images[i][pick][:, pick])))
                last = slot

    def add_audio(self, block: AudioBlock) -> None:
        """Envelope of ``block`` (16 kHz mono): min and max per 10 ms bin."""
        per_bin = SAMPLE_RATE // ENVELOPE_RATE
        n = len(block.samples)
        if n:
            padded = np.pad(block.samples, (0, -n % per_bin), mode="edge").reshape(-1, per_bin)
            self._envelope.append((block.t0, padded.min(axis=1), padded.max(axis=1)))
        self.end = max(self.end, block.t0 + block.duration)

    def add_verdict(self, verdict: Verdict) -> None:
        """Frame probabilities, detections and score of one verdict."""
        if verdict.trace is not None:
            self._traces.append(verdict.trace)
        self.detections += verdict.detections
        if verdict.score is not None:
            self.score = max(self.score or 0.0, verdict.score)
        self.end = max(self.end, verdict.span.end)

    def add_detections(self, detections) -> None:
        """Spans closed after the last chunk (a stream that ended without a final chunk)."""
        self.detections += detections
        self.keep_thumbnails_near_spans()

    def envelope(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(times, mins, maxs)`` of the waveform envelope, each ``(N,)``; times in seconds."""
        if not self._envelope:
            empty = np.zeros(0, np.float32)
            return empty, empty, empty
        times = np.concatenate([t0 + np.arange(len(lo)) / ENVELOPE_RATE for t0, lo, _ in self._envelope])
        return (
            times,
            np.concatenate([lo for _, lo, _ in self._envelope]),
            np.concatenate([hi for _, _, hi in self._envelope]),
        )

    def curve(self) -> Curve:
        """All traces joined in time order."""
        traces = sorted(self._traces, key=lambda t: t.start)
        if not traces:
            return Curve(np.zeros(0), np.zeros(0, np.float32), {})
        times = np.concatenate([t.start + t.step * np.arange(len(t.fused)) for t in traces])
        names = sorted({name for t in traces for name in t.branches})
        branches = {
            name: np.concatenate([np.asarray(t.branches.get(name, np.full(len(t.fused), np.nan))) for t in traces])
            for name in names
        }
        return Curve(times, np.concatenate([np.asarray(t.fused) for t in traces]), branches)

    @property
    def step(self) -> float | None:
        """Seconds per frame of the probability curve (None before any trace)."""
        return self._traces[0].step if self._traces else None


class Timelines(dict):
    """Stream id -> :class:`StreamTimeline`, filled as replay goes: it is replay's observer
    (:class:`dfstream.streams.replay.Observer`), so the transport needs no report."""

    def _of(self, stream_id: str) -> StreamTimeline:
        return self.setdefault(stream_id, StreamTimeline(stream_id))

    def stream(self, stream_id: str) -> None:
        self._of(stream_id)

    def verdict(self, verdict: Verdict) -> None:
        self._of(verdict.stream_id).add(verdict)

    def error(self, stream_id: str, message: str) -> None:
        self._of(stream_id).errors.append(message)

    def detections(self, stream_id: str, detections: list) -> None:
        self._of(stream_id).add_detections(detections)


def truth_spans(item) -> dict[str, list[Span]]:
    """Ground truth of one metadata :class:`dfstream.engine.core.dataset.Item`: label key -> spans (empty keys
    dropped)."""
    return {key: list(spans) for key, spans in item.segments.items() if spans}
