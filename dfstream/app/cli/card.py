"""``dfstream card``: a checkpoint's MODEL_CARD.md, with the results ``dfstream eval`` measured on it."""

from __future__ import annotations

import argparse

from dfstream.app.cli.common import EPILOG

NAME = "card"
STYLE = "plain"


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        epilog=EPILOG,
        help="write a checkpoint's model card with its evaluation results",
        description="Rewrite CKPT/MODEL_CARD.md from the checkpoint's own record (what it is, the data it "
        "was trained on as --data-description named it, how it was trained) and the results of "
        "`dfstream eval --out` files, each shown under the command that measured it. `dfstream train` "
        "writes the card without results.",
    )
    p.add_argument("checkpoint", metavar="CKPT", help="checkpoint folder (model.safetensors + dfstream.json)")
    p.add_argument(
        "--eval",
        metavar="JSON",
        action="append",
        default=[],
        help="a `dfstream eval --out` result to show; repeat it for several (test splits, corpora)",
    )
    return p


def run(args) -> int:
    from dfstream.app.card import write_card

    print(f"wrote {write_card(args.checkpoint, args.eval)}")
    return 0
