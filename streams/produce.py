"""``dfstream produce``: archived media cut into chunks and published in the contract's format.

Each file becomes one stream (key = its stream id, named as ``dfstream replay``
names it), with ``dfs-seq`` and ``dfs-final``. An audio file is sent as raw PCM
chunks (``audio/pcm;format=f32le;rate=16000``, with ``dfs-t0``), cut exactly as
replay cuts it, so that ``dfstream serve`` produces the verdicts replay would. A
file with video is sent as a live encoder would send it: self-contained
Matroska segments cut at keyframes, packets copied unchanged, carrying their
own timestamps instead of ``dfs-t0`` (:mod:`dfstream.streams.segment`).
``realtime`` sends each chunk when its last sample would have been heard. Imports no torch.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from kafka.errors import KafkaError

from dfstream.engine.core.errors import DfstreamError
from dfstream.engine.media.video import has_video
from dfstream.streams import kafka_io
from dfstream.streams.config import KafkaConfig
from dfstream.streams.kafka_contract import chunk_headers
from dfstream.streams.replay import file_chunks
from dfstream.streams.segment import video_chunks

log = logging.getLogger(__name__)


def media_chunks(path: Path, stream_id: str, chunk_seconds: float):
    """``(chunk, start, seconds)`` of one file: video segments if it has video, else PCM chunks."""
    if has_video(path):
        yield from video_chunks(path, stream_id, chunk_seconds)
        return
    for chunk in file_chunks(path, stream_id, chunk_seconds):
        yield chunk, chunk.t0 or 0.0, len(chunk.payload) / 4 / 16000


def produce_files(
    inputs: list[tuple[Path, str]],
    cfg: KafkaConfig,
    topic: str,
    chunk_seconds: float,
    realtime: bool = False,
    max_bytes: int = 16 * 1024 * 1024,
    partitions: int = 4,
    create: bool = True,
) -> dict:
    """Publish every input's chunks to ``topic``; returns counts (files, chunks, seconds, failed).

    Waits until the broker has acknowledged every chunk. A file that cannot be
    decoded is logged (``dfstream.streams.produce``); its chunks already sent stay sent.
    """
    if create:
        kafka_io.ensure_topics(cfg, {topic: partitions})
    producer = kafka_io.producer(cfg, max_bytes)
    counts = {"files": 0, "chunks": 0, "seconds": 0.0, "failed": 0}
    futures = []
    try:
        for path, stream_id in inputs:
            start = time.monotonic()
            try:
                for chunk, t0, seconds in media_chunks(path, stream_id, chunk_seconds):
                    if realtime:
                        time.sleep(max(0.0, start + t0 + seconds - time.monotonic()))
                    futures.append(
                        producer.send(topic, key=stream_id.encode(), value=chunk.payload, headers=chunk_headers(chunk))
                    )
                    counts["chunks"] += 1
                    counts["seconds"] += seconds
                counts["files"] += 1
            except DfstreamError as e:
                counts["failed"] += 1
                log.warning("%s: %s", stream_id, e)
        producer.flush()
        failed = [f.exception for f in futures if not f.succeeded()]
        if failed:
            raise kafka_io.BrokerError(f"{len(failed)} chunk(s) were not acknowledged: {failed[0]!r}")
    except KafkaError as e:
        raise kafka_io.BrokerError(f"producing to {topic!r} failed: {e}") from None
    finally:
        producer.close()
    return counts
