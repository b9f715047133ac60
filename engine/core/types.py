"""The data that flows: Span, Detection, Verdict, Chunk.

All times are stream time in seconds (float). Verdicts serialize to the JSON
schema ``dfstream.verdict/1`` documented in the README.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

VERDICT_SCHEMA = "dfstream.verdict/1"
MODALITIES = ("audio", "visual", "audio-visual")


@dataclass(frozen=True, order=True)
class Span:
    """A half-open time interval ``[start, end)`` in seconds of stream time."""

    start: float
    end: float

    def __post_init__(self):
        if not self.end >= self.start:
            raise ValueError(f"Span end {self.end} is before its start {self.start}")

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.end - self.start

    def intersection(self, other: Span) -> float:
        """Length in seconds of the overlap with ``other`` (0 when disjoint)."""
        return max(0.0, min(self.end, other.end) - max(self.start, other.start))

    def iou(self, other: Span) -> float:
        """Intersection over union, the measure AV-Deepfake1M evaluation uses.

        The union is taken as the hull ``max(end) - min(start)``, as the official
        implementation does; for overlapping spans it equals the true union.
        """
        hull = max(self.end, other.end) - min(self.start, other.start)
        return self.intersection(other) / hull if hull > 0 else 0.0

    def union(self, other: Span) -> Span:
        """The smallest span covering both (the merge of two spans)."""
        return Span(min(self.start, other.start), max(self.end, other.end))

    def contains(self, t: float) -> bool:
        """Whether time ``t`` (seconds) lies in ``[start, end)``."""
        return self.start <= t < self.end

    def to_list(self) -> list[float]:
        return [round(self.start, 6), round(self.end, 6)]


@dataclass(frozen=True)
class Detection:
    """One forged span found in a stream.

    ``attribution`` is a tuple of ``{"generator": str, "similarity": float}``
    matches, ``({"generator": "unknown"},)`` for an open-set reject, or empty
    when no attribution index is loaded. ``embedding`` (span embedding, shape
    ``(D,)``) is kept for attribution and is not serialized.
    """

    span: Span
    score: float
    modality: str
    attribution: tuple = ()
    embedding: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.modality not in MODALITIES:
            raise ValueError(f"modality {self.modality!r} not in {MODALITIES}")

    def to_dict(self) -> dict:
        return {
            "start": round(self.span.start, 6),
            "end": round(self.span.end, 6),
            "score": round(float(self.score), 6),
            "modality": self.modality,
            "attribution": [dict(a) for a in self.attribution],
        }

    @classmethod
    def from_dict(cls, d: dict) -> Detection:
        return cls(Span(d["start"], d["end"]), d["score"], d["modality"], tuple(d.get("attribution", ())))


def proposals(detections) -> list[list[float]]:
    """``[score, start, end]`` of each detection, highest score first: the rows of a file in
    ``predictions.json`` (the AV-Deepfake1M evaluation's format)."""
    return [[d.score, d.span.start, d.span.end] for d in sorted(detections, key=lambda d: -d.score)]


@dataclass(frozen=True, eq=False)
class Trace:
    """The frame probabilities behind one verdict, for reports (not serialized).

    ``fused`` ``(F,)`` is the curve the localizer decoded; ``branches`` maps each
    branch (``"audio"``, ``"visual"``) to its own ``(F,)`` curve (0 where its
    modality is absent); ``embeddings`` ``(F, D)`` are the frames' embeddings.
    Frame ``i`` covers ``[start + i * step, start + (i + 1) * step)`` seconds of
    stream time.
    """

    start: float
    step: float
    fused: Any
    branches: dict = field(default_factory=dict)
    embeddings: Any = None


@dataclass(frozen=True)
class Verdict:
    """What dfstream says about one processed chunk of one stream.

    ``score`` is the highest per-frame forgery probability among the frames this
    chunk completed (``scored`` is their span), or ``None`` when the chunk
    completed no analysis window (or a speech gate rejected all of them).
    ``detections`` are the spans that closed while processing this chunk; they
    may start in earlier chunks. ``speech`` is ``None`` without a speech gate,
    else whether any window this chunk completed held speech. ``trace`` holds the
    frame probabilities of ``scored`` (not serialized). ``dropped_frames`` counts
    corrupt video frames the decoder dropped from this chunk. ``media`` is the chunk's
    media as the branches saw it (a :class:`dfstream.engine.core.branch.Prepared` block: audio, face
    crops), kept only for a processor asked to (reports; not serialized).
    """

    stream_id: str
    seq: int
    span: Span
    score: float | None
    scored: Span | None
    detections: tuple[Detection, ...]
    model: str
    latency_ms: float
    final: bool = False
    speech: bool | None = None
    trace: Trace | None = field(default=None, compare=False, repr=False)
    dropped_frames: int = 0
    media: Any = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict:
        return {
            "schema": VERDICT_SCHEMA,
            "stream_id": self.stream_id,
            "seq": self.seq,
            "span": self.span.to_list(),
            "score": None if self.score is None else round(float(self.score), 6),
            "scored": None if self.scored is None else self.scored.to_list(),
            "detections": [d.to_dict() for d in self.detections],
            "model": self.model,
            "latency_ms": round(self.latency_ms, 3),
            "final": self.final,
            "speech": self.speech,
            "dropped_frames": self.dropped_frames,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict) -> Verdict:
        if d.get("schema") != VERDICT_SCHEMA:
            raise ValueError(f"not a {VERDICT_SCHEMA} message: schema={d.get('schema')!r}")
        return cls(
            stream_id=d["stream_id"],
            seq=d["seq"],
            span=Span(*d["span"]),
            score=d["score"],
            scored=None if d["scored"] is None else Span(*d["scored"]),
            detections=tuple(Detection.from_dict(x) for x in d["detections"]),
            model=d["model"],
            latency_ms=d["latency_ms"],
            final=d.get("final", False),
            speech=d.get("speech"),
            dropped_frames=d.get("dropped_frames", 0),
        )


def error_record(stream_id: str, message: str, seq: int | None = None) -> dict:
    """The JSON record written instead of a verdict when a stream or chunk fails."""
    record = {"schema": VERDICT_SCHEMA, "stream_id": stream_id, "error": message}
    if seq is not None:
        record["seq"] = seq
    return record


@dataclass(frozen=True)
class Chunk:
    """Bytes of one self-contained media segment of a stream.

    ``content_type`` names the container (``audio/wav``, ``video/mp2t``, ...) or
    raw PCM (see :mod:`dfstream.engine.media.decode`); ``t0`` (seconds) overrides the
    container's timestamps as the stream time of the chunk's first sample.
    ``final`` marks the end of the stream.
    """

    stream_id: str
    seq: int
    payload: bytes
    content_type: str = "application/octet-stream"
    t0: float | None = None
    final: bool = False
