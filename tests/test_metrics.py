"""AV-Deepfake1M metrics against hand-computed cases, including the edge cases."""

import json

import numpy as np
import pytest

from dfstream.app import metrics
from dfstream.app.evaluation import evaluate


def test_iou_matrix_uses_hull_as_union():
    m = metrics.iou_matrix(np.array([[0.0, 10.0], [0.0, 8.0], [20.0, 30.0]]), np.array([[0.0, 10.0]]))
    assert m[:, 0].tolist() == [1.0, 0.8, 0.0]
    assert metrics.iou_matrix(np.zeros((0, 2)), np.array([[0.0, 1.0]])).shape == (0, 1)


def test_greedy_matching_in_listed_order():
    labels = np.array([[0.0, 10.0], [0.0, 9.0]])
    props = np.array([[0.0, 10.0], [0.0, 9.5]])
    assert metrics.greedy_true_positives(props, labels, 0.5).tolist() == [True, True]
    # one proposal cannot match two labels
    assert metrics.greedy_true_positives(props[:1], labels, 0.5).tolist() == [True]
    # a hit needs IoU strictly above the threshold
    assert metrics.greedy_true_positives(np.array([[0.0, 8.0]]), labels[:1], 0.8).tolist() == [False]


LABELS = {"a": [[0, 10]], "b": [[0, 5], [10, 15]]}
PREDS = {"a": [[0.9, 0, 10], [0.8, 0, 9]], "b": [[0.7, 10, 15], [0.6, 20, 25]]}


def test_ap_hand_computed():
    # sorted: .9 TP, .8 FP (its label is taken), .7 TP, .6 FP; 3 labels.
    # recall 1/3,1/3,2/3,2/3; precision 1,1/2,2/3,1/2. The official integration
    # starts at the first recall step: only 1/3 -> 2/3 counts, at max precision 2/3.
    assert metrics.average_precision(LABELS, PREDS, 0.5) == pytest.approx(2 / 9)
    # at 0.95 the same hits hold (IoUs are exactly 1)
    assert metrics.average_precision(LABELS, PREDS, 0.95) == pytest.approx(2 / 9)


def test_ap_ties_keep_listed_order():
    labels = {"a": [[0, 10]]}
    assert metrics.average_precision(labels, {"a": [[0.5, 20, 30], [0.5, 0, 10]]}, 0.5) == pytest.approx(0.5)
    # the official curve gives 0 when the only label is found first: nothing after the first recall step
    assert metrics.average_precision(labels, {"a": [[0.5, 0, 10], [0.5, 20, 30]]}, 0.5) == 0.0


def test_ap_edge_cases():
    assert metrics.average_precision({"a": []}, {"a": [[0.9, 0, 1]]}, 0.5) is None  # no labels at all
    # a labelled file with no (or missing) proposals only adds to the label count
    with_missing = {**LABELS, "c": [[0, 1]]}
    assert metrics.average_precision(with_missing, PREDS, 0.5) == pytest.approx(0.25 * 2 / 3)
    assert metrics.average_precision(with_missing, {**PREDS, "c": []}, 0.5) == pytest.approx(0.25 * 2 / 3)
    # a real file's proposal is a false positive ranked first: sorted F,T,F,T,F; recall
    # 0,1/3,1/3,2/3,2/3; precision 0,1/2,1/3,1/2,2/5. Now the curve starts at recall 0, so
    # both steps count: 1/3 * 1/2 (0 -> 1/3) + 1/3 * 1/2 (1/3 -> 2/3).
    assert metrics.average_precision({**LABELS, "r": []}, {**PREDS, "r": [[0.95, 0, 1]]}, 0.5) == pytest.approx(1 / 3)


def test_ar_hand_computed():
    assert metrics.average_recall(LABELS, PREDS, 1) == pytest.approx(2 / 3)
    assert metrics.average_recall(LABELS, PREDS, 50) == pytest.approx(2 / 3)
    # IoU 0.8 passes 0.5..0.75 (6 of 10 thresholds), not 0.8 (strict)
    assert metrics.average_recall({"a": [[0, 10]]}, {"a": [[0.9, 0, 8]]}, 5) == pytest.approx(0.6)
    # AR uses the best of the first N proposals, no one-to-one matching
    assert metrics.average_recall({"a": [[0, 10], [0, 10]]}, {"a": [[0.9, 0, 10]]}, 1) == pytest.approx(1.0)
    # IoU 0.95 passes 9 of 10 thresholds (not 0.95 itself): (10 + 9) / 20
    assert metrics.average_recall({"a": [[0, 10], [0, 9.5]]}, {"a": [[0.9, 0, 10]]}, 1) == pytest.approx(0.95)
    # the first N listed, not the N best scored
    assert metrics.average_recall({"a": [[0, 10]]}, {"a": [[0.1, 50, 60], [0.9, 0, 10]]}, 1) == 0.0
    # a file without predictions: its labels are missed
    assert metrics.average_recall({"a": [[0, 10]], "b": [[0, 1]]}, {"a": [[0.9, 0, 10]]}, 5) == pytest.approx(0.5)
    assert metrics.average_recall({"a": []}, {"a": [[0.9, 0, 1]]}, 5) == 0.0


def test_localization_metrics_and_challenge_score():
    m = metrics.localization_metrics(LABELS, PREDS)
    assert list(m["ap"]) == ["0.5", "0.75", "0.9", "0.95"]
    assert list(m["ar"]) == ["50", "30", "20", "10", "5"]
    assert m["score"] == pytest.approx(0.5 * (2 / 9) + 0.5 * (2 / 3))


def test_auc_and_eer():
    assert metrics.auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert metrics.eer([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.5)
    assert metrics.auc([0, 1], [0.2, 0.9]) == 1.0 and metrics.eer([0, 1], [0.2, 0.9]) == 0.0
    assert metrics.eer([0, 1, 0, 1], [0.9, 0.1, 0.8, 0.2]) == 1.0
    assert metrics.auc([1, 1], [0.2, 0.3]) is None and metrics.eer([0, 0], [0.2, 0.3]) is None


def test_evaluate_files(tmp_path):
    meta = [
        {"file": "a", "split": "test", "modify_type": "audio_modified", "fake_segments": [[0, 10]]},
        {"file": "b", "split": "test", "fake_segments": [[0, 5], [10, 15]], "modify_type": "both_modified"},
        {"file": "r", "split": "test", "fake_segments": [], "modify_type": "real"},
        {"file": "x", "split": "train", "fake_segments": [[0, 1]], "modify_type": "audio_modified"},
    ]
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    (tmp_path / "pred.json").write_text(json.dumps({**PREDS, "r": []}))
    (tmp_path / "scores.csv").write_text("a;0.9\nb;0.6\nr;0.7\n")
    result = evaluate(tmp_path / "pred.json", tmp_path / "meta.json", tmp_path / "scores.csv", split="test")
    assert result["files"] == 3 and result["files_without_prediction"] == 0
    assert result["localization"]["ap"]["0.5"] == pytest.approx(2 / 9)
    assert result["detection"] == {"files": 3, "auc": 0.5, "eer": 0.5}
    audio = evaluate(tmp_path / "pred.json", tmp_path / "meta.json", label_key="audio_fake_segments", split="test")
    # b is both_modified, so its segments count as audio segments too
    assert audio["localization"]["ap"]["0.5"] == pytest.approx(2 / 9)
