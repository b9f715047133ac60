"""Training that scales (issue 30): a hub-id encoder from an offline cache, a run killed mid-epoch and
resumed to the same weights, and two processes under torchrun matching one."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY, TORCHRUN_2, hub_cache, tiny_config
from safetensors.numpy import load_file

from dfstream.app.toyset import make_toyset
from dfstream.modalities.audio.encoder import build_encoder

REPO = "tiny-org/tiny-wavlm"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A toy set, a tiny WavLM in an offline Hugging Face cache, and a config naming it by hub id."""
    root = tmp_path_factory.mktemp("resume")
    meta = make_toyset(root / "data", files=16, seed=5, min_seconds=1.6, max_seconds=2.0)
    hub_cache(root / "hf" / "hub", REPO, build_encoder(tiny_config().branch("audio").encoder))
    audio = {**TINY["audio"], "encoder": {"pretrained": REPO}}
    config = {"audio": audio, "inference": TINY["inference"], "train": {"epochs": 5, "batch_size": 4}}
    (root / "config.yaml").write_text(json.dumps(config))
    env = {**os.environ, "HF_HOME": str(root / "hf"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return root, meta, env


def _train(setup, out, *extra, launcher=(sys.executable, "-m", "dfstream")):
    root, meta, env = setup
    args = [*launcher, "train", "--meta", str(meta), "--root", str(root / "data"), "--out", str(out)]
    return [*args, "--config", str(root / "config.yaml"), *extra], env


def _weights(out):
    return load_file(str(out / "model.safetensors"))


def test_killed_mid_epoch_resumes_to_the_weights_of_an_uninterrupted_run(setup, tmp_path):
    cmd, env = _train(setup, tmp_path / "whole")
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    cmd, env = _train(setup, tmp_path / "cut")
    state = tmp_path / "cut" / "resume" / "state.json"
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # no chance to save anything: as a lost machine
    proc.wait()
    assert state.exists() and not (tmp_path / "cut" / "model.safetensors").exists()
    saved = json.loads(state.read_text())["epoch"]
    assert 1 <= saved < 5
    resumed = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {tmp_path / 'cut'} after epoch {saved} of 5" in resumed.stderr
    whole, cut = _weights(tmp_path / "whole"), _weights(tmp_path / "cut")
    assert whole.keys() == cut.keys() and all(np.array_equal(whole[k], cut[k]) for k in whole)
    card = json.loads((tmp_path / "cut" / "dfstream.json").read_text())
    assert card["architecture"]["audio"]["encoder"]["hidden_size"] == TINY["audio"]["encoder"]["hidden_size"]
    assert not (tmp_path / "cut" / "resume").exists()  # a finished run leaves only its checkpoint


def test_resume_is_refused_without_a_state_or_with_another_config(setup, tmp_path):
    cmd, env = _train(setup, tmp_path / "none", "--resume")
    nothing = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert nothing.returncode == 2 and "nothing to resume" in nothing.stderr
    cmd, env = _train(setup, tmp_path / "a", "--epochs", "2")
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    (tmp_path / "a" / "resume").mkdir()  # a finished run's state is gone; fake one from a different run
    cmd3, _ = _train(setup, tmp_path / "b", "--epochs", "3")
    proc = subprocess.Popen(cmd3, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = tmp_path / "b" / "resume" / "state.json"
    while not state.exists() and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    other = subprocess.run(
        _train(setup, tmp_path / "b", "--epochs", "4", "--resume")[0], env=env, capture_output=True, text=True
    )
    assert other.returncode == 2 and "another config or metadata" in other.stderr


def test_two_processes_under_torchrun_train_as_one_does(setup, tmp_path):
    (tmp_path / "batch.yaml").write_text(json.dumps({"train": {"batch_size": 8}}))  # 4 windows per process
    batch = ("--config", str(tmp_path / "batch.yaml"))
    one, env = _train(setup, tmp_path / "one", "--epochs", "3", *batch)
    subprocess.run(one, env=env, check=True, capture_output=True)
    two, env = _train(setup, tmp_path / "two", "--epochs", "3", *batch, launcher=TORCHRUN_2)
    run = subprocess.run(two, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    a, b = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert all(np.array_equal(a[k], b[k]) for k in a if k.startswith("audio.encoder."))  # frozen
    # the weights as one process's, up to the batch-norm statistics of half batches (each process
    # normalises its share by its own statistics, as DistributedDataParallel without SyncBatchNorm)
    running = [k for k in a if ".running_" in k]
    weights = [k for k in a if not k.startswith("audio.encoder.") and k not in running]
    assert max(float(np.abs(a[k] - b[k]).max()) for k in weights) < 0.05
    ha = json.loads((tmp_path / "one" / "dfstream.json").read_text())["training"]
    hb = json.loads((tmp_path / "two" / "dfstream.json").read_text())["training"]
    assert hb["method"]["processes"] == 2
    for x, y in zip(ha["history"], hb["history"]):
        assert abs(x["train_loss"] - y["train_loss"]) < 0.01 and abs(x["bce"] - y["bce"]) < 0.01


def test_the_production_audio_config_trains_with_its_encoder_swapped_for_the_tiny_one(setup, tmp_path):
    root, meta, env = setup
    small = {
        "audio": {"encoder": {"pretrained": REPO}, "backend_dim": 16, "backend_layers": 1},
        "inference": TINY["inference"],
        "train": {"epochs": 1, "batch_size": 4, "workers": 1, "shuffle_buffer": 16},
    }
    (tmp_path / "small.yaml").write_text(json.dumps(small))
    production = Path(__file__).resolve().parents[1] / "configs" / "production-audio.yaml"
    cmd, env = _train(setup, tmp_path / "ck", "--config", str(production), "--config", str(tmp_path / "small.yaml"))
    run = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    card = json.loads((tmp_path / "ck" / "dfstream.json").read_text())
    method = card["training"]["method"]
    assert method["encoder"] == "fine-tuned" and method["data"] == "stream" and method["precision"] == "auto"
    assert card["config"]["audio"]["encoder"]["pretrained"] == REPO
    assert (
        "Audio encoder: pretrained `tiny-org/tiny-wavlm`; fine-tuned."
        in (tmp_path / "ck" / "MODEL_CARD.md").read_text()
    )
