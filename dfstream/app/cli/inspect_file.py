"""``dfstream inspect``: one file scored as replay does, shown as a compact text timeline."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from dfstream.app.cli.common import EPILOG, INDEX_HELP, MODEL_HELP, attributor, load_model, with_chunk_seconds
from dfstream.app.cli.replay import truth
from dfstream.engine.core.errors import DfstreamError

NAME = "inspect"
STYLE = "plain"


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        epilog=EPILOG,
        help="a quick text timeline of one file",
        description="Score one media file (as replay does) and print a compact text timeline: "
        "the fused forgery probability per column, the detected spans by modality, "
        "the true spans with --meta, and the list of spans with their attribution. "
        "Writes no files. Exit 1 if the file failed to decode.",
    )
    p.add_argument("file", metavar="FILE", help="a media file")
    p.add_argument("--model", metavar="DIR", help=MODEL_HELP)
    p.add_argument("--index", metavar="DIR", help=INDEX_HELP)
    p.add_argument("--config", metavar="YAML", help="config overrides (as for replay)")
    p.add_argument("--chunk-seconds", type=float, metavar="S", help="chunk length (default: replay.chunk_seconds)")
    p.add_argument("--meta", metavar="JSON", help="metadata with the true segments to show")
    p.add_argument("--root", metavar="DIR", help="name the file relative to DIR (to match --meta's 'file')")
    p.add_argument("--width", type=int, metavar="COLS", help="columns of the timeline (default: fit the terminal)")
    return p


def run(args) -> int:
    from dfstream.engine.runtime.stream import StreamProcessor
    from dfstream.reports.terminal import render
    from dfstream.reports.timeline import StreamTimeline
    from dfstream.streams.replay import file_blocks

    path = Path(args.file)
    if not path.is_file():
        raise DfstreamError(f"no such file: {path}")
    stream_id = (
        path.as_posix() if args.root is None else Path(path).resolve().relative_to(Path(args.root).resolve()).as_posix()
    )
    true = truth(args.meta)
    loaded = load_model(args.model, args.config)
    detector, config = loaded.detector, with_chunk_seconds(loaded.config, args.chunk_seconds)
    detector.warn_if_untrained()
    processor = StreamProcessor(detector, attributor(detector, args.index, loaded.folder), keep_media=True)
    timeline = StreamTimeline(stream_id)
    try:
        blocks = file_blocks(path, config.deployment.replay.chunk_seconds, detector.media, detector.config.limits)
        for seq, (raw, final) in enumerate(blocks):
            block = processor.admit(stream_id, raw)
            timeline.add(processor.feed(stream_id, seq, block, final))
    except DfstreamError as e:
        timeline.errors.append(str(e))
    width = args.width or max(20, min(120, shutil.get_terminal_size().columns - 12))
    print(render(timeline, width, (true or {}).get(stream_id), detector.describe()))
    return 1 if timeline.errors else 0
