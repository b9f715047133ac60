"""A checkpoint's MODEL_CARD.md from what it records and what was measured on it.

``dfstream train`` writes one beside every checkpoint (what it is, the data it was trained on, how,
and "not evaluated yet"); ``dfstream card CKPT --eval METRICS.json ...`` rewrites it with the
results of ``dfstream eval --out`` (each with the command that measured it). The card says only
what the checkpoint and those files say: the data description is the one given to ``train``
(``--data-description``), so a synthetic set is called synthetic there. The shipped model's
longer card (``bench/model_card.py``) adds its own benchmark's subsets and probes.
"""

from __future__ import annotations

import json
from pathlib import Path

from dfstream.engine.core.errors import DatasetError

CARD = "MODEL_CARD.md"


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.4f}" if isinstance(x, float) else str(x)


def _encoder(name: str, section: dict, method: dict) -> str:
    encoder = section.get("encoder", {})
    source = (
        f"pretrained `{encoder['pretrained']}`" if encoder.get("pretrained") else "built from its config, random init"
    )
    tuned = method.get("encoder", "frozen")
    if tuned == "fine-tuned" and method.get("finetune_layers"):
        tuned = f"fine-tuned (last {method['finetune_layers']} layers)"
    return f"- {name} encoder: {source}; {tuned}."


def _results(evaluation: dict) -> list[str]:
    """Lines for one ``dfstream eval --out`` result."""
    loc, det = evaluation.get("localization", {}), evaluation.get("detection", {})
    ap, ar = loc.get("ap", {}), loc.get("ar", {})
    lines = [
        f"- files: {evaluation.get('files')} ({evaluation.get('labels')}); "
        f"AP@0.5 {_fmt(ap.get('0.5'))}, AP@0.75 {_fmt(ap.get('0.75'))}, AR@10 {_fmt(ar.get('10'))}; "
        f"AUC {_fmt(det.get('auc'))}, EER {_fmt(det.get('eer'))}"
    ]
    for corpus, values in evaluation.get("corpus", {}).items():
        shown = ", ".join(f"{k} {_fmt(v)}" for k, v in values.items() if isinstance(v, (int, float)))
        lines.append(f"- {corpus}: {shown}")
    att = evaluation.get("attribution")
    if att:
        lines.append(
            f"- attribution: top-1 {_fmt(att.get('top1_accuracy'))} on {att.get('known_spans')} spans of known "
            f"generators, known-vs-unknown AUROC {_fmt(att.get('known_vs_unknown_auroc'))}"
        )
    return lines


def card(checkpoint: dict, evaluations: list[tuple[str, dict]]) -> str:
    """The card's text: ``checkpoint`` is a checkpoint's ``dfstream.json``; ``evaluations`` are
    ``(where it came from, dfstream eval's result)`` pairs, in the order to show them."""
    cfg, train = checkpoint["config"], checkpoint.get("training") or {}
    data, method = train.get("data", {}), train.get("method", {})
    best = train.get("best_epoch", {})
    lines = [
        f"# Model card: {checkpoint['model_id']}",
        "",
        f"**Trained on: {data.get('description', 'not recorded')}.** Its numbers below hold for the data they were "
        "measured on; they do not predict how it does on other data or other forgery methods.",
        "",
        "## What it is",
        f"- Branches: {', '.join(cfg['branches'])}"
        + (f", fused ({cfg['fusion']['rule']})" if len(cfg["branches"]) > 1 else "")
        + f"; localizer onset {cfg['localizer']['onset']}, offset {cfg['localizer']['offset']}.",
    ]
    lines += [_encoder(name.capitalize(), cfg.get(name, {}), method) for name in cfg["branches"]]
    lines += [
        f"- Versions: {', '.join(f'{k} {v}' for k, v in checkpoint.get('versions', {}).items())}; weights SHA-256 "
        f"{checkpoint.get('weights_sha256', '')[:16]}...",
        "",
        "## Data",
        f"- {data.get('files')} training files ({data.get('seconds')} s, {data.get('fake_seconds')} s forged), "
        f"{data.get('val_files')} validation files; labels `{data.get('labels')}`, from `{data.get('meta')}`.",
        "",
        "## Training",
        f"- {method.get('objective', 'n/a')}; {len(train.get('history', []))} of {method.get('epochs')} epochs run, "
        f"batch {method.get('batch_size')} x {method.get('accumulate', 1)}, AdamW lr {method.get('learning_rate')} "
        f"({method.get('lr_schedule')}), precision {method.get('precision', 'float32')}, seed {method.get('seed')}"
        + (f", {method['processes']} processes" if method.get("processes") else "")
        + f"; data {method.get('data_feed', 'in memory')}.",
        f"- Kept: epoch {best.get('epoch')} (validation frame AUC {_fmt(best.get('frame_auc'))}, "
        f"BCE {_fmt(best.get('bce'))}); finished {train.get('finished')}."
        + (f" {train['stopped_early']}." if train.get("stopped_early") else "")
        + (f" {train['interrupted']}." if train.get("interrupted") else ""),
        "",
        "## Results",
    ]
    if not evaluations:
        lines.append(
            "Not evaluated yet: replay a held-out split, run `dfstream eval ... --out metrics.json`, then "
            "`dfstream card CHECKPOINT --eval metrics.json` rewrites this card with the results."
        )
    for source, evaluation in evaluations:
        lines += ["", f"### {evaluation.get('command') or source}", *_results(evaluation)]
    return "\n".join(lines) + "\n"


def write_card(folder: str | Path, evaluations: list[str | Path] = ()) -> Path:
    """Write ``folder``'s MODEL_CARD.md from its ``dfstream.json`` and ``dfstream eval --out`` files."""
    folder = Path(folder)
    checkpoint = json.loads((folder / "dfstream.json").read_text())
    results = []
    for path in evaluations:
        try:
            results.append((str(path), json.loads(Path(path).read_text())))
        except (OSError, json.JSONDecodeError) as e:
            raise DatasetError(f"cannot read the evaluation {path}: {e}") from None
    out = folder / CARD
    out.write_text(card(checkpoint, results))
    return out
