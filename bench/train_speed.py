"""Training speed of a config: clips and windows per second, and peak memory, for issue 30's GPU runs.

Trains ``--config`` (layered, later over earlier) for ``--epochs`` on a SYNTHETIC toy set of
``--files`` clips (``dfstream toyset`` tones, or toy talking-head videos when the config has a
visual branch) and reports the training time per epoch, clips/s, windows/s, and peak memory
(the GPU's allocator peak on CUDA, the process's peak RSS on CPUs). Speed does not depend on
what the clips hold, and the set is built here, so the same command runs on a device machine
that can reach no hub and holds no corpus.

``--sizes base`` swaps every pretrained encoder for a random one of the production size
(WavLM Base+: 12 x 768, conv 512; ViT-B/16: 12 x 768 at 224 px): the same compute, without the
weights, which a device machine cannot download. ``--sizes tiny`` (the tests' sizes) checks the
script on a CPU in seconds.

    python bench/train_speed.py --config configs/production-audio.yaml --sizes base --files 400 \\
        --out bench/results/train_speed_gpu.json

Writes the JSON to ``--out`` (default ``bench/results/train_speed.json``).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]

import torch  # noqa: E402
from replay_speed import machine  # noqa: E402

from dfstream.app.config import load_config  # noqa: E402
from dfstream.app.training import train  # noqa: E402
from dfstream.engine.core.config import replace  # noqa: E402

SIZES = {
    "base": {
        "audio": {"hidden_size": 768, "num_layers": 12, "num_heads": 12, "intermediate_size": 3072, "conv_dim": 512},
        "visual": {"hidden_size": 768, "num_layers": 12, "num_heads": 12, "intermediate_size": 3072, "image_size": 224},
    },
    "tiny": {
        "audio": {"hidden_size": 32, "num_layers": 2, "num_heads": 2, "intermediate_size": 64, "conv_dim": 32},
        "visual": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64, "image_size": 32},
    },
}
"""Encoder sizes that ``--sizes`` puts in place of pretrained encoders (random init)."""


def sized(config, sizes: str):
    """``config`` with every branch's encoder random and of ``SIZES[sizes]`` (``none``: as it is)."""
    if sizes == "none":
        return config
    for branch in config.model.branches:
        config = replace(config, f"{branch}.encoder.pretrained", None)
        for key, value in SIZES[sizes][branch].items():
            config = replace(config, f"{branch}.encoder.{key}", value)
    if sizes == "tiny" and "audio" in config.model.branches:
        config = replace(replace(config, "audio.backend_dim", 16), "audio.backend_layers", 1)
    return config


def toy_set(folder: Path, files: int, video: bool) -> Path:
    """A SYNTHETIC set of ``files`` clips in ``folder``; its metadata's path."""
    if video:
        from dfstream.app.toyvideo import make_toy_av_set

        return make_toy_av_set(folder, files=files, seed=0, min_seconds=4.0, max_seconds=6.0, size=(320, 240))
    from dfstream.app.toyset import make_toyset

    return make_toyset(folder, files=files, seed=0, min_seconds=4.0, max_seconds=6.0)


def peak_memory_mb(device: str) -> float:
    """The GPU allocator's peak (CUDA) or the process's peak resident memory (CPU), MB."""
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", action="append", required=True, metavar="YAML", help="config files, layered")
    p.add_argument("--sizes", choices=["none", *SIZES], default="none", help="encoders swapped for random ones")
    p.add_argument("--files", type=int, default=64, help="toy clips (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=2, help="epochs; the first includes warm-up (default: %(default)s)")
    p.add_argument("--batch-size", type=int, help="override train.batch_size")
    p.add_argument("--workers", type=int, help="override train.workers (streamed data)")
    p.add_argument("--device", help="override inference.device (auto, cpu, cuda, cuda:N)")
    p.add_argument("--work", metavar="DIR", help="where the toy set and checkpoint go (default: a temporary folder)")
    p.add_argument("--out", default=str(ROOT / "bench/results/train_speed.json"), metavar="JSON")
    args = p.parse_args(argv)
    config = replace(sized(load_config(args.config), args.sizes), "train.epochs", args.epochs)
    for key, value in (("train.batch_size", args.batch_size), ("train.workers", args.workers)):
        if value is not None:
            config = replace(config, key, value)
    if args.device:
        config = replace(config, "inference.device", args.device)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(args.work or scratch)
        meta = toy_set(work / "data", args.files, "visual" in config.model.branches)
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        summary = train(meta, work / "data", work / "model", config, "SYNTHETIC toy clips (bench/train_speed.py)")
        seconds = time.perf_counter() - start
        device = "cuda" if torch.cuda.is_available() and config.model.inference.device != "cpu" else "cpu"
    clips = summary["data"]["files"] * len(summary["history"])
    media = summary["data"]["seconds"] * len(summary["history"])
    result = {
        "benchmark": "train_speed",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "command": "python bench/train_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "data": f"{args.files} SYNTHETIC toy clips of 4-6 s (80 % train)",
        "configs": args.config,
        "sizes": args.sizes,
        "method": {
            k: summary["method"].get(k) for k in ("encoder", "precision", "data", "batch_size", "accumulate", "workers")
        },
        "epochs": len(summary["history"]),
        "seconds": round(seconds, 2),
        "train_clips_per_s": round(clips / seconds, 3),
        "train_media_s_per_s": round(media / seconds, 3),
        "peak_memory_mb": round(peak_memory_mb(device), 1),
        "device": device,
        "note": "wall time of the whole run: decoding, training and validation of every epoch",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
