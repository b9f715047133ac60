"""Audio branch: speech SSL encoder -> weighted layer sum -> BiLSTM -> frame logits.

Back-end choice: a 2-layer BiLSTM over the 50 Hz encoder frames. Localizing a
forged span needs each frame's evidence compared with its neighbours on both
sides (a boundary is a change), which a BiLSTM gives at low cost for any
window length; attentive pooling alone would give one score per window, and a
conformer costs more than the small encoders we run on CPU. The learned
softmax weights over all hidden layers follow the SUPERB recipe: spoofing cues
sit in lower layers than content. With ``mel_bands`` set, a learned spectral path
(:mod:`dfstream.modalities.audio.spectral`, log-mel -> small CNN) is added to the back-end's
input: the encoder we can build here is random and frozen, and the spectrum
carries the synthesizers' marks that it blurs.

What :meth:`AudioBranch.encode` returns (and training caches) is the frozen part:
the stacked hidden states and the log-mel frames (``None`` without the spectral path).
"""

from __future__ import annotations

import threading

import numpy as np
import torch
from torch import nn

from dfstream.engine.core.branch import BranchInput, Specifications
from dfstream.engine.media.blocks import MediaBlock, MediaRequest
from dfstream.engine.media.decode import SAMPLE_RATE
from dfstream.modalities.audio.attention import use_sdpa
from dfstream.modalities.audio.channel import degrade
from dfstream.modalities.audio.config import AudioBranchConfig
from dfstream.modalities.audio.conv_frames import conv_frames
from dfstream.modalities.audio.encoder import build_encoder
from dfstream.modalities.audio.spectral import LogMel, SpectralCNN
from dfstream.modalities.base import Branch


