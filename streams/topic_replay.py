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

import sys
import time

from kafka import TopicPartition
from tqdm import tqdm

from dfstream.engine.core.config import KafkaConfig
from dfstream.engine.core.errors import DfstreamError
from dfstream.engine.core.types import error_record
from dfstream.reports.timeline import StreamTimeline
from dfstream.streams import kafka_io
from dfstream.streams.kafka_contract import BadRecord, parse_record
from dfstream.streams.replay import FileResult
from dfstream.streams.results import ResultWriter


def replay_topic(processor, cfg: KafkaConfig, topic: str, out_dir, max_bytes: int,
                 from_offset: int | None = None, to_offset: int | None = None,
                 from_ms: int | None = None, to_ms: int | None = None,
                 progress: bool = True, timelines: dict | None = None) -> dict[str, FileResult]:
    """Score the records of ``topic`` in the range; returns results per stream id.

    With ``timelines`` (a dict), each stream's :class:`dfstream.reports.timeline.StreamTimeline`
    is recorded there for a report."""
    reader = kafka_io.consumer(cfg, None, max_bytes)
    writer = ResultWriter(out_dir)
    results: dict[str, FileResult] = {}
    last_seq: dict[str, int] = {}
    bar = tqdm(unit="chunk", disable=not progress, mininterval=0.5, desc=f"replay {topic}")
    try:
        tps = [TopicPartition(topic, p) for p in range(kafka_io.partition_count(reader, topic))]
        for tp in tps:
            for record in kafka_io.read_partition(reader, tp, from_offset or 0, to_offset):
                if to_ms is not None and record.timestamp >= to_ms:
                    break
                if from_ms is not None and record.timestamp < from_ms:
                    continue
                _one(record, processor, writer, results, last_seq, max_bytes, timelines)
                bar.update(1)
        for sid in list(processor.states):
            closed = processor.finish(sid)
            results.setdefault(sid, FileResult(sid)).detections += closed
            if timelines is not None:
                timelines.setdefault(sid, StreamTimeline(sid)).add_detections(closed)
    finally:
        bar.close()
        reader.close()
        writer.finish(results)
    return results


def _one(record, processor, writer, results, last_seq, max_bytes, timelines) -> None:
    try:
        chunk = parse_record(record.key, record.value, list(record.headers or ()), max_bytes)
    except BadRecord as e:
        sid = (record.key or b"").decode("utf-8", "replace")
        writer.record({**error_record(sid, str(e)), "offset": record.offset, "partition": record.partition})
        return
    if chunk.seq <= last_seq.get(chunk.stream_id, -1):
        return
    last_seq[chunk.stream_id] = chunk.seq
    result = results.setdefault(chunk.stream_id, FileResult(chunk.stream_id))
    started = time.perf_counter()
    try:
        block = processor.decode(chunk)
        verdict = processor.feed(chunk.stream_id, chunk.seq, block, chunk.final, started)
    except DfstreamError as e:
        writer.record(error_record(chunk.stream_id, str(e), chunk.seq))
        if timelines is not None:
            timelines.setdefault(chunk.stream_id, StreamTimeline(chunk.stream_id)).errors.append(
                f"seq {chunk.seq}: {e}")
        tqdm.write(f"dfstream: {chunk.stream_id} seq {chunk.seq}: {e}", file=sys.stderr)
        return
    if verdict.final:
        last_seq.pop(chunk.stream_id, None)
    writer.verdict(verdict)
    result.add(verdict)
    if timelines is not None:
        timelines.setdefault(chunk.stream_id, StreamTimeline(chunk.stream_id)).add(verdict)
