"""Checkpoints: safetensors + JSON round trip, and clear failures."""

import json

import numpy as np
import pytest
from helpers import tiny_config

from dfstream.engine.core.artifacts import sha256_file
from dfstream.engine.core.config import replace
from dfstream.engine.core.errors import CheckpointError, ConfigError
from dfstream.engine.runtime.checkpoint import EXECUTION_KEYS, load_checkpoint, read_metadata, save_checkpoint
from dfstream.engine.runtime.detector import Detector

SUMMARY = {"data": {"description": "unit-test noise", "files": 1, "seconds": 1.0}}


@pytest.fixture
def saved(tmp_path):
    det = Detector.from_config(tiny_config())
    save_checkpoint(det, tmp_path / "ckpt", SUMMARY)
    return det, tmp_path / "ckpt"


def windows(det, n=3):
    return np.random.default_rng(0).normal(0, 0.1, (n, det.plan.length)).astype(np.float32)


def test_round_trip_gives_identical_scores(saved):
    det, path = saved
    loaded = load_checkpoint(path)
    x = windows(det)
    assert np.array_equal(loaded.score(x).probs, det.score(x).probs)
    # the model config comes back; how it ran (batch_size, dtype here) is the loading machine's default
    assert loaded.config == replace(replace(det.config, "inference.batch_size", 8), "inference.dtype", "auto")
    assert loaded.trained and not det.trained
    meta = read_metadata(path)
    assert not set(meta["config"]["inference"]) & set(EXECUTION_KEYS)
    assert meta["format"] == "dfstream.checkpoint/1" and meta["training"] == SUMMARY
    assert loaded.model_id == meta["model_id"] and meta["model_id"].startswith("dfstream-audio-")
    assert meta["specifications"]["audio"]["frame_samples"] == 320
    assert sorted(p.name for p in path.iterdir()) == ["dfstream.json", "model.safetensors"]
    assert "unit-test noise" in loaded.describe() and "UNTRAINED" in det.describe()


def test_inference_overrides_apply_but_not_architecture(saved):
    _, path = saved
    loaded = load_checkpoint(path, {"localizer": {"onset": 0.8, "offset": 0.7}})
    assert loaded.config.localizer.onset == 0.8
    meta = json.loads((path / "dfstream.json").read_text())
    meta["config"]["localizer"]["merge_gap"] = 0.3  # as trained; an override of other keys keeps it
    (path / "dfstream.json").write_text(json.dumps(meta))
    assert load_checkpoint(path, {"localizer": {"onset": 0.6}}).config.localizer.merge_gap == 0.3
    with pytest.raises(ConfigError, match="cannot override"):
        load_checkpoint(path, {"audio": {"backend_dim": 8}})


def test_missing_files(saved, tmp_path):
    _, path = saved
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nowhere")
    (path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors is missing"):
        load_checkpoint(path)
    (path / "dfstream.json").unlink()
    with pytest.raises(CheckpointError, match="dfstream.json is missing"):
        load_checkpoint(path)


def test_corrupt_weights_fail_the_checksum(saved):
    _, path = saved
    data = bytearray((path / "model.safetensors").read_bytes())
    data[-10] ^= 0xFF
    (path / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum"):
        load_checkpoint(path)


def test_unreadable_weights(saved):
    _, path = saved
    (path / "model.safetensors").write_bytes(b"not safetensors")
    meta = json.loads((path / "dfstream.json").read_text())
    meta["weights_sha256"] = sha256_file(path / "model.safetensors")
    (path / "dfstream.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_checkpoint(path)


def test_mismatched_architecture(saved):
    _, path = saved
    meta = json.loads((path / "dfstream.json").read_text())
    meta["config"]["audio"]["backend_dim"] = 24
    (path / "dfstream.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="do not match the architecture.*shape mismatch"):
        load_checkpoint(path)
    meta["config"]["audio"]["backend_dim"] = 16
    meta["architecture"]["audio"]["encoder"]["num_hidden_layers"] = 3
    (path / "dfstream.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(path)


def test_bad_metadata(saved):
    _, path = saved
    (path / "dfstream.json").write_text("{")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(path)
    (path / "dfstream.json").write_text('{"format": "other/9"}')
    with pytest.raises(CheckpointError, match="unsupported checkpoint format"):
        load_checkpoint(path)


def test_a_checkpoint_from_before_the_learned_paths_loads_without_them(tmp_path):
    from helpers import tiny_av_config

    from dfstream.engine.core.config import replace

    config = replace(replace(tiny_av_config(), "audio.mel_bands", 0), "visual.mouth_channels", 0)
    config = replace(replace(config, "fusion.rule", "weighted"), "visual.face_detector", "haar")
    det = Detector.from_config(config)
    save_checkpoint(det, tmp_path / "old", SUMMARY)
    meta_path = tmp_path / "old" / "dfstream.json"
    meta = json.loads(meta_path.read_text())
    del meta["config"]["audio"]["mel_bands"], meta["config"]["visual"]["mouth_channels"]  # as written before
    del meta["config"]["fusion"]["rule"], meta["config"]["visual"]["face_detector"]
    meta_path.write_text(json.dumps(meta))
    loaded = load_checkpoint(tmp_path / "old")
    assert loaded.config.branch("audio").mel_bands == 0 and loaded.config.branch("visual").mouth_channels == 0
    assert loaded.config.fusion.rule == "weighted" and loaded.config.branch("visual").face_detector == "haar"
    assert loaded.fusion.gates is not None  # the gate weights were there to load
    x = windows(det)
    assert np.array_equal(loaded.score({"audio": x}).probs, det.score({"audio": x}).probs)
