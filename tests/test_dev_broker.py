"""The development broker: real Tansu (and SeaweedFS) processes, real kafka-python clients."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from dfstream.streams.config import KafkaConfig
from dfstream.streams.dev_broker import BrokerError, DevBroker, free_port, process_alive, tansu_env
from dfstream.streams.kafka_io import ensure_topics

ROOT = Path(__file__).resolve().parent.parent
HEADERS = [("dfs-seq", b"7"), ("content-type", b"video/mp2t")]


def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> list[int]:
    """Send keyed records with :data:`HEADERS`, wait for each acknowledgement; their partitions."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        return [
            producer.send(topic, key=key, value=value, headers=HEADERS).get(timeout=10).partition
            for key, value in records
        ]
    finally:
        producer.close()


def consume(bootstrap: str, topic: str, partition: int, count: int, timeout: float = 10.0) -> list:
    """The first ``count`` records of one partition, read from offset 0 without a group."""
    tp = TopicPartition(topic, partition)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        consumer.assign([tp])
        consumer.seek(tp, 0)
        records, deadline = [], time.monotonic() + timeout
        while len(records) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


@pytest.mark.kafka
def test_memory_broker_round_trip_then_stop_leaves_no_process(tmp_path):
    with DevBroker(state_dir=tmp_path) as broker:
        pid = broker.read_record()["pid"]
        assert broker.bootstrap.startswith("127.0.0.1:") and broker.status()["ready"]
        ensure_topics(KafkaConfig(bootstrap_servers=broker.bootstrap), {"segments": 2})
        (partition,) = produce(broker.bootstrap, "segments", [(b"stream-1", b"chunk bytes")])
        (record,) = consume(broker.bootstrap, "segments", partition, 1)
        assert (record.key, record.value, record.offset) == (b"stream-1", b"chunk bytes", 0)
        assert [(k, v) for k, v in record.headers] == HEADERS
    assert not Path(f"/proc/{pid}").exists()
    assert broker.read_record() is None and not broker.status()["running"]


@pytest.mark.kafka
def test_session_broker_fixture_and_ensure_topics_is_idempotent(kafka_bootstrap):
    cfg = KafkaConfig(bootstrap_servers=kafka_bootstrap)
    ensure_topics(cfg, {"dev-broker.idempotent": 3})
    ensure_topics(cfg, {"dev-broker.idempotent": 3})  # already exists: no error
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        assert "dev-broker.idempotent" in admin.list_topics()
    finally:
        admin.close()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "bin" / "dev-broker"), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.kafka
def test_cli_start_status_stop(tmp_path):
    port, state = free_port(), ["--state-dir", str(tmp_path)]
    started = run_cli("start", "--port", str(port), *state)
    try:
        assert started.returncode == 0, started.stderr
        assert started.stdout.splitlines()[0] == f"127.0.0.1:{port}"
        pid = DevBroker(state_dir=tmp_path).read_record()["pid"]
        assert f"tansu pid {pid}" in started.stdout
        again = run_cli("start", "--port", "0", *state)  # the recorded broker is alive: refused
        assert again.returncode == 1 and again.stdout.strip() == f"127.0.0.1:{port}"
        assert run_cli("status", *state).returncode == 0
    finally:
        stopped = run_cli("stop", *state)
    assert stopped.returncode == 0, stopped.stderr
    assert not process_alive(pid, "tansu")
    assert run_cli("status", *state).returncode == 3


def test_refuses_s3_engine_without_loopback_endpoint(tmp_path, monkeypatch):
    for endpoint in (
        None,
        "",
        "http://169.254.169.254",
        "https://s3.amazonaws.com",
        "http://127.0.0.1.example.com:8333",
        "file://127.0.0.1/x",
    ):
        with pytest.raises(BrokerError, match="refusing to start Tansu"):
            tansu_env("s3://tansu/", endpoint)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "a real secret")
    monkeypatch.setenv("AWS_PROFILE", "production")
    env = tansu_env("s3://tansu/", "http://127.0.0.1:8333")
    assert env["AWS_ENDPOINT"] == "http://127.0.0.1:8333"
    assert env["AWS_SECRET_ACCESS_KEY"] != "a real secret" and "AWS_PROFILE" not in env
    assert not any(key.startswith("AWS_") for key in tansu_env("memory://tansu/"))
    with pytest.raises(BrokerError, match="loopback only"):
        DevBroker(host="0.0.0.0", state_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing written


@pytest.mark.kafka
def test_durable_broker_keeps_records_across_a_restart(durable_broker):
    bootstrap = durable_broker.bootstrap
    ensure_topics(KafkaConfig(bootstrap_servers=bootstrap), {"durable": 1})
    produce(bootstrap, "durable", [(b"stream-%d" % i, b"chunk %d" % i) for i in range(3)])
    pid = durable_broker.read_record()["pid"]
    durable_broker.restart_broker()
    assert durable_broker.read_record()["pid"] != pid and not process_alive(pid, "tansu")
    assert durable_broker.bootstrap == bootstrap
    records = consume(bootstrap, "durable", 0, 3)
    assert [(r.offset, r.key, r.value) for r in records] == [(i, b"stream-%d" % i, b"chunk %d" % i) for i in range(3)]
    assert all([(k, v) for k, v in r.headers] == HEADERS for r in records)
