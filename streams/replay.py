"""``dfstream replay``: archived files through the live streaming path.

Each file is decoded once, incrementally (audio and sampled video frames),
and cut at multiples of ``chunk_seconds`` of stream time into blocks that go
through what a decoded live chunk goes through in the scheduler
(:mod:`dfstream.engine.runtime.scheduler`): face crops on the decode pool -> checks -> a batch
across files -> per-stream state -> windows -> fusion -> localizer -> verdict. We cut decoded media rather than remuxing compressed
packets into container segments because a re-segmented lossy stream (AAC, MP3)
gets decoder priming glitches at every cut, which the archive itself does not
have. (:func:`file_chunks` still cuts a file's audio into raw PCM chunks, for
producers and tests that need chunk bytes.)

This module imports no torch: the processor is handed in.
"""
from __future__ import annotations

import glob
import queue
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Protocol

import av
from tqdm import tqdm

from dfstream.engine.core.config import LimitsConfig
from dfstream.engine.media.decode import LIMITS, iter_audio, raw_pcm_content_type
from dfstream.engine.media.blocks import iter_media, with_final
from dfstream.engine.runtime.scheduler import Scheduler
from dfstream.engine.core.errors import DfstreamError
from dfstream.engine.core.types import Chunk, Detection, Verdict, error_record
from dfstream.reports.timeline import StreamTimeline
from dfstream.streams.results import OutputError, ResultWriter

MEDIA_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".oga", ".m4a", ".mp4", ".m4v", ".aac",
                  ".ts", ".mts", ".m2ts", ".webm", ".mkv", ".mka", ".mov", ".avi", ".aiff", ".aif"}


class Processor(Protocol):
    """What replay needs of :class:`dfstream.engine.runtime.stream.StreamProcessor` (through the scheduler)."""

    detector: object  # dfstream.engine.runtime.detector.Detector: its config says which tracks to decode

    def share_cores(self, cores: int) -> None: ...

    def init_worker(self) -> None: ...

    def prepare(self, block) -> object: ...

    def check(self, stream_id: str, block) -> None: ...

    def feed_many(self, items: list[tuple], started=None) -> list[Verdict]: ...

    def close(self, stream_id: str) -> None: ...


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
            found += [(p, p.relative_to(path).as_posix()) for p in sorted(path.rglob("*"))
                      if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES]
        elif glob.has_magic(arg):
            found += [(Path(p), Path(p).as_posix()) for p in sorted(glob.glob(arg, recursive=True))
                      if Path(p).is_file()]
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


def file_blocks(path: Path, chunk_seconds: float, config) -> Iterator[tuple[object, bool]]:
    """``(MediaBlock, final)`` for each ``chunk_seconds`` of a file (see :func:`dfstream.engine.media.blocks.iter_media`)."""
    return with_final(iter_media(path, chunk_seconds, config))


def _advance(bar, seconds: float) -> None:
    """Move the progress bar on by ``seconds`` of media, raising its total when the files decode longer than
    their containers declared (AAC / Opus padding adds a few ms a file): tqdm drops a total the count passes,
    and the bar's ``{total:.1f}`` then fails."""
    if bar.total is not None and bar.n + seconds > bar.total:
        bar.total = bar.n + seconds
    bar.update(round(seconds, 3))


def probe_seconds(path: Path) -> float:
    """Container duration in seconds for progress (0 when unknown or unreadable)."""
    try:
        with av.open(str(path)) as c:
            return (c.duration or 0) / av.time_base
    except (av.error.FFmpegError, OSError, ValueError):
        return 0.0


INTERRUPTED = "interrupted before the end of the file"
_END = object()  # a file's reader is done


def replay(inputs: list[tuple[Path, str]], processor: Processor, out_dir: str | Path,
           chunk_seconds: float, progress: bool = True, results: dict | None = None,
           timelines: dict | None = None) -> dict[str, FileResult]:
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
    lets a caller keep what was done when the interrupt propagates. With
    ``timelines`` (a dict), each file's :class:`dfstream.reports.timeline.StreamTimeline`
    is recorded there for a report (with the media the branches saw when the
    processor keeps it, ``keep_media``).
    """
    config = processor.detector.config
    writer = ResultWriter(out_dir)
    results = {} if results is None else results
    total = sum(probe_seconds(p) for p, _ in inputs)
    bar = tqdm(total=round(total, 1), unit="s", unit_scale=False, disable=not progress, mininterval=0.5,
               bar_format="{desc} {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} media-s [{elapsed}<{remaining}]")
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
            for seq, (block, final) in enumerate(file_blocks(path, chunk_seconds, config)):
                if stop.is_set():
                    return
                out.put(scheduler.submit_block(stream_id, seq, block, final, time.perf_counter()))
        except DfstreamError as e:
            if not stop.is_set():
                out.put(scheduler.submit_error(stream_id, seq + 1, e))
        finally:
            out.put(_END)

    current = None  # (result, timeline) of the file being written, until its last chunk
    try:
        for (path, stream_id), out in zip(inputs, runs):
            readers.submit(read, path, stream_id, out)
        for index, ((path, stream_id), out) in enumerate(zip(inputs, runs), 1):
            bar.set_description_str(f"replay file {index}/{len(inputs)}")
            result = results[stream_id] = FileResult(stream_id)
            timeline = None if timelines is None else timelines.setdefault(stream_id, StreamTimeline(stream_id))
            current = (result, timeline)
            try:
                while (future := out.get()) is not _END:
                    verdict = future.result()
                    writer.verdict(verdict)
                    result.add(verdict)
                    if timeline is not None:
                        timeline.add(verdict)
                    _advance(bar, verdict.span.duration)
            except OutputError as e:  # the disk, not the file: stop here (the writer says what it holds)
                current = None
                _fail(result, timeline, f"not finished: {e}")
                raise
            except DfstreamError as e:  # the file failed here; what follows of it is not reported
                _fail(result, timeline, str(e))
                writer.record(error_record(stream_id, result.error))
                tqdm.write(f"dfstream: {stream_id}: {result.error}", file=sys.stderr)
                while out.get() is not _END:  # the rest of the file (its final chunk drops the stream's state)
                    pass
            finally:
                open_files.release()
            current = None
    except BaseException:
        stop.set()
        scheduler.close(cancel=True)
        if current is not None:
            _fail(*current, INTERRUPTED)
        raise
    finally:
        stop.set()
        for _ in inputs:  # readers waiting for a file slot may go (they stop at once)
            open_files.release()
        readers.shutdown(wait=True)
        scheduler.close()
        bar.close()
        writer.finish(results)
    return results


def _fail(result: FileResult, timeline, error: str) -> None:
    result.error = error
    if timeline is not None:
        timeline.errors.append(error)
