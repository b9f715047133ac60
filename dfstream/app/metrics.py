"""The field's metrics: AV-Deepfake1M AP/AR for localization, AUC and EER for detection.

Semantics follow the official AV-Deepfake1M evaluation (PyPI ``avdeepfake1m``):

* IoU of two intervals = intersection / (max end - min start).
* AP@t: within each file, labels are taken in order and each takes the first
  listed proposal with IoU strictly greater than ``t`` not already taken (so
  list proposals by score, highest first). All files' proposals are then
  sorted by score (stable, descending), precision/recall accumulated, and the
  interpolated precision integrated over recall from the *first* recall step
  on (as the official code does; it reads low on tiny sets).
* AR@N: a label is recalled if any of its file's first N proposals has IoU
  strictly greater than ``t`` (no one-to-one matching); recall is summed over
  all files and averaged over the IoU thresholds 0.5:0.05:0.95.

Where the official code panics (a labelled file missing from the predictions or
with an empty list) we count that file's labels as missed. AP with no labels at
all is undefined and reported as ``None``.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

AP_THRESHOLDS = (0.5, 0.75, 0.9, 0.95)
AR_PROPOSALS = (50, 30, 20, 10, 5)
AR_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))


def iou_matrix(proposals: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """IoU of proposals ``(P, 2)`` against labels ``(L, 2)`` (seconds) -> ``(P, L)``."""
    if len(proposals) == 0 or len(labels) == 0:
        return np.zeros((len(proposals), len(labels)))
    p, g = proposals[:, None, :], labels[None, :, :]
    inter = np.clip(np.minimum(p[..., 1], g[..., 1]) - np.maximum(p[..., 0], g[..., 0]), 0, None)
    hull = np.maximum(p[..., 1], g[..., 1]) - np.minimum(p[..., 0], g[..., 0])
    return np.divide(inter, hull, out=np.zeros_like(inter), where=hull > 0)


def _as_arrays(proposals) -> tuple[np.ndarray, np.ndarray]:
    rows = np.asarray(proposals, dtype=np.float64).reshape(-1, 3)
    return rows[:, 0], rows[:, 1:]


def greedy_true_positives(proposals: np.ndarray, labels: np.ndarray, threshold: float) -> np.ndarray:
    """Boolean ``(P,)``: which proposals (in listed order) match a label one-to-one."""
    hits = iou_matrix(proposals, labels) > threshold
    taken = np.zeros(len(proposals), bool)
    for column in hits.T:
        free = np.flatnonzero(column & ~taken)
        if len(free):
            taken[free[0]] = True
    return taken


def average_precision(labels: dict, predictions: dict, threshold: float) -> float | None:
    """AP at one IoU threshold.

    Parameters
    ----------
    labels : dict
        file -> array-like ``(L, 2)`` of [start, end] seconds, in metadata order.
    predictions : dict
        file -> list of ``[score, start, end]``.
    threshold : float
        IoU a hit must exceed.
    """
    scores, hits, n_labels = [], [], 0
    for file, segs in labels.items():
        segs = np.asarray(segs, dtype=np.float64).reshape(-1, 2)
        conf, spans = _as_arrays(predictions.get(file, []))
        scores.append(conf)
        hits.append(greedy_true_positives(spans, segs, threshold))
        n_labels += len(segs)
    if n_labels == 0:
        return None
    scores, hits = np.concatenate(scores), np.concatenate(hits)
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(hits[order])
    precision = tp / np.arange(1, len(tp) + 1)
    recall = tp / n_labels
    # Official curve: [(1, 0)] followed by the points in reverse; cummax of precision along it.
    x = np.concatenate([[1.0], recall[::-1]])
    y = np.maximum.accumulate(np.concatenate([[0.0], precision[::-1]]))
    return float(np.sum(np.abs(np.diff(x)) * y[:-1]))


def average_recall(labels: dict, predictions: dict, n_proposals: int, thresholds=AR_THRESHOLDS) -> float:
    """AR@N averaged over IoU ``thresholds`` (see module doc)."""
    tp = np.zeros(len(thresholds))
    total = 0
    for file, segs in labels.items():
        segs = np.asarray(segs, dtype=np.float64).reshape(-1, 2)
        _, spans = _as_arrays(predictions.get(file, []))
        best = iou_matrix(spans[:n_proposals], segs).max(axis=0, initial=0.0)
        tp += [(best > t).sum() for t in thresholds]
        total += len(segs)
    return float(np.mean(tp / total)) if total else 0.0


def localization_metrics(labels: dict, predictions: dict) -> dict:
    """AP@{0.5,0.75,0.9,0.95}, AR@{50,30,20,10,5} and the 1M-Deepfakes challenge score."""
    ap = {str(t): average_precision(labels, predictions, t) for t in AP_THRESHOLDS}
    ar = {str(n): average_recall(labels, predictions, n) for n in AR_PROPOSALS}
    defined = [v for v in ap.values() if v is not None]
    score = 0.5 * np.mean(defined) + 0.5 * np.mean(list(ar.values())) if defined else None
    return {"ap": ap, "ar": ar, "score": None if score is None else float(score)}


def auc(y_true, y_score) -> float | None:
    """ROC AUC; ``None`` unless both classes are present."""
    y_true = np.asarray(y_true)
    if len(set(y_true.tolist())) < 2:
        return None
    return float(roc_auc_score(y_true, y_score))


def eer(y_true, y_score) -> float | None:
    """Equal error rate: where the false-positive and false-negative rates cross
    (linear interpolation between ROC points); ``None`` unless both classes are present."""
    y_true = np.asarray(y_true)
    if len(set(y_true.tolist())) < 2:
        return None
    fpr, tpr, _ = roc_curve(y_true, y_score)
    fnr = 1 - tpr
    diff = fnr - fpr
    i = int(np.flatnonzero(diff <= 0)[0])
    if i == 0 or diff[i] == 0:
        return float((fpr[i] + fnr[i]) / 2)
    w = diff[i - 1] / (diff[i - 1] - diff[i])
    return float(fpr[i - 1] + w * (fpr[i] - fpr[i - 1]))
