"""Typed config: defaults, YAML overrides, clear errors."""
from pathlib import Path

import pytest

from dfstream.engine.core.config import Config, config_from_dict, config_to_dict, load_config, replace
from dfstream.engine.core.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_default_yaml_spells_out_the_defaults():
    assert load_config(ROOT / "configs" / "default.yaml") == Config()
    assert load_config() == Config()


def test_override_subset(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("localizer:\n  onset: 0.7\ninference:\n  hop_seconds: 1\n")
    cfg = load_config(path)
    assert cfg.localizer.onset == 0.7 and cfg.localizer.offset == 0.4
    assert cfg.inference.hop_seconds == 1.0 and isinstance(cfg.inference.hop_seconds, float)
    assert cfg.audio == Config().audio


@pytest.mark.parametrize("data,message", [
    ({"localiser": {}}, "unknown config key localiser; valid keys here: attribution, audio, branches, call_hook, fusion, inference"),
    ({"localizer": {"onsett": 0.5}}, "unknown config key localizer.onsett; valid keys here: merge_gap"),
    ({"localizer": {"onset": "high"}}, "localizer.onset must be float"),
    ({"train": {"epochs": 2.5}}, "train.epochs must be int"),
    ({"train": {"finetune_encoder": "yes"}}, "train.finetune_encoder must be bool"),
    ({"inference": {"batch_size": True}}, "inference.batch_size must be int"),
    ({"localizer": {"onset": 0.3, "offset": 0.4}}, "offset <= onset"),
    ({"fusion": {"rule": "mean"}}, "fusion.rule must be"),
    ({"audio": {"encoder": {"kind": "hubert"}}}, "wavlm"),
    ({"inference": {"device": "tpu"}}, "inference.device"),
    ({"inference": 3}, "inference must be a mapping"),
])
def test_errors_say_how_to_fix(data, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        config_from_dict(data)


def test_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("- 1\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(bad)


def test_config_is_frozen_and_replace_validates():
    cfg = Config()
    with pytest.raises(AttributeError):
        cfg.localizer.onset = 0.9
    assert replace(cfg, "replay.chunk_seconds", 0.5).replay.chunk_seconds == 0.5
    with pytest.raises(ConfigError):
        replace(cfg, "replay.chunk_seconds", -1.0)
    assert config_from_dict(config_to_dict(cfg)) == cfg
