"""The branch interface: what every branch declares about itself, and what the runtime calls.

The runtime (:mod:`dfstream.engine.runtime`) knows branches only through :class:`Branch`: it asks
each which media it reads (:meth:`Branch.media`), has it prepare decoded media into its input
on stream time (:meth:`Branch.prepare`, a :class:`~dfstream.engine.core.branch.BranchInput`), cuts that
input into windows by the branch's :class:`~dfstream.engine.core.branch.Specifications`, and scores the
windows (:meth:`Branch.preprocess`,
``forward``). A new modality is a folder under ``modalities/`` with a :class:`Branch` subclass
and its config section, and one entry in :data:`dfstream.modalities.BRANCHES`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dfstream.engine.core.branch import BranchInput, Specifications
from dfstream.engine.media.blocks import MediaBlock, MediaRequest


class Branch(nn.Module):
    """A detection branch: decoded media in, per-frame forgery logits and embeddings out.

    Subclasses set ``config_class`` (their config section, a
    :class:`dfstream.engine.core.config.Section`), ``specifications`` and ``encoder`` (the frozen
    pretrained part, held in ``inference.dtype``), and implement :meth:`media`, :meth:`prepare`,
    :meth:`empty_input`, :meth:`preprocess`, :meth:`encode`, :meth:`head_forward` and
    :meth:`encoder_config`; the rest has defaults here.

    A branch whose :meth:`frontend` features of a frame depend on that frame's own receptive field
    only is ``cacheable``: overlapping windows of a stream share them
    (:mod:`dfstream.engine.runtime.frame_cache`; it then implements :meth:`frontend` and
    :meth:`forward_features`). ``carry_unscored``: a window the runtime does not score (a speech
    gate turned it away) still carries its frames on to the stream's next window.
    """

    config_class: type = None
    specifications: Specifications
    cacheable: bool = False
    carry_unscored: bool = False
    degrades: bool = False

    def media(self) -> MediaRequest:
        """What this branch reads of decoded media."""
        raise NotImplementedError

    def prepare(self, block: MediaBlock) -> BranchInput | None:
        """CPU work before scoring, safe off the model thread: this branch's input from ``block``
        (None when the block has none of its media)."""
        raise NotImplementedError

    def empty_input(self, units: int) -> np.ndarray:
        """``units`` of absent input, shaped like :attr:`BranchInput.units`."""
        raise NotImplementedError

    def preprocess(self, windows: np.ndarray) -> torch.Tensor:
        """CPU: a batch of windows of units as the tensor :meth:`forward` takes."""
        raise NotImplementedError

    def encode(self, x: torch.Tensor):
        """The frozen features of a batch (what training caches)."""
        raise NotImplementedError

    def head_forward(self, encoded) -> tuple[torch.Tensor, torch.Tensor]:
        """The trained part on :meth:`encode`'s features: logits ``(B, frames)``, embeddings ``(B, frames, D)``."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch of preprocessed windows -> logits ``(B, frames)``, embeddings ``(B, frames, D)``."""
        return self.head_forward(self.encode(x))

    def frontend(self, x: torch.Tensor) -> torch.Tensor:
        """Per-frame features ``(B, frames, F)`` a :attr:`cacheable` branch's windows share."""
        raise NotImplementedError

    def forward_features(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward` from :meth:`frontend` features."""
        raise NotImplementedError

    def encoder_config(self) -> dict:
        """The exact config of the pretrained encoder, for checkpoints."""
        raise NotImplementedError

    def configure_inference(self, feature_extractor: str) -> None:
        """Choose the inference kernels (``inference.feature_extractor``: ``fused`` or ``transformers``).
        Training keeps the library's modules; by default there is nothing to choose."""

    def augment(self, encoded, generator: torch.Generator):
        """Training augmentation of :meth:`encode`'s features (``train.augment``); none by default."""
        return encoded

    def degrade(self, x: torch.Tensor) -> torch.Tensor:
        """A degraded copy of preprocessed input for training (``train.degrade``), for branches that
        set :attr:`degrades`."""
        raise NotImplementedError(f"{type(self).__name__} has no degraded copy")
