"""Attribution: exact open-set decisions on hand-made embeddings, index files, CLI end to end."""

import json

import numpy as np
import pytest
from helpers import tiny_config

from dfstream.app.cli import main
from dfstream.app.evaluation import attribution_metrics, match_attributions
from dfstream.engine.core.artifacts import sha256_file
from dfstream.engine.core.dataset import load_metadata
from dfstream.engine.core.types import Detection, Span
from dfstream.engine.runtime.checkpoint import save_checkpoint
from dfstream.engine.runtime.detector import Detector
from dfstream.fusion import attribution
from dfstream.fusion.attribution import AttributionError, AttributionIndex, Attributor, check_model

# Four generators around a common component [0, 0, 5]: centred, they point along +-x and +-y.
BASE = np.array([[3, 0, 5], [-3, 0, 5], [0, 3, 5], [0, -3, 5]], np.float32)
NAMES = ["A", "B", "C", "D"]


@pytest.fixture
def index():
    idx = AttributionIndex(3, {"model_id": "m", "model_sha256": "abc"})
    idx.add(BASE, NAMES)
    idx.add(np.array([[3, 1, 5]], np.float32), ["A"])  # centred: (3, 1, 0) / sqrt(10)
    return idx


def test_centre_is_fixed_by_the_first_spans(index):
    assert index.center.tolist() == [0, 0, 5]
    assert len(index) == 5 and index.counts() == {"A": 2, "B": 1, "C": 1, "D": 1} and index.kind == "flat"


def test_known_generator_vote_and_similarities(index):
    (matches,) = index.attribute(np.array([[1, 0, 5]]), threshold=0.5, top_k=2, neighbours=3)
    # neighbours: A (1.0), A (3/sqrt(10)), then C or D at 0.0; A's vote is 1 + 0.948683
    assert matches[0] == {"generator": "A", "similarity": 1.0}
    assert matches[1]["similarity"] == 0.0 and matches[1]["generator"] in ("C", "D")
    (only,) = index.attribute(np.array([[0, -7, 5]]), threshold=0.5, top_k=1, neighbours=5)
    assert only == ({"generator": "D", "similarity": 1.0},)


def test_open_set_rejection_is_exact(index):
    # centred along z: orthogonal to every known generator -> best similarity 0 < 0.5
    assert index.attribute(np.array([[0, 0, 9]]), 0.5) == [({"generator": "unknown", "similarity": 0.0},)]
    # a match exactly at the threshold is accepted
    assert index.attribute(np.array([[1, 0, 5]]), 1.0, top_k=1)[0] == ({"generator": "A", "similarity": 1.0},)
    # just above the best similarity is not: a query along A's second vector matches it with 1.0
    query = np.array([[3, 1, 5]], np.float32)
    assert index.attribute(query, 1.0001, top_k=1)[0][0]["generator"] == "unknown"


def test_save_load_round_trip(index, tmp_path):
    sidecar = index.save(tmp_path / "ix")
    assert sidecar["vectors"] == 5 and sidecar["dim"] == 3 and sidecar["index_type"] == "flat"
    assert set(sidecar["sha256"]) == {"index.faiss", "labels.safetensors"}
    loaded = AttributionIndex.load(tmp_path / "ix")
    query = np.array([[1, 0, 5], [0, 0, 9], [-1, 0.2, 5]], np.float32)
    assert loaded.attribute(query, 0.5) == index.attribute(query, 0.5)
    assert loaded.counts() == index.counts() and loaded.meta["model_sha256"] == "abc"


