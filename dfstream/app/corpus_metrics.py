"""Each corpus's own metrics, for ``dfstream eval`` on metadata whose entries name their ``corpus``
(as ``dfstream corpus import`` writes them).

* ``asvspoof2019``, ``asvspoof2021``, ``inthewild``: the EER as the ASVspoof organisers compute
  it (:func:`~dfstream.app.metrics.asvspoof_eer`) from the per-file scores; for 2021 on the
  ``eval`` subset, the official one (``eer_all`` pools every subset);
* ``asvspoof5``: minDCF (its primary metric, :data:`~dfstream.app.metrics.ASVSPOOF5_DCF`) and EER;
* ``partialspoof``: the segment-level EER at each of :data:`SEGMENT_RESOLUTIONS` from the span
  predictions (:func:`~dfstream.app.metrics.segment_eer`), and the utterance EER from the scores;
* ``avdeepfake1m``, ``lavdf``: AP/AR and the 1M-Deepfakes score on the evaluated labels, and AUC;
* any other name: AUC and EER from the scores.

A file's truth is its protocol ``key`` where the entry has one (spoof/bonafide), else whether it
has forged spans. Files without a score are left out of the score metrics (``scored`` counts
those in).
"""

from __future__ import annotations

from dfstream.app import metrics
from dfstream.engine.core.errors import DatasetError

SEGMENT_RESOLUTIONS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64)
"""PartialSpoof's measuring resolutions (s), as its ``metric/SegmentEER.py`` measures."""

UTTERANCE_LEVEL = ("asvspoof2019", "asvspoof2021", "asvspoof5", "inthewild")
LOCALIZATION = ("avdeepfake1m", "lavdf")


def _truth(item, label_key: str) -> int:
    key = item.raw.get("key")
    return int(key == "spoof") if key in ("spoof", "bonafide") else int(bool(item.segments[label_key]))


def _scored(items, scores: dict | None, label_key: str) -> tuple[list[int], list[float]]:
    known = [i for i in items if scores is not None and i.file in scores]
    return [_truth(i, label_key) for i in known], [scores[i.file] for i in known]


def _utterance(name: str, items, scores, label_key: str) -> dict:
    out = {}
    if name == "asvspoof2021" and any(i.raw.get("subset") == "eval" for i in items):
        y, s = _scored(items, scores, label_key)
        out["eer_all"] = metrics.asvspoof_eer(y, s)
        items = [i for i in items if i.raw.get("subset") == "eval"]
        out["subset"] = "eval"
    y, s = _scored(items, scores, label_key)
    out = {"scored": len(y), "eer": metrics.asvspoof_eer(y, s), **out}
    if name == "asvspoof5":
        out["min_dcf"] = metrics.min_dcf(y, s, **metrics.ASVSPOOF5_DCF)
    return out


def _partialspoof(items, predictions: dict, scores, label_key: str) -> dict:
    missing = [i.file for i in items if "duration" not in i.raw]
    if missing:
        raise DatasetError(
            f"partialspoof: {len(missing)} entries have no 'duration' (dfstream corpus import writes it), "
            f"e.g. {missing[0]}; the segment EER needs it"
        )
    labels = {i.file: [[s.start, s.end] for s in i.segments[label_key]] for i in items}
    durations = {i.file: float(i.raw["duration"]) for i in items}
    y, s = _scored(items, scores, label_key)
    return {
        "segment_eer": {str(r): metrics.segment_eer(labels, durations, predictions, r) for r in SEGMENT_RESOLUTIONS},
        "scored": len(y),
        "utterance_eer": metrics.asvspoof_eer(y, s),
    }


def corpus_metrics(items, predictions: dict, scores: dict | None, label_key: str, localization: dict) -> dict:
    """``{corpus: metrics}`` for each ``corpus`` named among ``items`` (see the module doc).

    ``localization`` is :func:`~dfstream.app.metrics.localization_metrics` of all ``items``,
    reused for a localization corpus that is all of them.
    """
    groups: dict[str, list] = {}
    for item in items:
        if "corpus" in item.raw:
            groups.setdefault(str(item.raw["corpus"]), []).append(item)
    out = {}
    for name, group in groups.items():
        result = {"files": len(group)}
        if name in UTTERANCE_LEVEL:
            result.update(_utterance(name, group, scores, label_key))
        elif name == "partialspoof":
            result.update(_partialspoof(group, predictions, scores, label_key))
        else:
            if name in LOCALIZATION:
                if len(group) != len(items):
                    labels = {i.file: [[s.start, s.end] for s in i.segments[label_key]] for i in group}
                    localization = metrics.localization_metrics(labels, predictions)
                result["localization"] = localization
            y, s = _scored(group, scores, label_key)
            result.update({"scored": len(y), "auc": metrics.auc(y, s)})
            if name not in LOCALIZATION:
                result["eer"] = metrics.asvspoof_eer(y, s)
        out[name] = result
    return out


def format_corpus_metrics(corpora: dict) -> list[str]:
    """Lines for :func:`dfstream.app.evaluation.format_metrics`, one per corpus."""

    def f(v):
        return "n/a" if v is None else f"{v:.4f}"

    lines = []
    for name, m in corpora.items():
        head = f"{name} ({m['files']} files, {m.get('scored', 0)} scored):"
        if "segment_eer" in m:
            seg = "  ".join(f"@{round(float(r) * 1000)}ms {f(v)}" for r, v in m["segment_eer"].items())
            lines.append(f"{head} segment EER {seg}; utterance EER {f(m['utterance_eer'])}")
        elif "localization" in m:
            loc = m["localization"]
            lines.append(
                f"{head} AP@0.5 {f(loc['ap']['0.5'])}  AR@50 {f(loc['ar']['50'])}  "
                f"1M-Deepfakes score {f(loc['score'])}  AUC {f(m['auc'])}"
            )
        else:
            parts = [f"minDCF {f(m['min_dcf'])}"] if "min_dcf" in m else []
            parts.append(
                f"EER {f(m['eer'])}"
                + (f" (subset {m['subset']}; all subsets {f(m['eer_all'])})" if "subset" in m else "")
            )
            if "auc" in m:
                parts.append(f"AUC {f(m['auc'])}")
            lines.append(f"{head} " + "  ".join(parts))
    if any(m.get("scored", 0) == 0 for m in corpora.values()):
        lines.append(
            "note: a corpus with 0 files scored needs --scores (replay's scores.csv) naming its files "
            "as the metadata does (replay with --root ROOT)"
        )
    return lines
