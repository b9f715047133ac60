"""``dfstream train``: a detector trained on AV-Deepfake1M / LAV-DF-format data, saved as a checkpoint."""

from __future__ import annotations

import argparse

from dfstream.app.cli.common import EPILOG
from dfstream.app.logs import progress

NAME = "train"
STYLE = "plain"


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        epilog=EPILOG,
        help="train a detector on labelled data",
        description="Train the heads on AV-Deepfake1M / LAV-DF-format data (split 'train'; "
        "'val' for validation, else train.val_fraction held out) and save the best "
        "epoch (lowest validation BCE) as a checkpoint. The training state is saved in the "
        "checkpoint folder after every epoch (train.checkpoint_every); --resume continues an "
        "interrupted run from it, to the same weights. Under torchrun (torchrun --nproc_per_node N "
        "$(which dfstream) train ...) the processes share each batch: gloo on CPUs, NCCL on GPUs.",
    )
    p.add_argument("--meta", required=True, metavar="JSON", help="metadata file (AV-Deepfake1M or LAV-DF format)")
    p.add_argument("--root", required=True, metavar="DIR", help="folder the metadata's 'file' paths are relative to")
    p.add_argument("--out", required=True, metavar="DIR", help="checkpoint folder to write")
    p.add_argument(
        "--config",
        metavar="YAML",
        action="append",
        help="config overrides (architecture, train, inference); repeat it to layer files, later over earlier",
    )
    p.add_argument("--epochs", type=int, help="override train.epochs")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run whose state is in --out (after its last saved epoch); "
        "the config and metadata must be the same",
    )
    p.add_argument(
        "--labels",
        choices=["audio_fake_segments", "visual_fake_segments", "fake_segments"],
        help="which segments the fused curve learns (default: the branch's own for a one-branch "
        "model, fake_segments for audio+visual; each branch also learns its modality's)",
    )
    p.add_argument(
        "--data-description",
        metavar="TEXT",
        help="what the data is, recorded in the checkpoint's card (say 'synthetic' if it is)",
    )
    return p


def run(args) -> int:
    from dfstream.app.config import load_config
    from dfstream.app.training import train
    from dfstream.engine.core.config import replace

    config = load_config(args.config)
    if args.epochs is not None:
        config = replace(config, "train.epochs", args.epochs)
    summary = train(
        args.meta, args.root, args.out, config, args.data_description, args.labels, progress(), resume=args.resume
    )
    best = summary["best_epoch"]
    print(
        f"saved {args.out} (best epoch {best['epoch']}: "
        + ", ".join(f"{k} {v}" for k, v in best.items() if k not in ("epoch", "best"))
        + ")"
    )
    return 0
