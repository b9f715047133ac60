"""``dfstream eval``: the field's metrics of predictions against metadata, and its report."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from dfstream.app.cli.common import EPILOG
from dfstream.engine.core.errors import DfstreamError

NAME = "eval"
STYLE = "plain"


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        epilog=EPILOG,
        help="compute AP/AR, AUC and EER",
        description="AV-Deepfake1M metrics: AP@{0.5,0.75,0.9,0.95}, AR@{50,30,20,10,5} "
        "(IoU 0.5:0.05:0.95), the 1M-Deepfakes score, and with --scores AUC and EER. Metadata "
        "imported with `dfstream corpus import` names its corpus, and each corpus's own metric is "
        "reported beside them: the organisers' EER (ASVspoof 2019/2021, In-the-Wild; with minDCF for "
        "ASVspoof 5), segment-level EER at 10-640 ms (PartialSpoof), AP/AR and AUC (AV-Deepfake1M, LAV-DF).",
    )
    p.add_argument("--pred", required=True, metavar="JSON", help="predictions {file: [[score, start, end], ...]}")
    p.add_argument("--meta", required=True, metavar="JSON", help="metadata with the true segments")
    p.add_argument("--scores", metavar="CSV", help="detection scores, lines file;score")
    p.add_argument(
        "--labels",
        default="fake_segments",
        choices=["fake_segments", "audio_fake_segments", "visual_fake_segments"],
        help="which true segments to score against (default: %(default)s)",
    )
    p.add_argument("--split", help="evaluate only metadata entries of this split")
    p.add_argument(
        "--verdicts",
        metavar="JSONL",
        help="replay's verdicts.jsonl: AP/AR per modality (audio spans "
        "vs audio/audio-visual detections, visual likewise); with "
        "--index also attribution (top-1, known-vs-unknown AUROC)",
    )
    p.add_argument("--index", metavar="DIR", help="the attribution index the verdicts used: its generators are 'known'")
    p.add_argument(
        "--label-field", default="audio_model", help="metadata field naming a span's generator (default: %(default)s)"
    )
    p.add_argument("--out", metavar="JSON", help="write the metrics here")
    p.add_argument(
        "--report",
        metavar="HTML",
        help="also write a self-contained HTML report: the metrics table, "
        "ROC and DET curves (with --scores), AP vs IoU, and the "
        "attribution confusion matrix (with --verdicts)",
    )
    return p


def run(args) -> int:
    from dfstream.app.evaluation import evaluate_details, format_metrics

    if args.index is not None and args.verdicts is None:
        raise DfstreamError("attribution metrics (--index) need replay's verdicts.jsonl (--verdicts)")
    result, details = evaluate_details(
        args.pred, args.meta, args.scores, args.labels, args.split, args.verdicts, args.index, args.label_field
    )
    print(format_metrics(result))
    command = "dfstream " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["eval"] else ""
    if args.report:
        from dfstream.reports.eval_report import write_eval_report

        print(f"wrote {write_eval_report(args.report, result, details, command)}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({**result, "command": command} if command else result, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0
