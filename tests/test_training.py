"""Training details: frame targets, fine-tuning, held-out validation."""

import json

import numpy as np
import torch
from helpers import tiny_app, tiny_config

from dfstream.app.toyset import make_toyset
from dfstream.app.training import _split, learning_rates, train, training_windows
from dfstream.engine.core.config import replace
from dfstream.engine.core.dataset import load_metadata
from dfstream.engine.runtime.checkpoint import load_checkpoint
from dfstream.engine.runtime.detector import Detector


def test_frame_targets_follow_segment_centres(tmp_path):
    meta = make_toyset(tmp_path, files=3, seed=1, min_seconds=1.0, max_seconds=1.2)
    det = Detector.from_config(tiny_config())
    item = next(i for i in load_metadata(meta) if i.segments["audio_fake_segments"])
    data = training_windows([item], tmp_path, det, "audio_fake_segments", "t")
    frames = data.targets.reshape(-1)[data.mask.reshape(-1) > 0]
    centres = (np.arange(len(frames)) + 0.5) * 0.02
    expected = [any(s.start <= t < s.end for s in item.segments["audio_fake_segments"]) for t in centres]
    assert frames.tolist() == [float(e) for e in expected] and 0 < frames.sum() < len(frames)
    assert data.inputs["audio"].shape[1] == det.plan.length


def test_validation_is_held_out_of_train_when_missing(tmp_path):
    meta = make_toyset(tmp_path, files=10, seed=1, min_seconds=1.0, max_seconds=1.2)
    items = [i for i in load_metadata(meta) if i.split == "train"]
    config = replace(tiny_app(), "train.val_fraction", 0.25)
    tr, val = _split(items, config.train)
    assert len(val) == 2 and len(tr) == len(items) - 2 and not {i.file for i in tr} & {i.file for i in val}


