"""``dfstream inspect``: a stream's timeline as a few lines of text.

One column per time bin: the fused forgery probability as a block character
(the bin's maximum), the detected spans by modality letter (``A`` audio, ``V``
visual, ``X`` audio-visual), the true spans when known (``#``), and a time axis.
"""

from __future__ import annotations

import numpy as np

from dfstream.reports.timeline import StreamTimeline

LEVELS = " ▁▂▃▄▅▆▇█"
MODALITY_MARKS = {"audio": "A", "visual": "V", "audio-visual": "X"}
TRUTH_NAMES = {"fake_segments": "true", "audio_fake_segments": "true aud", "visual_fake_segments": "true vis"}


def _bins(duration: float, width: int) -> np.ndarray:
    """Left edges ``(width + 1,)`` of the columns over ``[0, duration]`` seconds."""
    return np.linspace(0.0, duration, width + 1)


def probability_row(timeline: StreamTimeline, edges: np.ndarray) -> str:
    """One block character per column: the highest fused probability of the frames in it."""
    curve = timeline.curve()
    chars = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = curve.fused[(curve.times < hi) & (curve.times + (timeline.step or 0.0) > lo)]
        inside = inside[~np.isnan(inside)] if len(inside) else inside
        if not len(inside):
            chars.append(" ")
            continue
        chars.append(LEVELS[int(np.clip(np.ceil(float(inside.max()) * (len(LEVELS) - 1)), 0, len(LEVELS) - 1))])
    return "".join(chars)


def span_row(spans, edges: np.ndarray, mark) -> str:
    """A character per column: ``mark(span)`` where a span covers the column's middle, else ``·``."""
    row = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        middle = (lo + hi) / 2
        hit = next((s for s in spans if s[0].start <= middle < s[0].end), None)
        row.append(mark(hit[1]) if hit else "·")
    return "".join(row)


def axis_row(duration: float, width: int) -> str:
    """Time labels (seconds) about every 12 columns."""
    row = [" "] * width
    for col in range(0, width, 12):
        label = f"{col * duration / width:.1f}s"
        if col + len(label) <= width:
            row[col : col + len(label)] = label
    return "".join(row)


def render(timeline: StreamTimeline, width: int = 80, truth: dict | None = None, model_line: str = "") -> str:
    """The terminal view of one stream: header, rows, and the list of spans."""
    duration = max(timeline.end, 1e-6)
    edges = _bins(duration, width)
    score = "n/a" if timeline.score is None else f"{timeline.score:.3f}"
    lines = [f"{timeline.stream_id}  {timeline.end:.2f} s  score {score}  {len(timeline.detections)} forged span(s)"]
    if model_line:
        lines.append(model_line)
    lines += [
        f"P(forged) |{probability_row(timeline, edges)}|",
        "detected  |"
        + span_row([(d.span, d) for d in timeline.detections], edges, lambda d: MODALITY_MARKS[d.modality])
        + "|",
    ]
    for key, spans in sorted((truth or {}).items(), key=lambda kv: list(TRUTH_NAMES).index(kv[0])):
        name = TRUTH_NAMES.get(key, key)
        lines.append(f"{name:<9} |{span_row([(s, s) for s in spans], edges, lambda s: '#')}|")
    lines.append(f"          |{axis_row(duration, width)}|")
    for error in timeline.errors:
        lines.append(f"error: {error}")
    for d in sorted(timeline.detections, key=lambda d: d.span.start):
        match = d.attribution[0] if d.attribution else None
        like = ""
        if match:
            like = f"  ~ {match['generator']}" + (f" ({match['similarity']:.2f})" if "similarity" in match else "")
        lines.append(
            f"  {d.span.start:8.2f} - {d.span.end:8.2f} s  score {d.score:.3f}  "
            f"{MODALITY_MARKS[d.modality]} {d.modality}{like}"
        )
    lines.append("legend: ▁..█ highest fused P(forged) in the column; A audio, V visual, X audio-visual; # true span")
    return "\n".join(lines)
