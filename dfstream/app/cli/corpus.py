"""``dfstream corpus import``: one of the field's corpora, from its official layout, into metadata."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from dfstream.app.cli.common import EPILOG
from dfstream.app.logs import progress

NAME = "corpus"
STYLE = "plain"


def _fill(text: str, first: str = "      ", rest: str = "      ") -> str:
    """``text`` wrapped at 100 columns (never inside a path or a hyphenated name), indented."""
    return textwrap.fill(
        text, 100, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False, break_long_words=False
    )


def _corpora() -> str:
    from dfstream.app.corpora import IMPORTERS

    lines = []
    for name, corpus in IMPORTERS.items():
        tracks = f" (--track {'|'.join(corpus.tracks)}, default {corpus.tracks[0]})" if corpus.tracks else ""
        lines.append(_fill(f"{name}{tracks}: {corpus.title}.", "  "))
        lines.append(_fill(f"ROOT holds {corpus.layout}."))
        lines.append(_fill(f"eval reports {corpus.metric}."))
    return "\n".join(lines)


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="import one of the field's corpora into metadata",
        description=_fill(
            "import: read corpus NAME from its official layout and protocol files under ROOT and write "
            "the project's metadata (AV-Deepfake1M form, every entry with 'corpus'; paths relative to "
            "ROOT, so replay with --root ROOT). An utterance-level corpus's spoofed file is one forged "
            "span over the whole file, its duration read from the audio; attack ids go to audio_model. "
            "A file the protocol lists but ROOT lacks is an error unless --skip-missing. `dfstream "
            "eval` reports each corpus's own metric when the metadata names it. NAME is one of:",
            "",
            "",
        )
        + "\n\n"
        + _corpora(),
    )
    p.add_argument("action", choices=["import"])
    p.add_argument("name", metavar="NAME", help="the corpus (listed above)")
    p.add_argument("root", metavar="ROOT", help="the folder holding the corpus as its download unpacks")
    p.add_argument("--out", required=True, metavar="METADATA.json", help="where to write the metadata")
    p.add_argument("--track", help="the corpus's track, where it has several (listed above)")
    p.add_argument(
        "--skip-missing",
        action="store_true",
        help="leave out listed files missing under ROOT (and say how many) instead of stopping",
    )
    return p


def run(args) -> int:
    from dfstream.app.corpora import format_summary, import_to

    imported = import_to(args.name, args.root, args.out, args.track, args.skip_missing, progress())
    print(format_summary(args.name, imported, Path(args.out)))
    return 0
