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
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

from model_card import ABLATION_SUBSETS as SUBSETS  # noqa: E402
from model_card import ablation_scores, measure  # noqa: E402
from model_card import ablation_table as table  # noqa: E402
from replay_speed import machine  # noqa: E402


def row(label: str, model: Path, out: Path, meta: list[dict], generators: dict) -> dict:
    """One recipe's AP@0.5 and detection AUC on every subset of the test split."""
    ckpt = json.loads((model / "dfstream.json").read_text())
    measured = measure(meta, out, None, generators)
    return {
        "label": label,
        "model_id": ckpt["model_id"],
        "model": str(model),
        "subsets": {name: ablation_scores(measured[name]) for name in SUBSETS},
    }


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
        "machine": machine(),
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
