"""What a branch declares about itself and what flows into it: torch-free, so that every layer (a
report included) can read them. The branch interface itself is :class:`dfstream.modalities.base.Branch`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dfstream.engine.core.types import MODALITIES


@dataclass(frozen=True)
class Specifications:
    """A branch's fixed input/output geometry.

    Attributes
    ----------
    modality : str
        ``audio`` or ``visual``: what its detections say they found, and what reports show of it.
    sample_rate : float
        Input units per second (audio: 16000 samples; video: the sampled frames per second).
    frame_samples : int
        Input units per output frame (the frame hop); audio: 320 = 20 ms.
    receptive_samples : int
        Input units one output frame sees; audio: 400 = 25 ms.
    embedding_dim : int
        Size of the per-frame embedding the branch emits.
    grid : bool
        Its units sit on the absolute grid ``g / sample_rate`` of stream time (sampled video
        frames); a stream's origin is put on it, so that the units fill whole track slots.
    gaps_present : bool
        A gap inside its media is real media (a gap in audio is silence), not absent.
    """

    modality: str
    sample_rate: float
    frame_samples: int
    receptive_samples: int
    embedding_dim: int
    grid: bool = False
    gaps_present: bool = False

    def __post_init__(self):
        if self.modality not in MODALITIES[:2]:
            raise ValueError(f"a branch's modality is one of {MODALITIES[:2]}, got {self.modality!r}")

    @property
    def frame_step(self) -> float:
        """Seconds between output frames."""
        return self.frame_samples / self.sample_rate

    def to_dict(self) -> dict:
        return {
            "modality": self.modality,
            "sample_rate": self.sample_rate,
            "frame_samples": self.frame_samples,
            "receptive_samples": self.receptive_samples,
            "embedding_dim": self.embedding_dim,
        }


@dataclass(frozen=True)
class BranchInput:
    """One block of a branch's input on stream time: unit ``i`` (a sample, a face crop) at ``t0 + i / rate``.

    ``units`` ``(N, ...)`` is what the branch's windows are cut from, ``present`` bool ``(N,)`` which
    units hold real media (a frame without a face does not), ``modality`` the branch's, ``dropped``
    the corrupt units the decoder dropped from this block.
    """

    units: np.ndarray
    present: np.ndarray
    t0: float
    rate: float
    modality: str
    dropped: int = 0

    @property
    def duration(self) -> float:
        """Seconds covered: ``N / rate``."""
        return len(self.units) / self.rate

    @property
    def end(self) -> float:
        return self.t0 + self.duration


@dataclass(frozen=True)
class Prepared:
    """A block of a stream made ready for the branches: branch name -> its input (branches without
    media in this block are missing). What :meth:`dfstream.engine.runtime.detector.Detector.prepare`
    returns, what the stream processor consumes, and what a report reads (``Verdict.media``)."""

    inputs: dict

    def __post_init__(self):
        if not self.inputs:
            raise ValueError("a Prepared block needs the input of at least one branch")

    @property
    def t0(self) -> float:
        """Stream time (s) where the earliest input starts."""
        return min(x.t0 for x in self.inputs.values())

    @property
    def end(self) -> float:
        """Stream time (s) where the latest input ends."""
        return max(x.end for x in self.inputs.values())

    @property
    def duration(self) -> float:
        """Seconds from the earliest input's start to the latest's end."""
        return self.end - self.t0

    @property
    def dropped(self) -> int:
        """Corrupt units the decoders dropped from this block."""
        return sum(x.dropped for x in self.inputs.values())
