"""``dfstream serve``: a Kafka consumer-group worker, chunks in, verdicts out."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import threading

from dfstream.app.cli.common import EPILOG, INDEX_HELP, MODEL_HELP, attributor, kafka_config, load_model

NAME = "serve"
STYLE = "json"
log = logging.getLogger(__name__)


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        epilog=EPILOG,
        help="Kafka worker: chunks in, verdicts out",
        description="Join a Kafka consumer group on the input topic (key = stream id, value = one "
        "media chunk, headers dfs-seq, dfs-t0, dfs-final, content-type), score each chunk "
        "with per-stream state, and produce one dfstream.verdict/1 JSON per chunk to the "
        "output topic; chunks that break the contract or do not decode go to the "
        "dead-letter topic with a dfs-error header. At-least-once: offsets are committed "
        "after the verdicts are acknowledged. Run more workers with the same --group to "
        "scale out. SIGTERM: finish queued chunks, commit, leave the group. The model is "
        "warmed up (every batch shape run once) before the worker joins the group. "
        "Logs JSON lines on stderr.",
    )
    p.add_argument(
        "--bootstrap",
        metavar="HOST:PORT[,...]",
        help="Kafka bootstrap servers (default: kafka.bootstrap_servers from the config)",
    )
    p.add_argument("--in-topic", help="input topic (default: serve.in_topic = media.segments)")
    p.add_argument("--out-topic", help="verdict topic (default: serve.out_topic = media.verdicts)")
    p.add_argument("--dlq-topic", help="dead-letter topic (default: serve.dlq_topic = media.segments.dlq)")
    p.add_argument("--group", help="consumer group (default: serve.group = dfstream)")
    p.add_argument(
        "--config",
        metavar="YAML",
        help="config overrides (kafka: SASL/SSL client settings; serve: "
        "topics, size limit, queue; limits: what decoded chunks may be; "
        "inference, localizer)",
    )
    p.add_argument("--model", metavar="DIR", help=MODEL_HELP)
    p.add_argument("--index", metavar="DIR", help=INDEX_HELP)
    p.add_argument("--metrics-port", type=int, metavar="PORT", help="serve Prometheus metrics on this port")
    p.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="address of the metrics endpoint (default: %(default)s: loopback; see the README before exposing it)",
    )
    return p


def run(args) -> int:
    from dfstream.engine.runtime.stream import StreamProcessor
    from dfstream.streams.secrets import masked
    from dfstream.streams.serve import Worker
    from dfstream.streams.serve_metrics import ServeMetrics, event

    loaded = load_model(args.model, args.config)
    detector = loaded.detector
    detector.warn_if_untrained()
    detector.warm_up()
    serve = loaded.config.deployment.serve
    for name in ("in_topic", "out_topic", "dlq_topic", "group"):
        if getattr(args, name) is not None:
            serve = dataclasses.replace(serve, **{name: getattr(args, name)})
    metrics = ServeMetrics()
    if args.metrics_port is not None:
        metrics.serve(args.metrics_port, args.metrics_host)
    event(
        log,
        logging.INFO,
        "config",
        model=detector.model_id,
        **masked({"kafka": kafka_config(loaded.config, args.bootstrap).to_dict(), "serve": serve.to_dict()}),
    )
    worker = Worker(
        StreamProcessor(detector, attributor(detector, args.index, loaded.folder)),
        kafka_config(loaded.config, args.bootstrap),
        serve,
        metrics,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    worker.run(stop)
    return 0
