"""The real-material set builder (bench/make_dataset.py, bench/realset/), on a tiny stand-in material
folder: toy syllables for speech pools and drawn faces for the face videos, with the generators that need
no installed program (Griffin-Lim resynthesis; the mouth-region edits)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from realset import speech, video, vocoders  # noqa: E402
from realset.build import Generators, build  # noqa: E402
from realset.sources import FACE_VIDEOS, RATE, load_frames, speech_pools  # noqa: E402

from dfstream.app.toyset import toy_signal, write_wav  # noqa: E402
from dfstream.app.toyvideo import draw_face, encode_mp4  # noqa: E402
from dfstream.engine.core.dataset import load_metadata  # noqa: E402
from dfstream.engine.media.decode import decode_audio  # noqa: E402

GENS = Generators(("griffinlim",), (), ("mouth-freeze", "mouth-warp"), ("mouth-shuffle",))


def _face_frames(seconds: float = 2.0, fps: int = 25, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frames = []
    for j in range(round(seconds * fps)):
        canvas = np.full((240, 320, 3), 60, np.uint8)
        draw_face(
            canvas,
            160 + 10 * np.sin(j / 9),
            120,
            150,
            mouth_open=0.5 + 0.5 * np.sin(j / 2),
            tone=tuple(int(c) for c in rng.integers(170, 220, 3)) if j == 0 else (200, 160, 130),
        )
        frames.append(canvas)
    return np.stack(frames)


@pytest.fixture(scope="module")
def material(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("material")
    rng = np.random.default_rng(0)
    for lang in ("aa", "bb", "cc", "dd", "ee"):
        folder = root / "deb/x-ktuberling-data/usr/share/ktuberling/sounds" / lang
        folder.mkdir(parents=True)
        for k in range(4):
            genuine, _ = toy_signal(rng, RATE // 2, "toy-vocoder")
            write_wav(folder / f"w{k}.wav", 0.1 * genuine)
    for seed, rel in enumerate(FACE_VIDEOS.values()):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        encode_mp4(root / rel, _face_frames(seed=seed), np.zeros(2 * RATE, np.float32), 25)
    return root


def _utterance(seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    units = [0.1 * toy_signal(rng, RATE // 2, "toy-vocoder")[0].astype(np.float32) for _ in range(6)]
    return speech.compose(units, 3.0, rng)


def test_compose_is_exactly_long_and_spans_end_in_speech():
    audio = _utterance()
    assert len(audio) == 3 * RATE
    spans = speech.choose_spans(audio, 3, np.random.default_rng(0))
    spots = set(speech.voiced(audio).tolist())
    assert spans and all(a in spots and b in spots and 0.4 * RATE <= b - a <= 1.6 * RATE for a, b in spans)
    assert all(b1 + 0.3 * RATE < a2 for (_, b1), (a2, _) in zip(spans, spans[1:]))


@pytest.mark.parametrize("generator", [*vocoders.RESYNTHESIS, "bank"])
def test_splice_changes_only_its_stretch_at_the_same_level(generator):
    audio = _utterance()
    before = audio.copy()
    a, b = speech.choose_spans(audio, 1, np.random.default_rng(0))[0]
    rng = np.random.default_rng(2)
    bank = {f"w{k}": 0.3 * toy_signal(rng, RATE // 3, "toy-robot")[1].astype(np.float32) for k in range(5)}
    words = speech.splice(audio, a, b, "x" if generator == "bank" else generator, bank, rng)
    assert np.array_equal(audio[:a], before[:a]) and np.array_equal(audio[b:], before[b:])
    assert not np.allclose(audio[a:b], before[a:b])
    level = 20 * np.log10(speech._voiced_rms(audio[a:b]) / speech._voiced_rms(before[a:b]))
    assert abs(level) < 1.5, level
    assert (words == []) == (generator != "bank")


def _voice(f0: float, seconds: float = 1.0) -> np.ndarray:
    """A voiced vowel-like tone: 20 harmonics of ``f0`` under two formant peaks, 0.3 peak."""
    t = np.arange(round(seconds * RATE)) / RATE
    out = sum(
        np.sin(2 * np.pi * k * f0 * t)
        * (np.exp(-(((k * f0 - 700) / 250) ** 2)) + 0.5 * np.exp(-(((k * f0 - 1200) / 300) ** 2)) + 0.02)
        for k in range(1, 21)
    )
    return (0.3 * out / np.abs(out).max()).astype(np.float32)


def _median_pitch(x: np.ndarray) -> float:
    import librosa

    return float(np.median(librosa.yin(x[2000:-2000], fmin=60, fmax=400, sr=RATE)))


@pytest.mark.parametrize("name", list(vocoders.RESYNTHESIS))
def test_copy_synthesis_keeps_length_and_pitch_and_repeats_for_a_seed(name):
    real = _voice(150.0)
    fake = vocoders.RESYNTHESIS[name](real, 7)
    assert fake.dtype == np.float32 and fake.shape == real.shape
    assert np.array_equal(fake, vocoders.RESYNTHESIS[name](real, 7))
    assert not np.allclose(fake, real, atol=1e-3)
    semitones = 12 * np.log2(_median_pitch(fake) / 150.0)
    if name == "pitch-shift":
        assert 1.8 < abs(semitones) < 5.2, semitones
    else:
        assert abs(semitones) < 0.5, semitones


def test_fit_phrase_fills_exactly_and_opens_and_closes_in_speech():
    rng = np.random.default_rng(3)
    bank = {f"w{k}": 0.3 * toy_signal(rng, RATE // 4, "toy-vocoder")[0].astype(np.float32) for k in range(6)}
    words, phrase = speech.fit_phrase(bank, RATE, 0.6, np.random.default_rng(0))
    assert len(phrase) == RATE and words
    assert np.abs(phrase[:80]).max() > 0  # opens with a word, no leading silence


@pytest.mark.parametrize("generator", video.GENERATORS)
def test_manipulate_changes_only_the_span_and_the_mouth(generator):
    frames = _face_frames(seconds=1.6)
    boxes = video.face_boxes(frames)
    assert not np.isnan(boxes).any()
    edited = frames.copy()
    donor = (_face_frames(seconds=1.6, seed=5)[::-1].copy(), boxes[::-1].copy())
    video.manipulate(edited, boxes, 10, 30, generator, np.random.default_rng(0), donor)
    assert np.array_equal(edited[:10], frames[:10]) and np.array_equal(edited[30:], frames[30:])
    changed = np.abs(edited.astype(int) - frames.astype(int)).max(axis=3) > 0
    assert changed[10:30].any()
    rows = np.flatnonzero(changed[10:30].any(axis=(0, 2)))
    top = boxes[10:30, 1].min() + 0.45 * (boxes[10:30, 3] - boxes[10:30, 1]).min()
    assert rows.min() >= top  # below the eyes: only mouth and chin


def test_build_writes_an_av1m_set_deterministically(material, tmp_path):
    summary = build(tmp_path / "a", 10, 3, material, GENS, workers=1)
    entries = json.loads((tmp_path / "a/metadata.json").read_text())
    items = load_metadata(tmp_path / "a/metadata.json")
    assert len(items) == 10 == sum(v["clips"] for v in summary["splits"].values())
    for e in entries:
        assert e["split"] in ("train", "val", "test")
        assert e["file"].startswith(e["split"] + "/") and (tmp_path / "a" / e["file"]).is_file()
        seconds = e["audio_frames"] / RATE
        decoded = decode_audio(str(tmp_path / "a" / e["file"]))
        assert abs(len(decoded.samples) / RATE - seconds) < 0.1
        assert len(load_frames(tmp_path / "a" / e["file"], 25)) in range(e["video_frames"] - 1, e["video_frames"] + 2)
        for key in ("fake_segments", "audio_fake_segments", "visual_fake_segments"):
            assert all(0 <= s < t <= seconds + 1e-6 for s, t in e[key])
        assert bool(e["audio_fake_segments"]) == (e["audio_model"] is not None)
        assert bool(e["visual_fake_segments"]) == (e["visual_model"] is not None)
        assert (
            e["modify_type"]
            == {(0, 0): "real", (1, 0): "audio_modified", (0, 1): "visual_modified", (1, 1): "both_modified"}[
                (bool(e["audio_model"]), bool(e["visual_model"]))
            ]
        )
        if e["visual_model"] == "mouth-shuffle":
            assert e["split"] == "test"
    pools = {p.name: p.group for p in speech_pools(material)}
    by_split = {s: {pools[e["speech_pool"]] for e in entries if e["split"] == s} for s in ("train", "test")}
    assert not by_split["train"] & by_split["test"]  # test speakers are never heard in train
    assert "frame_auc" in json.loads((tmp_path / "a/shortcut.json").read_text())
    build(tmp_path / "b", 10, 3, material, GENS, workers=2)
    assert json.loads((tmp_path / "b/metadata.json").read_text()) == entries


def test_build_refuses_unknown_or_overlapping_generators(material, tmp_path):
    with pytest.raises(ValueError, match="unknown generators"):
        build(tmp_path, 2, 0, material, Generators(("nope",), (), ("mouth-freeze",), ()))
    with pytest.raises(ValueError, match="both seen and held out"):
        build(tmp_path, 2, 0, material, Generators(("griffinlim",), ("griffinlim",), ("mouth-freeze",), ()))


@pytest.fixture(scope="module")
def tiny_recipe(material, tmp_path_factory) -> tuple[Path, Path]:
    """A 12-clip set of the stand-in material and a tiny audio-visual model trained on it for 1 epoch."""
    from helpers import tiny_av_app

    from dfstream.app.training import train
    from dfstream.engine.core.config import replace

    root = tmp_path_factory.mktemp("recipe")
    build(root / "data", 12, 3, material, GENS, workers=1)
    train(
        root / "data/metadata.json",
        root / "data",
        root / "model",
        replace(tiny_av_app(), "train.epochs", 1),
        "tiny stand-in material",
    )
    return root / "data", root / "model"


def test_tiny_model_recipe_trains_replays_and_writes_its_card(tiny_recipe, tmp_path):
    """`make model` in miniature: the set, training (1 epoch, a tiny audio-visual model), replay of the
    test split, and the model card, whose numbers are the evaluation's."""
    import model_card

    from dfstream.app.evaluation import evaluate
    from dfstream.engine.runtime.checkpoint import load_checkpoint
    from dfstream.engine.runtime.stream import StreamProcessor
    from dfstream.streams.replay import expand_inputs, replay

    data, model = tiny_recipe
    detector = load_checkpoint(model)
    out = tmp_path / "out"
    replay(expand_inputs([str(data / "test")], data), StreamProcessor(detector), out, 2.0)
    commands = {k: f"<{k} command>" for k in ("dataset", "train", "index", "replay", "eval", "robustness")}
    text = model_card.card(model, data, out, None, None, commands)
    expected = evaluate(out / "predictions.json", data / "metadata.json", out / "scores.csv", split="test")
    assert "SYNTHETIC" in text and "<train command>" in text and "mouth-shuffle" in text
    assert f"| all | {expected['files']} | {expected['localization']['ap']['0.5']:.4f} |" in text
    assert "Not measured for this checkpoint" in text and "No feature probe was run" in text
    other = tmp_path / "robustness.json"  # another checkpoint's measurements never enter this card
    other.write_text(json.dumps({"model": {"model_id": "dfstream-other"}, "conditions": {"clean": {"files": 1}}}))
    assert "Not measured for this checkpoint" in model_card.card(model, data, out, None, other, commands)

    # the ablation table: each row scored on the card's subsets, shown when the card's checkpoint is a row
    import ablation

    table = tmp_path / "ablation.json"
    assert ablation.main(["--data", str(data), "--row", "tiny", str(model), str(out), "--out", str(table)]) == 0
    (row,) = json.loads(table.read_text())["rows"]
    subsets = model_card.subsets(
        json.loads((data / "metadata.json").read_text()), json.loads((data / "generators.json").read_text())
    )
    assert set(row["subsets"]) == set(ablation.SUBSETS) and row["model_id"] == detector.model_id
    for name in ablation.SUBSETS:
        assert row["subsets"][name]["files"] == len(subsets[name])
    seen = evaluate(out / "predictions.json", _entries(tmp_path / "seen.json", subsets["seen"]), out / "scores.csv")
    assert row["subsets"]["seen"]["ap@0.5"] == seen["localization"]["ap"]["0.5"]
    text = model_card.card(model, data, out, None, None, commands, ablation=table)
    assert "| tiny | " in text and "Measured by `make ablation`" in text
    assert "Not measured for this checkpoint (`make ablation`" in model_card.card(
        model, data, out, None, None, commands, ablation=other
    )


