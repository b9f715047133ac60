"""``dfstream produce``: archived media published to a Kafka topic as chunks of the serve contract."""

from __future__ import annotations

import argparse

from dfstream.app.cli.common import EPILOG, kafka_config
from dfstream.engine.core.errors import DfstreamError

NAME = "produce"
STYLE = "plain"


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        epilog=EPILOG,
        help="publish archived media to a Kafka topic as chunks",
        description="Cut media files into chunks of stream time and publish them in the serve "
        "contract's format (key = stream id; headers dfs-seq, dfs-final, content-type). "
        "Audio files go as raw float32 PCM at 16 kHz with dfs-t0, cut exactly as replay "
        "cuts them; files with video as self-contained Matroska segments cut at keyframes "
        "(packets copied, not re-encoded, with the file's own timestamps and no dfs-t0; a "
        "segment lasts at least --chunk-seconds, as long as the keyframe interval allows). "
        "Waits for every chunk to be acknowledged.",
    )
    p.add_argument("paths", nargs="+", metavar="FILE", help="media files, folders or quoted globs")
    p.add_argument("--bootstrap", metavar="HOST:PORT", help="Kafka bootstrap servers (default: from the config)")
    p.add_argument("--topic", default="media.segments", help="topic to publish to (default: %(default)s)")
    p.add_argument("--chunk-seconds", type=float, default=2.0, metavar="S", help="chunk length (default: %(default)s)")
    p.add_argument("--realtime", action="store_true", help="send each chunk when its audio would have been heard")
    p.add_argument("--root", metavar="DIR", help="name streams relative to DIR (as replay --root)")
    p.add_argument("--config", metavar="YAML", help="config (kafka section; serve.max_chunk_bytes, partitions)")
    return p


def run(args) -> int:
    from dfstream.app.config import load_config
    from dfstream.streams.produce import produce_files
    from dfstream.streams.replay import expand_inputs

    inputs = expand_inputs(args.paths, args.root)
    if not inputs:
        raise DfstreamError(f"no media files found in {' '.join(args.paths)}")
    config = load_config(args.config)
    serve = config.deployment.serve
    counts = produce_files(
        inputs,
        kafka_config(config, args.bootstrap),
        args.topic,
        args.chunk_seconds,
        args.realtime,
        serve.max_chunk_bytes,
        serve.partitions,
        serve.create_topics,
    )
    print(
        f"published {counts['chunks']} chunk(s), {counts['seconds']:.1f} media-s of {counts['files']} file(s) "
        f"to {args.topic}; {counts['failed']} file(s) failed"
    )
    return 1 if counts["failed"] else 0
