"""``dfstream eval``: read predictions and metadata, compute and write the metrics."""

from __future__ import annotations

import json
from pathlib import Path

from dfstream.app import metrics
from dfstream.app.corpus_metrics import corpus_metrics, format_corpus_metrics
from dfstream.engine.core.dataset import LABEL_KEYS, load_metadata, read_json
from dfstream.engine.core.errors import DatasetError
from dfstream.engine.core.types import Detection, proposals

AP_CURVE_THRESHOLDS = tuple(round(0.1 + 0.05 * i, 2) for i in range(18))  # IoU 0.1 ... 0.95


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


def read_verdicts(path: str | Path) -> dict[str, list[Detection]]:
    """Detections per stream from a ``verdicts.jsonl`` (error records skipped)."""
    found: dict[str, list[Detection]] = {}
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        raise DatasetError(f"verdicts file not found: {path}") from None
    for n, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise DatasetError(f"{path}:{n}: not JSON: {e}") from None
        if "error" not in record:
            found.setdefault(record["stream_id"], []).extend(Detection.from_dict(d) for d in record["detections"])
    return found


def match_attributions(
    items, detections: dict, label_key: str, label_field: str, min_iou: float = 0.5
) -> tuple[list[dict], int]:
    """Pair each labelled forged span with its file's best detection; returns ``(matches, missed)``.

    A span is matched to the detection of its file with the highest IoU, if
    above ``min_iou`` and attributed. Each match is ``{"generator": the span's,
    "predicted": the first match's generator, "similarity": its similarity}``;
    spans without such a detection are counted as missed.
    """
    matches, missed = [], 0
    for item in items:
        generator = item.raw.get(label_field)
        if not generator:
            continue
        for span in item.segments[label_key]:
            candidates = [(span.iou(d.span), d) for d in detections.get(item.file, [])]
            best = max(candidates, default=(0.0, None), key=lambda c: c[0])
            if best[0] <= min_iou or not best[1].attribution:
                missed += 1
                continue
            top = best[1].attribution[0]
            matches.append({"generator": generator, "predicted": top["generator"], "similarity": top.get("similarity")})
    return matches, missed


def attribution_metrics(matches: list[dict], missed: int, known: set[str], min_iou: float = 0.5) -> dict:
    """Top-1 accuracy on known generators and AUROC of known vs unknown.

    ``matches`` and ``missed`` come from :func:`match_attributions`. A span is
    *known* when its generator is in the index. Top-1 is right when the
    detection's first match names the span's generator (an ``unknown`` answer
    for a known generator is wrong). The AUROC ranks spans by their detection's
    best-match similarity, known generators as positives.
    """
    y = [int(m["generator"] in known) for m in matches]
    s = [m["similarity"] for m in matches]
    known_total = sum(y)
    known_hits = sum(1 for m in matches if m["generator"] in known and m["predicted"] == m["generator"])
    return {
        "matched_spans": len(y),
        "missed_spans": missed,
        "known_spans": known_total,
        "unknown_spans": len(y) - known_total,
        "top1_accuracy": known_hits / known_total if known_total else None,
        "known_vs_unknown_auroc": metrics.auc(y, s),
        "match_iou": min_iou,
    }


def evaluate(
    pred_path,
    meta_path,
    scores_path=None,
    label_key: str = "fake_segments",
    split: str | None = None,
    verdicts_path=None,
    index_dir=None,
    label_field: str = "audio_model",
) -> dict:
    """Localization metrics on ``label_key`` (and detection metrics if scores are given).

    Only files in the metadata (optionally of one ``split``) are evaluated;
    a metadata file with no prediction counts as having no proposals. With
    ``verdicts_path``, AP/AR per modality (:func:`modality_metrics`); with
    ``index_dir`` as well, attribution metrics (:func:`attribution_metrics`).
    """
    return evaluate_details(pred_path, meta_path, scores_path, label_key, split, verdicts_path, index_dir, label_field)[
        0
    ]