class AudioBranch(Branch):
    """Per-frame (20 ms) forgery logits and embeddings from 16 kHz mono audio.

    Parameters
    ----------
    cfg : AudioBranchConfig
        Encoder and back-end sizes.
    saved_encoder : dict, optional
        Exact encoder config from a checkpoint (see :func:`build_encoder`).
    """

    config_class = AudioBranchConfig
    carry_unscored = True  # a window the speech gate turned away holds real audio: its new frames carry on
    degrades = True  # train.degrade: the channels of audio.channels
    fused = True  # conv feature extractor via dfstream.modalities.audio.conv_frames; False: the library's module

    def __init__(self, cfg: AudioBranchConfig, saved_encoder: dict | None = None):
        super().__init__()
        self.cfg = cfg
        self.encoder = build_encoder(cfg.encoder, saved_encoder)
        hidden = self.encoder.config.hidden_size
        layers = self.encoder.config.num_hidden_layers + 1
        dim = cfg.backend_dim
        self.layer_logits = nn.Parameter(torch.zeros(layers))
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
        self.conv_dim = self.encoder.config.conv_dim[-1]
        self.log_mel = LogMel(cfg.mel_bands) if cfg.mel_bands else None
        self.spectral = SpectralCNN(cfg.mel_bands, cfg.mel_channels, dim) if cfg.mel_bands else None
        self.specifications = Specifications("audio", SAMPLE_RATE, 320, 400, dim, gaps_present=True)
        self.encoder.feature_extractor.given = _Given()  # what encode_features hands the encoder
        self.encoder.feature_extractor.register_forward_hook(_given_features)

    def media(self) -> MediaRequest:
        """16 kHz mono audio."""
        return MediaRequest(audio=True)

    def prepare(self, block: MediaBlock) -> BranchInput | None:
        """The block's audio samples, every one present (a gap inside audio is silence)."""
        audio = block.audio
        if audio is None:
            return None
        return BranchInput(audio.samples, np.ones(len(audio.samples), bool), audio.t0, SAMPLE_RATE, "audio")

    def configure_inference(self, feature_extractor: str) -> None:
        """``fused``: the convolutional feature extractor as matrix products over time-major frames
        (:mod:`dfstream.modalities.audio.conv_frames`) and WavLM's attention as one fused kernel
        (:mod:`dfstream.modalities.audio.attention`); ``transformers``: the library's modules."""
        self.fused = feature_extractor == "fused"
        if self.fused:
            use_sdpa(self)

    @property
    def cacheable(self) -> bool:
        """Whether each frame's :meth:`frontend` features depend on its own receptive field only
        (per-frame normalisation), so that overlapping windows can share them."""
        return getattr(self.encoder.config, "feat_extract_norm", None) == "layer"

    def frontend(self, wav: torch.Tensor) -> torch.Tensor:
        """Per-frame features, shape ``(B, frames, conv_dim [+ mel_bands])``: the convolutional
        feature extractor's frames, and the log-mel frames beside them."""
        extractor = self.encoder.feature_extractor
        features = conv_frames(extractor, wav) if self.fused else extractor(wav).transpose(1, 2)
        if self.log_mel is None:
            return features
        return torch.cat([features, self.log_mel(wav).to(features.dtype)], dim=-1)

    def encode_features(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`encode` from :meth:`frontend` features: the encoder runs from its feature
        projection on (the feature extractor is handed these instead of computing them)."""
        conv, mel = features[..., : self.conv_dim], features[..., self.conv_dim :]
        given = self.encoder.feature_extractor.given  # per thread: parts of a batch may run at once
        given.features = conv.transpose(1, 2)
        try:
            out = self.encoder(features.new_zeros((len(features), 400)), output_hidden_states=True)
        finally:
            given.features = None
        return torch.stack(out.hidden_states, dim=1), (mel if self.log_mel is not None else None)

    def forward_features(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward` from :meth:`frontend` features."""
        return self.head_forward(self.encode_features(features))

    def encoder_config(self) -> dict:
        """The exact ``transformers`` config of the encoder, for checkpoints."""
        return self.encoder.config.to_dict()

    def empty_input(self, samples: int) -> np.ndarray:
        """``samples`` of silence, float32 ``(samples,)`` (absent audio)."""
        return np.zeros(samples, np.float32)

    def preprocess(self, windows: np.ndarray) -> torch.Tensor:
        """CPU: float32 windows, shape ``(B, samples)``, as a tensor."""
        return torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32))

    def degrade(self, wav: torch.Tensor) -> torch.Tensor:
        """``train.degrade``: the windows ``(B, samples)`` each through one of ``audio.channels``
        (:func:`dfstream.modalities.audio.channel.degrade`); deterministic, so encoded once and cached."""
        line = degrade(wav.detach().cpu().numpy(), self.specifications.sample_rate, self.cfg.channels)
        return torch.from_numpy(line).to(wav.device, wav.dtype)

    def encode(self, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The frozen features: encoder hidden states ``(B, layers+1, frames, hidden)`` and
        log-mel frames ``(B, frames, mel_bands)`` (``None`` without the spectral path)."""
        return self.encode_features(self.frontend(wav))

    def head_forward(self, encoded: tuple[torch.Tensor, torch.Tensor | None]) -> tuple[torch.Tensor, torch.Tensor]:
        """Back-end on :meth:`encode`'s features.

        Returns logits ``(B, frames)`` and embeddings ``(B, frames, backend_dim)``.
        """
        hidden, mel = encoded
        weights = torch.softmax(self.layer_logits, dim=0)
        mixed = torch.einsum("l,blth->bth", weights, hidden.to(weights.dtype))
        x = self.proj(self.norm(mixed))
        if self.spectral is not None:
            x = x + self.spectral(mel)
        emb, _ = self.lstm(x)
        return self.head(emb).squeeze(-1), emb

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Waveforms ``(B, samples)`` at 16 kHz -> logits ``(B, frames)``, embeddings."""
        return self.head_forward(self.encode(wav))

    @staticmethod
    def postprocess(logits: torch.Tensor, emb: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities ``(B, frames)`` and embeddings as float32 NumPy arrays."""
        return torch.sigmoid(logits.float()).cpu().numpy(), emb.float().cpu().numpy()


class _Given(threading.local):
    """The features :meth:`AudioBranch.encode_features` hands the feature extractor, one per thread
    (parts of a batch run on several threads at once); a copy or a pickle of it starts empty."""

    features = None

    def __reduce__(self):
        return (_Given, ())

    def __deepcopy__(self, memo):
        return _Given()


def _given_features(module, inputs, output):
    """Forward hook of the feature extractor: features handed in by ``encode_features`` (on this
    thread) replace its output."""
    given = getattr(module.given, "features", None)
    return output if given is None else given
