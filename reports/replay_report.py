"""``dfstream replay --report``: one HTML file with a summary table and a timeline per stream."""

from __future__ import annotations

from html import escape
from pathlib import Path

from dfstream.engine.core.progress import SILENT, Progress, tracked
from dfstream.reports import html
from dfstream.reports.plots import MODALITY_COLOURS, STRIP_MARGIN, data_uri, face_strip, timeline_figure
from dfstream.reports.timeline import StreamTimeline

MAX_STRIPS = 20  # face-crop strips per stream (its first visual spans)


def _anchor(index: int) -> str:
    return f"s{index}"


def _attribution(detection) -> str:
    if not detection.attribution:
        return "-"
    return ", ".join(
        a["generator"] + (f" ({a['similarity']:.2f})" if "similarity" in a else "") for a in detection.attribution
    )


def _count(truth: dict) -> int:
    """Distinct true spans over all label keys (a span in fake and audio_fake counts once)."""
    return len({s for spans in truth.values() for s in spans})


def _best_iou(detection, truth: dict) -> float | None:
    spans = [s for spans in truth.values() for s in spans]
    return max((detection.span.iou(s) for s in spans), default=None) if truth else None


def _stream_section(index: int, tl: StreamTimeline, truth: dict | None, threshold: float | None, visual: bool) -> str:
    parts = [f'<section class="stream" id="{_anchor(index)}"><h2>{escape(tl.stream_id)}</h2>']
    parts.append(
        f"<p>{tl.end:.2f} s; score {html.fmt(tl.score)}; {len(tl.detections)} forged span(s)"
        + (f"; {_count(truth)} true span(s)" if truth is not None else "")
        + "</p>"
    )
    for error in tl.errors:
        parts.append(f'<p class="error">{escape(error)}</p>')
    if tl.end > 0:
        fig = timeline_figure(tl, truth, threshold)
        parts.append(html.img(data_uri(fig), f"timeline of {tl.stream_id}"))
    if tl.detections:
        rows = [
            [f"{d.span.start:.2f}", f"{d.span.end:.2f}", f"{d.score:.3f}", d.modality, _attribution(d)]
            + ([html.fmt(_best_iou(d, truth), 2)] if truth is not None else [])
            for d in sorted(tl.detections, key=lambda d: d.span.start)
        ]
        header = ["start (s)", "end (s)", "score", "modality", "attribution (similarity)"]
        parts.append(
            html.table(header + (["best IoU with truth"] if truth is not None else []), rows, numeric={0, 1, 2, 5})
        )
    parts.append(_face_crops(tl, visual))
    parts.append('<p><a href="#summary">back to the summary</a></p></section>')
    return "\n".join(parts)


def _face_crops(tl: StreamTimeline, visual: bool) -> str:
    """A strip of the face crops the visual branch saw around each visual or audio-visual span, or
    why there is none."""
    spans = sorted((d for d in tl.detections if d.modality != "audio"), key=lambda d: d.span.start)
    reason = (
        "not available: this model has no visual branch"
        if not visual
        else "none: this stream has no video"
        if not tl.video
        else "none: no face was found in this stream's video"
        if not tl.thumbnails
        else "none: no visual or audio-visual span in this stream"
        if not spans
        else None
    )
    if reason is not None:
        return f'<p class="meta">Face crops: {reason}.</p>'
    parts = ["<h3>Face crops the visual branch saw</h3>"]
    for d in spans[:MAX_STRIPS]:
        strip = face_strip(tl.thumbnails, d.span, MODALITY_COLOURS[d.modality])
        what = f"{d.modality} span {d.span.start:.2f}-{d.span.end:.2f} s (score {d.score:.3f})"
        if strip is None:
            parts.append(
                f'<p class="meta">{escape(what)}: no face was found in its frames or the '
                f"{STRIP_MARGIN:g} s around it.</p>"
            )
            continue
        uri, times = strip
        caption = ", ".join(f"{t:.1f}" for t in times)
        parts.append(
            f'<figure>{html.img(uri, "face crops of the " + what)}<figcaption class="meta">'
            f"{escape(what)}; frames at {caption} s; outlined: inside the span</figcaption></figure>"
        )
    if len(spans) > MAX_STRIPS:
        parts.append(f'<p class="meta">{len(spans) - MAX_STRIPS} more visual span(s) not shown.</p>')
    return "\n".join(parts)


def write_replay_report(
    path: str | Path,
    timelines: dict[str, StreamTimeline],
    model_line: str,
    truth: dict | None = None,
    threshold: float | None = None,
    notes: list[str] = (),
    progress: Progress = SILENT,
    visual: bool = False,
) -> Path:
    """Write the report for ``timelines`` (stream id -> timeline) to ``path``.

    ``truth`` maps stream id -> {label key: [Span]} (from ``--meta``); streams
    missing from it are shown without ground truth ("-" in the summary). ``notes`` are shown on top.
    ``visual`` says whether the model has a visual branch (whose face crops the report shows).
    """
    path = Path(path)
    order = sorted(timelines.values(), key=lambda t: (bool(t.errors), t.score or 0.0), reverse=True)
    index = {tl.stream_id: i for i, tl in enumerate(order)}
    rows = []
    for tl in order:
        link = f'<a href="#{_anchor(index[tl.stream_id])}">{escape(tl.stream_id)}</a>'
        top = max(tl.detections, key=lambda d: d.score, default=None)
        status = "; ".join(tl.errors) if tl.errors else "ok"
        rows.append(
            [link, f"{tl.end:.2f}", html.fmt(tl.score), len(tl.detections), _attribution(top) if top else "-"]
            + ([_count(truth[tl.stream_id]) if tl.stream_id in truth else "-"] if truth is not None else [])
            + [status]
        )
    header = (
        ["stream", "seconds", "score", "spans", "top span attribution"]
        + (["true spans"] if truth is not None else [])
        + ["status"]
    )
    body = [f"<p>{escape(model_line)}</p>"] + [f'<p class="synthetic">{escape(n)}</p>' for n in notes]
    body.append(
        '<section id="summary"><h2>Summary</h2><p class="meta">sorted by score, highest first; '
        "failed streams on top</p>" + html.table(header, rows, numeric={1, 2, 3}, escaped={0}) + "</section>"
    )
    for tl in tracked(progress, order, "report", "stream"):
        body.append(_stream_section(index[tl.stream_id], tl, (truth or {}).get(tl.stream_id), threshold, visual))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html.page("dfstream replay report", "\n".join(body)))
    return path
