"""The field's metrics: AV-Deepfake1M AP/AR for localization, AUC and EER for detection, and the
ASVspoof and PartialSpoof ones (:func:`asvspoof_eer`, :func:`min_dcf`, :func:`segment_eer`).

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


def det_curve(target, nontarget) -> tuple[np.ndarray, np.ndarray]:
    """ASVspoof's DET curve: miss and false-alarm rates ``(frr, far)`` at every threshold.

    As the ASVspoof evaluation packages compute it (``compute_det_curve``): ``target`` scores are
    bona fide (higher = more bona fide); the scores are sorted (stable) and the threshold moves
    past one score at a time, from below them all (``frr`` 0, ``far`` 1) to above them all.
    """
    target = np.asarray(target, dtype=np.float64)
    nontarget = np.asarray(nontarget, dtype=np.float64)
    is_target = np.concatenate([np.ones(target.size), np.zeros(nontarget.size)])
    order = np.argsort(np.concatenate([target, nontarget]), kind="mergesort")
    rejected_targets = np.cumsum(is_target[order])
    rejected_nontargets = np.arange(1, order.size + 1) - rejected_targets
    frr = np.concatenate([[0.0], rejected_targets / target.size])
    far = np.concatenate([[1.0], (nontarget.size - rejected_nontargets) / nontarget.size])
    return frr, far


def _bona_fide_split(y_true, y_score) -> tuple[np.ndarray, np.ndarray] | None:
    """``(bona fide, spoof)`` scores in ASVspoof's orientation (higher = bona fide) from forged-class
    labels (1 = forged) and scores (higher = forged); None unless both classes are present."""
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(y_score, dtype=np.float64)
    if y.all() or not y.any():
        return None
    return -s[~y], -s[y]


def asvspoof_eer(y_true, y_score) -> float | None:
    """EER as the ASVspoof organisers compute it (``compute_eer``): the point of the DET curve where
    ``|frr - far|`` is least (the first such), and the mean of its two rates; no interpolation.

    ``y_true`` 1 = spoof/forged, ``y_score`` higher = more likely forged (dfstream's orientation;
    negated into ASVspoof's). It differs from :func:`eer` (interpolated between ROC points) by at
    most one step of the curve. ``None`` unless both classes are present.
    """
    split = _bona_fide_split(y_true, y_score)
    if split is None:
        return None
    frr, far = det_curve(*split)
    i = int(np.argmin(np.abs(frr - far)))
    return float((frr[i] + far[i]) / 2)


ASVSPOOF5_DCF = {"p_spoof": 0.05, "c_miss": 1.0, "c_fa": 10.0}
"""The cost model of ASVspoof 5's track 1 minDCF (its evaluation package, ``calculate_metrics.py``)."""


def min_dcf(y_true, y_score, p_spoof: float = 0.05, c_miss: float = 1.0, c_fa: float = 10.0) -> float | None:
    """Normalised minimum detection cost, ASVspoof 5's primary metric (track 1).

    ``DCF(t) = c_miss * (1 - p_spoof) * frr(t) + c_fa * p_spoof * far(t)`` over the DET curve's
    thresholds (:func:`det_curve`), its minimum divided by the cost of the better fixed decision,
    ``min(c_miss * (1 - p_spoof), c_fa * p_spoof)`` (so 1.0 is no better than always deciding the
    same). Labels and scores as in :func:`asvspoof_eer`; ``None`` unless both classes are present.
    """
    split = _bona_fide_split(y_true, y_score)
    if split is None:
        return None
    frr, far = det_curve(*split)
    cost = c_miss * (1 - p_spoof) * frr + c_fa * p_spoof * far
    return float(cost.min() / min(c_miss * (1 - p_spoof), c_fa * p_spoof))


def segment_count(duration: float, resolution: float) -> int:
    """How many segments of ``resolution`` seconds cover ``duration`` (the last one may be short)."""
    return max(0, int(np.ceil(duration / resolution - 1e-9)))


def segment_labels(spans, duration: float, resolution: float) -> np.ndarray:
    """Which segments of ``resolution`` s are forged, as PartialSpoof labels them (``rttm2vadvec``):
    segment ``i`` is forged when ``round(start / r) <= i < round(end / r)`` for a forged span."""
    out = np.zeros(segment_count(duration, resolution), dtype=bool)
    for start, end in spans:
        out[int(np.rint(start / resolution)) : int(np.rint(end / resolution))] = True
    return out


def segment_scores(proposals, duration: float, resolution: float) -> np.ndarray:
    """Each segment's score from span predictions ``[[score, start, end], ...]``: the highest score
    of the spans overlapping it (by more than an instant), 0 where none does."""
    out = np.zeros(segment_count(duration, resolution))
    scores, spans = _as_arrays(proposals)
    for score, (start, end) in zip(scores, spans):
        first = max(0, int(np.floor(start / resolution + 1e-9)))
        stop = min(out.size, int(np.ceil(end / resolution - 1e-9)))
        if stop > first:
            out[first:stop] = np.maximum(out[first:stop], score)
    return out


def segment_eer(labels: dict, durations: dict, predictions: dict, resolution: float) -> float | None:
    """PartialSpoof's point-based segment-level EER at one ``resolution`` (s).

    Every file of ``labels`` (file -> forged spans) is cut into segments of ``resolution``
    (``durations``: file -> seconds); each segment is labelled by :func:`segment_labels`, scored by
    :func:`segment_scores` from ``predictions`` (file -> ``[[score, start, end], ...]``; a file
    without predictions scores 0 throughout), and the segments of all files are pooled into one
    :func:`asvspoof_eer`. ``None`` unless both classes are present.
    """
    y, s = [], []
    for file, spans in labels.items():
        y.append(segment_labels(spans, durations[file], resolution))
        s.append(segment_scores(predictions.get(file, []), durations[file], resolution))
    if not y:
        return None
    return asvspoof_eer(np.concatenate(y), np.concatenate(s))
