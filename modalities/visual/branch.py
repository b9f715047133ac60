"""Visual branch: face crops -> ViT per frame -> BiLSTM over frames -> frame logits.

The ViT sees one crop at a time and returns its [CLS] state; the temporal
back-end (a BiLSTM over the sampled frames, as the audio branch has over its
20 ms frames) compares each frame with its neighbours, so that a mouth that
stops following the speech, or a blend seam that appears for a second, shows
as a change along time. Face detection and cropping are CPU work done in
:meth:`VisualBranch.prepare`, off the model thread. With ``mouth_channels`` set, a learned mouth path
(:mod:`dfstream.modalities.visual.mouth`: the crop's mouth region and its motion -> a
small CNN) is added to the back-end's input.

What :meth:`VisualBranch.encode` returns (and training caches) is the frozen part:
the [CLS] states and the mouth regions (``None`` without the mouth path).
"""

from __future__ import annotations

import threading

import numpy as np
import torch
from torch import nn

from dfstream.engine.core.branch import BranchInput, Specifications
from dfstream.engine.media.blocks import MediaBlock, MediaRequest, VideoSampling
from dfstream.modalities.base import Branch
from dfstream.modalities.visual.config import VisualBranchConfig
from dfstream.modalities.visual.encoder import build_vit
from dfstream.modalities.visual.faces import crop_faces, face_detector
from dfstream.modalities.visual.mouth import MouthCNN, mouth_region

MOUTH_SHIFT = 1 / 7  # of the mouth region's side (8 px of a 56 px region)
MOUTH_GAIN = 0.15
MOUTH_OFFSET = 0.15  # pixels are in [-1, 1]


