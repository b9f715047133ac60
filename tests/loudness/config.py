"""The loudness branch's config section, ``loudness``."""

from __future__ import annotations

from dataclasses import dataclass

from dfstream.engine.core.config import Section, check


@dataclass(frozen=True)
class LoudnessConfig(Section):
    """``dim``: the width of the frame embeddings; ``floor``: the energy (dB) silence is clipped at."""

    dim: int = 4
    floor: float = -80.0

    def validate(self) -> None:
        check([(self.dim >= 1, "loudness.dim must be >= 1")])
