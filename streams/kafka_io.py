"""Kafka clients built from :class:`dfstream.streams.config.KafkaConfig`, and small helpers.

Everything here is plain Kafka protocol through kafka-python: it works against
any cluster. ``kafka.client`` settings (SASL/SSL, ...) pass through to every
client. Latest offsets come from ``highwater()`` after a fetch, which every
broker reports correctly (some development brokers answer ``end_offsets()``
wrongly).
"""

from __future__ import annotations

import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from dfstream.engine.core.errors import BrokerError, ConfigError
from dfstream.streams.config import KafkaConfig
from dfstream.streams.secrets import resolve

FETCH_OVERHEAD = 1024 * 1024  # room for headers and batch framing above the chunk size limit


def _common(cfg: KafkaConfig) -> dict:
    return {
        "bootstrap_servers": cfg.bootstrap_servers.split(","),
        "request_timeout_ms": cfg.request_timeout_ms,
        **resolve(cfg.client, "kafka.client"),  # secrets read from their files / variables only here
    }


def _build(factory, cfg: KafkaConfig, **options):
    try:
        return factory(**{**_common(cfg), **options})
    except AssertionError as e:  # kafka-python asserts on unknown configuration keys
        raise ConfigError(f"kafka.client: {e}") from None
    except KafkaError as e:
        raise BrokerError(f"cannot reach Kafka at {cfg.bootstrap_servers}: {e}") from None


def consumer(cfg: KafkaConfig, group: str | None, max_bytes: int, **options) -> KafkaConsumer:
    """A consumer with manual commits that can fetch chunks of up to ``max_bytes``."""
    opts = {
        "group_id": group,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_partition_fetch_bytes": max_bytes + FETCH_OVERHEAD,
        "fetch_max_bytes": max(52428800, max_bytes + FETCH_OVERHEAD),
    }
    if group is not None:
        opts.update(
            session_timeout_ms=cfg.session_timeout_ms,
            heartbeat_interval_ms=cfg.heartbeat_interval_ms,
            max_poll_interval_ms=cfg.max_poll_interval_ms,
        )
    return _build(KafkaConsumer, cfg, **{**opts, **options})


def producer(cfg: KafkaConfig, max_bytes: int) -> KafkaProducer:
    """A producer that waits for all in-sync replicas and can send ``max_bytes`` values."""
    return _build(KafkaProducer, cfg, acks="all", linger_ms=2, max_request_size=max_bytes + FETCH_OVERHEAD)


def admin(cfg: KafkaConfig) -> KafkaAdminClient:
    return _build(KafkaAdminClient, cfg)


def ensure_topics(cfg: KafkaConfig, topics: dict[str, int], compacted: tuple[str, ...] = ()) -> None:
    """Create the missing ``{name: partitions}`` topics (``compacted`` ones with cleanup.policy=compact).

    Each topic is created on its own, so one created meanwhile by someone else
    does not keep the others from being created; existing topics are left as they are.
    """
    client = admin(cfg)
    try:
        existing = set(client.list_topics())
        for name, n in topics.items():
            if name in existing:
                continue
            try:
                client.create_topics(
                    [NewTopic(name, n, -1, topic_configs={"cleanup.policy": "compact"} if name in compacted else {})]
                )
            except TopicAlreadyExistsError:
                pass
    finally:
        client.close()


def partition_count(client: KafkaConsumer, topic: str, timeout: float = 30.0) -> int:
    """Number of partitions of ``topic`` (BrokerError if it does not appear within ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        parts = client.partitions_for_topic(topic)
        if parts:
            return len(parts)
        time.sleep(0.2)
    raise BrokerError(f"topic {topic!r} does not exist (or the broker did not say within {timeout:.0f} s)")


def read_partition(
    reader: KafkaConsumer, tp: TopicPartition, start: int = 0, end: int | None = None, timeout: float = 60.0
):
    """Yield the records of ``tp`` from offset ``start`` up to ``end`` (default: the end now).

    ``reader`` must be a consumer without a group; it is (re)assigned to ``tp``.
    """
    reader.assign([tp])
    reader.seek(tp, start)
    deadline = time.monotonic() + timeout
    while True:
        batch = reader.poll(timeout_ms=200, max_records=500).get(tp, [])
        for record in batch:
            if end is not None and record.offset >= end:
                return
            yield record
        if batch:
            deadline = time.monotonic() + timeout
        stop = end if end is not None else reader.highwater(tp)
        if stop is not None and reader.position(tp) >= stop:
            return
        if time.monotonic() > deadline:
            raise BrokerError(
                f"reading {tp.topic}[{tp.partition}] stalled at offset {reader.position(tp)} "
                f"(end {stop}) for {timeout:.0f} s"
            )
