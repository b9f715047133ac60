"""The audio branch's config section, ``audio``."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

from dfstream.engine.core.config import Section, check
from dfstream.modalities.audio.channel import CHANNELS


@dataclass(frozen=True)
class EncoderConfig(Section):
    """The self-supervised speech encoder (``transformers``).

    ``kind`` is ``wavlm`` or ``wav2vec2``. With ``pretrained`` set to a local model directory or a hub id
    (``org/name[@revision]``, looked up in the Hugging Face cache; ``dfstream fetch-encoders``
    fills it), the weights load from there and the size fields are ignored; otherwise the
    encoder is built from these sizes (random init).
    ``feature_norm`` is the convolutional feature extractor's normalisation:
    ``layer`` (each 20 ms frame normalised on its own, as in WavLM Large) keeps
    every frame's features a function of its own 25 ms of audio, so a stream's
    overlapping windows share them (:mod:`dfstream.engine.runtime.frame_cache`); ``group``
    (WavLM Base) normalises over the whole window, so every window recomputes them.
    """

    kind: str = "wavlm"
    pretrained: str | None = None
    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 1024
    conv_dim: int = 256
    feature_norm: str = "layer"
    seed: int = 0

    def validate(self) -> None:
        check(
            [
                (self.kind in ("wavlm", "wav2vec2"), "audio.encoder.kind must be 'wavlm' or 'wav2vec2'"),
                (self.feature_norm in ("layer", "group"), "audio.encoder.feature_norm must be 'layer' or 'group'"),
            ]
        )


@dataclass(frozen=True)
class AudioBranchConfig(Section):
    """Audio branch: encoder + learned layer weights (+ learned spectral path) + BiLSTM back-end.

    ``mel_bands`` > 0 adds :mod:`dfstream.modalities.audio.spectral`: log-mel frames on the
    encoder's grid through a small CNN whose channels are ``mel_channels``,
    summed into the back-end's input; 0 leaves the encoder alone. ``channels`` are what
    ``train.degrade`` passes windows through, one drawn per window
    (:mod:`dfstream.modalities.audio.channel`); the default, a telephone line alone, is what
    every checkpoint before the choice was trained with.
    """

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    mel_bands: int = 64
    mel_channels: int = 32
    backend_dim: int = 128
    backend_layers: int = 2
    dropout: float = 0.1
    channels: tuple[str, ...] = ("telephone",)

    def validate(self) -> None:
        check(
            [
                (
                    bool(self.channels) and set(self.channels) <= set(CHANNELS),
                    f"audio.channels must name one or more of {', '.join(CHANNELS)}",
                ),
                (
                    self.mel_bands >= 0 and self.mel_bands % 8 == 0 and self.mel_channels >= 2,
                    "audio.mel_bands must be 0 (no spectral path) or a multiple of 8, and audio.mel_channels >= 2",
                ),
            ]
        )

    ADDED_LATER: typing.ClassVar[dict] = {"mel_bands": 0}
    """Keys added after checkpoints were first written, with the value that means "as before" (the
    spectral path off): a checkpoint whose section does not name one was trained without it."""
