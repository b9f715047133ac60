"""The ablation table of the model card: each recipe step's effect on families training never saw.

``python bench/ablation.py --data DIR --row LABEL MODEL OUT [--row ...] --out JSON``

Every row is a checkpoint (``MODEL``) and ``dfstream replay``'s outputs (``OUT``) on the same
test split (``DIR``'s ``test``), scored by :func:`dfstream.app.evaluation.evaluate` (what
``dfstream eval`` runs) on the card's subsets (:func:`model_card.subsets`): seen generators,
and held-out ones by kind (audio only, video only, both). ``make ablation`` trains the rows'
checkpoints and runs this; the card shows the table when its own checkpoint is one of the rows.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

from model_card import measure  # noqa: E402

SUBSETS = ("seen", "held-out audio", "held-out visual", "held-out audio-visual")


def row(label: str, model: Path, out: Path, meta: list[dict], generators: dict) -> dict:
    """One recipe's AP@0.5 and detection AUC on every subset of the test split."""
    ckpt = json.loads((model / "dfstream.json").read_text())
    measured = measure(meta, out, None, generators)
    return {
        "label": label,
        "model_id": ckpt["model_id"],
        "model": str(model),
        "subsets": {name: _scores(measured[name]) for name in SUBSETS},
    }


def _scores(metrics: dict | None) -> dict:
    """Files, AP@0.5 and detection AUC of one subset's metrics (``None``: the subset is empty)."""
    if metrics is None:
        return {"files": 0, "ap@0.5": None, "auc": None}
    return {
        "files": metrics["files"],
        "ap@0.5": metrics["localization"]["ap"]["0.5"],
        "auc": (metrics.get("detection") or {}).get("auc"),
    }


def table(result: dict) -> str:
    """The rows as a Markdown table (AUC / AP@0.5 per subset)."""
    head = "| recipe | " + " | ".join(f"{s}: AUC / AP@0.5" for s in SUBSETS) + " |"
    lines = [head, "|---|" + "---|" * len(SUBSETS)]
    for r in result["rows"]:
        cells = []
        for s in SUBSETS:
            v = r["subsets"][s]
            auc, ap = ("n/a" if x is None else f"{x:.4f}" for x in (v["auc"], v["ap@0.5"]))
            cells.append(f"{auc} / {ap}")
        lines.append(f"| {r['label']} | " + " | ".join(cells) + " |")
    files = result["rows"][0]["subsets"] if result["rows"] else {}
    counts = ", ".join(f"{s} {v['files']}" for s, v in files.items())
    return "\n".join(lines) + f"\n\nTest files per subset (real clips included in each): {counts}.\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, metavar="DIR", help="the set (metadata.json, generators.json)")
    p.add_argument(
        "--row",
        nargs=3,
        action="append",
        required=True,
        metavar=("LABEL", "MODEL", "OUT"),
        help="a recipe: its label, checkpoint folder and replay output folder on DIR's test split",
    )
    p.add_argument("--out", required=True, metavar="JSON", help="where to write the table's numbers")
    args = p.parse_args(argv)
    data = Path(args.data)
    meta = json.loads((data / "metadata.json").read_text())
    generators = json.loads((data / "generators.json").read_text())
    rows = []
    for label, model, out in args.row:
        if not (Path(out) / "predictions.json").exists():
            p.error(f"{out}: no predictions.json (run dfstream replay on {data / 'test'} first)")
        rows.append(row(label, Path(model), Path(out), meta, generators))
    result = {
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"processor": platform.processor() or platform.machine(), "gpu": None},
        "data": str(data),
        "generators": generators,
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
