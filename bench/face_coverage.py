"""How often the visual branch's crops hold a face: per face video of a real-material set.

For every file of a split, the video is decoded and sampled as the visual branch
samples it (``visual.fps``, ``visual.decode_side`` of ``--config``, default the
default config) and cropped in 2 s blocks as a stream's chunks are
(:func:`dfstream.modalities.visual.faces.crop_faces`), once per face detector of
``--detectors`` (default both, ``haar`` and ``blazeface``). Counted
per ``face_video`` of the set's metadata (bench/make_dataset.py writes it): the
sampled frames where the detector found a face, and those whose crop holds a
(found or held) face. A frame without one is given to the encoder whole, so the
mouth path sees the lower middle of the picture instead of the mouth.

    python bench/face_coverage.py --data .cache/realset/data [--split test] [--config YAML] [--detectors haar,blazeface]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from dfstream.app.config import load_config
from dfstream.engine.media.video import decode_video
from dfstream.modalities.visual.faces import crop_faces, face_detector

ROOT = Path(__file__).resolve().parent.parent
BLOCK_SECONDS = 2.0


class Counting:
    """A face detector that counts the frames it found a face in."""

    def __init__(self, detector):
        self.detector, self.found = detector, 0

    def detect(self, frame):
        boxes = self.detector.detect(frame)
        self.found += len(boxes) > 0
        return boxes

    def detect_many(self, frames):
        many = getattr(self.detector, "detect_many", None)
        if many is None:
            return [self.detect(f) for f in frames]
        boxes = many(frames)
        self.found += sum(len(b) > 0 for b in boxes)
        return boxes


def coverage(data: Path, split: str, config, detector: str | None = None) -> dict:
    """``{face video: {"frames", "detected", "cropped"}}`` over the split's files (``detected``
    counts frames the detector searched and found a face in: all frames when ``detect_every`` is 1);
    ``detector`` names the face detector (default: the config's)."""
    visual = config.branch("visual")
    detector = Counting(face_detector(detector or visual.face_detector))
    block = max(1, round(BLOCK_SECONDS * visual.fps))
    counts = defaultdict(lambda: {"frames": 0, "detected": 0, "cropped": 0})
    for entry in json.loads((data / "metadata.json").read_text()):
        if entry["split"] != split:
            continue
        video = decode_video(data / entry["file"], visual.fps, visual.decode_side)
        if video is None:
            continue
        row = counts[entry.get("face_video", "unknown")]
        found = detector.found
        for start in range(0, len(video.frames), block):
            frames = video.frames[start : start + block]
            row["frames"] += len(frames)
            row["cropped"] += int(
                np.sum(crop_faces(frames, 8, detector, visual.face_margin, detect_every=visual.detect_every).faces)
            )
        row["detected"] += detector.found - found
    return dict(counts)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--data", required=True, help="a set bench/make_dataset.py built")
    parser.add_argument("--split", default="test", help="which split's files (default: %(default)s)")
    parser.add_argument("--config", help="config YAML whose visual section to use (default: the default)")
    parser.add_argument(
        "--detectors", default="haar,blazeface", help="comma-separated face detectors to compare (default: %(default)s)"
    )
    parser.add_argument(
        "--out",
        default=str(ROOT / "bench" / "results" / "face_coverage.json"),
        help="result JSON (default: bench/results/face_coverage.json)",
    )
    args = parser.parse_args()
    config = load_config(args.config).model
    by_detector = {}
    for name in args.detectors.split(","):
        counts = coverage(Path(args.data), args.split, config, name)
        by_detector[name] = {
            k: {
                **v,
                "detected_share": round(v["detected"] / max(1, v["frames"]), 3),
                "cropped_share": round(v["cropped"] / max(1, v["frames"]), 3),
            }
            for k, v in sorted(counts.items())
        }
    report = {
        "benchmark": "face_coverage",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python bench/face_coverage.py", *sys.argv[1:]]),
        "fps": config.branch("visual").fps,
        "decode_side": config.branch("visual").decode_side,
        "detect_every": config.branch("visual").detect_every,
        "block_seconds": BLOCK_SECONDS,
        "by_detector": by_detector,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
