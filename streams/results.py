"""Replay outputs: verdicts.jsonl, predictions.json (AV-Deepfake1M), scores.csv, summary."""
from __future__ import annotations

import json
from pathlib import Path

from engine.types import Verdict


class ResultWriter:
    """Writes ``verdicts.jsonl`` line by line and the per-file files at :meth:`finish`."""

    def __init__(self, out_dir: str | Path):
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.verdicts = open(self.out / "verdicts.jsonl", "w")

    def verdict(self, verdict: Verdict) -> None:
        self.record(verdict.to_dict())

    def record(self, record: dict) -> None:
        self.verdicts.write(json.dumps(record) + "\n")
        self.verdicts.flush()

    def finish(self, results: dict) -> None:
        """Write predictions.json and scores.csv for every file that did not fail."""
        self.verdicts.close()
        done = {k: r for k, r in results.items() if r.error is None}
        predictions = {
            k: [[round(d.score, 6), round(d.span.start, 6), round(d.span.end, 6)]
                for d in sorted(r.detections, key=lambda d: -d.score)]
            for k, r in done.items()}
        (self.out / "predictions.json").write_text(json.dumps(predictions, indent=1) + "\n")
        (self.out / "scores.csv").write_text(
            "".join(f"{k};{0.0 if r.score is None else round(r.score, 6)}\n" for k, r in done.items()))


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
