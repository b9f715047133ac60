"""``dfstream index build|add|info``: embed labelled forged spans into an attribution index.

A span's embedding is the mean of the model's frame embeddings over the span
(the same pooling the localizer uses for detected spans), computed with the
same windows as streaming inference.

Threshold calibration (``build``): a ``holdout`` fraction of each generator's
spans (at least one, for generators with two or more) is kept out of the
index; each held-out span is searched against the rest, and the threshold is
set at the ``false_reject`` quantile of their best-match similarities, so that
about that fraction of spans of *known* generators would be called unknown.
The held-out spans are then added too. ``add`` keeps the threshold it finds.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np

from dfstream.engine.core.dataset import load_metadata
from dfstream.engine.core.errors import DatasetError, MediaError
from dfstream.engine.core.progress import SILENT, Progress, tracked
from dfstream.engine.media.blocks import iter_media, with_final
from dfstream.engine.runtime.checkpoint import load_checkpoint
from dfstream.engine.runtime.detector import Detector
from dfstream.engine.runtime.stream import StreamProcessor
from dfstream.fusion.attribution import AttributionIndex, check_model
from dfstream.streams.config import ReplayConfig

FLOAT32 = {"inference": {"dtype": "float32"}}
"""An index is part of a model's build: its embeddings in float32 on every machine (inference.dtype
auto would take bf16 where the CPU computes it natively), so that ``make model`` makes the same index."""


def span_embeddings(
    detector: Detector,
    meta: str | Path,
    root: str | Path,
    label_field: str,
    label_key: str,
    split: str | None,
    progress: Progress = SILENT,
) -> tuple[np.ndarray, list[str]]:
    """Embeddings ``(n, D)`` of every labelled forged span and their generator names."""
    items = [
        i
        for i in load_metadata(meta)
        if (split is None or i.split == split) and i.segments[label_key] and i.raw.get(label_field)
    ]
    if not items:
        raise DatasetError(
            f"no entries{f' of split {split!r}' if split else ''} with both "
            f"{label_key} and a {label_field!r} label in {meta}"
        )
    step = detector.step
    vectors, names = [], []
    for item in tracked(progress, items, "embedding spans", "file"):
        try:
            origin, frames = _file_frames(detector, Path(root) / item.file)
        except MediaError as e:
            raise DatasetError(f"{item.file}: {e}") from None
        if len(frames) == 0:
            continue  # no media: nothing to embed
        for span in item.segments[label_key]:
            lo = min(max(0, int(math.floor((span.start - origin) / step))), len(frames) - 1)
            hi = max(lo + 1, min(int(math.ceil((span.end - origin) / step)), len(frames)))
            vectors.append(frames[lo:hi].mean(axis=0))
            names.append(str(item.raw[label_field]))
    if not vectors:
        raise DatasetError(f"the labelled files in {meta} hold no audio to embed")
    return np.stack(vectors).astype(np.float32), names


def _file_frames(detector: Detector, path: Path) -> tuple[float, np.ndarray]:
    """Stream time (s) of the first frame and the frame embeddings ``(F, D)`` of a whole file,
    through the streaming path (the same windows, fusion and presence as replay)."""
    processor, origin, frames = StreamProcessor(detector), 0.0, []
    blocks = iter_media(path, ReplayConfig().chunk_seconds, detector.media, detector.config.limits)
    for seq, (block, final) in enumerate(with_final(blocks)):
        trace = processor.feed("index", seq, block, final).trace
        if trace is not None:
            origin = trace.start if not frames else origin
            frames.append(trace.embeddings)
    return origin, np.concatenate(frames) if frames else np.zeros((0, detector.embedding_dim), np.float32)


def _holdout(names: list[str], fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of held-out spans: ``fraction`` of each generator with >= 2 spans."""
    rng = np.random.default_rng(seed)
    held = np.zeros(len(names), bool)
    for name in sorted(set(names)):
        where = np.flatnonzero(np.array(names) == name)
        if len(where) >= 2:
            held[rng.choice(where, max(1, round(fraction * len(where))), replace=False)] = True
    return held


def build_index(
    meta,
    root,
    model_dir,
    out,
    label_field: str = "audio_model",
    label_key: str = "audio_fake_segments",
    split: str | None = "train",
    holdout: float = 0.2,
    false_reject: float = 0.05,
    seed: int = 0,
    progress: Progress = SILENT,
) -> dict:
    """Build an index from the labelled spans of ``meta`` with the checkpoint at ``model_dir``."""
    detector = load_checkpoint(model_dir, FLOAT32)
    vectors, names = span_embeddings(detector, meta, root, label_field, label_key, split, progress)
    index = AttributionIndex(
        vectors.shape[1],
        {
            "model_id": detector.model_id,
            "model_sha256": detector.weights_sha256,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "source": {"meta": Path(meta).name, "label_field": label_field, "labels": label_key, "split": split},
        },
    )
    held = _holdout(names, holdout, seed)
    if not held.any() or held.all():
        raise DatasetError("too few spans to calibrate the open-set threshold: need a generator with >= 2 spans")
    index.add(vectors[~held], [n for n, h in zip(names, held) if not h])
    best = index.search(vectors[held], 1)[0][:, 0]
    threshold = float(np.quantile(best, false_reject))
    index.add(vectors[held], [n for n, h in zip(names, held) if h])
    index.meta["threshold"] = {
        "value": round(threshold, 6),
        "false_reject_target": false_reject,
        "held_out_spans": int(held.sum()),
        "method": f"{false_reject:.0%} quantile of held-out known spans' best-match cosine similarity",
    }
    return index.save(out)


def add_to_index(
    index_dir,
    meta,
    root,
    model_dir,
    label_field: str = "audio_model",
    label_key: str = "audio_fake_segments",
    split: str | None = "train",
    progress: Progress = SILENT,
) -> dict:
    """Append the labelled spans of ``meta`` to an existing index (same model required)."""
    index = AttributionIndex.load(index_dir)
    detector = load_checkpoint(model_dir, FLOAT32)
    check_model(index, detector.model_id, detector.weights_sha256, detector.embedding_dim)
    vectors, names = span_embeddings(detector, meta, root, label_field, label_key, split, progress)
    index.add(vectors, names)
    return index.save(index_dir)
