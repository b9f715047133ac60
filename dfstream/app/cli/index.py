"""``dfstream index``: build, extend or describe the attribution index of known generators."""

from __future__ import annotations

import argparse
import logging

from dfstream.app.cli.common import EPILOG
from dfstream.app.logs import progress
from dfstream.engine.core.errors import DfstreamError

NAME = "index"
STYLE = "plain"
log = logging.getLogger(__name__)


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        epilog=EPILOG,
        help="build, extend or describe an attribution index",
        description="Attribution index of known generators. build: embed the labelled forged spans "
        "of a dataset with a checkpoint's span embeddings into a FAISS index, and "
        "calibrate the open-set threshold on held-out spans. add: append spans (same "
        "model). info: print the sidecar and the spans per generator.",
    )
    p.add_argument("action", choices=["build", "add", "info"])
    p.add_argument("index_dir", metavar="INDEX_DIR", help="the index folder (written by build)")
    p.add_argument("--meta", metavar="JSON", help="metadata (AV-Deepfake1M / LAV-DF format)")
    p.add_argument("--root", metavar="DIR", help="folder the metadata's paths are relative to")
    p.add_argument("--model", metavar="DIR", help="checkpoint whose span embeddings the index holds")
    p.add_argument(
        "--label-field", default="audio_model", help="metadata field naming the generator (default: %(default)s)"
    )
    p.add_argument(
        "--labels",
        default="audio_fake_segments",
        choices=["audio_fake_segments", "visual_fake_segments", "fake_segments"],
        help="which spans to embed (default: %(default)s)",
    )
    p.add_argument("--split", default="train", help="metadata split to use (default: %(default)s)")
    p.add_argument(
        "--holdout",
        type=float,
        default=0.2,
        help="build: share of each generator's spans held out to calibrate the threshold (default: %(default)s)",
    )
    p.add_argument(
        "--false-reject",
        type=float,
        default=0.05,
        help="build: share of held-out known spans the threshold may call unknown (default: %(default)s)",
    )
    return p


def run(args) -> int:
    from dfstream.fusion.attribution import read_sidecar

    if args.action == "info":
        sidecar = read_sidecar(args.index_dir)
    else:
        for name in ("meta", "root", "model"):
            if getattr(args, name) is None:
                raise DfstreamError(f"index {args.action} needs --{name}")
        from dfstream.app.indexing import add_to_index, build_index

        if args.action == "build":
            log.info("building the index (Ctrl-C leaves no index: a partial one would miss generators)")
            sidecar = build_index(
                args.meta,
                args.root,
                args.model,
                args.index_dir,
                args.label_field,
                args.labels,
                args.split,
                args.holdout,
                args.false_reject,
                progress=progress(),
            )
        else:
            sidecar = add_to_index(
                args.index_dir, args.meta, args.root, args.model, args.label_field, args.labels, args.split, progress()
            )
    threshold = sidecar.get("threshold", {})
    print(
        f"index {args.index_dir}: {sidecar['vectors']} spans, {sidecar['index_type']} "
        f"{sidecar['dim']}-d {sidecar['metric']}\nmodel {sidecar['model_id']}\n"
        f"open-set threshold {threshold.get('value')} ({threshold.get('method')})\n"
        f"created {sidecar['created']}, updated {sidecar['updated']}"
    )
    for name, count in sorted(sidecar["counts"].items(), key=lambda kv: -kv[1]):
        print(f"  {count:8d}  {name}")
    return 0
