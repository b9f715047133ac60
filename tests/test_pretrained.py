"""Encoders from a local model directory: loaded without a hub, or refused with the config key named."""

import dataclasses

import pytest
import torch
from helpers import TINY_VISUAL, tiny_av_config

from dfstream.engine.core.errors import ConfigError
from dfstream.modalities.audio.encoder import build_encoder
from dfstream.modalities.visual.encoder import build_vit


def test_local_directories_load_and_wrong_ones_are_refused(tmp_path):
    config = tiny_av_config()
    vit = build_vit(config.branch("visual").encoder)
    vit.save_pretrained(tmp_path / "vit")
    loaded = build_vit(dataclasses.replace(config.branch("visual").encoder, pretrained=str(tmp_path / "vit")))
    assert all(torch.equal(a, b) for a, b in zip(vit.state_dict().values(), loaded.state_dict().values()))
    assert loaded.config.image_size == TINY_VISUAL["encoder"]["image_size"]
    with pytest.raises(ConfigError, match=r"audio\.encoder\.pretrained=.* has no config\.json.*WavLM"):
        build_encoder(dataclasses.replace(config.branch("audio").encoder, pretrained=str(tmp_path)))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="cannot load ViT weights"):
        build_vit(dataclasses.replace(config.branch("visual").encoder, pretrained=str(tmp_path / "empty")))