def test_corrupt_missing_and_foreign_indexes(index, tmp_path):
    index.save(tmp_path / "ix")
    data = (tmp_path / "ix" / "index.faiss").read_bytes()
    (tmp_path / "ix" / "index.faiss").write_bytes(data[: len(data) // 2])
    with pytest.raises(AttributionError, match="corrupt or truncated"):
        AttributionIndex.load(tmp_path / "ix")
    index.save(tmp_path / "ix")
    (tmp_path / "ix" / "labels.safetensors").unlink()
    with pytest.raises(AttributionError, match="labels.safetensors is missing"):
        AttributionIndex.load(tmp_path / "ix")
    with pytest.raises(AttributionError, match="not a dfstream attribution index"):
        AttributionIndex.load(tmp_path)
    (tmp_path / "ix" / "dfstream.index.json").write_text('{"format": "x"}')
    with pytest.raises(AttributionError, match="unsupported index format"):
        AttributionIndex.load(tmp_path / "ix")


def test_unreadable_index_with_matching_checksum(index, tmp_path):
    index.save(tmp_path / "ix")
    (tmp_path / "ix" / "index.faiss").write_bytes(b"garbage")
    sidecar = json.loads((tmp_path / "ix" / "dfstream.index.json").read_text())
    sidecar["sha256"]["index.faiss"] = sha256_file(tmp_path / "ix" / "index.faiss")
    (tmp_path / "ix" / "dfstream.index.json").write_text(json.dumps(sidecar))
    with pytest.raises(AttributionError, match="cannot read the index"):
        AttributionIndex.load(tmp_path / "ix")


def test_model_mismatch(index):
    check_model(index, "m", "abc", 3)
    with pytest.raises(AttributionError, match="built with model m"):
        check_model(index, "other", "def", 3)
    with pytest.raises(AttributionError, match="built with model m"):
        check_model(index, "random", None, 3)
    with pytest.raises(AttributionError, match="3-dimensional"):
        check_model(index, "m", "abc", 4)
    with pytest.raises(AttributionError, match="dimension 2"):
        index.add(np.zeros((1, 2)), ["A"])


def test_crossing_flat_max_switches_to_hnsw(index, tmp_path, monkeypatch):
    monkeypatch.setattr(attribution, "FLAT_MAX", 6)
    index.add(np.array([[-3, 1, 5], [1, 3, 5]], np.float32), ["B", "C"])
    assert index.kind == "hnsw" and len(index) == 7
    assert index.attribute(np.array([[0, 9, 5]]), 0.5, top_k=1)[0][0]["generator"] == "C"
    index.save(tmp_path / "ix")
    assert AttributionIndex.load(tmp_path / "ix").kind == "hnsw"


def test_attributor_fills_detections_with_embeddings(index):
    with_emb = Detection(Span(0, 1), 0.9, "audio", (), np.array([1, 0, 5], np.float32))
    without = Detection(Span(1, 2), 0.8, "audio")
    out = Attributor(index, 0.5, top_k=1)([with_emb, without])
    assert out[0].attribution == ({"generator": "A", "similarity": 1.0},) and out[1].attribution == ()


def test_attribution_metrics_exact(tmp_path):
    meta = [
        {"file": "k1", "fake_segments": [[0, 1]], "modify_type": "audio_modified", "audio_model": "A"},
        {"file": "k2", "fake_segments": [[0, 1], [5, 6]], "modify_type": "audio_modified", "audio_model": "B"},
        {"file": "u", "fake_segments": [[0, 1]], "modify_type": "audio_modified", "audio_model": "Z"},
    ]
    (tmp_path / "m.json").write_text(json.dumps(meta))
    det = {
        "k1": [Detection(Span(0, 1), 0.9, "audio", ({"generator": "A", "similarity": 0.9},))],
        "k2": [
            Detection(Span(0.1, 1), 0.9, "audio", ({"generator": "unknown", "similarity": 0.3},)),
            Detection(Span(3, 4), 0.9, "audio", ({"generator": "B", "similarity": 0.8},)),
        ],
        "u": [Detection(Span(0, 0.9), 0.9, "audio", ({"generator": "unknown", "similarity": 0.4},))],
    }
    matches, missed = match_attributions(load_metadata(tmp_path / "m.json"), det, "fake_segments", "audio_model")
    assert [(m["generator"], m["predicted"]) for m in matches] == [("A", "A"), ("B", "unknown"), ("Z", "unknown")]
    result = attribution_metrics(matches, missed, {"A", "B"})
    # k2's second span [5,6] matches nothing -> missed; known spans: k1 (right), k2 first (unknown: wrong)
    assert result["matched_spans"] == 3 and result["missed_spans"] == 1 and result["known_spans"] == 2
    assert result["top1_accuracy"] == 0.5
    # known similarities 0.9, 0.3 vs unknown 0.4: one of two pairs ranked right
    assert result["known_vs_unknown_auroc"] == 0.5


def test_index_build_add_info_replay_and_eval(tmp_path, capsys):
    data = tmp_path / "toy"
    main(["toyset", "--out", str(data), "--files", "15", "--seed", "5"])
    meta = json.loads((data / "metadata.json").read_text())
    (data / "known.json").write_text(json.dumps([m for m in meta if m["audio_model"] != "toy-robot"]))
    (data / "robot.json").write_text(json.dumps([m for m in meta if m["audio_model"] in (None, "toy-robot")]))
    ckpt = tmp_path / "ck"
    save_checkpoint(Detector.from_config(tiny_config()), ckpt, {"data": {"description": "random, for plumbing"}})
    index = tmp_path / "ix"
    assert (
        main(
            [
                "index",
                "build",
                str(index),
                "--meta",
                str(data / "known.json"),
                "--root",
                str(data),
                "--model",
                str(ckpt),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "toy-vocoder" in out and "toy-whisper" in out and "toy-robot" not in out
    sidecar = json.loads((index / "dfstream.index.json").read_text())
    assert sidecar["model_sha256"] == json.loads((ckpt / "dfstream.json").read_text())["weights_sha256"]
    assert -1 <= sidecar["threshold"]["value"] <= 1 and sidecar["threshold"]["held_out_spans"] >= 1
    assert main(["index", "info", str(index)]) == 0
    assert f"{sidecar['vectors']} spans" in capsys.readouterr().out
    # everything above the localizer's floor is one span per file: every file gets a detection
    cfg = tmp_path / "c.yaml"
    cfg.write_text("localizer: {onset: 0.001, offset: 0.001}\n")
    out_dir = tmp_path / "out"
    assert (
        main(
            [
                "replay",
                str(data / "test"),
                str(data / "val"),
                "--root",
                str(data),
                "--model",
                str(ckpt),
                "--index",
                str(index),
                "--config",
                str(cfg),
                "--out",
                str(out_dir),
                "--quiet",
            ]
        )
        == 0
    )
    dets = [d for line in (out_dir / "verdicts.jsonl").read_text().splitlines() for d in json.loads(line)["detections"]]
    assert dets and all(d["attribution"] and "similarity" in d["attribution"][0] for d in dets)
    assert " ~ " in capsys.readouterr().out  # the summary names each span's best match
    assert (
        main(
            [
                "eval",
                "--pred",
                str(out_dir / "predictions.json"),
                "--meta",
                str(data / "metadata.json"),
                "--verdicts",
                str(out_dir / "verdicts.jsonl"),
                "--index",
                str(index),
                "--split",
                "test",
                "--out",
                str(tmp_path / "m.json"),
            ]
        )
        == 0
    )
    result = json.loads((tmp_path / "m.json").read_text())["attribution"]
    assert result["matched_spans"] + result["missed_spans"] == sum(
        len(m["fake_segments"]) for m in meta if m["split"] == "test"
    )
    # add the unseen generator's spans; the threshold stays, the counts grow
    assert (
        main(
            ["index", "add", str(index), "--meta", str(data / "robot.json"), "--root", str(data), "--model", str(ckpt)]
        )
        == 0
    )
    grown = json.loads((index / "dfstream.index.json").read_text())
    assert grown["counts"]["toy-robot"] >= 1 and grown["threshold"] == sidecar["threshold"]
    other = tmp_path / "ck2"
    save_checkpoint(Detector.from_config(tiny_config(audio={"encoder": {"seed": 9}})), other, {"data": {}})
    assert (
        main(
            [
                "replay",
                str(data / "test"),
                "--model",
                str(other),
                "--index",
                str(index),
                "--quiet",
                "--out",
                str(tmp_path / "o2"),
            ]
        )
        == 2
    )
    assert "rebuild it with" in capsys.readouterr().err
