"""The field's corpora, read from their official layouts into the project's metadata
(``dfstream corpus import``).

:data:`IMPORTERS` names each importable corpus: one module per corpus family, each reading that
corpus's official protocol files (its module doc lists them, and says what could not be verified
against the real files), :mod:`~dfstream.app.corpora.common` the rest. The metadata written is
the AV-Deepfake1M form :func:`dfstream.engine.core.dataset.load_metadata` reads, every entry with
``corpus`` (the metrics ``dfstream eval`` reports per corpus: :mod:`dfstream.app.corpus_metrics`).
"""

from __future__ import annotations

from pathlib import Path

from dfstream.app.corpora.asvspoof import ASVSPOOF5, ASVSPOOF2019, ASVSPOOF2021
from dfstream.app.corpora.avdeepfake1m import AVDEEPFAKE1M, LAVDF
from dfstream.app.corpora.common import Corpus, Imported, format_summary, import_corpus, summary, write_metadata
from dfstream.app.corpora.inthewild import INTHEWILD
from dfstream.app.corpora.partialspoof import PARTIALSPOOF
from dfstream.engine.core.errors import lookup
from dfstream.engine.core.progress import SILENT, Progress

IMPORTERS: dict[str, Corpus] = {
    c.name: c for c in (AVDEEPFAKE1M, LAVDF, ASVSPOOF2019, ASVSPOOF2021, ASVSPOOF5, PARTIALSPOOF, INTHEWILD)
}
"""Corpus name -> its importer, in the order ``--help`` lists them."""


def import_to(
    name: str, root, out, track: str | None = None, skip_missing: bool = False, progress: Progress = SILENT
) -> Imported:
    """Import corpus ``name`` from ``root`` and write its metadata to ``out``."""
    imported = import_corpus(lookup(IMPORTERS, name, "corpus"), root, track, skip_missing, progress)
    write_metadata(imported.entries, Path(out))
    return imported


__all__ = ["IMPORTERS", "Corpus", "Imported", "format_summary", "import_corpus", "import_to", "summary"]
