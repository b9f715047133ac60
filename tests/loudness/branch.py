"""Loudness: the log energy of each 20 ms of audio through a linear back-end. Not a detector worth
having; a whole branch in forty lines, for the test that a new modality needs no runtime edit."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dfstream.engine.core.branch import BranchInput, Specifications
from dfstream.engine.media.blocks import MediaBlock, MediaRequest
from dfstream.modalities.base import Branch

from .config import LoudnessConfig

RATE, FRAME = 16000, 320


class FrameEnergy(nn.Module):
    """The frozen front-end: log energy (dB) of each 20 ms frame, ``(B, samples)`` -> ``(B, frames, 1)``."""

    def __init__(self, floor: float):
        super().__init__()
        self.floor = floor

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        frames = wav[:, : wav.shape[1] // FRAME * FRAME].reshape(len(wav), -1, FRAME).float()
        return (10 * torch.log10(frames.pow(2).mean(-1, keepdim=True) + 1e-12)).clamp(min=self.floor)


class LoudnessBranch(Branch):
    config_class = LoudnessConfig

    def __init__(self, cfg: LoudnessConfig, saved_encoder: dict | None = None):
        super().__init__()
        self.encoder = FrameEnergy(cfg.floor)
        self.proj, self.head = nn.Linear(1, cfg.dim), nn.Linear(cfg.dim, 1)
        self.specifications = Specifications("audio", RATE, FRAME, FRAME, cfg.dim, gaps_present=True)

    def media(self) -> MediaRequest:
        return MediaRequest(audio=True)

    def prepare(self, block: MediaBlock) -> BranchInput | None:
        audio = block.audio
        if audio is None:
            return None
        return BranchInput(audio.samples, np.ones(len(audio.samples), bool), audio.t0, RATE, "audio")

    def empty_input(self, units: int) -> np.ndarray:
        return np.zeros(units, np.float32)

    def preprocess(self, windows: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32))

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        return self.encoder(wav)

    def head_forward(self, encoded: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = torch.tanh(self.proj(encoded.float() / 40))
        return self.head(emb).squeeze(-1), emb

    def encoder_config(self) -> dict:
        return {"floor": self.encoder.floor}
