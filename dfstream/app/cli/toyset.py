"""``dfstream toyset``: a tiny SYNTHETIC dataset for the demo and smoke tests."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from dfstream.app.logs import progress

NAME = "toyset"
STYLE = "plain"
log = logging.getLogger(__name__)


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        help="write a tiny SYNTHETIC dataset (demo, tests)",
        description="Write a tiny SYNTHETIC dataset (formant-shaped tones, not speech) with "
        "AV-Deepfake1M metadata, for the demo and smoke tests. With --video: MP4s "
        "(H.264 + AAC) of a drawn cartoon face whose mouth follows the toy audio; "
        "audio, visual (mouth region blended, frozen or shuffled) or both forged.",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the media files and metadata.json")
    p.add_argument(
        "--files", type=int, default=96, help="number of files, 4-8 s each (--video: 3-6 s) (default: %(default)s)"
    )
    p.add_argument("--video", action="store_true", help="audio-visual MP4s instead of audio-only WAVs")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same files")
    return p


def run(args) -> int:
    from dfstream.app.toyset import make_toyset
    from dfstream.app.toyvideo import make_toy_av_set

    try:
        make = make_toy_av_set if args.video else make_toyset
        path = make(args.out, args.files, args.seed, progress=progress())
    except KeyboardInterrupt:
        log.warning("toyset interrupted: %s lists the files written so far", Path(args.out) / "metadata.json")
        raise
    print(f"wrote {path} ({args.files} SYNTHETIC files; see {Path(args.out) / 'README.md'})")
    return 0
