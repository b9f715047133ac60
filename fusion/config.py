"""The fusion layer's config sections: ``fusion``, ``localizer`` and ``attribution``."""

from __future__ import annotations

from dataclasses import dataclass

from dfstream.engine.core.config import Section, check

FUSION_RULES = ("weighted", "any")
"""The values of ``fusion.rule`` (:mod:`dfstream.fusion.fusion`)."""


@dataclass(frozen=True)
class FusionConfig(Section):
    """Audio-visual fusion (:mod:`dfstream.fusion.fusion`), used when more than one branch is configured.

    ``rule`` ``weighted`` (a gated average; ``hidden`` is the width of the
    per-modality gate that weighs each branch per time step) or ``any``
    (noisy-OR: forged where any present modality is).
    """

    rule: str = "weighted"
    hidden: int = 32

    def validate(self) -> None:
        check(
            [
                (self.rule in FUSION_RULES, f"fusion.rule must be one of {', '.join(FUSION_RULES)}"),
                (self.hidden >= 1, "fusion.hidden must be >= 1"),
            ]
        )


@dataclass(frozen=True)
class LocalizerConfig(Section):
    """Frame probabilities -> spans: hysteresis, merge, minimum duration.

    A span opens when a frame's probability reaches ``onset`` and ends when it
    falls below ``offset``; spans separated by at most ``merge_gap`` seconds are
    merged; spans shorter than ``min_duration`` seconds are dropped.
    """

    onset: float = 0.5
    offset: float = 0.4
    min_duration: float = 0.1
    merge_gap: float = 0.1
    modality_threshold: float = 0.5

    def validate(self) -> None:
        check(
            [
                (0 < self.offset <= self.onset < 1, "localizer needs 0 < offset <= onset < 1"),
                (self.min_duration >= 0 and self.merge_gap >= 0, "localizer.min_duration and merge_gap must be >= 0"),
                (0 < self.modality_threshold < 1, "localizer.modality_threshold must be in (0, 1)"),
            ]
        )


@dataclass(frozen=True)
class AttributionConfig(Section):
    """Attribution of forged spans to known generators.

    ``index`` is a directory written by ``dfstream index build`` (null: no
    attribution, detections carry ``attribution: []``). ``threshold`` is the
    open-set cosine similarity below which a span is ``unknown``; null uses the
    threshold the index calibrated at build time.
    """

    index: str | None = None
    threshold: float | None = None
    top_k: int = 3
    neighbours: int = 10

    def validate(self) -> None:
        check(
            [
                (self.top_k >= 1 and self.neighbours >= 1, "attribution.top_k and attribution.neighbours must be >= 1"),
                (
                    self.threshold is None or -1 <= self.threshold <= 1,
                    "attribution.threshold must be a cosine similarity in [-1, 1] or null",
                ),
            ]
        )