def test_finetuning_updates_the_encoder_but_not_its_feature_extractor(tmp_path):
    meta = make_toyset(tmp_path / "d", files=4, seed=2, min_seconds=1.0, max_seconds=1.2)
    config = replace(replace(tiny_app(), "train.finetune_encoder", True), "train.epochs", 1)
    before = Detector.from_config(config.model).model.state_dict()
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

    from dfstream.app import training

    meta = make_toyset(tmp_path / "d", files=4, seed=2, min_seconds=1.0, max_seconds=1.2)
    config = replace(tiny_app(), "train.epochs", 5)
    calls = []
    original = training.Trainer.epoch

    def epoch(self, *args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(training.Trainer, "epoch", epoch)
    with pytest.raises(KeyboardInterrupt):
        train(meta, tmp_path / "d", tmp_path / "ck", config, "SYNTHETIC test")
    card = json.loads((tmp_path / "ck" / "dfstream.json").read_text())["training"]
    assert card["interrupted"] == "stopped by the user after epoch 2 of 5"
    assert [h["epoch"] for h in card["history"]] == [1, 2]
    load_checkpoint(tmp_path / "ck")  # a complete, loadable checkpoint


def test_ctrl_c_in_toyset_keeps_the_metadata_of_files_written(tmp_path, monkeypatch):
    import pytest

    from dfstream.app import toyset

    original, calls = toyset.write_wav, []

    def write(path, samples):
        calls.append(path)
        if len(calls) == 4:
            raise KeyboardInterrupt
        original(path, samples)

    monkeypatch.setattr(toyset, "write_wav", write)
    with pytest.raises(KeyboardInterrupt):
        make_toyset(tmp_path, files=10, seed=1, min_seconds=1.0, max_seconds=1.2)
    items = load_metadata(tmp_path / "metadata.json")
    assert len(items) == 3 and all((tmp_path / i.file).is_file() for i in items)


def test_cosine_schedule_falls_from_the_rate_to_5_percent_and_constant_keeps_it():
    five = replace(tiny_app(), "train.epochs", 5)
    lr = five.train.learning_rate
    rates = learning_rates(five.train)
    assert rates[0] == lr and rates == sorted(rates, reverse=True)
    assert np.allclose([rates[2], rates[4]], [0.525 * lr, 0.05 * lr])  # half way: the mean of both ends
    assert np.isclose(rates[1] + rates[3], rates[0] + rates[4])  # a half cosine is symmetric about its middle
    assert learning_rates(replace(five, "train.lr_schedule", "constant").train) == [lr] * 5
    assert learning_rates(replace(tiny_app(), "train.epochs", 1).train) == [lr]


def test_augment_is_drawn_from_the_seed_and_changes_only_training(tmp_path):
    from helpers import tiny_av_app

    from dfstream.app.toyvideo import make_toy_av_set

    root = tmp_path / "av"
    meta = make_toy_av_set(root, files=4, seed=3, min_seconds=2.0, max_seconds=2.6, size=(160, 120))
    base = replace(tiny_av_app(), "train.epochs", 1)
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


def test_degrade_swaps_drawn_windows_for_their_telephone_copy(tmp_path):
    import dataclasses

    from dfstream.app.training import Trainer
    from dfstream.modalities.audio.channel import telephone

    meta = make_toyset(tmp_path, files=3, seed=4, min_seconds=1.0, max_seconds=1.2)
    det = Detector.from_config(tiny_config())
    data = training_windows(load_metadata(meta), tmp_path, det, "audio_fake_segments", "t")
    index = np.arange(len(data.mask))
    line = data.inputs["audio"].copy()
    line[:] = telephone(line, 16000)
    lined = dataclasses.replace(data, inputs={"audio": line})
    with torch.no_grad():
        clean = Trainer(det, tiny_app().train)._logits(data, index, ("c",))[0]
        heard = Trainer(det, tiny_app().train)._logits(lined, index, ("l",))[0]
        off = Trainer(det, replace(tiny_app(), "train.degrade", 0.0).train)._logits(data, index, ("o",), augment=True)[
            0
        ]
        always = Trainer(det, replace(tiny_app(), "train.degrade", 1.0).train)
        swapped = always._logits(data, index, ("a",), augment=True)[0]
        unswapped = always._logits(data, index, ("a",))[0]  # validation: never degraded
    assert not torch.allclose(clean, heard)
    assert torch.equal(off, clean) and torch.equal(unswapped, clean)
    assert torch.allclose(swapped, heard, atol=1e-6)
    half = [Trainer(det, replace(tiny_app(), "train.degrade", 0.5).train) for _ in range(2)]
    with torch.no_grad():
        draws = [t._logits(data, index, ("h",), augment=True)[0] for t in half]
    assert torch.equal(draws[0], draws[1])  # drawn from train.seed


def test_degrade_must_be_a_probability():
    import pytest

    from dfstream.engine.core.errors import ConfigError

    with pytest.raises(ConfigError, match="train.degrade"):
        replace(tiny_app(), "train.degrade", 1.5)


def test_generator_targets_label_forged_audio_frames_with_their_generator(tmp_path):
    from dfstream.app.training import generator_classes

    meta = make_toyset(tmp_path, files=8, seed=5, min_seconds=1.0, max_seconds=1.2)
    items = load_metadata(meta)
    classes = generator_classes(items)
    forged = [i for i in items if i.segments["audio_fake_segments"]]
    assert classes == sorted({i.raw["audio_model"] for i in forged}) and len(classes) >= 2
    det = Detector.from_config(tiny_config())
    for item in forged[:2] + [next(i for i in items if not i.is_fake)]:
        data = training_windows([item], tmp_path, det, "audio_fake_segments", "t", classes)
        inside = data.targets > 0  # fused frames = audio frames here, labelled by audio_fake_segments
        want = classes.index(item.raw["audio_model"]) if item.segments["audio_fake_segments"] else -1
        assert data.generators.shape == data.targets.shape
        assert (data.generators[inside] == want).all() and (data.generators[~inside] == -1).all()
        unseen = training_windows([item], tmp_path, det, "audio_fake_segments", "t", ["some-other-generator"])
        assert (unseen.generators == -1).all()
    assert training_windows(forged[:1], tmp_path, det, "audio_fake_segments", "t").generators is None


def test_generator_loss_trains_a_classifier_that_is_not_saved_and_changes_the_embeddings(tmp_path):
    meta = make_toyset(tmp_path / "d", files=8, seed=5, min_seconds=1.0, max_seconds=1.2)
    base = replace(tiny_app(), "train.epochs", 2)
    runs = {}
    for name, weight in (("plain", 0.0), ("gen", 1.0), ("gen_again", 1.0)):
        summary = train(
            meta, tmp_path / "d", tmp_path / name, replace(base, "train.generator_loss", weight), "SYNTHETIC test"
        )
        runs[name] = (summary, load_checkpoint(tmp_path / name).model.state_dict())
    plain, gen, again = runs["plain"], runs["gen"], runs["gen_again"]
    assert "generator_classes" not in plain[0]["method"]
    assert gen[0]["method"]["generator_classes"] == sorted(
        {i.raw["audio_model"] for i in load_metadata(meta) if i.split == "train" and i.segments["audio_fake_segments"]}
    )
    assert set(gen[1]) == set(plain[1])  # the classifier is not part of the model
    assert all(torch.equal(gen[1][k], again[1][k]) for k in gen[1]) and gen[0]["history"] == again[0]["history"]
    assert not torch.equal(gen[1]["audio.proj.weight"], plain[1]["audio.proj.weight"])


def test_training_batches_mix_files_keep_their_members_and_evaluation_batches_are_consecutive():
    from dfstream.app.training import Trainer

    det = Detector.from_config(tiny_config())
    trainer = Trainer(det, replace(tiny_app(), "train.batch_size", 4).train)
    rng = np.random.default_rng(0)
    epochs = [trainer._batches(10, True, rng) for _ in range(3)]
    for batches in epochs:
        assert sorted(np.concatenate(batches).tolist()) == list(range(10))
        assert [len(b) for b in sorted(batches, key=len)] == [2, 4, 4]
    members = [sorted(tuple(sorted(b.tolist())) for b in batches) for batches in epochs]
    assert members[0] == members[1] == members[2]  # the encoder cache stays valid across epochs
    assert [b[0] for b in epochs[0]] != [b[0] for b in epochs[1]] or [b[0] for b in epochs[1]] != [
        b[0] for b in epochs[2]
    ]  # the order is drawn per epoch
    assert any(np.any(np.diff(np.sort(b)) > 1) for b in epochs[0])  # not runs of consecutive windows
    again = Trainer(det, replace(tiny_app(), "train.batch_size", 4).train)._batches(10, True, np.random.default_rng(0))
    assert all(np.array_equal(a, b) for a, b in zip(again, epochs[0]))  # drawn from train.seed
    assert [b.tolist() for b in trainer._batches(10, False, None)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_finetune_layers_trains_only_the_last_layers(tmp_path):
    meta = make_toyset(tmp_path / "d", files=4, seed=2, min_seconds=1.0, max_seconds=1.2)
    config = replace(tiny_app(), "train.finetune_encoder", True)
    config = replace(replace(config, "train.finetune_layers", 1), "train.epochs", 1)
    before = Detector.from_config(config.model).model.state_dict()
    train(meta, tmp_path / "d", tmp_path / "ck", config, "SYNTHETIC test")
    after = load_checkpoint(tmp_path / "ck").model.state_dict()
    first, last = (
        "audio.encoder.encoder.layers.0.attention.q_proj.weight",
        "audio.encoder.encoder.layers.1.attention.q_proj.weight",
    )
    assert torch.equal(before[first], after[first]) and not torch.equal(before[last], after[last])


def test_accumulate_steps_once_per_group_of_batches_and_bf16_keeps_float32_weights(tmp_path):
    from dfstream.app.training import Trainer

    meta = make_toyset(tmp_path, files=4, seed=2, min_seconds=1.0, max_seconds=1.2)
    det = Detector.from_config(tiny_config())
    data = training_windows(load_metadata(meta), tmp_path, det, "audio_fake_segments", "t")
    batches = -(-len(data.mask) // 2)
    config = replace(
        replace(replace(tiny_app(), "train.batch_size", 2), "train.accumulate", 3), "train.precision", "bf16"
    )
    trainer = Trainer(det, config.train)
    trainer.epoch(data, torch.tensor(1.0), np.random.default_rng(0), "t", 1)
    steps = {int(s["step"]) for s in trainer.optimizer.state.values()}
    assert batches > 3 and steps == {-(-batches // 3)}
    assert trainer.autocast == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in det.model.parameters())


def test_patience_stops_when_validation_stops_improving(tmp_path):
    meta = make_toyset(tmp_path / "d", files=6, seed=2, min_seconds=1.0, max_seconds=1.2)
    # a learning rate this high makes validation worse after the first epochs
    config = replace(replace(replace(tiny_app(), "train.epochs", 12), "train.patience", 2), "train.learning_rate", 0.5)
    summary = train(meta, tmp_path / "d", tmp_path / "ck", config, "SYNTHETIC test")
    history = summary["history"]
    best = summary["best_epoch"]["epoch"]
    assert len(history) == best + 2 < 12
    assert summary["stopped_early"] == f"stopped early after epoch {best + 2}: no better validation for 2 epochs"


def test_lora_adapts_query_and_value_and_saves_an_ordinary_checkpoint(tmp_path):
    meta = make_toyset(tmp_path / "d", files=4, seed=2, min_seconds=1.0, max_seconds=1.2)
    config = replace(replace(tiny_app(), "train.finetune_encoder", True), "train.lora_rank", 2)
    config = replace(replace(config, "train.epochs", 1), "train.learning_rate", 0.01)
    before = Detector.from_config(config.model).model.state_dict()
    train(meta, tmp_path / "d", tmp_path / "ck", config, "SYNTHETIC test")
    after = load_checkpoint(tmp_path / "ck").model.state_dict()
    assert after.keys() == before.keys()  # merged: no adapter left in the checkpoint
    layer = "audio.encoder.encoder.layers.0.attention."
    assert not torch.equal(before[layer + "q_proj.weight"], after[layer + "q_proj.weight"])
    assert not torch.equal(before[layer + "v_proj.weight"], after[layer + "v_proj.weight"])
    assert torch.equal(before[layer + "k_proj.weight"], after[layer + "k_proj.weight"])
    assert torch.equal(before[layer + "q_proj.bias"], after[layer + "q_proj.bias"])


def test_a_lora_layer_starts_as_its_base_and_merges_to_what_it_computes():
    from dfstream.app import lora

    base = torch.nn.Linear(6, 4)
    x = torch.randn(3, 6)
    adapted = lora.LoRALinear(base, rank=2, alpha=4.0)
    assert torch.equal(adapted(x), base(x))  # B starts at zero
    with torch.no_grad():
        adapted.lora_b.normal_()
    merged = adapted.merged()
    assert torch.allclose(merged(x), adapted(x), atol=1e-6) and not torch.allclose(merged(x), base(x))
