"""``dfstream replay``: archived files, folders or a stored topic range through the live streaming path."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from dfstream.app.cli.common import (
    EPILOG,
    INDEX_HELP,
    MODEL_HELP,
    attributor,
    kafka_config,
    load_model,
    with_chunk_seconds,
)
from dfstream.app.logs import progress
from dfstream.engine.core.errors import ConfigError, DfstreamError

NAME = "replay"
STYLE = "plain"


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        epilog=EPILOG,
        help="score archived media files",
        description="Score archived files, folders (recursive) or globs through the live "
        "chunked streaming path (audio; with a model whose branches include visual, "
        "the video too: face crops, ViT, audio-visual fusion). Writes OUT/verdicts.jsonl "
        "(schema dfstream.verdict/1), OUT/predictions.json (AV-Deepfake1M localization "
        "format) and OUT/scores.csv (file;score). With --from-topic, the same over the "
        "chunks stored in a Kafka topic (one stream per key). Files are decoded "
        "scheduler.decode_workers at a time and scored in batches across files; results "
        "are written file by file, in input order. Exit 1 if any file failed.",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="media files, folders or quoted globs")
    p.add_argument("--out", default="dfstream-out", metavar="DIR", help="output folder (default: %(default)s)")
    p.add_argument(
        "--from-topic",
        metavar="TOPIC",
        help="instead of files: re-run detection over the chunks stored in this Kafka topic (every partition)",
    )
    p.add_argument(
        "--bootstrap",
        metavar="HOST:PORT",
        help="Kafka bootstrap servers (default: kafka.bootstrap_servers from the config)",
    )
    p.add_argument("--from-offset", type=int, metavar="N", help="topic: start at offset N in every partition")
    p.add_argument("--to-offset", type=int, metavar="N", help="topic: stop before offset N in every partition")
    p.add_argument(
        "--from-time",
        metavar="T",
        help="topic: start at the first record at or after T (ISO 8601, UTC if no zone, or epoch seconds)",
    )
    p.add_argument(
        "--to-time",
        metavar="T",
        help="topic: stop at the first record at or after T (default: the end of each partition when replay starts)",
    )
    p.add_argument("--model", metavar="DIR", help=MODEL_HELP)
    p.add_argument(
        "--config",
        metavar="YAML",
        help="config overrides (with a checkpoint: inference, scheduler, "
        "limits, localizer, attribution; replay; kafka for --from-topic)",
    )
    p.add_argument(
        "--chunk-seconds",
        type=float,
        metavar="S",
        help="chunk length the files are cut into (default: replay.chunk_seconds = 2.0)",
    )
    p.add_argument(
        "--root",
        metavar="DIR",
        help="name files relative to DIR in the outputs (to match a metadata file's 'file' entries)",
    )
    p.add_argument("--index", metavar="DIR", help=INDEX_HELP)
    p.add_argument(
        "--report",
        metavar="HTML",
        help="also write a self-contained HTML report: a summary table "
        "sorted by score and, per file, the waveform, forgery "
        "probabilities, detected spans and their attribution, and "
        "the face crops the visual branch saw around its spans",
    )
    p.add_argument(
        "--meta",
        metavar="JSON",
        help="metadata with the true segments, drawn in the --report (names must match: see --root)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def time_ms(text: str | None) -> int | None:
    """ISO 8601 (``2026-11-22T10:00:00+00:00``) or epoch seconds -> epoch milliseconds."""
    if text is None:
        return None
    try:
        return round(float(text) * 1000)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"time {text!r} is neither ISO 8601 nor epoch seconds") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return round(when.timestamp() * 1000)


def truth(meta: str | None) -> dict | None:
    """``--meta``: stream id (the metadata's 'file') -> {label key: [Span]}."""
    if meta is None:
        return None
    from dfstream.engine.core.dataset import load_metadata
    from dfstream.reports.timeline import truth_spans

    return {item.file: truth_spans(item) for item in load_metadata(meta)}


def report_notes(detector, truth: dict | None, timelines: dict) -> list[str]:
    notes = [] if detector.trained else ["UNTRAINED model: random weights, the scores mean nothing."]
    data = (detector.training or {}).get("data", {}).get("description", "")
    if "synthetic" in data.lower():
        notes.append(f"The model was trained on {data}.")
    if truth is not None:
        missing = sum(1 for sid in timelines if sid not in truth)
        if missing:
            notes.append(
                f"{missing} stream(s) are not in the --meta file: no ground truth shown for them "
                "(name files as the metadata does with --root)."
            )
    return notes


def run(args) -> int:
    from dfstream.engine.runtime.stream import StreamProcessor
    from dfstream.reports.timeline import Timelines
    from dfstream.streams.replay import expand_inputs, replay
    from dfstream.streams.results import summary

    if bool(args.paths) == bool(args.from_topic):
        raise ConfigError("give media PATHs or --from-topic TOPIC (with --bootstrap), not both or neither")
    if args.meta and not args.report:
        raise ConfigError("--meta only adds ground truth to a --report; give --report FILE.html too")
    inputs = expand_inputs(args.paths, args.root) if args.paths else None
    if inputs == []:
        raise DfstreamError(f"no media files found in {' '.join(args.paths)}")
    true = truth(args.meta)
    loaded = load_model(args.model, args.config)
    detector, config = loaded.detector, with_chunk_seconds(loaded.config, args.chunk_seconds)
    detector.warn_if_untrained()
    processor = StreamProcessor(detector, attributor(detector, args.index, loaded.folder), keep_media=bool(args.report))
    results, timelines, shown = {}, (Timelines() if args.report else None), progress(not args.quiet)
    try:
        if args.from_topic:
            from dfstream.streams.topic_replay import replay_topic

            results = replay_topic(
                processor,
                kafka_config(config, args.bootstrap),
                args.from_topic,
                args.out,
                config.deployment.serve.max_chunk_bytes,
                args.from_offset,
                args.to_offset,
                time_ms(args.from_time),
                time_ms(args.to_time),
                shown,
                timelines,
            )
        else:
            replay(inputs, processor, args.out, config.deployment.replay.chunk_seconds, shown, results, timelines)
    finally:  # also on Ctrl-C: the summary and report of what was done
        print(summary(results, detector.describe()))
        print(f"\nwrote {Path(args.out) / 'verdicts.jsonl'}, predictions.json, scores.csv")
        if args.report:
            from dfstream.reports.replay_report import write_replay_report

            path = write_replay_report(
                args.report,
                timelines,
                detector.describe(),
                true,
                detector.config.localizer.onset,
                report_notes(detector, true, timelines),
                shown,
                visual="visual" in detector.modalities.values(),
            )
            print(f"wrote {path}")
    return 1 if any(r.error for r in results.values()) else 0
