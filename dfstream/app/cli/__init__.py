"""The ``dfstream`` command: parse arguments, load config, call a library function.

Every user error is a :class:`DfstreamError`, printed as one line without a
traceback (exit 2); ``replay`` exits 1 when any file failed.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

from dfstream.engine.core.errors import ConfigError, DfstreamError

EPILOG = "Configuration keys and defaults: configs/default.yaml. Output schema: README.md."


MODEL_HELP = ("the model: a checkpoint folder (model.safetensors + dfstream.json); 'default' (the same as "
              "leaving it out): the model shipped with dfstream (dfstream.models/default, read its MODEL_CARD.md: "
              "trained on SYNTHETIC manipulations of real recordings); 'random': UNTRAINED random weights "
              "(tests only; said in every verdict)")
INDEX_HELP = ("attribution index (from `dfstream index build`); default: attribution.index from the config, else "
              "the model's own MODEL/index when it has one")


def _detector(model: str | None, config_path: str | None, chunk_seconds: float | None = None,
              call: bool = False):
    """The detector of ``--model`` (the shipped model by default, random weights by name, said
    loudly), its config, and its checkpoint folder (None for random weights).

    ``call`` gives it the call hook's geometry (``call_hook.hop_seconds`` and
    ``context_seconds`` as the inference hop and context)."""
    from dfstream.engine.core.config import config_from_dict, config_to_dict, read_yaml, replace
    from dfstream.engine.core.model_store import resolve_model
    raw = read_yaml(config_path) if config_path else {}
    config = config_from_dict(raw)
    if call:
        from dfstream.engine.runtime.callscreen import call_config
        config = call_config(config)
        raw = {**raw, "inference": config_to_dict(config)["inference"]}
    folder = resolve_model(model)
    if folder is not None:
        from dfstream.engine.runtime.checkpoint import DEPLOYMENT_SECTIONS, RUNTIME_SECTIONS, load_checkpoint
        overrides = {k: v for k, v in raw.items() if k in RUNTIME_SECTIONS}
        ignored = sorted(set(raw) - set(overrides) - set(DEPLOYMENT_SECTIONS))
        if ignored:
            raise ConfigError(f"--config sets {', '.join(ignored)}, which a checkpoint fixes; "
                              f"with a checkpoint only {', '.join(RUNTIME_SECTIONS)} may be set "
                              "(--model random builds untrained weights from the config's architecture)")
        detector = load_checkpoint(folder, overrides)
    else:
        from dfstream.engine.runtime.detector import Detector
        detector = Detector.from_config(config)
    config = dataclasses.replace(detector.config, kafka=config.kafka, serve=config.serve)
    if chunk_seconds is not None:
        config = replace(config, "replay.chunk_seconds", chunk_seconds)
    return detector, config, folder


def _attributor(detector, index_dir: str | None, model_dir: Path | None = None):
    """The attributor for ``--index``, else ``attribution.index``, else the model's own index (None when
    there is none)."""
    from dfstream.engine.core.model_store import model_index
    cfg = detector.config.attribution
    index_dir = index_dir or cfg.index or model_index(model_dir)
    if index_dir is None:
        return None
    from dfstream.fusion.attribution import AttributionIndex, Attributor, check_model
    index = AttributionIndex.load(index_dir)
    check_model(index, detector.model_id, detector.weights_sha256, detector.embedding_dim)
    threshold = cfg.threshold if cfg.threshold is not None else index.meta["threshold"]["value"]
    return Attributor(index, threshold, cfg.top_k, cfg.neighbours)


def _kafka_config(config, bootstrap: str | None):
    """``config.kafka`` with ``--bootstrap`` applied."""
    return config.kafka if bootstrap is None else dataclasses.replace(config.kafka, bootstrap_servers=bootstrap)


def _time_ms(text: str | None) -> int | None:
    """ISO 8601 (``2026-11-22T10:00:00+00:00``) or epoch seconds -> epoch milliseconds."""
    if text is None:
        return None
    import datetime as dt
    try:
        return round(float(text) * 1000)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"time {text!r} is neither ISO 8601 nor epoch seconds") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return round(when.timestamp() * 1000)


def _truth(meta: str | None) -> dict | None:
    """``--meta``: stream id (the metadata's 'file') -> {label key: [Span]}."""
    if meta is None:
        return None
    from dfstream.engine.core.dataset import load_metadata
    from dfstream.reports.timeline import truth_spans
    return {item.file: truth_spans(item) for item in load_metadata(meta)}


def _report_notes(detector, truth: dict | None, timelines: dict) -> list[str]:
    notes = [] if detector.trained else ["UNTRAINED model: random weights, the scores mean nothing."]
    data = (detector.training or {}).get("data", {}).get("description", "")
    if "synthetic" in data.lower():
        notes.append(f"The model was trained on {data}.")
    if truth is not None:
        missing = sum(1 for sid in timelines if sid not in truth)
        if missing:
            notes.append(f"{missing} stream(s) are not in the --meta file: no ground truth shown for them "
                         "(name files as the metadata does with --root).")
    return notes


def cmd_replay(args) -> int:
    from dfstream.engine.runtime.stream import StreamProcessor
    from dfstream.streams.replay import expand_inputs, replay
    from dfstream.streams.results import summary
    if bool(args.paths) == bool(args.from_topic):
        raise ConfigError("give media PATHs or --from-topic TOPIC (with --bootstrap), not both or neither")
    if args.meta and not args.report:
        raise ConfigError("--meta only adds ground truth to a --report; give --report FILE.html too")
    inputs = expand_inputs(args.paths, args.root) if args.paths else None
    if inputs == []:
        raise DfstreamError(f"no media files found in {' '.join(args.paths)}")
    truth = _truth(args.meta)
    detector, config, folder = _detector(args.model, args.config, args.chunk_seconds)
    detector.warn_if_untrained()
    processor = StreamProcessor(detector, _attributor(detector, args.index, folder), keep_media=bool(args.report))
    results, timelines = {}, ({} if args.report else None)
    try:
        if args.from_topic:
            from dfstream.streams.topic_replay import replay_topic
            results = replay_topic(processor, _kafka_config(config, args.bootstrap), args.from_topic, args.out,
                                   config.serve.max_chunk_bytes, args.from_offset, args.to_offset,
                                   _time_ms(args.from_time), _time_ms(args.to_time), progress=not args.quiet,
                                   timelines=timelines)
        else:
            replay(inputs, processor, args.out, config.replay.chunk_seconds, progress=not args.quiet,
                   results=results, timelines=timelines)
    finally:  # also on Ctrl-C: the summary and report of what was done
        print(summary(results, detector.describe()))
        print(f"\nwrote {Path(args.out) / 'verdicts.jsonl'}, predictions.json, scores.csv")
        if args.report:
            from dfstream.reports.replay_report import write_replay_report
            path = write_replay_report(args.report, timelines, detector.describe(), truth,
                                       detector.config.localizer.onset, _report_notes(detector, truth, timelines),
                                       progress=not args.quiet, visual="visual" in detector.branches)
            print(f"wrote {path}")
    return 1 if any(r.error for r in results.values()) else 0


def cmd_inspect(args) -> int:
    import shutil
    from dfstream.engine.runtime.stream import StreamProcessor
    from dfstream.reports.terminal import render
    from dfstream.reports.timeline import StreamTimeline
    from dfstream.streams.replay import file_blocks
    path = Path(args.file)
    if not path.is_file():
        raise DfstreamError(f"no such file: {path}")
    stream_id = path.as_posix() if args.root is None else Path(path).resolve().relative_to(
        Path(args.root).resolve()).as_posix()
    truth = _truth(args.meta)
    detector, config, folder = _detector(args.model, args.config, args.chunk_seconds)
    detector.warn_if_untrained()
    processor = StreamProcessor(detector, _attributor(detector, args.index, folder), keep_media=True)
    timeline = StreamTimeline(stream_id)
    try:
        for seq, (raw, final) in enumerate(file_blocks(path, config.replay.chunk_seconds, detector.config)):
            block = processor.admit(stream_id, raw)
            timeline.add(processor.feed(stream_id, seq, block, final))
    except DfstreamError as e:
        timeline.errors.append(str(e))
    width = args.width or max(20, min(120, shutil.get_terminal_size().columns - 12))
    print(render(timeline, width, (truth or {}).get(stream_id), detector.describe()))
    return 1 if timeline.errors else 0


def cmd_train(args) -> int:
    from dfstream.engine.core.config import load_config, replace
    from dfstream.app.training import train
    config = load_config(args.config)
    if args.epochs is not None:
        config = replace(config, "train.epochs", args.epochs)
    summary = train(args.meta, args.root, args.out, config, args.data_description, args.labels)
    best = summary["best_epoch"]
    print(f"saved {args.out} (best epoch {best['epoch']}: "
          + ", ".join(f"{k} {v}" for k, v in best.items() if k not in ("epoch", "best")) + ")")
    return 0


def cmd_eval(args) -> int:
    from dfstream.app.evaluation import evaluate_details, format_metrics
    if args.index is not None and args.verdicts is None:
        raise DfstreamError("attribution metrics (--index) need replay's verdicts.jsonl (--verdicts)")
    result, details = evaluate_details(args.pred, args.meta, args.scores, args.labels, args.split,
                                       args.verdicts, args.index, args.label_field)
    print(format_metrics(result))
    if args.report:
        import shlex
        from dfstream.reports.eval_report import write_eval_report
        command = "dfstream " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["eval"] else ""
        print(f"wrote {write_eval_report(args.report, result, details, command)}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


def cmd_index(args) -> int:
    from dfstream.fusion.attribution import read_sidecar
    if args.action == "info":
        sidecar = read_sidecar(args.index_dir)
    else:
        for name in ("meta", "root", "model"):
            if getattr(args, name) is None:
                raise DfstreamError(f"index {args.action} needs --{name}")
        from dfstream.app.indexing import add_to_index, build_index
        if args.action == "build":
            print("building the index (Ctrl-C leaves no index: a partial one would miss generators)",
                  file=sys.stderr)
            sidecar = build_index(args.meta, args.root, args.model, args.index_dir, args.label_field,
                                  args.labels, args.split, args.holdout, args.false_reject)
        else:
            sidecar = add_to_index(args.index_dir, args.meta, args.root, args.model, args.label_field,
                                   args.labels, args.split)
    threshold = sidecar.get("threshold", {})
    print(f"index {args.index_dir}: {sidecar['vectors']} spans, {sidecar['index_type']} "
          f"{sidecar['dim']}-d {sidecar['metric']}\nmodel {sidecar['model_id']}\n"
          f"open-set threshold {threshold.get('value')} ({threshold.get('method')})\n"
          f"created {sidecar['created']}, updated {sidecar['updated']}")
    for name, count in sorted(sidecar["counts"].items(), key=lambda kv: -kv[1]):
        print(f"  {count:8d}  {name}")
    return 0


def _read_token(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        token = Path(path).read_text().strip()
    except OSError as e:
        raise ConfigError(f"cannot read --token-file {path}: {e.strerror}") from None
    if len(token) < 16:
        raise ConfigError(f"the token in {path} is empty or shorter than 16 characters")
    return token


def cmd_call_hook(args) -> int:
    import asyncio
    import signal
    from dfstream.engine.runtime.callscreen import CallScreener, batch_scorer, call_processor
    from dfstream.streams.call_hook import CallHook, check_exposure
    token = _read_token(args.token_file)
    check_exposure(args.host, token)
    detector, config, folder = _detector(args.model, args.config, call=True)
    detector.warn_if_untrained()
    detector.warm_up()  # a call's first verdicts should not pay for first-call kernel selection
    processor = call_processor(config, detector, _attributor(detector, args.index, folder))
    hook = CallHook(lambda sid: CallScreener(config, processor, sid), config.call_hook, token,
                    batch_scorer(processor))
    print(f"{detector.describe()}\nverdict every {config.call_hook.hop_seconds} s of call audio; "
          f"VAD {'on' if config.call_hook.vad else 'off'}; token {'required' if token else 'off (loopback only)'}")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await hook.serve(args.host, args.port, stop=stop)
    asyncio.run(run())
    return 0


def cmd_serve(args) -> int:
    import signal
    import threading
    from dfstream.engine.runtime.stream import StreamProcessor
    from dfstream.streams.serve import Worker
    from dfstream.streams.serve_metrics import ServeMetrics
    detector, config, folder = _detector(args.model, args.config)
    detector.warn_if_untrained()
    detector.warm_up()
    serve = config.serve
    for name in ("in_topic", "out_topic", "dlq_topic", "group"):
        if getattr(args, name) is not None:
            serve = dataclasses.replace(serve, **{name: getattr(args, name)})
    metrics = ServeMetrics()
    if args.metrics_port is not None:
        metrics.serve(args.metrics_port, args.metrics_host)
    worker = Worker(StreamProcessor(detector, _attributor(detector, args.index, folder)),
                    _kafka_config(config, args.bootstrap), serve, metrics)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    worker.run(stop)
    return 0


def cmd_produce(args) -> int:
    from dfstream.engine.core.config import load_config
    from dfstream.streams.produce import produce_files
    from dfstream.streams.replay import expand_inputs
    inputs = expand_inputs(args.paths, args.root)
    if not inputs:
        raise DfstreamError(f"no media files found in {' '.join(args.paths)}")
    config = load_config(args.config)
    counts = produce_files(inputs, _kafka_config(config, args.bootstrap), args.topic, args.chunk_seconds,
                           args.realtime, config.serve.max_chunk_bytes, config.serve.partitions,
                           config.serve.create_topics)
    print(f"published {counts['chunks']} chunk(s), {counts['seconds']:.1f} media-s of {counts['files']} file(s) "
          f"to {args.topic}; {counts['failed']} file(s) failed")
    return 1 if counts["failed"] else 0


def cmd_fetch_face_model(args) -> int:
    from dfstream.modalities.visual.face_model import WHEEL, default_path, fetch
    out = Path(args.out) if args.out else default_path()
    if out.is_file() and not args.force:
        print(f"{out} is there already (--force fetches it again)")
        return 0
    print(f"downloading {WHEEL} from PyPI (~35 MB, not installed) for its face detector ...", file=sys.stderr)
    print(f"wrote {fetch(out, Path(args.wheel) if args.wheel else None)}")
    return 0


def cmd_toyset(args) -> int:
    from dfstream.app.toyset import make_toyset
    from dfstream.app.toyvideo import make_toy_av_set
    try:
        path = (make_toy_av_set if args.video else make_toyset)(args.out, args.files, args.seed)
    except KeyboardInterrupt:
        print(f"toyset interrupted: {Path(args.out) / 'metadata.json'} lists the files written so far",
              file=sys.stderr)
        raise
    print(f"wrote {path} ({args.files} SYNTHETIC files; see {Path(args.out) / 'README.md'})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dfstream", epilog=EPILOG,
        description="Streaming deepfake detection: forged time spans per segment of audio and video, "
                    "live (Kafka, call hook) and over archives (replay).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("replay", epilog=EPILOG, help="score archived media files",
                       description="Score archived files, folders (recursive) or globs through the live "
                                   "chunked streaming path (audio; with a model whose branches include visual, "
                                   "the video too: face crops, ViT, audio-visual fusion). Writes OUT/verdicts.jsonl (schema dfstream.verdict/1), "
                                   "OUT/predictions.json (AV-Deepfake1M localization format) and OUT/scores.csv "
                                   "(file;score). With --from-topic, the same over the chunks stored in a Kafka topic "
                                   "(one stream per key). Files are decoded scheduler.decode_workers at a time and "
                                   "scored in batches across files; results are written file by file, in input "
                                   "order. Exit 1 if any file failed.")
    p.add_argument("paths", nargs="*", metavar="PATH", help="media files, folders or quoted globs")
    p.add_argument("--out", default="dfstream-out", metavar="DIR", help="output folder (default: %(default)s)")
    p.add_argument("--from-topic", metavar="TOPIC", help="instead of files: re-run detection over the chunks "
                                                         "stored in this Kafka topic (every partition)")
    p.add_argument("--bootstrap", metavar="HOST:PORT", help="Kafka bootstrap servers (default: "
                                                            "kafka.bootstrap_servers from the config)")
    p.add_argument("--from-offset", type=int, metavar="N", help="topic: start at offset N in every partition")
    p.add_argument("--to-offset", type=int, metavar="N", help="topic: stop before offset N in every partition")
    p.add_argument("--from-time", metavar="T", help="topic: start at the first record at or after T "
                                                    "(ISO 8601, UTC if no zone, or epoch seconds)")
    p.add_argument("--to-time", metavar="T", help="topic: stop at the first record at or after T "
                                                  "(default: the end of each partition when replay starts)")
    p.add_argument("--model", metavar="DIR", help=MODEL_HELP)
    p.add_argument("--config", metavar="YAML", help="config overrides (with a checkpoint: inference, limits, "
                                                    "localizer, attribution, replay; kafka for --from-topic)")
    p.add_argument("--chunk-seconds", type=float, metavar="S",
                   help="chunk length the files are cut into (default: replay.chunk_seconds = 2.0)")
    p.add_argument("--root", metavar="DIR", help="name files relative to DIR in the outputs "
                                                 "(to match a metadata file's 'file' entries)")
    p.add_argument("--index", metavar="DIR", help=INDEX_HELP)
    p.add_argument("--report", metavar="HTML", help="also write a self-contained HTML report: a summary table "
                                                    "sorted by score and, per file, the waveform, forgery "
                                                    "probabilities, detected spans and their attribution")
    p.add_argument("--meta", metavar="JSON", help="metadata with the true segments, drawn in the --report "
                                                  "(names must match: see --root)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("inspect", epilog=EPILOG, help="a quick text timeline of one file",
                       description="Score one media file (as replay does) and print a compact text timeline: "
                                   "the fused forgery probability per column, the detected spans by modality, "
                                   "the true spans with --meta, and the list of spans with their attribution. "
                                   "Writes no files. Exit 1 if the file failed to decode.")
    p.add_argument("file", metavar="FILE", help="a media file")
    p.add_argument("--model", metavar="DIR", help=MODEL_HELP)
    p.add_argument("--index", metavar="DIR", help=INDEX_HELP)
    p.add_argument("--config", metavar="YAML", help="config overrides (as for replay)")
    p.add_argument("--chunk-seconds", type=float, metavar="S", help="chunk length (default: replay.chunk_seconds)")
    p.add_argument("--meta", metavar="JSON", help="metadata with the true segments to show")
    p.add_argument("--root", metavar="DIR", help="name the file relative to DIR (to match --meta's 'file')")
    p.add_argument("--width", type=int, metavar="COLS", help="columns of the timeline (default: fit the terminal)")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("train", epilog=EPILOG, help="train a detector on labelled data",
                       description="Train the heads on AV-Deepfake1M / LAV-DF-format data (split 'train'; "
                                   "'val' for validation, else train.val_fraction held out) and save the best "
                                   "epoch (lowest validation BCE) as a checkpoint.")
    p.add_argument("--meta", required=True, metavar="JSON", help="metadata file (AV-Deepfake1M or LAV-DF format)")
    p.add_argument("--root", required=True, metavar="DIR", help="folder the metadata's 'file' paths are relative to")
    p.add_argument("--out", required=True, metavar="DIR", help="checkpoint folder to write")
    p.add_argument("--config", metavar="YAML", help="config overrides (architecture, train, inference)")
    p.add_argument("--epochs", type=int, help="override train.epochs")
    p.add_argument("--labels", choices=["audio_fake_segments", "visual_fake_segments", "fake_segments"],
                   help="which segments the fused curve learns (default: the branch's own for a one-branch "
                        "model, fake_segments for audio+visual; each branch also learns its modality's)")
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
    p.add_argument("--verdicts", metavar="JSONL", help="replay's verdicts.jsonl: AP/AR per modality (audio spans "
                                                       "vs audio/audio-visual detections, visual likewise); with "
                                                       "--index also attribution (top-1, known-vs-unknown AUROC)")
    p.add_argument("--index", metavar="DIR", help="the attribution index the verdicts used: its generators are 'known'")
    p.add_argument("--label-field", default="audio_model", help="metadata field naming a span's generator "
                                                                "(default: %(default)s)")
    p.add_argument("--out", metavar="JSON", help="write the metrics here")
    p.add_argument("--report", metavar="HTML", help="also write a self-contained HTML report: the metrics table, "
                                                    "ROC and DET curves (with --scores), AP vs IoU, and the "
                                                    "attribution confusion matrix (with --verdicts)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("index", epilog=EPILOG, help="build, extend or describe an attribution index",
                       description="Attribution index of known generators. build: embed the labelled forged spans "
                                   "of a dataset with a checkpoint's span embeddings into a FAISS index, and "
                                   "calibrate the open-set threshold on held-out spans. add: append spans (same "
                                   "model). info: print the sidecar and the spans per generator.")
    p.add_argument("action", choices=["build", "add", "info"])
    p.add_argument("index_dir", metavar="INDEX_DIR", help="the index folder (written by build)")
    p.add_argument("--meta", metavar="JSON", help="metadata (AV-Deepfake1M / LAV-DF format)")
    p.add_argument("--root", metavar="DIR", help="folder the metadata's paths are relative to")
    p.add_argument("--model", metavar="DIR", help="checkpoint whose span embeddings the index holds")
    p.add_argument("--label-field", default="audio_model", help="metadata field naming the generator "
                                                                "(default: %(default)s)")
    p.add_argument("--labels", default="audio_fake_segments",
                   choices=["audio_fake_segments", "visual_fake_segments", "fake_segments"],
                   help="which spans to embed (default: %(default)s)")
    p.add_argument("--split", default="train", help="metadata split to use (default: %(default)s)")
    p.add_argument("--holdout", type=float, default=0.2, help="build: share of each generator's spans held "
                                                              "out to calibrate the threshold (default: %(default)s)")
    p.add_argument("--false-reject", type=float, default=0.05, help="build: share of held-out known spans the "
                                                                    "threshold may call unknown (default: %(default)s)")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("call-hook", epilog=EPILOG, help="WebSocket server for live call screening",
                       description="Serve a WebSocket that telephony platforms stream calls into: the JSON "
                                   "media-stream protocol (base64 8 kHz mu-law; events connected, start, media, mark, "
                                   "stop) or, with ?mode=raw&rate=8000|16000, binary 16-bit PCM. Answers a 'verdict' "
                                   "event (score, label likely-synthetic / likely-genuine / no-speech, detections, "
                                   "attribution) for every call_hook.hop_seconds of audio and a 'summary' on stop. "
                                   "Runs every batch shape through the model before listening (a few seconds), so "
                                   "the first calls do not pay for kernel selection.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s); any "
                                                       "non-loopback address requires --token-file")
    p.add_argument("--port", type=int, default=8765, help="port (default: %(default)s)")
    p.add_argument("--config", metavar="YAML", help="config overrides (call_hook section: hop, VAD, limits)")
    p.add_argument("--token-file", metavar="F", help="file holding the token clients must present "
                                                     "(Authorization: Bearer, X-Dfstream-Token or ?token=)")
    p.add_argument("--model", metavar="DIR", help=MODEL_HELP)
    p.add_argument("--index", metavar="DIR", help=INDEX_HELP)
    p.set_defaults(func=cmd_call_hook)

    p = sub.add_parser("serve", epilog=EPILOG, help="Kafka worker: chunks in, verdicts out",
                       description="Join a Kafka consumer group on the input topic (key = stream id, value = one "
                                   "media chunk, headers dfs-seq, dfs-t0, dfs-final, content-type), score each chunk "
                                   "with per-stream state, and produce one dfstream.verdict/1 JSON per chunk to the "
                                   "output topic; chunks that break the contract or do not decode go to the "
                                   "dead-letter topic with a dfs-error header. At-least-once: offsets are committed "
                                   "after the verdicts are acknowledged. Run more workers with the same --group to "
                                   "scale out. SIGTERM: finish queued chunks, commit, leave the group. The model is warmed up "
                                   "(every batch shape run once) before the worker joins the group.")
    p.add_argument("--bootstrap", metavar="HOST:PORT[,...]", help="Kafka bootstrap servers (default: "
                                                                  "kafka.bootstrap_servers from the config)")
    p.add_argument("--in-topic", help="input topic (default: serve.in_topic = media.segments)")
    p.add_argument("--out-topic", help="verdict topic (default: serve.out_topic = media.verdicts)")
    p.add_argument("--dlq-topic", help="dead-letter topic (default: serve.dlq_topic = media.segments.dlq)")
    p.add_argument("--group", help="consumer group (default: serve.group = dfstream)")
    p.add_argument("--config", metavar="YAML", help="config overrides (kafka: SASL/SSL client settings; serve: "
                                                    "topics, size limit, queue; limits: what decoded chunks may be; inference, "
                                                    "localizer)")
    p.add_argument("--model", metavar="DIR", help=MODEL_HELP)
    p.add_argument("--index", metavar="DIR", help=INDEX_HELP)
    p.add_argument("--metrics-port", type=int, metavar="PORT", help="serve Prometheus metrics on this port")
    p.add_argument("--metrics-host", default="127.0.0.1", help="address of the metrics endpoint (default: %(default)s)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("produce", epilog=EPILOG, help="publish archived media to a Kafka topic as chunks",
                       description="Cut media files into chunks of stream time and publish them in the serve "
                                   "contract's format (key = stream id; headers dfs-seq, dfs-final, content-type). "
                                   "Audio files go as raw float32 PCM at 16 kHz with dfs-t0, cut exactly as replay "
                                   "cuts them; files with video as self-contained Matroska segments cut at keyframes "
                                   "(packets copied, not re-encoded, with the file's own timestamps and no dfs-t0; a "
                                   "segment lasts at least --chunk-seconds, as long as the keyframe interval allows). "
                                   "Waits for every chunk to be acknowledged.")
    p.add_argument("paths", nargs="+", metavar="FILE", help="media files, folders or quoted globs")
    p.add_argument("--bootstrap", metavar="HOST:PORT", help="Kafka bootstrap servers (default: from the config)")
    p.add_argument("--topic", default="media.segments", help="topic to publish to (default: %(default)s)")
    p.add_argument("--chunk-seconds", type=float, default=2.0, metavar="S", help="chunk length (default: %(default)s)")
    p.add_argument("--realtime", action="store_true", help="send each chunk when its audio would have been heard")
    p.add_argument("--root", metavar="DIR", help="name streams relative to DIR (as replay --root)")
    p.add_argument("--config", metavar="YAML", help="config (kafka section; serve.max_chunk_bytes, partitions)")
    p.set_defaults(func=cmd_produce)

    p = sub.add_parser("fetch-face-model", help="fetch the BlazeFace face detector once (PyPI)",
                       description="Download MediaPipe's wheel from PyPI (pip download --no-deps; it is not "
                                   "installed), take its short-range BlazeFace face detector (Apache-2.0), check "
                                   "its SHA-256 and convert it for torch. The visual branch's face_detector "
                                   "'blazeface' reads it; nothing is downloaded at run time. "
                                   "Default place: $DFSTREAM_FACE_MODEL, else "
                                   "$XDG_CACHE_HOME/dfstream/blazeface_short_range.safetensors (~/.cache).")
    p.add_argument("--out", metavar="FILE", help="where to write it (default: the default place above)")
    p.add_argument("--wheel", metavar="WHL", help="use this mediapipe wheel instead of downloading one")
    p.add_argument("--force", action="store_true", help="fetch again even if the file exists")
    p.set_defaults(func=cmd_fetch_face_model)

    p = sub.add_parser("toyset", help="write a tiny SYNTHETIC dataset (demo, tests)",
                       description="Write a tiny SYNTHETIC dataset (formant-shaped tones, not speech) with "
                                   "AV-Deepfake1M metadata, for the demo and smoke tests. With --video: MP4s "
                                   "(H.264 + AAC) of a drawn cartoon face whose mouth follows the toy audio; "
                                   "audio, visual (mouth region blended, frozen or shuffled) or both forged.")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the media files and metadata.json")
    p.add_argument("--files", type=int, default=96, help="number of files, 4-8 s each (--video: 3-6 s) "
                                                         "(default: %(default)s)")
    p.add_argument("--video", action="store_true", help="audio-visual MP4s instead of audio-only WAVs")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same files")
    p.set_defaults(func=cmd_toyset)
    return parser


def _log_to_stderr() -> logging.Handler:
    """The library's ``dfstream.*`` loggers at INFO on stderr (serve's JSON-lines logger has its own handler);
    returns the handler, which :func:`main` removes when the command ends."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    log = logging.getLogger("dfstream")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    return handler


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = _log_to_stderr()
    try:
        return args.func(args)
    except DfstreamError as e:
        print(f"dfstream: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # each command has written (and said) what it completed
        print("dfstream: interrupted", file=sys.stderr)
        return 130
    finally:
        logging.getLogger("dfstream").removeHandler(handler)


if __name__ == "__main__":
    sys.exit(main())
