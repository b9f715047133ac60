"""``dfstream replay``: archived files through the live streaming path.

Each file is decoded once, incrementally (audio and sampled video frames),
and cut at multiples of ``chunk_seconds`` of stream time into blocks that go
through what a decoded live chunk goes through in the scheduler
(:mod:`dfstream.engine.runtime.scheduler`): face crops on the decode pool -> checks ->
a batch across files -> per-stream state -> windows -> fusion -> localizer -> verdict.
We cut decoded media rather than remuxing compressed packets into container segments
because a re-segmented lossy stream (AAC, MP3) gets decoder priming glitches at every cut,
which the archive itself does not have. (:func:`file_chunks` still cuts a file's audio
into raw PCM chunks, for producers and tests that need chunk bytes.)

This module imports no torch: the processor is handed in.
"""

from __future__ import annotations

import glob
import logging
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import av

from dfstream.engine.core.errors import DfstreamError
from dfstream.engine.core.progress import SILENT, Progress
from dfstream.engine.core.types import Chunk, Detection, Verdict, error_record
from dfstream.engine.media.blocks import MediaRequest, iter_media, with_final
from dfstream.engine.media.decode import iter_audio, raw_pcm_content_type
from dfstream.engine.media.limits import LIMITS, LimitsConfig
from dfstream.engine.runtime.scheduler import Scheduler
from dfstream.streams.results import OutputError, ResultWriter

log = logging.getLogger(__name__)

MEDIA_SUFFIXES = {
    ".wav",
    ".flac",
    ".mp3",
    ".ogg",
    ".opus",
    ".oga",
    ".m4a",
    ".mp4",
    ".m4v",
    ".aac",
    ".ts",
    ".mts",
    ".m2ts",
    ".webm",
    ".mkv",
    ".mka",
    ".mov",
    ".avi",
    ".aiff",
    ".aif",
}


class Processor(Protocol):
    """What replay needs of :class:`dfstream.engine.runtime.stream.StreamProcessor` (through the scheduler)."""

    detector: object  # dfstream.engine.runtime.detector.Detector: what its branches read (media), its scheduler
    limits: LimitsConfig

    def share_cores(self, cores: int) -> None: ...

    def init_worker(self) -> None: ...

    def prepare(self, block) -> object: ...

    def check(self, stream_id: str, block) -> None: ...

    def feed_many(self, items: list[tuple], started=None) -> list[Verdict]: ...

    def close(self, stream_id: str) -> None: ...


class Observer(Protocol):
    """What replay tells whoever watches it (a report: :class:`dfstream.reports.timeline.Timelines`),
    in stream order; transports know no report."""

    def stream(self, stream_id: str) -> None:
        """A stream (a file, a key of a topic) begins."""

    def verdict(self, verdict: Verdict) -> None:
        """A chunk's verdict (with its media when the processor keeps it, ``keep_media``)."""

    def error(self, stream_id: str, message: str) -> None:
        """The stream failed, or a chunk of it did."""

    def detections(self, stream_id: str, detections: list) -> None:
        """Spans closed after the stream's last chunk (a stream that ended without a final chunk)."""


@dataclass
class FileResult:
    """What replay found in one file."""

    stream_id: str
    seconds: float = 0.0
    score: float | None = None
    detections: list[Detection] = field(default_factory=list)
    error: str | None = None

    def add(self, verdict: Verdict) -> None:
        """Account for one chunk's verdict: its detections, duration and score."""
        self.detections += verdict.detections
        self.seconds += verdict.span.duration
        if verdict.score is not None:
            self.score = max(self.score or 0.0, verdict.score)


def expand_inputs(args: list[str], root: str | Path | None = None) -> list[tuple[Path, str]]:
    """Files, folders (recursive, media suffixes only) and globs -> ``(path, stream_id)``.

    The stream id is the path relative to ``root`` when given, else relative to
    the folder argument it was found under, else the argument as typed. A path
    that does not exist is kept, so that it is reported as an error.
    """
    found: list[tuple[Path, str]] = []
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            found += [
                (p, p.relative_to(path).as_posix())
                for p in sorted(path.rglob("*"))
                if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES
            ]
        elif glob.has_magic(arg):
            found += [
                (Path(p), Path(p).as_posix()) for p in sorted(glob.glob(arg, recursive=True)) if Path(p).is_file()
            ]
        else:
            found.append((path, path.as_posix()))
    if root is not None:
        root = Path(root).resolve()

        def rel(p: Path) -> str:
            try:
                return p.resolve().relative_to(root).as_posix()
            except ValueError:
                return p.as_posix()

        found = [(p, rel(p)) for p, _ in found]
    seen, unique = set(), []
    for p, key in found:
        if key not in seen:
            seen.add(key)
            unique.append((p, key))
    return unique


def file_chunks(path: Path, stream_id: str, chunk_seconds: float, limits: LimitsConfig = LIMITS) -> Iterator[Chunk]:
    """Chunks of ``chunk_seconds`` of one file, the last marked final (raises MediaError)."""
    content_type, seq = raw_pcm_content_type(), -1
    for seq, (block, final) in enumerate(with_final(iter_audio(path, chunk_seconds, limits))):
        yield Chunk(stream_id, seq, block.samples.tobytes(), content_type, block.t0, final)
    if seq < 0:  # an audio stream that decodes to nothing: one empty final chunk
        yield Chunk(stream_id, 0, b"", content_type, 0.0, final=True)


