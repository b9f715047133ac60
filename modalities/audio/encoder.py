"""Build the ``transformers`` speech encoder: from a config, or pretrained (a local directory or a
hub id in the Hugging Face cache, :mod:`dfstream.modalities.pretrained`; never downloaded here)."""

from __future__ import annotations

import torch
from transformers import Wav2Vec2Config, Wav2Vec2Model, WavLMConfig, WavLMModel

from dfstream.engine.core.errors import lookup
from dfstream.modalities.audio.config import EncoderConfig
from dfstream.modalities.pretrained import load_pretrained

ENCODERS = {"wavlm": (WavLMConfig, WavLMModel), "wav2vec2": (Wav2Vec2Config, Wav2Vec2Model)}


def _sized_config(cfg: EncoderConfig):
    config_cls, _ = lookup(ENCODERS, cfg.kind, "encoder kind")
    return config_cls(
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        intermediate_size=cfg.intermediate_size,
        conv_dim=(cfg.conv_dim,) * 7,
        num_conv_pos_embeddings=64,
        num_conv_pos_embedding_groups=16,
        feat_extract_norm=cfg.feature_norm,
        conv_bias=cfg.feature_norm == "layer",
        do_stable_layer_norm=False,
        apply_spec_augment=False,
        layerdrop=0.0,
        mask_time_prob=0.0,
    )


def build_encoder(cfg: EncoderConfig, saved: dict | None = None) -> torch.nn.Module:
    """The encoder described by ``cfg``.

    Parameters
    ----------
    cfg : EncoderConfig
        Kind, sizes and seed, or ``pretrained``: a local model directory or a cached hub id.
    saved : dict, optional
        An exact ``transformers`` config dict stored in a checkpoint; the
        encoder is built from it (weights are loaded by the caller).
    """
    config_cls, model_cls = lookup(ENCODERS, cfg.kind, "encoder kind")
    if saved is not None:
        return model_cls(config_cls.from_dict(saved))
    if cfg.pretrained:
        model = load_pretrained(model_cls, cfg.pretrained, "audio.encoder.pretrained", "WavLM / wav2vec2")
        model.config.apply_spec_augment = False
        model.config.layerdrop = 0.0
        return model
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return model_cls(_sized_config(cfg))
