"""``dfstream fetch-face-model``: the BlazeFace face detector, taken once from the mediapipe wheel on PyPI."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

NAME = "fetch-face-model"
STYLE = "plain"
log = logging.getLogger(__name__)


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        help="fetch the BlazeFace face detector once (PyPI)",
        description="Download MediaPipe's wheel from PyPI (pip download --no-deps; it is not "
        "installed), take its short-range BlazeFace face detector (Apache-2.0), check "
        "its SHA-256 and convert it for torch. The visual branch's face_detector "
        "'blazeface' reads it; nothing is downloaded at run time. "
        "Default place: $DFSTREAM_FACE_MODEL, else "
        "$XDG_CACHE_HOME/dfstream/blazeface_short_range.safetensors (~/.cache).",
    )
    p.add_argument("--out", metavar="FILE", help="where to write it (default: the default place above)")
    p.add_argument("--wheel", metavar="WHL", help="use this mediapipe wheel instead of downloading one")
    p.add_argument("--force", action="store_true", help="fetch again even if the file exists")
    return p


def run(args) -> int:
    from dfstream.modalities.visual.face_model import WHEEL, default_path, fetch

    out = Path(args.out) if args.out else default_path()
    if out.is_file() and not args.force:
        print(f"{out} is there already (--force fetches it again)")
        return 0
    log.info("downloading %s from PyPI (~35 MB, not installed) for its face detector ...", WHEEL)
    print(f"wrote {fetch(out, Path(args.wheel) if args.wheel else None)}")
    return 0