def file_blocks(
    path: Path, chunk_seconds: float, media: MediaRequest, limits: LimitsConfig = LIMITS
) -> Iterator[tuple[object, bool]]:
    """``(MediaBlock, final)`` for each ``chunk_seconds`` of a file, the tracks ``media`` names
    (see :func:`dfstream.engine.media.blocks.iter_media`)."""
    return with_final(iter_media(path, chunk_seconds, media, limits))


def probe_seconds(path: Path) -> float:
    """Container duration in seconds for progress (0 when unknown or unreadable)."""
    try:
        with av.open(str(path)) as c:
            return (c.duration or 0) / av.time_base
    except (av.error.FFmpegError, OSError, ValueError):
        return 0.0


INTERRUPTED = "interrupted before the end of the file"
_END = object()  # a file's reader is done


def replay(
    inputs: list[tuple[Path, str]],
    processor: Processor,
    out_dir: str | Path,
    chunk_seconds: float,
    progress: Progress = SILENT,
    results: dict | None = None,
    observer: Observer | None = None,
) -> dict[str, FileResult]:
    """Run every input through ``processor`` chunk by chunk and write the results.

    Files are decoded on ``scheduler.decode_workers`` reader threads, several at
    once, and their chunks scored in batches across files by an
    :class:`dfstream.engine.runtime.scheduler.Scheduler` (see ``scheduler.*`` in the config); the
    results are taken in input order, so ``verdicts.jsonl`` reads file by file,
    chunk by chunk, as if the files had been replayed one after another.
    At most ``2 x decode_workers`` files are open or waiting to be written.

    Writes ``verdicts.jsonl`` as it goes, ``predictions.json`` and ``scores.csv``
    at the end — also when interrupted (Ctrl-C), for the files completed, before
    the interrupt propagates; the files in progress then get the error
    :data:`INTERRUPTED` and stay out of them. ``results`` (filled and returned)
    lets a caller keep what was done when the interrupt propagates. ``progress``
    counts media seconds; a file that fails is logged (``dfstream.streams.replay``)
    and said to the ``observer``, which also sees every verdict.
    """
    config, media = processor.detector.config, processor.detector.media
    writer = ResultWriter(out_dir)
    results = {} if results is None else results
    task = progress.task("replay", round(sum(probe_seconds(p) for p, _ in inputs), 1), "media-s")
    workers = config.scheduler.decode_workers
    open_files, stop = threading.Semaphore(2 * workers), threading.Event()
    runs = [queue.Queue() for _ in inputs]
    scheduler = Scheduler(processor, config.scheduler)
    readers = ThreadPoolExecutor(workers, thread_name_prefix="dfstream-replay")

    def read(path: Path, stream_id: str, out: queue.Queue) -> None:
        """Decode one file into the scheduler; ``out`` gets each chunk's future, then _END."""
        open_files.acquire()
        seq = -1  # the last chunk submitted
        try:
            if stop.is_set():
                return
            for seq, (block, final) in enumerate(file_blocks(path, chunk_seconds, media, processor.limits)):
                if stop.is_set():
                    return
                out.put(scheduler.submit_block(stream_id, seq, block, final, time.perf_counter()))
        except DfstreamError as e:
            if not stop.is_set():
                out.put(scheduler.submit_error(stream_id, seq + 1, e))
        finally:
            out.put(_END)

    current = None  # the result of the file being written, until its last chunk
    try:
        for (path, stream_id), out in zip(inputs, runs):
            readers.submit(read, path, stream_id, out)
        for index, ((_, stream_id), out) in enumerate(zip(inputs, runs), 1):
            task.describe(f"replay file {index}/{len(inputs)}")
            result = current = results[stream_id] = FileResult(stream_id)
            if observer is not None:
                observer.stream(stream_id)
            try:
                while (future := out.get()) is not _END:
                    verdict = future.result()
                    writer.verdict(verdict)
                    result.add(verdict)
                    if observer is not None:
                        observer.verdict(verdict)
                    task.advance(verdict.span.duration)
            except OutputError as e:  # the disk, not the file: stop here (the writer says what it holds)
                current = None
                _fail(result, observer, f"not finished: {e}")
                raise
            except DfstreamError as e:  # the file failed here; what follows of it is not reported
                _fail(result, observer, str(e))
                writer.record(error_record(stream_id, result.error))
                log.warning("%s: %s", stream_id, result.error)
                while out.get() is not _END:  # the rest of the file (its final chunk drops the stream's state)
                    pass
            finally:
                open_files.release()
            current = None
    except BaseException:
        stop.set()
        scheduler.close(cancel=True)
        if current is not None:
            _fail(current, observer, INTERRUPTED)
        raise
    finally:
        stop.set()
        for _ in inputs:  # readers waiting for a file slot may go (they stop at once)
            open_files.release()
        readers.shutdown(wait=True)
        scheduler.close()
        task.close()
        writer.finish(results)
    return results


def _fail(result: FileResult, observer: Observer | None, error: str) -> None:
    result.error = error
    if observer is not None:
        observer.error(result.stream_id, error)
