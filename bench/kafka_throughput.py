"""What Kafka costs: ``dfstream serve`` end to end through a real broker vs ``dfstream replay``, one run.

Both score the same SYNTHETIC toy files (dfstream/app/toyset.py) with the same model
(the default architecture, random weights: speed does not depend on them),
cut into the same chunks.

* replay: ``dfstream.streams.replay.replay`` over the files (the in-process baseline).
* serve: the files are first published to a fresh topic (``dfstream.streams.produce``,
  timed separately); then one serve worker (``dfstream.streams.serve.Worker``) consumes
  them. Timed from the worker's partition assignment (group join reported
  separately) until every verdict is readable from the output topic: decode,
  scoring, produce with acks=all, state topic, commits.
* lag: a producer publishing copies of the files as fast as it can while the
  worker consumes; the consumer lag (records not yet committed) is sampled
  every 0.25 s, with the worker's peak work-queue depth (bounded by
  ``serve.queue_chunks``) and the time to drain after the producer stops.

Writes bench/results/kafka_throughput.json with the machine it ran on.

    python bench/kafka_throughput.py [--files 16] [--copies 3] [--bootstrap HOST:PORT] [--out PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.replay_speed import machine  # noqa: E402
from dfstream.app.config import load_config  # noqa: E402
from dfstream.app.toyset import make_toyset  # noqa: E402
from dfstream.engine.runtime.detector import Detector  # noqa: E402
from dfstream.engine.runtime.stream import StreamProcessor  # noqa: E402
from dfstream.streams.config import KafkaConfig, ServeConfig  # noqa: E402
from dfstream.streams.dev_broker import DevBroker  # noqa: E402
from dfstream.streams.kafka_io import ensure_topics  # noqa: E402
from dfstream.streams.produce import produce_files  # noqa: E402
from dfstream.streams.replay import expand_inputs, replay  # noqa: E402
from dfstream.streams.serve import Worker  # noqa: E402
from dfstream.streams.serve_metrics import ServeMetrics  # noqa: E402


def serve_until(detector, kcfg, scfg, expected: int, producer=None) -> dict:
    """Run one worker until ``expected`` verdicts were committed; sample lag meanwhile."""
    metrics = ServeMetrics()
    worker = Worker(StreamProcessor(detector), kcfg, scfg, metrics)
    stop = threading.Event()
    started = time.perf_counter()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    assigned_at, lag, producer_done_at = None, [], None
    verdicts = lambda: metrics.chunks.labels("verdict")._value.get()  # noqa: E731
    try:
        while verdicts() < expected or sum(worker.committed.values()) < expected:
            time.sleep(0.25)
            if assigned_at is None and worker.consumer is not None and worker.consumer.assignment():
                assigned_at = time.perf_counter()
                if producer is not None:
                    producer.start()
            if producer is not None and producer_done_at is None and not producer.is_alive() and assigned_at:
                producer_done_at = time.perf_counter()
            if assigned_at is not None:
                lag.append(sum(s.value for m in metrics.lag.collect() for s in m.samples))
            if not thread.is_alive():
                raise RuntimeError("the worker stopped early")
    finally:
        done_at = time.perf_counter()
        stop.set()
        thread.join(60)
    stages = {
        s.labels["stage"]: round(s.value, 3)
        for m in metrics.stage.collect()
        for s in m.samples
        if s.name.endswith("_sum")
    }
    return {
        "stage_seconds_total": stages,
        "join_s": round(assigned_at - started, 3),
        "wall_s": round(done_at - assigned_at, 3),
        "peak_queue": worker.peak_depth,
        "pauses": int(metrics.pauses._value.get()),
        "lag_max": max(lag or [0]),
        "lag_samples": len(lag),
        "drain_after_producer_s": None if producer_done_at is None else round(done_at - producer_done_at, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=16, help="toy files, 4-8 s each")
    parser.add_argument("--copies", type=int, default=3, help="copies of the files the fast producer publishes")
    parser.add_argument("--chunk-seconds", type=float, default=2.0)
    parser.add_argument("--config", help="config YAML (default: configs/default.yaml)")
    parser.add_argument("--bootstrap", help="an existing Kafka cluster (default: start a memory-mode dev broker)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "kafka_throughput.json"))
    args = parser.parse_args()
    app = load_config(args.config)
    config, serve_config = app.model, app.deployment.serve
    detector = Detector.from_config(config)
    broker = None
    with tempfile.TemporaryDirectory() as tmp:
        if args.bootstrap is None:
            broker = DevBroker(port=0, state_dir=Path(tmp) / "broker").start()
        bootstrap = args.bootstrap or broker.bootstrap
        try:
            make_toyset(Path(tmp) / "data", files=args.files, seed=7)
            inputs = expand_inputs([str(Path(tmp) / "data")])
            t = time.perf_counter()
            results = replay(inputs, StreamProcessor(detector), Path(tmp) / "out", args.chunk_seconds)
            replay_s = time.perf_counter() - t
            media = sum(r.seconds for r in results.values())
            chunks = sum(1 for _ in open(Path(tmp) / "out" / "verdicts.jsonl"))
            kcfg = KafkaConfig(bootstrap_servers=bootstrap, session_timeout_ms=6000)
            tag = uuid.uuid4().hex[:6]
            scfg = ServeConfig(
                in_topic=f"bench-{tag}.in",
                out_topic=f"bench-{tag}.out",
                dlq_topic=f"bench-{tag}.dlq",
                state_topic=f"bench-{tag}.state",
                group=f"bench-{tag}",
                partitions=4,
                batch_chunks=serve_config.batch_chunks,
                queue_chunks=serve_config.queue_chunks,
            )
            t = time.perf_counter()
            produce_files(inputs, kcfg, scfg.in_topic, args.chunk_seconds, partitions=4)
            produce_s = time.perf_counter() - t
            serve = serve_until(detector, kcfg, scfg, chunks)
            lag_cfg = dataclasses.replace(
                scfg, in_topic=f"bench-{tag}.lag", group=f"bench-{tag}-lag", state_topic=f"bench-{tag}.lag-state"
            )
            copies = [(p, f"copy{c}/{sid}") for c in range(args.copies) for p, sid in inputs]
            ensure_topics(kcfg, {lag_cfg.in_topic: 4})
            producer = threading.Thread(
                target=produce_files, args=(copies, kcfg, lag_cfg.in_topic, args.chunk_seconds), daemon=True
            )
            lag = serve_until(detector, kcfg, lag_cfg, chunks * args.copies, producer)
        finally:
            if broker is not None:
                broker.stop()
    serve_rate = media / serve["wall_s"]
    replay_rate = media / replay_s
    result = {
        "benchmark": "kafka_throughput",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "broker": "external " + args.bootstrap
        if args.bootstrap
        else "Tansu 0.6.0 dev broker, memory storage, loopback",
        "data": f"{len(inputs)} SYNTHETIC toy files (dfstream/app/toyset.py), {media:.1f} media-seconds, "
        f"{chunks} chunks "
        f"of {args.chunk_seconds} s",
        "config": {
            "encoder": f"{config.branch('audio').encoder.kind} {config.branch('audio').encoder.num_layers}x"
            f"{config.branch('audio').encoder.hidden_size} (random init)",
            "batch_chunks": scfg.batch_chunks,
            "queue_chunks": scfg.queue_chunks,
            "partitions": 4,
        },
        "replay": {
            "wall_s": round(replay_s, 3),
            "media_s_per_s": round(replay_rate, 2),
            "chunks_per_s": round(chunks / replay_s, 2),
        },
        "produce": {"wall_s": round(produce_s, 3), "chunks_per_s": round(chunks / produce_s, 1)},
        "serve": {**serve, "media_s_per_s": round(serve_rate, 2), "chunks_per_s": round(chunks / serve["wall_s"], 2)},
        "serve_vs_replay": round(serve_rate / replay_rate, 3),
        "lag_under_fast_producer": {
            **lag,
            "chunks": chunks * args.copies,
            "media_s_per_s": round(media * args.copies / lag["wall_s"], 2),
        },
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
