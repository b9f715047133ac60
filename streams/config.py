"""The transports' config sections, the deployment: ``replay``, ``call_hook``, ``kafka`` and ``serve``.

A deployment is never stored in a checkpoint (it may hold credentials, and it says where a model
runs, not what it is): :class:`DeploymentConfig` is a root of its own beside the model's
(:class:`dfstream.engine.runtime.config.ModelConfig`). Imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dfstream.engine.core.config import Root, Section, check
from dfstream.streams.secrets import check_inline


@dataclass(frozen=True)
class ReplayConfig(Section):
    """``dfstream replay``: size of the chunks an archived file is cut into."""

    chunk_seconds: float = 2.0

    def validate(self) -> None:
        check([(self.chunk_seconds > 0, "replay.chunk_seconds must be > 0")])


@dataclass(frozen=True)
class CallHookConfig(Section):
    """``dfstream call-hook`` and ``CallScreener``: live call audio, one verdict per hop.

    ``hop_seconds`` and ``context_seconds`` replace the inference ones for calls
    (a verdict every hop; each window sees hop + context). Hops the VAD finds
    no speech in are labelled ``no-speech`` and cost no model time. A hop whose
    score reaches ``synthetic_threshold`` is ``likely-synthetic``.
    """

    hop_seconds: float = 0.5
    context_seconds: float = 1.5
    vad: bool = True
    vad_threshold: float = 0.5
    synthetic_threshold: float = 0.5
    max_connections: int = 64
    max_connections_per_client: int = 16
    max_message_bytes: int = 65536
    idle_timeout_seconds: float = 30.0
    max_summary_detections: int = 1000

    def validate(self) -> None:
        check(
            [
                (
                    self.hop_seconds > 0 and self.context_seconds >= 0,
                    "call_hook.hop_seconds must be > 0 and context_seconds >= 0",
                ),
                (
                    self.max_connections >= 1 and self.max_connections_per_client >= 1,
                    "call_hook.max_connections and max_connections_per_client must be >= 1",
                ),
                (self.idle_timeout_seconds > 0, "call_hook.idle_timeout_seconds must be > 0"),
                (
                    0 <= self.vad_threshold <= 1 and 0 <= self.synthetic_threshold <= 1,
                    "call_hook.vad_threshold and synthetic_threshold must be in [0, 1]",
                ),
            ]
        )


@dataclass(frozen=True)
class KafkaConfig(Section):
    """Connection to a Kafka cluster (any: Apache Kafka, Redpanda, the dev broker).

    ``client`` passes through to every kafka-python client (consumer, producer, admin):
    security settings such as ``security_protocol: SASL_SSL``, ``sasl_mechanism``,
    ``sasl_plain_username``, ``ssl_cafile``, ``ssl_certfile``, ``ssl_keyfile``. Secrets
    (``sasl_plain_password``, ``ssl_password``) are named by where they are, never written
    inline: ``sasl_plain_password_file: PATH`` or ``sasl_plain_password_env: VARIABLE``
    (:mod:`dfstream.streams.secrets`); they are read when a client is built.
    """

    bootstrap_servers: str = "127.0.0.1:9092"
    client: dict = field(default_factory=dict)
    request_timeout_ms: int = 30000
    session_timeout_ms: int = 10000
    heartbeat_interval_ms: int = 1000
    max_poll_interval_ms: int = 300000

    def validate(self) -> None:
        check([(all(isinstance(k, str) for k in self.client), "kafka.client keys must be strings")])
        check_inline(self.client, "kafka.client")


@dataclass(frozen=True)
class ServeConfig(Section):
    """``dfstream serve``: topics, group, limits and backpressure.

    ``state_topic`` holds each stream's state after its last committed chunk
    (keyed by stream id, compacted), so that a stream moves with its partition
    on rebalance; it needs as many partitions as ``in_topic``. ``queue_chunks``
    bounds the work queue: partitions are paused while it is full and resumed
    when it has drained to half. A chunk larger than ``max_chunk_bytes`` is a
    dead letter.
    """

    in_topic: str = "media.segments"
    out_topic: str = "media.verdicts"
    dlq_topic: str = "media.segments.dlq"
    state_topic: str = "media.segments.state"
    group: str = "dfstream"
    max_chunk_bytes: int = 16 * 1024 * 1024
    queue_chunks: int = 32
    batch_chunks: int = 8
    poll_records: int = 64
    retry_backoff_seconds: float = 0.5
    retry_backoff_max_seconds: float = 10.0
    shutdown_timeout_seconds: float = 60.0
    create_topics: bool = True
    partitions: int = 4

    def validate(self) -> None:
        check(
            [
                (
                    self.queue_chunks >= 1 and self.batch_chunks >= 1 and self.poll_records >= 1,
                    "serve.queue_chunks, batch_chunks and poll_records must be >= 1",
                ),
                (
                    self.max_chunk_bytes >= 1 and self.partitions >= 1,
                    "serve.max_chunk_bytes and serve.partitions must be >= 1",
                ),
                (
                    0 < self.retry_backoff_seconds <= self.retry_backoff_max_seconds,
                    "serve needs 0 < retry_backoff_seconds <= retry_backoff_max_seconds",
                ),
            ]
        )


@dataclass(frozen=True)
class DeploymentConfig(Root):
    """Where and how the engine is served: the transports' sections."""

    replay: ReplayConfig = field(default_factory=ReplayConfig)
    call_hook: CallHookConfig = field(default_factory=CallHookConfig)
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
