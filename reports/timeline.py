"""What a report shows of one stream, gathered chunk by chunk while it is scored.

A :class:`StreamTimeline` keeps a min/max envelope of the waveform (100 bins
per second), the frame probabilities of every verdict's trace (fused and per
branch), the detections and the errors. Memory grows with the stream's
duration, not with its sample rate: about 1.5 kB per second of media.
Imports no torch and no plotting library.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.decode import SAMPLE_RATE, AudioBlock
from engine.media import as_media
from engine.types import Detection, Span, Verdict

ENVELOPE_RATE = 100  # envelope bins per second of audio


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
    _envelope: list = field(default_factory=list, repr=False)   # (t0, mins, maxs)
    _traces: list = field(default_factory=list, repr=False)     # engine.types.Trace

    def add(self, block, verdict: Verdict) -> None:
        """Account for one chunk: its decoded media (a MediaBlock or AudioBlock) and the verdict it got."""
        audio = as_media(block).audio
        if audio is not None:
            self.add_audio(audio)
        self.add_verdict(verdict)

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

    def envelope(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(times, mins, maxs)`` of the waveform envelope, each ``(N,)``; times in seconds."""
        if not self._envelope:
            empty = np.zeros(0, np.float32)
            return empty, empty, empty
        times = np.concatenate([t0 + np.arange(len(lo)) / ENVELOPE_RATE for t0, lo, _ in self._envelope])
        return (times, np.concatenate([lo for _, lo, _ in self._envelope]),
                np.concatenate([hi for _, _, hi in self._envelope]))

    def curve(self) -> Curve:
        """All traces joined in time order."""
        traces = sorted(self._traces, key=lambda t: t.start)
        if not traces:
            return Curve(np.zeros(0), np.zeros(0, np.float32), {})
        times = np.concatenate([t.start + t.step * np.arange(len(t.fused)) for t in traces])
        names = sorted({name for t in traces for name in t.branches})
        branches = {name: np.concatenate([np.asarray(t.branches.get(name, np.full(len(t.fused), np.nan)))
                                          for t in traces]) for name in names}
        return Curve(times, np.concatenate([np.asarray(t.fused) for t in traces]), branches)

    @property
    def step(self) -> float | None:
        """Seconds per frame of the probability curve (None before any trace)."""
        return self._traces[0].step if self._traces else None


def truth_spans(item) -> dict[str, list[Span]]:
    """Ground truth of one metadata :class:`engine.dataset.Item`: label key -> spans (empty keys dropped)."""
    return {key: list(spans) for key, spans in item.segments.items() if spans}
