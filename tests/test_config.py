"""Typed config: defaults, YAML overrides, clear errors; each layer's sections with their owner."""

import dataclasses
from pathlib import Path

import pytest

from dfstream.app.config import AppConfig, TrainConfig, app_config, load_config
from dfstream.engine.core.config import replace, to_dict
from dfstream.engine.core.errors import ConfigError
from dfstream.engine.media.limits import LimitsConfig
from dfstream.engine.runtime.config import ModelConfig, config_from_dict
from dfstream.fusion.config import LocalizerConfig
from dfstream.modalities.audio.config import AudioBranchConfig
from dfstream.modalities.visual.config import VisualBranchConfig
from dfstream.streams.config import DeploymentConfig, KafkaConfig

ROOT = Path(__file__).resolve().parent.parent


def test_default_yaml_spells_out_the_defaults():
    assert load_config(ROOT / "configs" / "default.yaml") == AppConfig()
    assert load_config() == AppConfig()
    assert to_dict(AppConfig()) == {k: v for k, v in to_dict(load_config(ROOT / "configs" / "default.yaml")).items()}


def test_override_subset(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("localizer:\n  onset: 0.7\ninference:\n  hop_seconds: 1\ncall_hook:\n  vad: false\n")
    cfg = load_config(path)
    model = cfg.model
    assert model.localizer.onset == 0.7 and model.localizer.offset == 0.4
    assert model.inference.hop_seconds == 1.0 and isinstance(model.inference.hop_seconds, float)
    assert model.branch("audio") == AudioBranchConfig() and cfg.deployment.call_hook.vad is False


def test_every_section_has_its_owner_and_a_checkpoint_stores_the_models_alone():
    model, app = ModelConfig(), AppConfig()
    assert isinstance(model.limits, LimitsConfig) and isinstance(model.localizer, LocalizerConfig)
    assert isinstance(model.branch("visual"), VisualBranchConfig)
    assert isinstance(app.deployment.kafka, KafkaConfig) and isinstance(app.train, TrainConfig)
    assert set(to_dict(model)) == set(ModelConfig.keys())
    assert not set(to_dict(model)) & {"kafka", "serve", "call_hook", "replay", "train"}
    assert set(to_dict(app)) == set(ModelConfig.keys()) | {f.name for f in dataclasses.fields(DeploymentConfig)} | {
        "train"
    }
    with pytest.raises(ConfigError, match="unknown config key kafka"):
        config_from_dict({"kafka": {}})  # a model's config holds no deployment, by construction


@pytest.mark.parametrize(
    "data,message",
    [
        (
            {"localiser": {}},
            "unknown config key localiser; valid keys here: attribution, audio, branches, call_hook, fusion, inference",
        ),
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
        ({"branches": ["audio", "smell"]}, "unknown branch 'smell'; valid: audio, visual"),
        ({"call_hook": {"hop_seconds": 0}}, "call_hook.hop_seconds must be > 0"),
    ],
)
def test_errors_say_how_to_fix(data, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        app_config(data)


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
    cfg = AppConfig()
    with pytest.raises(AttributeError):
        cfg.model.localizer.onset = 0.9
    assert replace(cfg, "replay.chunk_seconds", 0.5).deployment.replay.chunk_seconds == 0.5
    assert replace(cfg, "visual.fps", 10.0).model.branch("visual").fps == 10.0
    with pytest.raises(ConfigError):
        replace(cfg, "replay.chunk_seconds", -1.0)
    assert app_config(to_dict(cfg)) == cfg
    assert config_from_dict(to_dict(cfg.model)) == cfg.model


def test_config_files_layer_later_over_earlier_section_by_section(tmp_path):
    base, over = tmp_path / "base.yaml", tmp_path / "over.yaml"
    base.write_text("audio:\n  channels: [telephone, codec]\n  backend_dim: 64\ntrain:\n  epochs: 3\n")
    over.write_text("audio:\n  channels: [reverb]\ntrain:\n  degrade: 0.5\n")
    cfg = load_config([base, over])
    assert cfg.model.branch("audio").channels == ("reverb",)  # a list is replaced, not extended
    assert cfg.model.branch("audio").backend_dim == 64  # what the later file leaves alone stays
    assert (cfg.train.epochs, cfg.train.degrade) == (3, 0.5)
    assert load_config([base]) == load_config(base)
