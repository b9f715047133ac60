"""The shortcut check: how well loudness and silence alone find the forged audio.

A forged stretch is RMS-matched, cross-faded and lies under the same noise bed as
the real speech; if the set is built right, a model that sees only each 40 ms
frame's level cannot tell forged frames from real ones much better than chance.
Features per frame: level (dB), level relative to the clip's median, voiced or not
(within 30 dB of the clip's loudest frame), and the level steps to both neighbours.
A logistic regression (scikit-learn) is fitted on the train split and scored on
the test split: frame AUC (every frame of every clip) and clip AUC (a clip's
highest frame probability against whether its audio was forged).
"""

from __future__ import annotations

import numpy as np

from realset.sources import RATE

HOP = RATE // 25  # 40 ms


def features(audio: np.ndarray) -> np.ndarray:
    """``(frames, 5)`` loudness/silence features of 40 ms frames of ``audio`` (16 kHz)."""
    n = len(audio) // HOP
    frames = audio[: n * HOP].reshape(n, HOP).astype(np.float64)
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-10)
    voiced = (level > level.max() - 30).astype(np.float64)
    step_in = np.diff(level, prepend=level[0])
    step_out = np.diff(level, append=level[-1])
    return np.stack([level, level - np.median(level), voiced, np.abs(step_in), np.abs(step_out)], 1)


def labels(segments, frames: int, hop: int = HOP) -> np.ndarray:
    """True for the ``frames`` frames of ``hop`` samples (default 40 ms) whose centre lies in one of
    ``segments`` ([start, end] seconds)."""
    centres = (np.arange(frames) + 0.5) * hop / RATE
    return np.any([(centres >= s) & (centres < e) for s, e in segments] or [np.zeros(frames, bool)], axis=0)


def check(clips: list[dict]) -> dict:
    """Fit on clips of split 'train', score those of split 'test'. ``clips``: dicts with ``split``,
    ``features`` ``(frames, 5)`` and ``audio_fake_segments``. Returns frame and clip AUCs."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def stack(split):
        chosen = [c for c in clips if c["split"] == split]
        x = [c["features"] for c in chosen]
        y = [labels(c["audio_fake_segments"], len(f)) for c, f in zip(chosen, x)]
        return chosen, x, y

    _, xt, yt = stack("train")
    test, xs, ys = stack("test")
    if not xt or not xs:
        return {"note": "needs train and test clips"}
    y_train = np.concatenate(yt)
    if y_train.min() == y_train.max():
        return {"note": "train has no forged (or no real) audio frames"}
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(np.concatenate(xt), y_train)
    probs = [model.predict_proba(x)[:, 1] for x in xs]
    y_frames, p_frames = np.concatenate(ys), np.concatenate(probs)
    out = {"train_frames": int(len(y_train)), "test_frames": int(len(y_frames))}
    out["frame_auc"] = round(float(roc_auc_score(y_frames, p_frames)), 4) if 0 < y_frames.mean() < 1 else None
    forged = np.array([bool(c["audio_fake_segments"]) for c in test])
    peaks = np.array([p.max() for p in probs])
    out["clip_auc"] = round(float(roc_auc_score(forged, peaks)), 4) if 0 < forged.mean() < 1 else None
    return out
