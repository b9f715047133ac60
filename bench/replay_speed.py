"""Replay throughput on CPU: the engine vs a plain per-chunk loop, in one run.

Both score the same SYNTHETIC toy files (dfstream/app/toyset.py) with the same
model (the default architecture, random weights: speed does not depend on
them) and the same window geometry.

* engine: ``dfstream.streams.replay.replay`` - each file decoded once, incrementally,
  chunks carried through per-stream state (context audio kept, not re-read),
  all windows a chunk completes scored in one batch.
* baseline ("plain per-chunk loop without state reuse", as research scripts
  run): for every chunk, decode the file again, cut that chunk's window with
  its context, score it alone (batch 1).

Video (``--video-files``, default 8): SYNTHETIC toy audio-visual MP4s
(dfstream/app/toyvideo.py, 320x240 at 25 fps) replayed by the default
architecture with ``branches: [audio, visual]``: media-seconds per
wall-second, frames per second through the visual branch (its ViT +
back-end, timed around its forward), and the share of the wall time spent
in face detection and cropping (timed around ``crop_faces``). No peer
baseline for video: the ratio above is the audio one.

Writes bench/results/replay_speed.json with media-seconds per wall-second for
both and their ratio, and the machine it ran on.

    python bench/replay_speed.py [--files 12] [--video-files 8] [--config YAML] [--out PATH]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dfstream.app.config import load_config
from dfstream.app.toyset import make_toyset
from dfstream.engine.media.decode import decode_audio
from dfstream.engine.runtime.detector import Detector
from dfstream.engine.runtime.device import NATIVE_BF16_FLAGS, cpu_flags
from dfstream.engine.runtime.stream import StreamProcessor
from dfstream.streams.replay import expand_inputs, replay

ROOT = Path(__file__).resolve().parent.parent


SIMD_FLAGS = re.compile(r"^(sse4_2|avx.*|amx.*|fma|f16c|bf16|.*vnni.*|asimd.*|sve.*|i8mm)$")


def machine() -> dict:
    """The machine a result ran on: cores, CPU and its SIMD flags (which say whether bf16 is native,
    :data:`dfstream.engine.runtime.device.NATIVE_BF16_FLAGS`), GPU, versions. Every benchmark records it."""
    cpu = (
        next(
            (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else platform.processor()
    )
    flags = cpu_flags()
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "cpu_flags": sorted(f for f in flags if SIMD_FLAGS.match(f)),
        "native_bf16": sorted(flags & set(NATIVE_BF16_FLAGS)),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def run_engine(detector, inputs, chunk_seconds, out) -> float:
    start = time.perf_counter()
    replay(inputs, StreamProcessor(detector), out, chunk_seconds)
    return time.perf_counter() - start


def run_baseline(detector, inputs, chunk_seconds) -> float:
    plan, chunk = detector.plan, round(chunk_seconds * 16000)
    start = time.perf_counter()
    for path, _ in inputs:
        total = len(decode_audio(path).samples)
        for c0 in range(0, total, chunk):
            audio = decode_audio(path).samples  # re-decoded for every chunk: no state kept
            c1 = min(total, c0 + chunk)
            first, last = c0 // plan.hop, plan.complete(c1, final=c1 == total)
            for k in range(first, last):
                detector.score(plan.cut(audio, 0, k, total if c1 == total else None)[None])
    return time.perf_counter() - start


class _Timed:
    """Wraps a callable, summing its wall time and the frames it was given (first axis x second)."""

    def __init__(self, fn, frames=None):
        self.fn, self.frames_of, self.seconds, self.frames = fn, frames, 0.0, 0

    def __call__(self, *args, **kwargs):
        tic = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - tic
            if self.frames_of is not None:
                self.frames += self.frames_of(args[0])


def run_video(config, files: int, tmp: Path, chunk: float) -> dict:
    """Replay toy audio-visual files with an audio+visual model; visual branch and face-crop timings."""
    import dfstream.modalities.visual.branch as visual_module
    from dfstream.app.toyvideo import make_toy_av_set
    from dfstream.engine.core.config import replace

    config = replace(config, "branches", ["audio", "visual"])
    detector = Detector.from_config(config)
    make_toy_av_set(tmp / "av", files=files, seed=7)
    inputs = expand_inputs([str(tmp / "av")])
    seconds = sum(decode_audio(p).duration for p, _ in inputs)
    detector.warm_up(1)
    branch = detector.branches["visual"]
    vit = _Timed(branch.encode, lambda x: x.shape[0] * x.shape[1])  # every path through the ViT
    crops = _Timed(visual_module.crop_faces, lambda frames: len(frames))
    branch.encode, visual_module.crop_faces = vit, crops
    try:
        wall = run_engine(detector, inputs, chunk, tmp / "av-out")
    finally:
        del branch.encode
        visual_module.crop_faces = crops.fn
    visual = config.branch("visual")
    return {
        "data": f"{len(inputs)} SYNTHETIC toy audio-visual MP4s (dfstream/app/toyvideo.py, 320x240, 25 fps), "
        f"{seconds:.1f} media-seconds",
        "config": {
            "branches": ["audio", "visual"],
            "vit": f"{visual.encoder.num_layers}x{visual.encoder.hidden_size} at {visual.encoder.image_size} px "
            f"(random init)",
            "fps": visual.fps,
            "crop": visual.crop,
            "face_detector": visual.face_detector,
        },
        "wall_s": round(wall, 3),
        "media_s_per_s": round(seconds / wall, 2),
        "vit": {
            "frames": vit.frames,
            "seconds": round(vit.seconds, 3),
            "frames_per_s": round(vit.frames / vit.seconds, 1) if vit.seconds else None,
            "frames_sampled": crops.frames,
            "note": "frames through the ViT; a window reuses the [CLS] states of the frames it shares "
            "with its stream's previous window (dfstream/engine/runtime/frame_cache.py), so about one encoding "
            "per sampled frame plus one per window",
        },
        "face_crops": {
            "frames": crops.frames,
            "seconds": round(crops.seconds, 3),
            "note": "summed over the decode threads, which run beside the model: not a share of the wall time",
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=12, help="toy files, 4-8 s each")
    parser.add_argument("--video-files", type=int, default=8, help="toy audio-visual files, 3-6 s each (0: none)")
    parser.add_argument("--config", help="config YAML (default: configs/default.yaml)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "replay_speed.json"))
    args = parser.parse_args()
    app = load_config(args.config)
    config, chunk = app.model, app.deployment.replay.chunk_seconds
    detector = Detector.from_config(config)
    with tempfile.TemporaryDirectory() as tmp:
        make_toyset(Path(tmp) / "data", files=args.files, seed=7)
        inputs = expand_inputs([str(Path(tmp) / "data")])
        seconds = sum(decode_audio(p).duration for p, _ in inputs)
        detector.score(np.zeros((1, detector.plan.length), np.float32))  # warm-up
        engine_s = run_engine(detector, inputs, chunk, Path(tmp) / "out")
        baseline_s = run_baseline(detector, inputs, chunk)
        video = run_video(config, args.video_files, Path(tmp), chunk) if args.video_files else None
    result = {
        "benchmark": "replay_speed",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "data": f"{len(inputs)} SYNTHETIC toy files (dfstream/app/toyset.py), {seconds:.1f} media-seconds",
        "config": {
            "encoder": f"{config.branch('audio').encoder.kind} {config.branch('audio').encoder.num_layers}x"
            f"{config.branch('audio').encoder.hidden_size} (random init)",
            "hop_seconds": config.inference.hop_seconds,
            "context_seconds": config.inference.context_seconds,
            "chunk_seconds": chunk,
            "batch_size": config.inference.batch_size,
        },
        "engine": {"wall_s": round(engine_s, 3), "media_s_per_s": round(seconds / engine_s, 2)},
        "baseline_per_chunk_no_state": {
            "wall_s": round(baseline_s, 3),
            "media_s_per_s": round(seconds / baseline_s, 2),
        },
        "speedup": round(baseline_s / engine_s, 3),
        "video": video,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
