"""The ``dfstream`` command: one module per command, each parsing its arguments and calling the library.

Each command module has ``NAME``, ``STYLE`` (how its logs look: ``plain``, ``timed`` or ``json``,
:mod:`dfstream.app.logs`), ``add_parser(sub)`` and ``run(args)``; :data:`COMMANDS` lists them.
Every user error is a :class:`~dfstream.engine.core.errors.DfstreamError`, printed as one line
without a traceback (exit 2); ``replay`` exits 1 when any file failed; Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import sys

from dfstream.app import logs
from dfstream.app.cli import (
    call_hook,
    card,
    corpus,
    evaluate,
    fetch_encoders,
    fetch_face_model,
    index,
    inspect_file,
    produce,
    replay,
    serve,
    toyset,
    train,
)
from dfstream.app.cli.common import EPILOG
from dfstream.engine.core.errors import DfstreamError

COMMANDS = (
    replay,
    inspect_file,
    train,
    evaluate,
    card,
    corpus,
    index,
    call_hook,
    serve,
    produce,
    fetch_encoders,
    fetch_face_model,
    toyset,
)
"""The commands, in the order ``--help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dfstream",
        epilog=EPILOG,
        description="Streaming deepfake detection: forged time spans per segment of audio and video, "
        "live (Kafka, call hook) and over archives (replay).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub).set_defaults(func=command.run, style=command.STYLE)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = logs.use_style(args.style)
    try:
        return args.func(args)
    except DfstreamError as e:
        print(f"dfstream: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # each command has written (and said) what it completed
        print("dfstream: interrupted", file=sys.stderr)
        return 130
    finally:
        logs.stop(handler)


if __name__ == "__main__":
    sys.exit(main())
