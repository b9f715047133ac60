"""``dfstream serve``: a Kafka consumer-group worker, chunks in, verdicts out.

Two threads of ours. The consumer thread polls the input topic into a bounded
work queue (pausing every partition while the queue is full and resuming when
it has drained to half) and commits finished offsets. The
model thread takes batches from the queue, checks each chunk against the
contract and the stream's ledger, decodes it, scores the batch across streams
(``processor.feed_many``), and then:

1. produces the verdicts and dead letters and waits until the broker has
   acknowledged them all (retrying with backoff while it is away);
2. produces each touched stream's state (its ledger entry and, while the
   stream is open, the processor's state) to the state topic, in the partition
   of the stream's input partition, and waits for those acknowledgements;
3. hands the offsets to the consumer thread, which commits them.

So an offset is committed only after its verdict or dead letter is
acknowledged (at-least-once), and a stream's state on the state topic never
runs ahead of its acknowledged verdicts. A worker that takes a partition over
reads that partition of the state topic and goes on where the last owner's
state ends: chunks at offsets the state already covers are skipped
(``redelivered``), so spans crossing the hand-over are still reported once.

Rebalances. kafka-python 3 calls the rebalance listener on the group
consumer's own I/O thread, where no call on that consumer may block, and it
keeps a retained partition's fetch position across an eager rebalance. So the
listener only waits for the batch in hand, drops the queued chunks of the
revoked partitions, forgets their streams and restores the assigned ones from
the state topic (through a separate reader); it commits nothing. Every
rebalance starts a new *epoch*: records from a poll that overlapped one are
not queued, and before its next poll the consumer thread rewinds every
assigned partition to its committed offset. Chunks dropped at a rebalance are
therefore fetched again, and the restored ledgers skip the ones already done.
Duplicates occur only when a worker dies (or stalls past the session timeout)
after its verdicts were acknowledged but before the stream's state was: the
new owner then scores those chunks again from the older state and produces
verdicts with the same (stream id, seq) and the same content, apart from
``latency_ms``. This module imports no torch: the processor is handed in.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

from kafka import ConsumerRebalanceListener, TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from dfstream.engine.core.errors import ConfigError, DfstreamError, MediaError
from dfstream.engine.core.types import Chunk
from dfstream.streams import kafka_io
from dfstream.streams.config import KafkaConfig, ServeConfig
from dfstream.streams.kafka_contract import SEQ, BadRecord, dead_letter_headers, parse_record, verdict_value
from dfstream.streams.ledger import HEADER as LEDGER_HEADER
from dfstream.streams.ledger import Entry, Ledger
from dfstream.streams.serve_metrics import ServeMetrics, event


@dataclass
class Item:
    """One input record on its way through the worker."""

    tp: TopicPartition
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list
    arrived: float
    chunk: Chunk | None = None
    error: BadRecord | None = None


class Abandoned(Exception):
    """Shutdown gave up on work that could not be acknowledged in time."""


class Worker(ConsumerRebalanceListener):
    """One member of the serve consumer group (see module doc).

    Parameters
    ----------
    processor : dfstream.engine.runtime.stream.StreamProcessor
        Scores chunks; holds per-stream state.
    kafka, serve : KafkaConfig, ServeConfig
        Connection and serve settings.
    metrics : ServeMetrics, optional
    """

    def __init__(
        self,
        processor,
        kafka: KafkaConfig,
        serve: ServeConfig,
        metrics: ServeMetrics | None = None,
        log: logging.Logger | None = None,
    ):
        self.processor, self.kcfg, self.cfg = processor, kafka, serve
        self.metrics = metrics or ServeMetrics()
        self.log = log or logging.getLogger(__name__)
        self.ledger = Ledger()
        self.work: deque[Item] = deque()
        self.cond = threading.Condition()
        self.busy = self.hold = self.finishing = self.abandon = False
        self.done: dict[TopicPartition, int] = {}
        self.committed: dict[TopicPartition, int] = {}
        self.epoch = 0  # bumped by every rebalance callback
        self.rebalancing = False  # between a revocation and the next assignment
        self.rewind: set[TopicPartition] = set()  # assigned partitions to move to their committed offset
        self.peak_depth = 0
        self.failure: BaseException | None = None
        self.consumer = self.producer = self.reader = None

    # ---------------------------------------------------------------- set-up
    def connect(self) -> None:
        """Create clients and topics and join the group (raises BrokerError, ConfigError)."""
        cfg, limit = self.cfg, self.cfg.max_chunk_bytes
        if cfg.create_topics:
            kafka_io.ensure_topics(
                self.kcfg, {cfg.in_topic: cfg.partitions, cfg.out_topic: cfg.partitions, cfg.dlq_topic: cfg.partitions}
            )
        self.reader = kafka_io.consumer(self.kcfg, None, limit, fetch_max_wait_ms=50)
        partitions = kafka_io.partition_count(self.reader, cfg.in_topic)
        if cfg.create_topics:
            kafka_io.ensure_topics(self.kcfg, {cfg.state_topic: partitions}, compacted=(cfg.state_topic,))
        state_partitions = kafka_io.partition_count(self.reader, cfg.state_topic)
        if state_partitions < partitions:
            raise ConfigError(
                f"state topic {cfg.state_topic!r} has {state_partitions} partitions, fewer than "
                f"the {partitions} of {cfg.in_topic!r}; it needs at least as many"
            )
        self.producer = kafka_io.producer(self.kcfg, limit)
        self.consumer = kafka_io.consumer(self.kcfg, cfg.group, limit)
        self.consumer.subscribe([cfg.in_topic], listener=self)
        event(
            self.log,
            logging.INFO,
            "started",
            group=cfg.group,
            in_topic=cfg.in_topic,
            partitions=partitions,
            bootstrap=self.kcfg.bootstrap_servers,
        )

    def run(self, stop: threading.Event) -> None:
        """Serve until ``stop`` is set, then shut down gracefully (see :meth:`shutdown`)."""
        if self.consumer is None:
            self.connect()
        model = threading.Thread(target=self._model_loop, name="dfstream-model", daemon=True)
        model.start()
        last_lag = 0.0
        try:
            while not stop.is_set() and self.failure is None:
                self._commit_done()
                room = self._backpressure()
                with self.cond:
                    epoch, rewind, self.rewind = self.epoch, self.rewind, set()
                if rewind and not self._rewind(rewind):
                    continue
                try:
                    records = self.consumer.poll(timeout_ms=200, max_records=max(1, room))
                except KafkaError as e:
                    self._broker_trouble("poll", e)
                    continue
                now = time.perf_counter()
                items = [self._item(tp, r, now) for tp, batch in records.items() for r in batch]
                if items:
                    with self.cond:
                        if epoch != self.epoch or self.rebalancing:  # polled across a rebalance: fetched again
                            self.metrics.refetched.inc(len(items))
                            continue
                        self.work.extend(items)
                        self.peak_depth = max(self.peak_depth, len(self.work))
                        self.metrics.queue_depth.set(len(self.work))
                        self.cond.notify_all()
                if now - last_lag > 1.0:
                    self._update_lag()
                    last_lag = now
        finally:
            self.shutdown(model)
        if self.failure is not None:
            raise self.failure

    def _item(self, tp: TopicPartition, record, now: float) -> Item:
        item = Item(tp, record.offset, record.key, record.value, list(record.headers or ()), now)
        try:
            item.chunk = parse_record(record.key, record.value, item.headers, self.cfg.max_chunk_bytes)
        except BadRecord as e:
            item.error = e
        return item

    # ------------------------------------------------------- consumer thread
    def _backpressure(self) -> int:
        """Pause all partitions while the queue is full, resume at half; returns the room left.

        The consumer's own paused set is the truth: kafka-python keeps a
        retained partition paused across a rebalance.
        """
        with self.cond:
            depth = len(self.work)
        paused = self.consumer.paused()
        running = self.consumer.assignment() - paused
        if depth >= self.cfg.queue_chunks and running:
            self.consumer.pause(*running)
            if not paused:
                self.metrics.pauses.inc()
                event(self.log, logging.INFO, "paused", queue=depth)
        elif paused and depth <= self.cfg.queue_chunks // 2:
            self.consumer.resume(*paused)
            event(self.log, logging.INFO, "resumed", queue=depth)
        self.metrics.paused.set(len(self.consumer.paused()))
        return min(self.cfg.poll_records, self.cfg.queue_chunks - depth)

    def _rewind(self, partitions: set) -> bool:
        """Move the still-assigned ``partitions`` to their committed offsets (the start when none); False on trouble."""
        try:
            for tp in partitions & self.consumer.assignment():
                offset = self.consumer.committed(tp)
                if offset is None:
                    self.consumer.seek_to_beginning(tp)
                else:
                    self.consumer.seek(tp, offset)
        except KafkaError as e:
            with self.cond:
                self.rewind |= partitions
            self._broker_trouble("rewind", e)
            return False
        return True

    def _commit_done(self) -> None:
        with self.cond:
            offsets = {tp: o for tp, o in self.done.items() if o > self.committed.get(tp, -1)}
        assigned = self.consumer.assignment()
        offsets = {tp: o for tp, o in offsets.items() if tp in assigned}
        if not offsets:
            return
        started = time.perf_counter()
        try:
            self.consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()})
        except CommitFailedError as e:  # the group moved on: those partitions are someone else's now
            event(self.log, logging.WARNING, "commit-rejected", error=str(e))
            return
        except KafkaError as e:
            self._broker_trouble("commit", e)
            return
        self.committed.update(offsets)
        self.metrics.stage.labels("commit").observe(time.perf_counter() - started)

    def _update_lag(self) -> None:
        for tp in self.consumer.assignment():
            high = self.consumer.highwater(tp)
            if high is not None:
                self.metrics.lag.labels(str(tp.partition)).set(max(0, high - self.committed.get(tp, 0)))

    def _broker_trouble(self, operation: str, error: Exception) -> None:
        self.metrics.broker_errors.labels(operation).inc()
        event(self.log, logging.WARNING, "broker-error", operation=operation, error=repr(error))
        time.sleep(self.cfg.retry_backoff_seconds)

    # ------------------------------------- rebalance listener (kafka's I/O thread)
    def on_partitions_revoked(self, revoked) -> None:
        """Finish the batch in hand, drop the queued chunks of ``revoked`` and forget their streams.

        Nothing is committed here (no call on the group consumer may block on
        its I/O thread); the next owner skips what the state topic covers.
        """
        revoked = set(revoked)
        with self.cond:
            self._hold_model()
            self.rebalancing = True
            kept = deque(i for i in self.work if i.tp not in revoked)
            dropped = len(self.work) - len(kept)
            self.work = kept
            self.metrics.refetched.inc(dropped)
            for sid in self.ledger.forget({tp.partition for tp in revoked}):
                self.processor.close(sid)
            for tp in revoked:
                self.committed.pop(tp, None)
                self.done.pop(tp, None)
            self.hold = False
            self.cond.notify_all()
        event(
            self.log, logging.INFO, "revoked", partitions=sorted(tp.partition for tp in revoked), dropped_queued=dropped
        )

    def on_partitions_assigned(self, assigned) -> None:
        """Restore the streams of ``assigned`` from the state topic; have them rewound to their committed offsets."""
        with self.cond:
            self._hold_model()
        restored = failed = 0
        try:
            for tp in assigned:
                for sid, (entry, value) in self._stored_states(tp.partition).items():
                    self.ledger.restore(sid, entry)
                    if value:
                        try:
                            self.processor.import_state(sid, value)
                        except DfstreamError as e:
                            failed += 1
                            event(self.log, logging.WARNING, "state-unusable", stream_id=sid, error=str(e))
                    restored += 1
        finally:
            with self.cond:
                self.rewind = set(assigned)
                self.rebalancing = self.hold = False
                self.cond.notify_all()
        event(
            self.log,
            logging.INFO,
            "assigned",
            partitions=sorted(tp.partition for tp in assigned),
            streams_restored=restored,
            states_unusable=failed,
        )

    def _hold_model(self) -> None:
        """Under ``self.cond``: start a new epoch and hold the model thread once its batch in hand is done."""
        self.epoch += 1
        self.hold = True
        while self.busy:
            self.cond.wait(0.1)

    def _stored_states(self, partition: int) -> dict[str, tuple[Entry, bytes]]:
        """Each stream's furthest state in ``partition`` of the state topic: ``{stream id: (ledger entry, state)}``.

        Furthest = the highest input offset its ledger covers, so that a late
        write of an older state (a worker that stalled past its session) does
        not win over the newer owner's; a tombstone forgets the stream.
        """
        states: dict[str, tuple[Entry, bytes]] = {}
        for record in kafka_io.read_partition(self.reader, TopicPartition(self.cfg.state_topic, partition)):
            if record.key is None:
                continue
            sid = record.key.decode("utf-8", "replace")
            headers = dict(record.headers or ())
            if record.value is None or LEDGER_HEADER not in headers:
                states.pop(sid, None)
                continue
            entry = Entry.from_json(headers[LEDGER_HEADER])
            if sid not in states or entry.last_offset >= states[sid][0].last_offset:
                states[sid] = (entry, record.value)
        return states

    # ---------------------------------------------------------- model thread
    def _model_loop(self) -> None:
        while True:
            with self.cond:
                while self.hold or (not self.work and not self.finishing):
                    self.cond.wait(0.2)
                if not self.work or self.abandon:
                    return
                batch = [self.work.popleft() for _ in range(min(self.cfg.batch_chunks, len(self.work)))]
                self.busy = True
                self.metrics.queue_depth.set(len(self.work))
            try:
                self._handle(batch)
                with self.cond:
                    for item in batch:
                        self.done[item.tp] = max(self.done.get(item.tp, 0), item.offset + 1)
            except Abandoned:
                return
            except BaseException as e:  # a bug: stop the worker rather than lose chunks silently
                self.failure = e
                event(self.log, logging.ERROR, "model-thread-failed", error=repr(e))
                return
            finally:
                with self.cond:
                    self.busy = False
                    self.cond.notify_all()

    def _handle(self, batch: list[Item]) -> None:
        outgoing, group, touched = [], [], {}
        now = time.perf_counter()
        for item in batch:
            self.metrics.stage.labels("queue").observe(now - item.arrived)
            if item.chunk is not None and any(
                g.chunk.stream_id == item.chunk.stream_id and g.chunk.final for g, _ in group
            ):
                outgoing += self._score(group)
                group = []
            if item.error is None:
                group += self._admit(item)
            if item.error is not None:
                outgoing.append(self._dead_letter(item))
            if item.chunk is not None and item.chunk.stream_id in self.ledger.entries:
                touched[item.chunk.stream_id] = item
        outgoing += self._score(group)
        started = time.perf_counter()
        self._send(outgoing)
        self._send([self._state_message(sid, item) for sid, item in touched.items()])
        self.metrics.stage.labels("produce").observe(time.perf_counter() - started)

    def _admit(self, item: Item) -> list:
        """Check ``item`` against its stream's ledger and decode it; [(item, block)] or [] (sets item.error)."""
        chunk = item.chunk
        try:
            kind = self.ledger.admit(item.tp.partition, item.offset, chunk)
            if kind == "redelivered":
                self.metrics.chunks.labels("redelivered").inc()
                return []
            if kind == "new":
                self.processor.close(chunk.stream_id)
            started = time.perf_counter()
            block = self.processor.decode(chunk)
            self.metrics.stage.labels("decode").observe(time.perf_counter() - started)
            return [(item, block)]
        except BadRecord as e:
            item.error = e
        except MediaError as e:
            item.error = BadRecord(e.reason, str(e))
        return []

    def _score(self, group: list) -> list:
        if not group:
            return []
        started = time.perf_counter()
        try:
            verdicts = self.processor.feed_many(
                [(i.chunk.stream_id, i.chunk.seq, block, i.chunk.final) for i, block in group],
                [i.arrived for i, _ in group],
            )
        except Exception as e:  # noqa: BLE001 - a model failure dead-letters the chunks, never drops them
            event(self.log, logging.ERROR, "scoring-failed", error=repr(e))
            out = []
            for item, _ in group:
                self.processor.close(item.chunk.stream_id)
                item.error = BadRecord("internal-error", repr(e)[:300])
                out.append(self._dead_letter(item))
            return out
        self.metrics.stage.labels("model").observe(time.perf_counter() - started)
        self.metrics.streams.set(len(self.processor.states))
        out = []
        for (item, block), verdict in zip(group, verdicts):
            self.metrics.chunks.labels("verdict").inc()
            self.metrics.media_seconds.inc(block.duration)
            out.append((self.cfg.out_topic, item.key, verdict_value(verdict), [(SEQ, str(verdict.seq).encode())], None))
        return out

    def _dead_letter(self, item: Item) -> tuple:
        reason, message = item.error.reason, item.error.message
        self.metrics.chunks.labels("dead-letter").inc()
        self.metrics.dead_letters.labels(reason).inc()
        event(
            self.log,
            logging.WARNING,
            "dead-letter",
            reason=reason,
            message=message,
            partition=item.tp.partition,
            offset=item.offset,
        )
        return (self.cfg.dlq_topic, item.key, item.value, dead_letter_headers(item.headers, reason, message), None)

    def _state_message(self, stream_id: str, item: Item) -> tuple:
        entry = self.ledger.entries[stream_id]
        value = self.processor.export_state(stream_id) or b""
        return (self.cfg.state_topic, stream_id.encode(), value, [(LEDGER_HEADER, entry.to_json())], item.tp.partition)

    def _send(self, messages: list[tuple]) -> None:
        """Produce ``(topic, key, value, headers, partition)`` messages; return once all are acknowledged."""
        backoff, pending = self.cfg.retry_backoff_seconds, messages
        while pending:
            futures = []
            for m in pending:
                topic, key, value, headers, partition = m
                try:
                    futures.append(
                        (m, self.producer.send(topic, value=value, key=key, headers=headers, partition=partition))
                    )
                except KafkaError as e:
                    futures.append((m, e))
            try:
                self.producer.flush(timeout=self.kcfg.request_timeout_ms / 1000 + 5)
            except KafkaError as e:
                event(self.log, logging.WARNING, "broker-error", operation="flush", error=repr(e))
            failed = [m for m, f in futures if isinstance(f, Exception) or not f.succeeded()]
            if failed:
                self.metrics.broker_errors.labels("produce").inc()
                event(self.log, logging.WARNING, "produce-retry", messages=len(failed), backoff_s=backoff)
                with self.cond:
                    if self.abandon:
                        raise Abandoned()
                time.sleep(backoff)
                backoff = min(backoff * 2, self.cfg.retry_backoff_max_seconds)
            pending = failed

    # -------------------------------------------------------------- shutdown
    def shutdown(self, model: threading.Thread | None = None) -> None:
        """Finish queued chunks (up to ``serve.shutdown_timeout_seconds``), commit, leave the group."""
        with self.cond:
            self.finishing = True
            self.cond.notify_all()
        if model is not None:
            model.join(self.cfg.shutdown_timeout_seconds)
            if model.is_alive():
                with self.cond:
                    self.abandon = True
                model.join(self.cfg.retry_backoff_max_seconds + 5)
        with self.cond:
            left = len(self.work)
        committed = {}
        if self.consumer is not None:
            try:
                self._commit_done()
                committed = dict(self.committed)
            finally:
                self.consumer.close(autocommit=False)
        for client in (self.producer, self.reader):
            if client is not None:
                client.close()
        event(
            self.log,
            logging.INFO,
            "stopped",
            committed={f"{tp.topic}[{tp.partition}]": o for tp, o in committed.items()},
            left_uncommitted=left,
        )