def _entries(path: Path, entries: list[dict]) -> Path:
    path.write_text(json.dumps(entries))
    return path


def test_branch_probe_scores_each_branch_on_its_own_labels(tiny_recipe, tmp_path):
    """bench/branch_probe.py on the tiny trained model: its fused frame AUC is the one training's
    validation computes over the same files, batched the training way."""
    import branch_probe

    from dfstream.app.config import TrainConfig
    from dfstream.app.training import Trainer, training_windows
    from dfstream.engine.runtime.checkpoint import load_checkpoint

    data, model = tiny_recipe
    out = tmp_path / "probe.json"
    assert (
        branch_probe.main(["--data", str(data), "--model", str(model), "--splits", "train,test", "--out", str(out)])
        == 0
    )
    result = json.loads(out.read_text())
    assert set(result["splits"]) == {"train", "test"}
    test = result["splits"]["test"]
    assert test["audio"]["labels"] == "audio_fake_segments" and test["visual"]["labels"] == "visual_fake_segments"
    assert set(test["visual"]["by_generator"]) <= {"mouth-freeze", "mouth-warp", "mouth-shuffle"}
    assert set(test["audio"]["by_generator"]) <= {"griffinlim"}
    detector = load_checkpoint(model, {"inference": {"dtype": "float32"}})
    items = [i for i in load_metadata(data / "metadata.json") if i.split == "test"]
    windows = training_windows(items, data, detector, "fake_segments", "test")
    whole = Trainer(detector, TrainConfig()).evaluate(windows, "test")
    assert test["files"] == len(items)
    assert test["fused"]["frames"] == int(
        (windows.mask.astype(bool) & np.any(list(windows.present_frames.values()), axis=0)).sum()
    )
    assert test["fused"]["frame_auc"] == pytest.approx(whole["frame_auc"], abs=2e-4)
    import model_card

    section = model_card._branches(out, detector.model_id)
    assert (
        f"| test | {len(items)} | {test['fused']['frame_auc']:.4f} | {test['audio']['frame_auc']:.4f} | "
        f"{test['visual']['frame_auc']:.4f} |"
    ) in section
    assert model_card._branches(out, "dfstream-other").startswith("Not measured")


