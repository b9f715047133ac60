"""Batching across streams: chunks of many streams in, one model call per batch.

:meth:`Scheduler.submit` takes a chunk of any stream and returns a future of
its :class:`~dfstream.engine.core.types.Verdict`; :meth:`Scheduler.submit_block` does the
same for media a caller decoded itself (replay decodes each file incrementally).
Chunks are decoded (and video frames of either cropped to faces) on a thread pool
(``scheduler.decode_workers``, :meth:`~dfstream.engine.runtime.stream.StreamProcessor.load` /
:meth:`~dfstream.engine.runtime.stream.StreamProcessor.prepare`),
so the model never waits on PyAV or the face detector while decoded work is
queued. One model thread forms batches of at most
``scheduler.batch_chunks`` decoded chunks, waiting at most
``scheduler.max_wait_ms`` after the first one is ready for more, and runs the
branches once per batch (:meth:`dfstream.engine.runtime.stream.StreamProcessor.feed_many`).

Order and fairness: each stream is a FIFO and only its head can be taken, so a
stream's chunks reach its state in submission order; a batch is filled round
robin, one chunk per stream per round, starting after the stream the previous
batch served first, so a busy stream cannot starve a quiet one. Bound: at most
``scheduler.max_pending`` chunks are submitted and unresolved; ``submit``
blocks beyond that (backpressure to the caller). A chunk that fails to decode
(or to pass :meth:`~dfstream.engine.runtime.stream.StreamProcessor.check` against its stream)
resolves to its :class:`~dfstream.engine.core.errors.MediaError`; the stream goes on, unless
the chunk was its final one. ``close(cancel=True)`` resolves what has not
reached the model yet with :class:`Cancelled` instead of scoring it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from dfstream.engine.core.errors import DfstreamError, MediaError
from dfstream.engine.core.types import Chunk
from dfstream.engine.runtime.sections import SchedulerConfig


class Cancelled(DfstreamError):
    """The scheduler was closed with ``cancel=True`` before this chunk reached the model."""


@dataclass
class _Item:
    stream_id: str
    seq: int
    final: bool
    started: float
    decoded: Future
    result: Future = field(default_factory=Future)


@dataclass
class SchedulerStats:
    """What the model thread did: batches run, chunks resolved, seconds in the model stage."""

    batches: int = 0
    chunks: int = 0
    model_seconds: float = 0.0
    largest_batch: int = 0


class Scheduler:
    """Collects decoded chunks of many streams into batches for one processor.

    Parameters
    ----------
    processor : dfstream.engine.runtime.stream.StreamProcessor
        Owns the per-stream state; only the scheduler's model thread calls it, but for
        ``load`` / ``prepare`` on the decode pool, whose threads it sets up (``init_worker``)
        and whose cores it leaves to them (``share_cores``). The scheduler imports no torch.
    config : SchedulerConfig
        Batch size, maximum wait, decode pool size and the pending bound.
    """

    def __init__(self, processor, config: SchedulerConfig):
        self.processor, self.config = processor, config
        processor.share_cores(config.decode_workers)  # the decode pool computes beside the model
        self.stats = SchedulerStats()
        # the pool is the decoders' parallelism; the processor sets each worker thread up (init_worker)
        self._pool = ThreadPoolExecutor(
            config.decode_workers, thread_name_prefix="dfstream-decode", initializer=processor.init_worker
        )
        self._slots = threading.Semaphore(config.max_pending)
        self._cond = threading.Condition()
        self._queues: OrderedDict[str, deque[_Item]] = OrderedDict()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="dfstream-model", daemon=True)
        self._thread.start()

    def submit(self, chunk: Chunk, started: float | None = None) -> Future:
        """Queue ``chunk``; blocks while ``max_pending`` chunks are unresolved.

        ``started`` (a ``perf_counter`` time, default now) is when the chunk
        arrived; its verdict's latency counts from it."""
        return self._enqueue(chunk.stream_id, chunk.seq, chunk.final, started, self.processor.load, chunk)

    def submit_block(
        self, stream_id: str, seq: int, block, final: bool = False, started: float | None = None
    ) -> Future:
        """Queue decoded media (a MediaBlock or AudioBlock) as chunk ``seq`` of ``stream_id``;
        it is prepared for the branches on the pool. Otherwise as :meth:`submit`."""
        return self._enqueue(stream_id, seq, final, started, self.processor.prepare, block)

    def submit_error(self, stream_id: str, seq: int, error: Exception) -> Future:
        """Queue a failure in the stream's order: once the stream's earlier chunks are scored its
        state is dropped and the future raises ``error`` (a file that stopped decoding mid-way)."""

        def fail():
            raise error

        return self._enqueue(stream_id, seq, True, None, fail)

    def _enqueue(self, stream_id, seq, final, started, work, *args) -> Future:
        if self._closing:
            raise DfstreamError("the scheduler is closed")
        self._slots.acquire()
        item = _Item(
            stream_id, seq, final, time.perf_counter() if started is None else started, self._pool.submit(work, *args)
        )
        with self._cond:
            self._queues.setdefault(stream_id, deque()).append(item)
        item.decoded.add_done_callback(self._wake)
        return item.result

    def close(self, cancel: bool = False) -> None:
        """Resolve everything submitted, then stop the model thread and the decode pool.

        With ``cancel``, chunks not yet taken into a batch resolve to :class:`Cancelled`
        (their streams' states are dropped) instead of being scored."""
        cancelled = []
        with self._cond:
            self._closing = True
            if cancel:
                for sid, queue in self._queues.items():
                    for item in queue:
                        item.decoded.cancel()
                        item.result.set_exception(Cancelled(f"{sid}: cancelled before it was scored"))
                        self._slots.release()
                    cancelled.append(sid)
                self._queues.clear()
            self._cond.notify_all()
        self._thread.join()
        for sid in cancelled:  # after the model thread: it owns the processor's states until then
            self.processor.close(sid)
        self._pool.shutdown()

    def __enter__(self) -> Scheduler:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _wake(self, _future=None) -> None:
        with self._cond:
            self._cond.notify_all()

    def _ready(self) -> int:
        """Decoded chunks that could be taken now (each stream's decoded prefix)."""
        n = 0
        for queue in self._queues.values():
            for item in queue:
                if not item.decoded.done():
                    break
                n += 1
        return n

    def _take(self) -> list[_Item]:
        """Up to ``batch_chunks`` decoded heads, one per stream per round, rotating the first stream."""
        batch: list[_Item] = []
        first = None
        while len(batch) < self.config.batch_chunks:
            took = False
            for sid in list(self._queues):
                queue = self._queues[sid]
                if len(batch) >= self.config.batch_chunks:
                    break
                if queue and queue[0].decoded.done():
                    batch.append(queue.popleft())
                    first = sid if first is None else first
                    took = True
            if not took:
                break
        for sid in [s for s, q in self._queues.items() if not q]:
            del self._queues[sid]
        if first in self._queues:  # next batch starts after the stream this one served first
            self._queues.move_to_end(first)
        return batch

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._ready() and not (self._closing and not self._queues):
                    self._cond.wait()
                if not self._ready():
                    return  # closing and drained
                deadline = time.monotonic() + self.config.max_wait_ms / 1000
                while (
                    self._ready() < self.config.batch_chunks
                    and not self._closing
                    and (left := deadline - time.monotonic()) > 0
                ):
                    self._cond.wait(left)
                batch = self._take()
            self._score(batch)

    def _score(self, batch: list[_Item]) -> None:
        good = []
        for item in batch:
            error = item.decoded.exception()
            if error is None:
                try:
                    self.processor.check(item.stream_id, item.decoded.result())
                except MediaError as e:
                    error = e
            if error is not None:
                if item.final:  # the stream ends here: forget its state
                    self.processor.close(item.stream_id)
                item.result.set_exception(error)
            else:
                good.append(item)
        tic = time.perf_counter()
        if good:
            items = [(i.stream_id, i.seq, i.decoded.result(), i.final) for i in good]
            try:
                verdicts = self.processor.feed_many(items, [i.started for i in good])
            except Exception as e:  # noqa: BLE001 - handed to every caller's future; the model thread goes on
                for item in good:
                    item.result.set_exception(e)
            else:
                for item, verdict in zip(good, verdicts):
                    item.result.set_result(verdict)
        self.stats.model_seconds += time.perf_counter() - tic
        self.stats.batches += 1
        self.stats.chunks += len(batch)
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        for _ in batch:
            self._slots.release()
