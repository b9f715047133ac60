"""Prometheus metrics of ``dfstream serve`` and the structured events it logs.

Chunks/s and media-seconds/s are ``rate()`` of the ``_total`` counters.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, start_http_server

disable_created_metrics()  # the *_created series say when a counter was made, not what it counts

STAGES = ("queue", "decode", "model", "produce", "commit")
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ServeMetrics:
    """The worker's metrics, in their own registry (several workers may share a process in tests)."""

    def __init__(self):
        r = self.registry = CollectorRegistry()
        self.chunks = Counter(
            "dfstream_chunks", "Input chunks by outcome (verdict, dead-letter, redelivered)", ["outcome"], registry=r
        )
        self.media_seconds = Counter("dfstream_media_seconds", "Seconds of media scored", registry=r)
        self.stage = Histogram(
            "dfstream_stage_seconds", "Time per chunk in each stage", ["stage"], buckets=_BUCKETS, registry=r
        )
        self.queue_depth = Gauge("dfstream_queue_depth", "Chunks waiting in the work queue", registry=r)
        self.paused = Gauge("dfstream_partitions_paused", "Input partitions paused by backpressure", registry=r)
        self.pauses = Counter(
            "dfstream_backpressure_pauses", "Times the work queue filled and input paused", registry=r
        )
        self.lag = Gauge(
            "dfstream_consumer_lag",
            "Records behind the partition's high watermark (as last "
            "fetched: not refreshed while backpressure pauses the partition)",
            ["partition"],
            registry=r,
        )
        self.dead_letters = Counter("dfstream_dead_letters", "Dead letters by reason", ["reason"], registry=r)
        self.broker_errors = Counter(
            "dfstream_broker_errors", "Failed broker operations (retried)", ["operation"], registry=r
        )
        self.refetched = Counter(
            "dfstream_rebalance_refetched",
            "Chunks polled or queued when a rebalance came, fetched again afterwards",
            registry=r,
        )
        self.streams = Gauge("dfstream_open_streams", "Streams with state on this worker", registry=r)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Expose ``/metrics`` on ``host:port`` (a daemon thread)."""
        start_http_server(port, addr=host, registry=self.registry)


def event(log: logging.Logger, level: int, name: str, **fields) -> None:
    """Log event ``name`` with structured ``fields`` (``serve`` shows them as JSON lines,
    :class:`dfstream.app.logs.JsonFormatter`)."""
    log.log(level, name, extra={"fields": fields})
