"""``dfstream eval``: read predictions and metadata, compute and write the metrics."""
from __future__ import annotations

from pathlib import Path

from engine import metrics
from engine.dataset import LABEL_KEYS, load_metadata, read_json
from engine.errors import DatasetError


def read_predictions(path: str | Path) -> dict:
    """AV-Deepfake1M localization predictions ``{file: [[score, start, end], ...]}``."""
    data = read_json(path, "predictions")
    if not isinstance(data, dict):
        raise DatasetError(f"predictions {path} must map file -> [[score, start, end], ...]")
    for file, rows in data.items():
        if not isinstance(rows, list) or any(not isinstance(r, list) or len(r) != 3 for r in rows):
            raise DatasetError(f"predictions {path}: entry {file!r} must be a list of [score, start, end]")
    return data


def read_scores(path: str | Path) -> dict:
    """Detection predictions: lines ``file;score``."""
    scores = {}
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        raise DatasetError(f"scores file not found: {path}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        file, sep, value = line.rpartition(";")
        try:
            scores[file] = float(value)
        except ValueError:
            raise DatasetError(f"{path}:{n}: expected 'file;score', got {line!r}") from None
        if not sep:
            raise DatasetError(f"{path}:{n}: expected 'file;score', got {line!r}")
    return scores


def evaluate(pred_path, meta_path, scores_path=None, label_key: str = "fake_segments",
             split: str | None = None) -> dict:
    """Localization metrics on ``label_key`` (and detection metrics if scores are given).

    Only files in the metadata (optionally of one ``split``) are evaluated;
    a metadata file with no prediction counts as having no proposals.
    """
    if label_key not in LABEL_KEYS:
        raise DatasetError(f"unknown label key {label_key!r}; valid: {', '.join(LABEL_KEYS)}")
    items = [i for i in load_metadata(meta_path) if split is None or i.split == split]
    if not items:
        raise DatasetError(f"no metadata entries{f' in split {split!r}' if split else ''} to evaluate")
    predictions = read_predictions(pred_path)
    labels = {i.file: [[s.start, s.end] for s in i.segments[label_key]] for i in items}
    missing = sum(1 for i in items if i.file not in predictions)
    result = {"labels": label_key, "files": len(items), "files_without_prediction": missing,
              "localization": metrics.localization_metrics(labels, predictions)}
    if scores_path is not None:
        scores = read_scores(scores_path)
        known = [i for i in items if i.file in scores]
        y = [int(bool(i.segments[label_key])) for i in known]
        s = [scores[i.file] for i in known]
        result["detection"] = {"files": len(known), "auc": metrics.auc(y, s), "eer": metrics.eer(y, s)}
    return result


def format_metrics(result: dict) -> str:
    """A readable table of :func:`evaluate`'s result."""
    def f(v):
        return "  n/a " if v is None else f"{v:6.4f}"
    loc = result["localization"]
    lines = [f"evaluated {result['files']} files on {result['labels']}"
             + (f" ({result['files_without_prediction']} without predictions)" if result['files_without_prediction'] else ""),
             "AP@" + "  AP@".join(f"{t}: {f(v)}" for t, v in loc["ap"].items()),
             "AR@" + "  AR@".join(f"{n}: {f(v)}" for n, v in loc["ar"].items()),
             f"1M-Deepfakes score: {f(loc['score'])}"]
    if result["files_without_prediction"]:
        lines.append("note: files without a prediction count as finding nothing; if the names differ, "
                     "replay with --root set to the folder the metadata's paths are relative to")
    if "detection" in result:
        d = result["detection"]
        lines.append(f"detection ({d['files']} files): AUC {f(d['auc'])}  EER {f(d['eer'])}")
    return "\n".join(lines)
