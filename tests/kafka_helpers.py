"""Helpers for the serve integration tests: topics, records, workers in threads and processes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from dfstream.streams import kafka_io
from dfstream.streams.config import KafkaConfig, ServeConfig
from dfstream.streams.kafka_contract import chunk_headers

ROOT = Path(__file__).resolve().parent.parent
FAST_GROUP = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000, "request_timeout_ms": 10000}


def names(prefix: str = "t") -> dict:
    """Unique topic and group names for one test."""
    tag = f"{prefix}-{uuid.uuid4().hex[:8]}"
    return {
        "in_topic": f"{tag}.in",
        "out_topic": f"{tag}.out",
        "dlq_topic": f"{tag}.dlq",
        "state_topic": f"{tag}.state",
        "group": f"{tag}-g",
    }


def configs(bootstrap: str, topic_names: dict, **serve) -> tuple[KafkaConfig, ServeConfig]:
    return (
        KafkaConfig(bootstrap_servers=bootstrap, **FAST_GROUP),
        ServeConfig(**topic_names, **{"partitions": 2, **serve}),
    )


def send(bootstrap: str, topic: str, records) -> None:
    """Produce ``(key, value, headers)`` records (or Chunks) and wait for the acknowledgements."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=8 * 1024 * 1024)
    try:
        for r in records:
            if hasattr(r, "stream_id"):
                r = (r.stream_id.encode(), r.payload, chunk_headers(r))
            producer.send(topic, key=r[0], value=r[1], headers=r[2]).get(timeout=30)
    finally:
        producer.close()


def read_all(bootstrap: str, topic: str) -> list:
    """Every record of ``topic`` now (all partitions)."""
    reader = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=16 * 1024 * 1024
    )
    try:
        count = kafka_io.partition_count(reader, topic)
        return [r for p in range(count) for r in kafka_io.read_partition(reader, TopicPartition(topic, p), timeout=20)]
    finally:
        reader.close()


def free_port() -> int:
    """A loopback port nobody listens on (now)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def committed(bootstrap: str, group: str) -> dict[int, int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets({group: None}).get(group, {})
        return {tp.partition: o.offset for tp, o in offsets.items() if o.offset >= 0}
    finally:
        admin.close()


class ThreadWorker:
    """A :class:`dfstream.streams.serve.Worker` running in a thread of the test process."""

    def __init__(self, processor, kcfg, scfg):
        from dfstream.streams.serve import Worker

        self.worker = Worker(processor, kcfg, scfg)
        self.stop = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            self.worker.run(self.stop)
        except BaseException as e:  # surfaced by close()
            self.error = e

    def close(self, timeout: float = 60):
        self.stop.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "worker did not stop"
        if self.error:
            raise self.error


def serve_process(bootstrap: str, config_path: Path, model_dir: Path, log_path: Path) -> subprocess.Popen:
    """``dfstream serve`` as a separate process (for SIGKILL / SIGTERM tests)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dfstream",
            "serve",
            "--bootstrap",
            bootstrap,
            "--config",
            str(config_path),
            "--model",
            str(model_dir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(log_path, "w"),
        env=env,
        cwd=ROOT,
    )


def verdicts_by_key(records) -> dict[tuple[str, int], list[dict]]:
    import json

    out: dict = {}
    for r in records:
        v = json.loads(r.value)
        out.setdefault((v["stream_id"], v["seq"]), []).append(v)
    return out


def without_latency(verdict: dict) -> dict:
    return {k: v for k, v in verdict.items() if k != "latency_ms"}
