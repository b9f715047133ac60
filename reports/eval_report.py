"""``dfstream eval --report``: the metrics, their curves and the attribution confusion matrix in one HTML file."""

from __future__ import annotations

from html import escape
from pathlib import Path

import numpy as np

from dfstream.reports import html
from dfstream.reports.plots import ap_iou_figure, confusion_figure, data_uri, det_figure, roc_figure


def _metrics_table(result: dict) -> str:
    loc = result["localization"]
    rows = [[f"AP@{t}", html.fmt(v, 4)] for t, v in loc["ap"].items()]
    rows += [[f"AR@{n}", html.fmt(v, 4)] for n, v in loc["ar"].items()]
    rows.append(["1M-Deepfakes score", html.fmt(loc["score"], 4)])
    if "detection" in result:
        d = result["detection"]
        rows += [[f"AUC ({d['files']} files)", html.fmt(d["auc"], 4)], ["EER", html.fmt(d["eer"], 4)]]
    if "attribution" in result:
        a = result["attribution"]
        rows += [
            [f"attribution top-1 ({a['known_spans']} known spans)", html.fmt(a["top1_accuracy"], 4)],
            [f"known-vs-unknown AUROC ({a['unknown_spans']} unknown spans)", html.fmt(a["known_vs_unknown_auroc"], 4)],
            [f"spans matched at IoU > {a['match_iou']} / missed", f"{a['matched_spans']} / {a['missed_spans']}"],
        ]
    return html.table(["metric", "value"], rows, numeric={1})


def write_eval_report(path: str | Path, result: dict, details: dict, command: str = "", notes: list[str] = ()) -> Path:
    """Write the evaluation report of :func:`dfstream.app.evaluation.evaluate_details`'s output to ``path``."""
    path = Path(path)
    body = [f'<p class="synthetic">{escape(n)}</p>' for n in notes]
    if command:
        body.append(f"<p>command: <code>{escape(command)}</code></p>")
    body.append(
        f'<section id="metrics"><h2>Metrics</h2><p>{result["files"]} files, true segments '
        f"<code>{escape(result['labels'])}</code>"
        + (
            f"; {result['files_without_prediction']} without a prediction (counted as finding nothing)"
            if result["files_without_prediction"]
            else ""
        )
        + "</p>"
        + _metrics_table(result)
        + "</section>"
    )
    figures = []
    curve = details["ap_curve"]
    figures.append(html.img(data_uri(ap_iou_figure(curve["iou"], curve["ap"])), "AP vs IoU"))
    detection = details.get("detection")
    if detection and len(set(detection["y"])) == 2:
        figures.append(html.img(data_uri(roc_figure(np.array(detection["y"]), np.array(detection["s"]))), "ROC curve"))
        figures.append(html.img(data_uri(det_figure(np.array(detection["y"]), np.array(detection["s"]))), "DET curve"))
    else:
        body.append('<p class="meta">ROC and DET curves need --scores and both forged and real files.</p>')
    body.append('<section id="curves"><h2>Curves</h2><div class="figures">' + "\n".join(figures) + "</div></section>")
    matches = details.get("attribution")
    if matches:
        fig = confusion_figure([m["generator"] for m in matches], [m["predicted"] for m in matches])
        body.append(
            '<section id="attribution"><h2>Attribution</h2><p>true generator of each matched span against '
            'its detection\'s top match ("unknown" = open-set reject)</p>'
            + html.img(data_uri(fig), "attribution confusion matrix")
            + "</section>"
        )
    elif matches is not None:
        body.append(
            '<section id="attribution"><h2>Attribution</h2><p>no labelled span was matched by an '
            "attributed detection.</p></section>"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html.page("dfstream evaluation report", "\n".join(body)))
    return path