def evaluate_details(
    pred_path,
    meta_path,
    scores_path=None,
    label_key: str = "fake_segments",
    split: str | None = None,
    verdicts_path=None,
    index_dir=None,
    label_field: str = "audio_model",
) -> tuple[dict, dict]:
    """:func:`evaluate`'s result and what it was computed from, for curves and reports.

    When the metadata's entries name their ``corpus``, ``result["corpus"]`` holds each corpus's own
    metrics (:func:`~dfstream.app.corpus_metrics.corpus_metrics`).

    The details hold ``labels`` and ``predictions`` (as the localization metrics
    read them), ``ap_curve`` (AP at IoU 0.1 to 0.95), ``detection`` (``y``, ``s``: per-file truth and score) and
    ``attribution`` (the matches), each present when its metric is.
    """
    if label_key not in LABEL_KEYS:
        raise DatasetError(f"unknown label key {label_key!r}; valid: {', '.join(LABEL_KEYS)}")
    items = [i for i in load_metadata(meta_path) if split is None or i.split == split]
    if not items:
        raise DatasetError(f"no metadata entries{f' in split {split!r}' if split else ''} to evaluate")
    predictions = read_predictions(pred_path)
    labels = {i.file: [[s.start, s.end] for s in i.segments[label_key]] for i in items}
    missing = sum(1 for i in items if i.file not in predictions)
    result = {
        "labels": label_key,
        "files": len(items),
        "files_without_prediction": missing,
        "localization": metrics.localization_metrics(labels, predictions),
    }
    details = {
        "labels": labels,
        "predictions": predictions,
        "ap_curve": {
            "iou": AP_CURVE_THRESHOLDS,
            "ap": [metrics.average_precision(labels, predictions, t) for t in AP_CURVE_THRESHOLDS],
        },
    }
    scores = read_scores(scores_path) if scores_path is not None else None
    if scores is not None:
        known = [i for i in items if i.file in scores]
        y = [int(bool(i.segments[label_key])) for i in known]
        s = [scores[i.file] for i in known]
        result["detection"] = {"files": len(known), "auc": metrics.auc(y, s), "eer": metrics.eer(y, s)}
        details["detection"] = {"y": y, "s": s}
    if any("corpus" in i.raw for i in items):
        result["corpus"] = corpus_metrics(items, predictions, scores, label_key, result["localization"])
    if verdicts_path is not None:
        found = read_verdicts(verdicts_path)
        result["by_modality"] = modality_metrics(items, found)
        if index_dir is not None:
            from dfstream.fusion.attribution import read_sidecar

            generators = set(read_sidecar(index_dir)["generators"])
            matches, missed = match_attributions(items, found, label_key, label_field)
            result["attribution"] = attribution_metrics(matches, missed, generators)
            details["attribution"] = matches
    return result, details


MODALITY_LABELS = {
    "audio": ("audio_fake_segments", ("audio", "audio-visual")),
    "visual": ("visual_fake_segments", ("visual", "audio-visual")),
}
"""Per modality: the true segments it is scored on, and the detection modalities that count as finding it."""


def modality_metrics(items, detections: dict) -> dict:
    """AP/AR per modality from verdict detections, for each modality some item has labels of.

    The audio track is scored on ``audio_fake_segments`` with the detections whose
    ``modality`` is ``audio`` or ``audio-visual``; the visual track likewise.
    """
    out = {}
    for modality, (key, kinds) in MODALITY_LABELS.items():
        labels = {i.file: [[s.start, s.end] for s in i.segments[key]] for i in items}
        if not any(labels.values()):
            continue
        predictions = {i.file: proposals(d for d in detections.get(i.file, []) if d.modality in kinds) for i in items}
        out[modality] = {"labels": key, **metrics.localization_metrics(labels, predictions)}
    return out


def format_metrics(result: dict) -> str:
    """A readable table of :func:`evaluate`'s result."""

    def f(v):
        return "  n/a " if v is None else f"{v:6.4f}"

    loc = result["localization"]
    lines = [
        f"evaluated {result['files']} files on {result['labels']}"
        + (
            f" ({result['files_without_prediction']} without predictions)" if result["files_without_prediction"] else ""
        ),
        "AP@" + "  AP@".join(f"{t}: {f(v)}" for t, v in loc["ap"].items()),
        "AR@" + "  AR@".join(f"{n}: {f(v)}" for n, v in loc["ar"].items()),
        f"1M-Deepfakes score: {f(loc['score'])}",
    ]
    if result["files_without_prediction"]:
        lines.append(
            "note: files without a prediction count as finding nothing; if the names differ, "
            "replay with --root set to the folder the metadata's paths are relative to"
        )
    if "detection" in result:
        d = result["detection"]
        lines.append(f"detection ({d['files']} files): AUC {f(d['auc'])}  EER {f(d['eer'])}")
    for modality, m in result.get("by_modality", {}).items():
        lines.append(
            f"{modality} spans ({m['labels']}, detections of modality {modality} or audio-visual): "
            f"AP@0.5 {f(m['ap']['0.5'])}  AP@0.75 {f(m['ap']['0.75'])}  AR@10 {f(m['ar']['10'])}"
        )
    lines += format_corpus_metrics(result.get("corpus", {}))
    if "attribution" in result:
        a = result["attribution"]
        lines.append(
            f"attribution ({a['matched_spans']} spans matched at IoU > {a['match_iou']}, "
            f"{a['known_spans']} of known generators, {a['missed_spans']} missed): "
            f"top-1 {f(a['top1_accuracy'])}  known-vs-unknown AUROC {f(a['known_vs_unknown_auroc'])}"
        )
    return "\n".join(lines)
