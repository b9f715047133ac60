"""The report's figures, drawn with matplotlib and returned as embeddable PNG data URIs.

Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas
directly (no pyplot, so no process-wide figure state and no display needed).
"""

from __future__ import annotations

import base64
import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import imsave
from matplotlib.patches import Patch

from dfstream.reports.timeline import THUMB_MARGIN, StreamTimeline

MODALITY_COLOURS = {"audio": "#d95f02", "visual": "#7570b3", "audio-visual": "#e7298a"}
TRUTH_COLOURS = {"fake_segments": "#444444", "audio_fake_segments": "#a6761d", "visual_fake_segments": "#1b9e77"}
MAX_POINTS = 3000  # envelope points drawn per file; longer files are reduced by min/max pooling


def data_uri(fig: Figure, dpi: int = 100) -> str:
    """The figure as a ``data:image/png;base64,...`` URI."""
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _pool(times: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """Reduce an envelope to at most MAX_POINTS bins (min of mins, max of maxs)."""
    k = int(np.ceil(len(times) / MAX_POINTS))
    if k <= 1:
        return times, lo, hi
    n = len(times) // k * k
    return times[:n:k], lo[:n].reshape(-1, k).min(1), hi[:n].reshape(-1, k).max(1)


def timeline_figure(timeline: StreamTimeline, truth: dict | None = None, threshold: float | None = None) -> Figure:
    """Waveform, forgery probabilities and a span track (detected vs true) on one time axis."""
    fig = Figure(figsize=(12, 4.6), layout="constrained")
    wave, prob, track = fig.subplots(3, 1, sharex=True, height_ratios=[1, 1.4, 0.6])
    times, lo, hi = _pool(*timeline.envelope())
    wave.fill_between(times, lo, hi, color="#555555", linewidth=0, step="post")
    wave.set_ylabel("waveform")
    wave.set_yticks([])
    curve = timeline.curve()
    step = timeline.step or 0.0
    distinct = [n for n, c in curve.branches.items() if not np.array_equal(c, curve.fused, equal_nan=True)]
    for name in distinct:
        prob.step(
            curve.times,
            curve.branches[name],
            where="post",
            linewidth=0.8,
            linestyle="--",
            color=MODALITY_COLOURS.get(name, "#888888"),
            label=f"{name} branch",
        )
    fused_label = "fused" if distinct else f"fused ({', '.join(curve.branches) or 'no'} branch)"
    prob.step(curve.times, curve.fused, where="post", linewidth=1.4, color="#1f1f1f", label=fused_label)
    if threshold is not None:
        prob.axhline(threshold, color="#b2182b", linewidth=0.8, linestyle=":", label=f"onset {threshold:g}")
    prob.set_ylim(-0.02, 1.02)
    prob.set_ylabel("P(forged)")
    prob.legend(loc="upper right", fontsize=7, ncols=4)
    truth = dict(sorted((truth or {}).items()))
    rows = ["detected"] + [k.replace("_segments", "").replace("_", " ") for k in truth]
    base = {name: len(rows) - 1 - i for i, name in enumerate(rows)}  # row 0 on top
    for d in timeline.detections:
        colour = MODALITY_COLOURS[d.modality]
        for ax in (wave, prob):
            ax.axvspan(d.span.start, d.span.end, color=colour, alpha=0.18, linewidth=0)
        track.broken_barh([(d.span.start, d.span.duration)], (base["detected"] + 0.1, 0.6), color=colour)
        track.text(d.span.start, base["detected"] + 0.72, f"{d.score:.2f}", fontsize=7, va="bottom")
    handles = [Patch(color=c, label=f"detected {m}") for m, c in MODALITY_COLOURS.items()]
    for (key, spans), row in zip(truth.items(), rows[1:]):
        colour = TRUTH_COLOURS.get(key, "#444444")
        track.broken_barh(
            [(s.start, s.duration) for s in spans], (base[row] + 0.1, 0.6), color=colour, hatch="//", alpha=0.8
        )
        handles.append(Patch(color=colour, label=f"true {row}"))
    track.set_ylim(-0.1, len(rows) + 0.25)
    track.set_yticks([base[r] + 0.4 for r in rows], rows, fontsize=7)
    fig.legend(handles=handles, loc="outside lower center", fontsize=7, ncols=len(handles))
    track.set_xlabel("stream time (s)")
    end = max(timeline.end, curve.times[-1] + step if len(curve.times) else 0.0, 1e-3)
    start = min(times[0] if len(times) else 0.0, curve.times[0] if len(curve.times) else 0.0)
    track.set_xlim(start, end)
    return fig


def roc_figure(y, s) -> Figure:
    """ROC curve of file-level detection scores (label 1 = forged)."""
    from sklearn.metrics import RocCurveDisplay

    fig = Figure(figsize=(4.6, 4.2), layout="constrained")
    ax = fig.subplots()
    RocCurveDisplay.from_predictions(y, s, ax=ax, name="dfstream")
    ax.plot([0, 1], [0, 1], linestyle=":", color="#999999", linewidth=0.8)
    ax.set_title("ROC")
    return fig


def det_figure(y, s) -> Figure:
    """DET curve (false-negative vs false-positive rate on normal-deviate axes)."""
    from sklearn.metrics import DetCurveDisplay

    fig = Figure(figsize=(4.6, 4.2), layout="constrained")
    ax = fig.subplots()
    DetCurveDisplay.from_predictions(y, s, ax=ax, name="dfstream")
    ax.set_title("DET")
    return fig


def ap_iou_figure(thresholds, values) -> Figure:
    """AP at each IoU threshold."""
    fig = Figure(figsize=(4.6, 4.2), layout="constrained")
    ax = fig.subplots()
    pairs = [(t, v) for t, v in zip(thresholds, values) if v is not None]
    ax.plot([t for t, _ in pairs], [v for _, v in pairs], marker="o", color="#1f1f1f")
    ax.set_xlabel("IoU threshold")
    ax.set_ylabel("AP")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title("AP vs IoU")
    return fig


def confusion_figure(true: list[str], predicted: list[str]) -> Figure:
    """Attribution confusion matrix: true generator (rows) vs the top match (columns)."""
    from sklearn.metrics import ConfusionMatrixDisplay

    names = set(true) | set(predicted)
    labels = sorted(names - {"unknown"}) + (["unknown"] if "unknown" in names else [])
    size = 2.8 + 0.55 * len(labels)
    fig = Figure(figsize=(size + 1, size), layout="constrained")
    ax = fig.subplots()
    ConfusionMatrixDisplay.from_predictions(
        true, predicted, labels=labels, ax=ax, colorbar=False, xticks_rotation=45, cmap="Blues"
    )
    ax.set_xlabel("top match")
    ax.set_ylabel("true generator")
    ax.set_title("attribution")
    return fig


STRIP_MARGIN = THUMB_MARGIN  # seconds of frames shown before and after a span
STRIP_FRAMES = 12  # thumbnails per strip at most (evenly spread)
_GAP, _BORDER = 4, 2  # pixels between thumbnails, and of the outline of those inside the span


def face_strip(thumbnails, span, colour: str) -> tuple[str, list[float]] | None:
    """The thumbnails (:class:`dfstream.reports.timeline.Thumbnail`) within ``STRIP_MARGIN`` s of ``span`` side by
    side, those inside it outlined in ``colour``: a PNG data URI and the frames' times (s); None when
    no thumbnail falls there."""
    near = [t for t in thumbnails if span.start - STRIP_MARGIN <= t.time < span.end + STRIP_MARGIN]
    if not near:
        return None
    if len(near) > STRIP_FRAMES:
        near = [near[i] for i in np.linspace(0, len(near) - 1, STRIP_FRAMES).round().astype(int)]
    side = max(t.image.shape[0] for t in near) + 2 * _BORDER
    canvas = np.full((side, len(near) * (side + _GAP) - _GAP, 3), 255, np.uint8)
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], np.uint8)
    for k, thumb in enumerate(near):
        x, h, w = k * (side + _GAP), *thumb.image.shape[:2]
        if span.contains(thumb.time):
            canvas[:, x : x + side] = rgb
        canvas[_BORDER : _BORDER + h, x + _BORDER : x + _BORDER + w] = thumb.image
    buffer = io.BytesIO()
    imsave(buffer, canvas, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"), [t.time for t in near]
