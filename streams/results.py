"""Replay outputs: verdicts.jsonl, predictions.json (AV-Deepfake1M), scores.csv, summary."""

from __future__ import annotations

import json
import os
from pathlib import Path

from dfstream.engine.core.errors import DfstreamError
from dfstream.engine.core.types import Verdict, proposals


class OutputError(DfstreamError):
    """Results could not be written (disk full, file too large, permissions)."""


class ResultWriter:
    """Writes ``verdicts.jsonl`` line by line and the per-file files at :meth:`finish`.

    Each line reaches the file (an unbuffered write) before the next verdict is
    scored. When a write fails, the file is cut back to its last whole line and
    :class:`OutputError` says how many verdicts it holds; the run stops there
    (writing on would lose verdicts silently). ``predictions.json`` and
    ``scores.csv`` are written whole or not at all (a temporary file renamed).
    """

    def __init__(self, out_dir: str | Path):
        self.out = Path(out_dir)
        self.path = self.out / "verdicts.jsonl"
        self.written = self.lines = 0
        self.failed: OutputError | None = None
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as e:
            raise OutputError(f"cannot write results to {self.path}: {e.strerror}") from None

    def verdict(self, verdict: Verdict) -> None:
        self.record(verdict.to_dict())

    def record(self, record: dict) -> None:
        if self.failed is not None:
            raise self.failed
        line = (json.dumps(record) + "\n").encode()
        try:
            data = memoryview(line)
            while data:
                data = data[os.write(self._fd, data) :]
        except OSError as e:
            try:
                os.ftruncate(self._fd, self.written)  # no half line for readers of the file
            except OSError:
                pass
            self.failed = OutputError(
                f"cannot write {self.path}: {e.strerror}. It holds the first {self.lines} "
                "records, each whole; the run stopped at the next one"
            )
            raise self.failed from None
        self.written += len(line)
        self.lines += 1

    def finish(self, results: dict) -> None:
        """Write predictions.json and scores.csv for every file that did not fail."""
        os.close(self._fd)
        done = {k: r for k, r in results.items() if r.error is None}
        predictions = {k: [[round(x, 6) for x in row] for row in proposals(r.detections)] for k, r in done.items()}
        self._write_whole("predictions.json", json.dumps(predictions, indent=1) + "\n")
        self._write_whole(
            "scores.csv", "".join(f"{k};{0.0 if r.score is None else round(r.score, 6)}\n" for k, r in done.items())
        )

    def _write_whole(self, name: str, text: str) -> None:
        path, tmp = self.out / name, self.out / f".{name}.tmp"
        try:
            tmp.write_text(text)
            os.replace(tmp, path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise OutputError(f"cannot write {path}: {e.strerror}") from None


def summary(results: dict, model_line: str) -> str:
    """Readable per-file summary of forged spans."""
    lines = [model_line, ""]
    for key, r in results.items():
        if r.error:
            lines.append(f"{key}: FAILED - {r.error}")
            continue
        score = "n/a" if r.score is None else f"{r.score:.3f}"
        lines.append(f"{key}: {r.seconds:.2f} s, score {score}, {len(r.detections)} forged span(s)")
        for d in sorted(r.detections, key=lambda d: d.span.start):
            match = d.attribution[0] if d.attribution else None
            like = f"  ~ {match['generator']} ({match['similarity']:.2f})" if match else ""
            lines.append(f"    {d.span.start:8.2f} - {d.span.end:8.2f} s  score {d.score:.3f}  {d.modality}{like}")
    failed = sum(1 for r in results.values() if r.error)
    lines += ["", f"{len(results)} file(s), {failed} failed"]
    return "\n".join(lines)
