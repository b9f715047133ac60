"""``dfstream replay --from-topic``: detection re-run over a stored range of an input topic.

Reads every partition of the topic from a start (offset, time, or the
beginning) to an end (offset, time, or the end when the replay starts), without
joining a consumer group. Times are compared with the records' own timestamps
while reading from the start offset (a scan, not the broker's time index, which
not every Kafka-protocol broker answers correctly), and sends each record through the same path as
``dfstream serve`` (contract check, decode, per-stream state). Writes the same
files as file replay, one stream id per key. A record that breaks the contract
or does not decode becomes an error record in ``verdicts.jsonl``; a chunk whose
seq was already seen in the range is skipped. Streams still open at the end of
the range are closed there: their open spans go into ``predictions.json``.
Imports no torch.
"""

from __future__ import annotations

import logging
import time

from kafka import TopicPartition

from dfstream.engine.core.errors import DfstreamError
from dfstream.engine.core.progress import SILENT, Progress
from dfstream.engine.core.types import error_record
from dfstream.streams import kafka_io
from dfstream.streams.config import KafkaConfig
from dfstream.streams.kafka_contract import BadRecord, parse_record
from dfstream.streams.replay import FileResult, Observer
from dfstream.streams.results import ResultWriter

log = logging.getLogger(__name__)


def replay_topic(
    processor,
    cfg: KafkaConfig,
    topic: str,
    out_dir,
    max_bytes: int,
    from_offset: int | None = None,
    to_offset: int | None = None,
    from_ms: int | None = None,
    to_ms: int | None = None,
    progress: Progress = SILENT,
    observer: Observer | None = None,
) -> dict[str, FileResult]:
    """Score the records of ``topic`` in the range; returns results per stream id.

    ``progress`` counts records; the ``observer`` sees each stream's verdicts and errors."""
    reader = kafka_io.consumer(cfg, None, max_bytes)
    writer = ResultWriter(out_dir)
    results: dict[str, FileResult] = {}
    last_seq: dict[str, int] = {}
    task = progress.task(f"replay {topic}", None, "chunk")
    try:
        tps = [TopicPartition(topic, p) for p in range(kafka_io.partition_count(reader, topic))]
        for tp in tps:
            for record in kafka_io.read_partition(reader, tp, from_offset or 0, to_offset):
                if to_ms is not None and record.timestamp >= to_ms:
                    break
                if from_ms is not None and record.timestamp < from_ms:
                    continue
                _one(record, processor, writer, results, last_seq, max_bytes, observer)
                task.advance()
        for sid in list(processor.states):
            closed = processor.finish(sid)
            results.setdefault(sid, FileResult(sid)).detections += closed
            if observer is not None:
                observer.detections(sid, closed)
    finally:
        task.close()
        reader.close()
        writer.finish(results)
    return results


def _one(record, processor, writer, results, last_seq, max_bytes, observer: Observer | None) -> None:
    try:
        chunk = parse_record(record.key, record.value, list(record.headers or ()), max_bytes)
    except BadRecord as e:
        sid = (record.key or b"").decode("utf-8", "replace")
        writer.record({**error_record(sid, str(e)), "offset": record.offset, "partition": record.partition})
        return
    if chunk.seq <= last_seq.get(chunk.stream_id, -1):
        return
    last_seq[chunk.stream_id] = chunk.seq
    if chunk.stream_id not in results and observer is not None:
        observer.stream(chunk.stream_id)
    result = results.setdefault(chunk.stream_id, FileResult(chunk.stream_id))
    started = time.perf_counter()
    try:
        block = processor.decode(chunk)
        verdict = processor.feed(chunk.stream_id, chunk.seq, block, chunk.final, started)
    except DfstreamError as e:
        writer.record(error_record(chunk.stream_id, str(e), chunk.seq))
        if observer is not None:
            observer.error(chunk.stream_id, f"seq {chunk.seq}: {e}")
        log.warning("%s seq %d: %s", chunk.stream_id, chunk.seq, e)
        return
    if verdict.final:
        last_seq.pop(chunk.stream_id, None)
    writer.verdict(verdict)
    result.add(verdict)
    if observer is not None:
        observer.verdict(verdict)
