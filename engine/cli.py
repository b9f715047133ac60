"""The ``dfstream`` command: parse arguments, load config, call a library function.

Every user error is a :class:`DfstreamError`, printed as one line without a
traceback (exit 2); ``replay`` exits 1 when any file failed.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.errors import ConfigError, DfstreamError

EPILOG = "Configuration keys and defaults: configs/default.yaml. Output schema: README.md."


def _detector(model: str | None, config_path: str | None, chunk_seconds: float | None = None):
    """The detector for replay: a checkpoint, or (loudly) random weights; and the replay config."""
    from engine.config import config_from_dict, read_yaml, replace
    raw = read_yaml(config_path) if config_path else {}
    config = config_from_dict(raw)
    if model:
        from engine.checkpoint import load_checkpoint
        overrides = {k: v for k, v in raw.items() if k in ("inference", "localizer", "replay")}
        ignored = sorted(set(raw) - set(overrides))
        if ignored:
            raise ConfigError(f"--config sets {', '.join(ignored)}, which a checkpoint fixes; "
                              "with --model only inference, localizer and replay may be set")
        detector = load_checkpoint(model, overrides)
    else:
        from engine.detector import Detector
        detector = Detector.from_config(config)
    config = detector.config
    if chunk_seconds is not None:
        config = replace(config, "replay.chunk_seconds", chunk_seconds)
    return detector, config


def cmd_replay(args) -> int:
    from engine.stream import StreamProcessor
    from streams.replay import expand_inputs, replay
    from streams.results import summary
    inputs = expand_inputs(args.paths, args.root)
    if not inputs:
        raise DfstreamError(f"no media files found in {' '.join(args.paths)}")
    detector, config = _detector(args.model, args.config, args.chunk_seconds)
    detector.warn_if_untrained()
    results = replay(inputs, StreamProcessor(detector), args.out, config.replay.chunk_seconds,
                     progress=not args.quiet)
    print(summary(results, detector.describe()))
    print(f"\nwrote {Path(args.out) / 'verdicts.jsonl'}, predictions.json, scores.csv")
    return 1 if any(r.error for r in results.values()) else 0


def cmd_train(args) -> int:
    from engine.config import load_config, replace
    from engine.training import train
    config = load_config(args.config)
    if args.epochs is not None:
        config = replace(config, "train.epochs", args.epochs)
    summary = train(args.meta, args.root, args.out, config, args.data_description, args.labels)
    best = summary["best_epoch"]
    print(f"saved {args.out} (best epoch {best['epoch']}: "
          + ", ".join(f"{k} {v}" for k, v in best.items() if k not in ("epoch", "best")) + ")")
    return 0


def cmd_eval(args) -> int:
    from engine.evaluation import evaluate, format_metrics
    result = evaluate(args.pred, args.meta, args.scores, args.labels, args.split)
    print(format_metrics(result))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


def cmd_toyset(args) -> int:
    from engine.toyset import make_toyset
    path = make_toyset(args.out, args.files, args.seed)
    print(f"wrote {path} ({args.files} SYNTHETIC files; see {Path(args.out) / 'README.md'})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dfstream", epilog=EPILOG,
        description="Streaming deepfake detection: forged time spans per segment of audio, "
                    "live (Kafka, call hook) and over archives (replay).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("replay", epilog=EPILOG, help="score archived media files",
                       description="Score archived files, folders (recursive) or globs through the live "
                                   "chunked streaming path. Writes OUT/verdicts.jsonl (schema dfstream.verdict/1), "
                                   "OUT/predictions.json (AV-Deepfake1M localization format) and OUT/scores.csv "
                                   "(file;score). Exit 1 if any file failed.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="media files, folders or quoted globs")
    p.add_argument("--out", default="dfstream-out", metavar="DIR", help="output folder (default: %(default)s)")
    p.add_argument("--model", metavar="DIR", help="checkpoint folder (model.safetensors + dfstream.json); "
                                                  "without it an UNTRAINED random model runs, with a warning")
    p.add_argument("--config", metavar="YAML", help="config overrides (with --model: inference, localizer, replay)")
    p.add_argument("--chunk-seconds", type=float, metavar="S",
                   help="chunk length the files are cut into (default: replay.chunk_seconds = 2.0)")
    p.add_argument("--root", metavar="DIR", help="name files relative to DIR in the outputs "
                                                 "(to match a metadata file's 'file' entries)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("train", epilog=EPILOG, help="train a detector on labelled data",
                       description="Train the heads on AV-Deepfake1M / LAV-DF-format data (split 'train'; "
                                   "'val' for validation, else train.val_fraction held out) and save the best "
                                   "epoch (lowest validation BCE) as a checkpoint.")
    p.add_argument("--meta", required=True, metavar="JSON", help="metadata file (AV-Deepfake1M or LAV-DF format)")
    p.add_argument("--root", required=True, metavar="DIR", help="folder the metadata's 'file' paths are relative to")
    p.add_argument("--out", required=True, metavar="DIR", help="checkpoint folder to write")
    p.add_argument("--config", metavar="YAML", help="config overrides (architecture, train, inference)")
    p.add_argument("--epochs", type=int, help="override train.epochs")
    p.add_argument("--labels", default="audio_fake_segments",
                   choices=["audio_fake_segments", "fake_segments"], help="which segments to learn (default: %(default)s)")
    p.add_argument("--data-description", metavar="TEXT",
                   help="what the data is, recorded in the checkpoint's card (say 'synthetic' if it is)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", epilog=EPILOG, help="compute AP/AR, AUC and EER",
                       description="AV-Deepfake1M metrics: AP@{0.5,0.75,0.9,0.95}, AR@{50,30,20,10,5} "
                                   "(IoU 0.5:0.05:0.95), the 1M-Deepfakes score, and with --scores AUC and EER.")
    p.add_argument("--pred", required=True, metavar="JSON", help="predictions {file: [[score, start, end], ...]}")
    p.add_argument("--meta", required=True, metavar="JSON", help="metadata with the true segments")
    p.add_argument("--scores", metavar="CSV", help="detection scores, lines file;score")
    p.add_argument("--labels", default="fake_segments",
                   choices=["fake_segments", "audio_fake_segments", "visual_fake_segments"],
                   help="which true segments to score against (default: %(default)s)")
    p.add_argument("--split", help="evaluate only metadata entries of this split")
    p.add_argument("--out", metavar="JSON", help="write the metrics here")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("toyset", help="write a tiny SYNTHETIC dataset (demo, tests)",
                       description="Write a tiny SYNTHETIC dataset (formant-shaped tones, not speech) with "
                                   "AV-Deepfake1M metadata, for the demo and smoke tests.")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the WAV files and metadata.json")
    p.add_argument("--files", type=int, default=48, help="number of files, 4-8 s each (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same files")
    p.set_defaults(func=cmd_toyset)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DfstreamError as e:
        print(f"dfstream: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dfstream: interrupted; results for the completed files were written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
