"""bench/face_coverage.py: the share of sampled frames whose crops hold a face."""

import json
import sys
from pathlib import Path

from dfstream.app.config import load_config
from dfstream.app.toyvideo import make_toy_av_set

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from face_coverage import coverage  # noqa: E402


def test_every_sampled_frame_of_the_toy_faces_is_counted_and_found(tmp_path):
    meta = json.loads(make_toy_av_set(tmp_path, files=7, seed=5, min_seconds=2.0, max_seconds=2.6).read_text())
    test = [e for e in meta if e["split"] == "test"]
    config = load_config(None).model
    counts = coverage(tmp_path, "test", config)
    assert list(counts) == ["unknown"]  # toy sets name no face video
    row = counts["unknown"]
    # frames sampled at visual.fps from each file's video (every toy frame shows the face)
    expected = sum(round(e["video_frames"] / 25 * config.branch("visual").fps) for e in test)
    assert abs(row["frames"] - expected) <= len(test)
    assert row["cropped"] >= row["detected"] >= 0.9 * row["frames"] > 0
    haar = coverage(tmp_path, "test", config, "haar")["unknown"]
    assert haar["frames"] == row["frames"] and haar["cropped"] >= haar["detected"] > 0
