"""In-the-Wild (Müller et al., 2022): real-world bona fide and deepfake recordings of public figures.

Official files read: ``release_in_the_wild/meta.csv`` (ROOT is that folder or holds it), a CSV
with the header ``file,speaker,label``, ``label`` ``bona-fide`` or ``spoof``, and the WAVs it
names beside it. Utterance-level: a spoofed file is forged from 0 to its end (read from the WAV).
The corpus names no generator (``audio_model`` null) and has no splits: everything is test.

Not verified against the real file: nothing beyond the header and the two labels, which public
loaders agree on (``bonafide`` is accepted as well).
"""

from __future__ import annotations

import csv
from pathlib import Path

from dfstream.app.corpora.common import Corpus, Utterance, first_existing, parse_key
from dfstream.engine.core.errors import DatasetError


def read(root: Path, track: str | None):
    meta = first_existing(root / "meta.csv", root / "release_in_the_wild" / "meta.csv")
    prefix = "" if meta.parent == root else meta.parent.relative_to(root).as_posix() + "/"
    with meta.open(newline="", encoding="utf-8") as f:
        rows = csv.DictReader(f)
        if not {"file", "label"} <= set(rows.fieldnames or ()):
            raise DatasetError(f"{meta}: expected the columns file,speaker,label, got {rows.fieldnames}")
        for n, row in enumerate(rows, 2):
            spoof = parse_key(row["label"], f"{meta}:{n}")
            speaker = (row.get("speaker") or "").strip()
            yield Utterance(prefix + row["file"].strip(), "test", spoof, extra={"speaker": speaker} if speaker else {})


INTHEWILD = Corpus(
    "inthewild",
    "In-the-Wild: real-world deepfakes of public figures, utterance-level, split test, no generator labels",
    "release_in_the_wild/ with meta.csv (file,speaker,label) and its WAVs (or ROOT is that folder)",
    "the EER (ASVspoof's definition), from --scores",
    read,
)