class VisualBranch(Branch):
    """Per-frame (at ``fps``) forgery logits and embeddings from RGB crops.

    Parameters
    ----------
    cfg : VisualBranchConfig
        Encoder, sampling, cropping and back-end sizes.
    saved_encoder : dict, optional
        Exact ViT config from a checkpoint.
    """

    config_class = VisualBranchConfig
    # The ViT sees each frame alone, so a stream's next window can reuse the [CLS] states of the
    # frames it shares with this one (engine/runtime/frame_cache.py). Unscored windows (no face anywhere,
    # or no video) are not encoded to keep that chain going: they cost as much as they would save.
    cacheable = True
    carry_unscored = False

    def __init__(self, cfg: VisualBranchConfig, saved_encoder: dict | None = None):
        super().__init__()
        self.cfg = cfg
        self.encoder = build_vit(cfg.encoder, saved_encoder)
        hidden, dim = self.encoder.config.hidden_size, cfg.backend_dim
        self.image_size = self.encoder.config.image_size
        self.norm = nn.LayerNorm(hidden)
        self.proj = nn.Linear(hidden, dim)
        self.lstm = nn.LSTM(
            dim,
            dim // 2,
            num_layers=cfg.backend_layers,
            batch_first=True,
            bidirectional=True,
            dropout=cfg.dropout if cfg.backend_layers > 1 else 0.0,
        )
        self.head = nn.Linear(dim, 1)
        self.hidden_size = hidden
        self.mouth = MouthCNN(cfg.mouth_channels, dim) if cfg.mouth_channels else None
        self.specifications = Specifications("visual", cfg.fps, 1, 1, dim, grid=True)
        self._local = threading.local()  # one face detector per decoding thread (OpenCV's is not thread-safe)

    def encoder_config(self) -> dict:
        """The exact ``transformers`` config of the ViT, for checkpoints."""
        return self.encoder.config.to_dict()

    def media(self) -> MediaRequest:
        """Video sampled at ``fps``, its longer side at most ``decode_side`` pixels (the face detector's input)."""
        return MediaRequest(video=VideoSampling(self.cfg.fps, self.cfg.decode_side))

    def prepare(self, block: MediaBlock) -> BranchInput | None:
        """CPU: decoded frames ``(N, H, W, 3)`` -> face (or whole-frame) crops at the encoder's size;
        a frame without a face is absent visual evidence (always present in whole-frame mode)."""
        video = block.video
        if video is None:
            return None
        detector = None
        if self.cfg.crop == "face":
            detector = getattr(self._local, "detector", None)
            if detector is None:
                detector = self._local.detector = face_detector(self.cfg.face_detector)
        crops = crop_faces(
            video.frames, self.image_size, detector, self.cfg.face_margin, detect_every=self.cfg.detect_every
        )
        return BranchInput(crops.images, np.asarray(crops.faces, bool), video.t0, video.fps, "visual", video.dropped)

    def empty_input(self, frames: int) -> np.ndarray:
        """``frames`` black crops, uint8 ``(frames, S, S, 3)`` (absent video)."""
        return np.zeros((frames, self.image_size, self.image_size, 3), np.uint8)

    def preprocess(self, windows: np.ndarray) -> torch.Tensor:
        """CPU: uint8 windows ``(B, T, S, S, 3)`` -> float ``(B, T, 3, S, S)`` in [-1, 1]."""
        x = torch.from_numpy(np.ascontiguousarray(windows))
        return x.permute(0, 1, 4, 2, 3).float().div_(127.5).sub_(1.0)

    def encode(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The frozen features of frames ``(B, T, 3, S, S)``: [CLS] states ``(B, T, hidden)`` and
        mouth regions ``(B, T, 3, S/2, S/2)`` (``None`` without the mouth path)."""
        b, t = frames.shape[:2]
        out = self.encoder(pixel_values=frames.flatten(0, 1))
        cls = out.last_hidden_state[:, 0].reshape(b, t, -1)
        return cls, (mouth_region(frames) if self.mouth is not None else None)

    def augment(
        self, encoded: tuple[torch.Tensor, torch.Tensor | None], generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Training augmentation of :meth:`encode`'s features (``train.augment``): each window's
        mouth regions, all its frames alike (their motion stays true), mirrored with
        probability 1/2, shifted by up to ``MOUTH_SHIFT`` of the side (edges replicated), and
        re-lit by a gain in 1 ± ``MOUTH_GAIN`` and an offset in ± ``MOUTH_OFFSET``. The frozen
        [CLS] states are left as they are. Nothing changes without the mouth path."""
        hidden, mouth = encoded
        if mouth is None:
            return encoded
        b, side = mouth.shape[0], mouth.shape[-1]
        draw = torch.rand(b, 5, generator=generator)
        pad = max(1, round(MOUTH_SHIFT * side))
        padded = nn.functional.pad(mouth.flatten(0, 1), (pad,) * 4, mode="replicate").unflatten(0, mouth.shape[:2])
        out = torch.empty_like(mouth)
        for i in range(b):
            dy, dx = (draw[i, 1:3] * (2 * pad + 1)).long().clamp(max=2 * pad).tolist()
            window = padded[i, :, :, dy : dy + side, dx : dx + side]
            out[i] = window.flip(-1) if draw[i, 0] < 0.5 else window
        gain = 1 + MOUTH_GAIN * (2 * draw[:, 3] - 1)
        offset = MOUTH_OFFSET * (2 * draw[:, 4] - 1)
        return hidden, out * gain.view(b, 1, 1, 1, 1).to(out.dtype) + offset.view(b, 1, 1, 1, 1).to(out.dtype)

    def head_forward(self, encoded: tuple[torch.Tensor, torch.Tensor | None]) -> tuple[torch.Tensor, torch.Tensor]:
        """Back-end on :meth:`encode`'s features: logits ``(B, T)`` and embeddings ``(B, T, backend_dim)``."""
        hidden, mouth = encoded
        x = self.proj(self.norm(hidden))
        if self.mouth is not None:
            x = x + self.mouth(mouth)
        emb, _ = self.lstm(x)
        return self.head(emb).squeeze(-1), emb

    def frontend(self, frames: torch.Tensor) -> torch.Tensor:
        """Per-frame features for :mod:`dfstream.engine.runtime.frame_cache`, ``(B, T, hidden [+ 3 (S/2)^2])``:
        :meth:`encode`'s, the mouth regions flattened beside the [CLS] states."""
        cls, mouth = self.encode(frames)
        return cls if mouth is None else torch.cat([cls, mouth.flatten(2).to(cls.dtype)], dim=-1)

    def forward_features(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward` from :meth:`frontend` features."""
        cls, rest = features[..., : self.hidden_size], features[..., self.hidden_size :]
        side = self.image_size // 2
        mouth = rest.reshape(*rest.shape[:2], 3, side, side) if self.mouth is not None else None
        return self.head_forward((cls, mouth))

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames ``(B, T, 3, S, S)`` -> logits ``(B, T)``, embeddings ``(B, T, D)``."""
        return self.head_forward(self.encode(frames))
