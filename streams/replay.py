"""``dfstream replay``: archived files through the live streaming path.

Each file is decoded once, incrementally (audio and sampled video frames),
and cut at multiples of ``chunk_seconds`` of stream time into blocks that go
through what a decoded live chunk goes through: ``processor.admit`` (face
crops, checks) -> ``processor.feed`` -> per-stream state -> windows -> fusion
-> localizer -> verdict. We cut decoded media rather than remuxing compressed
packets into container segments because a re-segmented lossy stream (AAC, MP3)
gets decoder priming glitches at every cut, which the archive itself does not
have. (:func:`file_chunks` still cuts a file's audio into raw PCM chunks, for
producers and tests that need chunk bytes.)

This module imports no torch: the processor is handed in.
"""
from __future__ import annotations

import glob
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Protocol

import av
from tqdm import tqdm

from engine.config import LimitsConfig
from engine.decode import LIMITS, iter_audio, raw_pcm_content_type
from engine.media import iter_media, with_final
from engine.errors import DfstreamError
from engine.types import Chunk, Detection, Verdict, error_record
from reports.timeline import StreamTimeline
from streams.results import OutputError, ResultWriter

MEDIA_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".oga", ".m4a", ".mp4", ".m4v", ".aac",
                  ".ts", ".mts", ".m2ts", ".webm", ".mkv", ".mka", ".mov", ".avi", ".aiff", ".aif"}


class Processor(Protocol):
    detector: object  # engine.detector.Detector: its config says which tracks to decode

    def admit(self, stream_id: str, block) -> object: ...

    def feed(self, stream_id: str, seq: int, block, final: bool = False, started: float | None = None) -> Verdict: ...

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
    """``(MediaBlock, final)`` for each ``chunk_seconds`` of a file (see :func:`engine.media.iter_media`)."""
    return with_final(iter_media(path, chunk_seconds, config))


def probe_seconds(path: Path) -> float:
    """Container duration in seconds for progress (0 when unknown or unreadable)."""
    try:
        with av.open(str(path)) as c:
            return (c.duration or 0) / av.time_base
    except (av.error.FFmpegError, OSError, ValueError):
        return 0.0


INTERRUPTED = "interrupted before the end of the file"


def replay(inputs: list[tuple[Path, str]], processor: Processor, out_dir: str | Path,
           chunk_seconds: float, progress: bool = True, results: dict | None = None,
           timelines: dict | None = None) -> dict[str, FileResult]:
    """Run every input through ``processor`` chunk by chunk and write the results.

    Writes ``verdicts.jsonl`` as it goes, ``predictions.json`` and ``scores.csv``
    at the end — also when interrupted (Ctrl-C), for the files completed, before
    the interrupt propagates; the file in progress then gets the error
    :data:`INTERRUPTED` and stays out of them. ``results`` (filled and returned)
    lets a caller keep what was done when the interrupt propagates. With
    ``timelines`` (a dict), each file's :class:`reports.timeline.StreamTimeline`
    is recorded there for a report.
    """
    writer = ResultWriter(out_dir)
    results = {} if results is None else results
    total = sum(probe_seconds(p) for p, _ in inputs)
    bar = tqdm(total=round(total, 1), unit="s", unit_scale=False, disable=not progress, mininterval=0.5,
               bar_format="{desc} {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} media-s [{elapsed}<{remaining}]")
    try:
        for index, (path, stream_id) in enumerate(inputs, 1):
            bar.set_description_str(f"replay file {index}/{len(inputs)}")
            result = results[stream_id] = FileResult(stream_id)
            timeline = None if timelines is None else timelines.setdefault(stream_id, StreamTimeline(stream_id))
            try:
                for seq, (raw, final) in enumerate(file_blocks(path, chunk_seconds, processor.detector.config)):
                    started = time.perf_counter()
                    block = processor.admit(stream_id, raw)
                    verdict = processor.feed(stream_id, seq, block, final, started)
                    writer.verdict(verdict)
                    result.add(verdict)
                    if timeline is not None:
                        timeline.add(block, verdict)
                    bar.update(round(verdict.span.duration, 3))
            except OutputError as e:  # the disk, not the file: stop here (the writer says what it holds)
                processor.close(stream_id)
                _fail(result, timeline, f"not finished: {e}")
                raise
            except DfstreamError as e:
                processor.close(stream_id)
                _fail(result, timeline, str(e))
                writer.record(error_record(stream_id, result.error))
                tqdm.write(f"dfstream: {stream_id}: {result.error}", file=sys.stderr)
            except KeyboardInterrupt:
                processor.close(stream_id)
                _fail(result, timeline, INTERRUPTED)
                raise
    finally:
        bar.close()
        writer.finish(results)
    return results


def _fail(result: FileResult, timeline, error: str) -> None:
    result.error = error
    if timeline is not None:
        timeline.errors.append(error)
