"""Training details: frame targets, fine-tuning, held-out validation."""
import json

import numpy as np
import torch

from engine.checkpoint import load_checkpoint
from engine.config import replace
from engine.dataset import load_metadata
from engine.detector import Detector
from engine.toyset import make_toyset
from engine.training import _split, _windows, learning_rates, train
from helpers import tiny_config


def test_frame_targets_follow_segment_centres(tmp_path):
    meta = make_toyset(tmp_path, files=3, seed=1, min_seconds=1.0, max_seconds=1.2)
    det = Detector.from_config(tiny_config())
    item = next(i for i in load_metadata(meta) if i.segments["audio_fake_segments"])
    data = _windows([item], tmp_path, det, "audio_fake_segments", "t")
    frames = data.targets.reshape(-1)[data.mask.reshape(-1) > 0]
    centres = (np.arange(len(frames)) + 0.5) * 0.02
    expected = [any(s.start <= t < s.end for s in item.segments["audio_fake_segments"]) for t in centres]
    assert frames.tolist() == [float(e) for e in expected] and 0 < frames.sum() < len(frames)
    assert data.inputs["audio"].shape[1] == det.plan.length


def test_validation_is_held_out_of_train_when_missing(tmp_path):
    meta = make_toyset(tmp_path, files=10, seed=1, min_seconds=1.0, max_seconds=1.2)
    items = [i for i in load_metadata(meta) if i.split == "train"]
    config = replace(tiny_config(), "train.val_fraction", 0.25)
    tr, val = _split(items, config)
    assert len(val) == 2 and len(tr) == len(items) - 2 and not {i.file for i in tr} & {i.file for i in val}


def test_finetuning_updates_the_encoder_but_not_its_feature_extractor(tmp_path):
    meta = make_toyset(tmp_path / "d", files=4, seed=2, min_seconds=1.0, max_seconds=1.2)
    config = replace(replace(tiny_config(), "train.finetune_encoder", True), "train.epochs", 1)
    before = Detector.from_config(config).model.state_dict()
    train(meta, tmp_path / "d", tmp_path / "ck", config, "SYNTHETIC test")
    after = load_checkpoint(tmp_path / "ck").model.state_dict()
    conv = "audio.encoder.feature_extractor.conv_layers.0.conv.weight"
    attn = "audio.encoder.encoder.layers.0.attention.q_proj.weight"
    assert torch.equal(before[conv], after[conv])
    assert not torch.equal(before[attn], after[attn])
    card = json.loads((tmp_path / "ck" / "dfstream.json").read_text())["training"]
    assert card["method"]["encoder"] == "fine-tuned"


def test_ctrl_c_saves_the_best_epoch_so_far(tmp_path, monkeypatch):
    import pytest
    from engine import training
    meta = make_toyset(tmp_path / "d", files=4, seed=2, min_seconds=1.0, max_seconds=1.2)
    config = replace(tiny_config(), "train.epochs", 5)
    calls = []
    original = training._Trainer.epoch

    def epoch(self, *args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, *args)
    monkeypatch.setattr(training._Trainer, "epoch", epoch)
    with pytest.raises(KeyboardInterrupt):
        train(meta, tmp_path / "d", tmp_path / "ck", config, "SYNTHETIC test")
    card = json.loads((tmp_path / "ck" / "dfstream.json").read_text())["training"]
    assert card["interrupted"] == "stopped by the user after epoch 2 of 5"
    assert [h["epoch"] for h in card["history"]] == [1, 2]
    load_checkpoint(tmp_path / "ck")  # a complete, loadable checkpoint


def test_ctrl_c_in_toyset_keeps_the_metadata_of_files_written(tmp_path, monkeypatch):
    import pytest
    from engine import toyset
    original, calls = toyset._write_wav, []

    def write(path, samples):
        calls.append(path)
        if len(calls) == 4:
            raise KeyboardInterrupt
        original(path, samples)
    monkeypatch.setattr(toyset, "_write_wav", write)
    with pytest.raises(KeyboardInterrupt):
        make_toyset(tmp_path, files=10, seed=1, min_seconds=1.0, max_seconds=1.2)
    items = load_metadata(tmp_path / "metadata.json")
    assert len(items) == 3 and all((tmp_path / i.file).is_file() for i in items)



def test_cosine_schedule_falls_from_the_rate_to_5_percent_and_constant_keeps_it():
    five = replace(tiny_config(), "train.epochs", 5)
    lr = five.train.learning_rate
    rates = learning_rates(five.train)
    assert rates[0] == lr and rates == sorted(rates, reverse=True)
    assert np.allclose([rates[2], rates[4]], [0.525 * lr, 0.05 * lr])  # half way: the mean of both ends
    assert np.isclose(rates[1] + rates[3], rates[0] + rates[4])  # a half cosine is symmetric about its middle
    assert learning_rates(replace(five, "train.lr_schedule", "constant").train) == [lr] * 5
    assert learning_rates(replace(tiny_config(), "train.epochs", 1).train) == [lr]



def test_augment_is_drawn_from_the_seed_and_changes_only_training(tmp_path):
    from engine.toyvideo import make_toy_av_set
    from helpers import tiny_av_config
    root = tmp_path / "av"
    meta = make_toy_av_set(root, files=4, seed=3, min_seconds=2.0, max_seconds=2.6, size=(160, 120))
    base = replace(tiny_av_config(), "train.epochs", 1)
    states, histories = {}, {}
    for name, augment in (("plain", False), ("aug", True), ("aug_again", True)):
        summary = train(meta, root, tmp_path / name, replace(base, "train.augment", augment), "SYNTHETIC test")
        states[name] = load_checkpoint(tmp_path / name).model.state_dict()
        histories[name] = summary["history"]
        assert summary["method"]["augment"] is augment
    mouth = "visual.mouth.proj.weight"
    assert all(torch.equal(states["aug"][k], states["aug_again"][k]) for k in states["aug"])
    assert histories["aug"] == histories["aug_again"]
    assert not torch.equal(states["aug"][mouth], states["plain"][mouth])
