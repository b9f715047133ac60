"""Streamed training data (train.data: stream): the windows memory mode holds, decoded by DataLoader
workers in an order drawn from the seed, nothing of the set held; resumable; several processes."""

import hashlib
import json
import os
import subprocess

import numpy as np
import pytest
from helpers import TINY, TORCHRUN_2, tiny_app, tiny_config
from safetensors.numpy import load_file

from dfstream.app.toyset import make_toyset
from dfstream.app.train_data import WindowStream, concat, label_balance, loader, training_windows
from dfstream.app.training import train
from dfstream.engine.core.config import replace
from dfstream.engine.core.dataset import load_metadata
from dfstream.engine.runtime.detector import Detector


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("stream")
    meta = make_toyset(root, files=8, seed=6, min_seconds=1.2, max_seconds=2.0)
    return root, meta


def _rows(w):
    """One fingerprint per window: its samples, labels and mask."""
    return sorted(
        hashlib.sha256(w.inputs["audio"][i].tobytes() + w.targets[i].tobytes() + w.mask[i].tobytes()).hexdigest()
        for i in range(len(w.mask))
    )


def test_the_stream_yields_the_windows_memory_holds_in_an_order_drawn_per_epoch(toy):
    root, meta = toy
    items = [i for i in load_metadata(meta) if i.split == "train"]
    det = Detector.from_config(tiny_config())
    held = training_windows(items, root, det, "audio_fake_segments", "t")
    stream = WindowStream(items, root, det, "audio_fake_segments", None, 2.0, seed=3, buffer=5)
    stream.epoch = 1
    first = concat(list(loader(stream, 4, workers=2)))
    again = concat(list(loader(stream, 4, workers=2)))
    stream.epoch = 2
    other = concat(list(loader(stream, 4, workers=0)))
    assert _rows(first) == _rows(held) == _rows(other)
    assert np.array_equal(first.inputs["audio"], again.inputs["audio"])  # the same epoch, the same order
    assert not np.array_equal(first.inputs["audio"], other.inputs["audio"])
    assert first.seconds == pytest.approx(held.seconds) and first.fake_seconds == pytest.approx(held.fake_seconds)
    halves = [WindowStream(items, root, det, "audio_fake_segments", None, 2.0, seed=3, rank=r, size=2) for r in (0, 1)]
    files = [{i.file for i in h.files()} for h in halves]
    assert not files[0] & files[1] and files[0] | files[1] == {i.file for i in items}


def test_label_balance_is_the_forged_share_of_the_files_lengths(toy):
    root, meta = toy
    items = [i for i in load_metadata(meta) if i.split == "train"]
    det = Detector.from_config(tiny_config())
    held = training_windows(items, root, det, "audio_fake_segments", "t")
    share = label_balance(items, root, "audio_fake_segments")
    assert share == pytest.approx(held.fake_seconds / held.seconds, abs=0.01)


def test_streamed_training_trains_validates_and_resumes_to_the_same_weights(toy, tmp_path, monkeypatch):
    from dfstream.app import training
    from dfstream.engine.runtime.checkpoint import load_checkpoint

    root, meta = toy
    config = replace(replace(replace(tiny_app(), "train.data", "stream"), "train.epochs", 3), "train.workers", 1)
    whole = train(meta, root, tmp_path / "whole", config, "SYNTHETIC test")
    assert whole["method"]["data_feed"] == "streamed by 1 decoding workers, shuffle buffer 256"
    assert all(h["bce"] is not None and np.isfinite(h["train_loss"]) for h in whole["history"])
    assert whole["data"]["seconds"] > 0
    original, calls = training.Trainer.epoch_stream, []

    def epoch_stream(self, *args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(training.Trainer, "epoch_stream", epoch_stream)
    with pytest.raises(KeyboardInterrupt):
        train(meta, root, tmp_path / "cut", config, "SYNTHETIC test")
    monkeypatch.setattr(training.Trainer, "epoch_stream", original)
    train(meta, root, tmp_path / "cut", config, "SYNTHETIC test", resume=True)
    a, b = (
        load_file(str(tmp_path / "whole" / "model.safetensors")),
        load_file(str(tmp_path / "cut" / "model.safetensors")),
    )
    assert all(np.array_equal(a[k], b[k]) for k in a)
    load_checkpoint(tmp_path / "cut")


def test_two_processes_stream_their_own_files_and_finish_together(toy, tmp_path):
    root, meta = toy
    audio = TINY["audio"]
    config = {"audio": audio, "inference": TINY["inference"], "train": {"epochs": 2, "data": "stream", "workers": 1}}
    (tmp_path / "config.yaml").write_text(json.dumps(config))
    launcher = list(TORCHRUN_2)
    args = ["train", "--meta", str(meta), "--root", str(root), "--out", str(tmp_path / "ck")]
    run = subprocess.run(
        launcher + args + ["--config", str(tmp_path / "config.yaml")],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    card = json.loads((tmp_path / "ck" / "dfstream.json").read_text())["training"]
    assert card["method"]["processes"] == 2 and len(card["history"]) == 2
    assert all(np.isfinite(h["train_loss"]) for h in card["history"])
    state = load_file(str(tmp_path / "ck" / "model.safetensors"))
    assert all(np.isfinite(v).all() for v in state.values())
