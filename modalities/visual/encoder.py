"""Build the ``transformers`` vision transformer: from a config, or pretrained (a local directory or
a hub id in the Hugging Face cache, :mod:`dfstream.modalities.pretrained`; never downloaded here)."""

from __future__ import annotations

import torch
from transformers import ViTConfig as HFViTConfig
from transformers import ViTModel

from dfstream.modalities.pretrained import load_pretrained
from dfstream.modalities.visual.config import ViTConfig


def build_vit(cfg: ViTConfig, saved: dict | None = None) -> ViTModel:
    """The ViT described by ``cfg`` (random init from the sizes, seeded), or ``saved``
    (an exact config dict from a checkpoint; weights are loaded by the caller), or
    ``cfg.pretrained`` (a local model directory or a cached hub id)."""
    if saved is not None:
        return ViTModel(HFViTConfig.from_dict(saved), add_pooling_layer=False)
    if cfg.pretrained:
        return load_pretrained(ViTModel, cfg.pretrained, "visual.encoder.pretrained", "ViT", add_pooling_layer=False)
    config = HFViTConfig(
        image_size=cfg.image_size,
        patch_size=cfg.patch_size,
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        intermediate_size=cfg.intermediate_size,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return ViTModel(config, add_pooling_layer=False)
