"""What each branch of a checkpoint has learned: frame AUC per branch, per split, per generator.

The set's files of each ``--splits`` split are cut into windows by the streaming path itself
(as training does), scored by the checkpoint in float32, and each branch's 20 ms frame
probabilities are compared with its own modality's labels (``audio_fake_segments``,
``visual_fake_segments``) on the frames where that modality is present; the fused curve with
``fake_segments``. Per generator: its forged frames against every real frame of the split.
A branch whose frame AUC is near 0.5 on the train split has learned nothing it can use; one
high on train and low on val/test has learned the train files.

    python bench/branch_probe.py --data .cache/realset/data --model models/default

Writes bench/results/branch_probe.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from replay_speed import machine  # noqa: E402

from dfstream.app import metrics  # noqa: E402
from dfstream.app.config import TrainConfig  # noqa: E402
from dfstream.app.training import BRANCH_LABELS, GENERATOR_KEYS, Trainer, default_label_key, training_windows  # noqa: E402
from dfstream.engine.core.dataset import load_metadata  # noqa: E402
from dfstream.engine.runtime.checkpoint import load_checkpoint  # noqa: E402


def _scores(trainer: Trainer, detector, data) -> tuple[np.ndarray, dict]:
    """Fused and per-branch frame probabilities ``(windows, frames)`` of one file's windows (the
    trainer's encoder cache holds this file's batches only)."""
    fused, branches = [], {n: [] for n in detector.branches}
    with torch.no_grad():
        for b in trainer._batches(len(data.mask), False, None):
            f, logits, _, _ = trainer._logits(data, b, ("probe", int(b[0])))
            fused.append(torch.sigmoid(f).numpy())
            for n, lg in logits.items():
                branches[n].append(torch.sigmoid(lg).numpy())
    trainer.cache.clear()
    return np.concatenate(fused), {n: np.concatenate(v) for n, v in branches.items()}


def _summary(y: np.ndarray, s: np.ndarray, generators: np.ndarray | None = None) -> dict:
    out = {
        "frames": int(len(y)),
        "forged_share": round(float(y.mean()), 4) if len(y) else None,
        "frame_auc": None if len(y) == 0 or y.min() == y.max() else round(metrics.auc(y, s), 4),
        "forged_above_0.5": round(float((s[y > 0] > 0.5).mean()), 4) if (y > 0).any() else None,
        "real_above_0.5": round(float((s[y == 0] > 0.5).mean()), 4) if (y == 0).any() else None,
    }
    if generators is not None:
        real = y == 0
        out["by_generator"] = {}
        for g in sorted(set(generators[y > 0])):
            pick = (generators == g) & (y > 0)
            both = np.r_[np.zeros(real.sum()), np.ones(pick.sum())]
            out["by_generator"][g] = round(metrics.auc(both, np.r_[s[real], s[pick]]), 4) if real.any() else None
    return out


def probe_split(detector, trainer, items, entries: dict, root: Path, label_key: str) -> dict:
    """Frame AUCs of one split's ``items`` (``entries``: file -> metadata entry)."""
    ys = {n: [] for n in ("fused", *detector.branches)}
    ss = {n: [] for n in ys}
    gens = {n: [] for n in detector.branches}
    for item in items:
        data = training_windows([item], root, detector, label_key, item.split)
        fused, branches = _scores(trainer, detector, data)
        kept = data.mask.astype(bool)
        anywhere = kept & np.any(list(data.present_frames.values()), axis=0)
        ys["fused"].append(data.targets[anywhere])
        ss["fused"].append(fused[anywhere])
        for n in detector.branches:
            m = kept & data.present_frames[n].astype(bool)
            ys[n].append(data.branch_targets[n][m])
            ss[n].append(branches[n][m])
            gens[n].append(
                np.full(int(m.sum()), str(entries[item.file].get(GENERATOR_KEYS[detector.modalities[n]]) or ""))
            )
    out = {}
    for n in ys:
        y, s = np.concatenate(ys[n]), np.concatenate(ss[n])
        out[n] = _summary(y, s, np.concatenate(gens[n]) if n in gens else None)
        if n in detector.branches:
            out[n]["labels"] = BRANCH_LABELS[detector.modalities[n]]
    out["fused"]["labels"] = label_key
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, metavar="DIR", help="the real-material set (metadata.json)")
    p.add_argument("--model", required=True, metavar="DIR", help="checkpoint to probe")
    p.add_argument(
        "--splits",
        default="train,val,test",
        metavar="A,B",
        help="splits to score, comma-separated (default: %(default)s)",
    )
    p.add_argument(
        "--files",
        type=int,
        default=0,
        help="at most this many files of each split, the first in metadata order (0 = all)",
    )
    p.add_argument("--out", default=str(ROOT / "bench/results/branch_probe.json"), metavar="JSON")
    args = p.parse_args(argv)
    data = Path(args.data)
    started = time.perf_counter()
    detector = load_checkpoint(args.model, {"inference": {"dtype": "float32", "quantize": "none"}})
    detector.model.eval()
    trainer = Trainer(detector, TrainConfig())  # scores with the trained weights; trains nothing
    label_key = default_label_key(detector)
    entries = {e["file"]: e for e in json.loads((data / "metadata.json").read_text())}
    items = load_metadata(data / "metadata.json")
    result = {
        "command": "python bench/branch_probe.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "model": args.model,
        "model_id": detector.model_id,
        "splits": {},
    }
    for split in [s for s in args.splits.split(",") if s]:
        chosen = [i for i in items if i.split == split]
        if not chosen:
            p.error(f"no files of split {split!r} in {data / 'metadata.json'}")
        chosen = chosen[: args.files] if args.files else chosen
        result["splits"][split] = {
            "files": len(chosen),
            **probe_split(detector, trainer, chosen, entries, data, label_key),
        }
        row = result["splits"][split]
        print(f"{split}: " + ", ".join(f"{n} frame AUC {row[n]['frame_auc']}" for n in row if n != "files"), flush=True)
    result["seconds"] = round(time.perf_counter() - started, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