def test_card_names_each_augmentation_and_the_robustness_condition_training_saw():
    import model_card

    phone = ["telephone"]
    assert model_card._augmented({}, phone) == "" and model_card._seen_conditions({"augment": True}, phone) == ""
    both = model_card._augmented({"augment": True, "degrade": 0.5}, phone)
    assert "`train.degrade` 0.5" in both and "telephone line" in both and "mouth regions" in both
    assert "gain" not in both
    assert "the `telephone` rows measure conditions" in model_card._seen_conditions({"degrade": 0.5}, phone)
    mixed = model_card._augmented({"degrade": 0.5}, ["telephone", "codec", "rawboost"])
    assert "MP3 or AAC" in mixed and "RawBoost" in mixed and "-6 to +6 dB" in mixed
    seen = model_card._seen_conditions({"degrade": 0.5}, ["codec", "reverb"])
    assert "`mp3-32k`, `aac-32k`, `opus-16k` rows" in seen and "telephone" not in seen
    assert model_card._generator_loss({"generator_loss": 0.0}) == ""
    aux = model_card._generator_loss({"generator_loss": 0.5, "generator_classes": ["espeak-ng", "flite-slt"]})
    assert "`train.generator_loss` 0.5" in aux and "2 audio generators (espeak-ng, flite-slt)" in aux
