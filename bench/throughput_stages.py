"""Where the time of bench/throughput.py goes: each stage timed alone, one after another.

The same streams as ``bench/throughput.py`` (``--data DIR`` or toy streams), and
the same two paths, but no concurrency: every chunk decoded
(``dfstream.engine.media.blocks.decode_media``), then prepared for the branches (face crops),
then scored - by the engine's processor in batches of ``scheduler.batch_chunks``
chunks (its precision, fused feature extractor, carried frames) and by the
peer-style baseline's one chunk at a time. Decoding and preparing are the same
work for both paths. Writes seconds per stage and each stage's share of the
baseline's total.

    python bench/throughput_stages.py --data .cache/realset/data --model models/default
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

from dfstream.engine.core.config import read_yaml
from dfstream.engine.media.blocks import decode_media
from dfstream.engine.runtime.config import config_from_dict
from dfstream.engine.runtime.stream import StreamProcessor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import (  # noqa: E402
    BASELINE,
    ENGINE_DEFAULT,
    ROOT,
    dataset_streams,
    load,
    machine,
    peer_processor,
    schedule,
    toy_streams,
    use_threads,
)


def timed(fn) -> tuple[float, object]:
    tic = time.perf_counter()
    out = fn()
    return time.perf_counter() - tic, out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--data", help="AV-Deepfake1M-format set (default: SYNTHETIC toy streams)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--files", type=int, help="only the split's first FILES files")
    parser.add_argument("--seconds", type=float, default=12.0, help="toy streams: media seconds per stream")
    parser.add_argument("--model", help="checkpoint folder or architecture YAML")
    parser.add_argument("--engine-config", help=f"YAML of engine overrides (default: {ENGINE_DEFAULT})")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "throughput_stages.json"))
    args = parser.parse_args()

    overrides = read_yaml(args.engine_config) if args.engine_config else ENGINE_DEFAULT
    engine = load(args.model, {k: v for k, v in overrides.items() if k != "scheduler"})
    batch = config_from_dict({"scheduler": overrides.get("scheduler", {})}).scheduler.batch_chunks
    baseline = load(args.model, BASELINE)
    if args.data:
        slots, _ = dataset_streams(Path(args.data), args.split, args.streams, 2.0, args.files)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            slots, _ = toy_streams(args.streams, args.seconds, 2.0, Path(tmp))
    order = [chunk for _, chunk in schedule(slots, 2.0, realtime=False)]
    for det in (engine, baseline):
        use_threads(det)
        det.warm_up()
    decode_s, decoded = timed(lambda: [decode_media(c, engine.media, engine.config.limits) for c in order])
    prepare_s, blocks = timed(lambda: [engine.prepare(b) for b in decoded])
    items = [(c.stream_id, c.seq, b, c.final) for c, b in zip(order, blocks)]
    processor = StreamProcessor(engine)
    threads = {"engine": use_threads(engine)}
    engine_s, _ = timed(lambda: [processor.feed_many(items[i : i + batch]) for i in range(0, len(items), batch)])
    peer = peer_processor(baseline)
    threads["baseline"] = use_threads(baseline)
    baseline_s, _ = timed(lambda: [peer.feed(*item) for item in items])
    total = decode_s + prepare_s + baseline_s
    report = {
        "benchmark": "throughput_stages",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "command": " ".join(["python bench/throughput_stages.py", *sys.argv[1:]]),
        "model": engine.describe(),
        "chunks": len(order),
        "media_s": round(sum(seconds for slot in slots for _, _, seconds in slot), 2),
        "torch_threads": threads,
        "seconds": {
            "decode": round(decode_s, 2),
            "prepare": round(prepare_s, 2),
            "model_engine": round(engine_s, 2),
            "model_baseline": round(baseline_s, 2),
        },
        "share_of_baseline": {
            "decode": round(decode_s / total, 3),
            "prepare": round(prepare_s / total, 3),
            "model": round(baseline_s / total, 3),
        },
        "model_speedup": round(baseline_s / engine_s, 2),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
