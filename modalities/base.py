"""What every branch declares about itself."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Specifications:
    """A branch's fixed input/output geometry.

    Attributes
    ----------
    modality : str
        ``audio`` or ``visual``.
    sample_rate : int
        Input samples per second (audio: 16000).
    frame_samples : int
        Input samples per output frame (the frame hop); audio: 320 = 20 ms.
    receptive_samples : int
        Input samples one output frame sees; audio: 400 = 25 ms.
    embedding_dim : int
        Size of the per-frame embedding the branch emits.
    """

    modality: str
    sample_rate: int
    frame_samples: int
    receptive_samples: int
    embedding_dim: int

    @property
    def frame_step(self) -> float:
        """Seconds between output frames."""
        return self.frame_samples / self.sample_rate

    def to_dict(self) -> dict:
        return {"modality": self.modality, "sample_rate": self.sample_rate,
                "frame_samples": self.frame_samples, "receptive_samples": self.receptive_samples,
                "embedding_dim": self.embedding_dim}
