"""Encoders from a local model directory or by hub id from the Hugging Face cache: loaded without a
hub, or refused with the config key named and the way to fetch them."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import TINY_VISUAL, hub_cache, tiny_av_config, tiny_config

from dfstream.engine.core.errors import ConfigError
from dfstream.modalities.audio.encoder import build_encoder
from dfstream.modalities.pretrained import hub_id
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
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="holds no safetensors weights.*no pickles"):
        build_vit(dataclasses.replace(config.branch("visual").encoder, pretrained=str(empty)))
    (empty / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ConfigError, match="cannot load ViT weights"):
        build_vit(dataclasses.replace(config.branch("visual").encoder, pretrained=str(empty)))


def test_names_are_hub_ids_unless_they_are_or_read_like_paths(tmp_path):
    assert hub_id("microsoft/wavlm-base-plus") == ("microsoft/wavlm-base-plus", None)
    assert hub_id("facebook/wav2vec2-xls-r-300m@refs/pr/1") == ("facebook/wav2vec2-xls-r-300m", "refs/pr/1")
    assert hub_id(str(tmp_path)) is None and hub_id("./models/x") is None and hub_id("~/x") is None
    assert hub_id("not a/valid//id") is None


def test_a_hub_id_loads_from_the_cache_and_an_uncached_one_says_how_to_fetch_it(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    cfg = tiny_config().branch("audio").encoder
    source = build_encoder(dataclasses.replace(cfg, seed=7))
    hub_cache(tmp_path / "hub", "tiny-org/tiny-wavlm", source)
    loaded = build_encoder(dataclasses.replace(cfg, pretrained="tiny-org/tiny-wavlm"))
    assert loaded.config.hidden_size == source.config.hidden_size
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), loaded.state_dict().values()))
    with pytest.raises(ConfigError, match=r"audio\.encoder\.pretrained=tiny-org/absent: not in the Hugging Face cache"):
        build_encoder(dataclasses.replace(cfg, pretrained="tiny-org/absent"))
    with pytest.raises(ConfigError, match="dfstream fetch-encoders"):
        build_encoder(dataclasses.replace(cfg, pretrained="tiny-org/absent"))


def test_fetch_encoders_offline_finds_cached_models_and_names_missing_ones(tmp_path):
    cfg = tiny_config().branch("audio").encoder
    snapshot = hub_cache(tmp_path / "hf" / "hub", "tiny-org/tiny-wavlm", build_encoder(cfg))
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    run = [sys.executable, "-m", "dfstream", "fetch-encoders", "--config"]
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(json.dumps({"audio": {"encoder": {"pretrained": "tiny-org/tiny-wavlm"}}}))
    bad.write_text(json.dumps({"audio": {"encoder": {"pretrained": "tiny-org/absent"}}}))
    found = subprocess.run(run + [str(good)], env=env, capture_output=True, text=True)
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == f"audio.encoder.pretrained: tiny-org/tiny-wavlm -> {snapshot.resolve()}"
    missing = subprocess.run(run + [str(bad)], env=env, capture_output=True, text=True)
    assert missing.returncode == 2 and "audio.encoder.pretrained=tiny-org/absent: cannot fetch it" in missing.stderr


def test_the_production_configs_name_their_encoders_by_hub_id():
    from dfstream.app.cli.fetch_encoders import pretrained_names
    from dfstream.app.config import load_config

    configs = Path(__file__).resolve().parents[1] / "configs"
    both = load_config([configs / "production-audio.yaml", configs / "production-av.yaml"])
    assert pretrained_names(both) == {
        "audio.encoder.pretrained": "microsoft/wavlm-base-plus",
        "visual.encoder.pretrained": "google/vit-base-patch16-224-in21k",
    }
    assert all(hub_id(name) for name in pretrained_names(both).values())
    assert both.train.finetune_encoder and both.train.precision == "auto"
