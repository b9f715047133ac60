"""What the corpus importers share: the protocol's record of a file, durations from the audio itself,
the missing-file rule, the metadata entry, writing and the summary.

An importer reads its corpus's official protocol files and yields one :class:`Utterance` per
listed audio file (audio-only corpora) or one finished metadata entry (the audio-visual corpora,
whose metadata already is in the project's format). :func:`import_corpus` then checks that every
listed file is on disk (a missing one is an error unless ``skip_missing``: nothing is lost
silently), reads each utterance's duration from its audio and writes the entries of
:mod:`dfstream.engine.core.dataset`'s AV-Deepfake1M form, each with ``"corpus"``.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dfstream.engine.core.errors import DatasetError, DfstreamError
from dfstream.engine.core.progress import SILENT, Progress, tracked

log = logging.getLogger(__name__)

KEYS = {"bonafide": False, "bona-fide": False, "spoof": True}
"""The official utterance keys (In-the-Wild writes ``bona-fide``) -> forged."""


@dataclass(frozen=True)
class Utterance:
    """One audio file as a corpus's protocol lists it.

    ``file`` is relative to the corpus root; ``attack`` the attack or generator label (None for
    bona fide or where the corpus names none); ``spans`` the forged spans in seconds, or None for
    an utterance-level corpus, where a spoofed file is forged from 0 to its end; ``extra`` the
    protocol's other columns worth keeping (speaker, codec, ...).
    """

    file: str
    split: str
    spoof: bool
    attack: str | None = None
    spans: tuple[tuple[float, float], ...] | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Corpus:
    """One importable corpus: ``read(root, track)`` yields :class:`Utterance` or finished entries.

    ``layout`` says what ROOT must hold and ``metric`` what ``dfstream eval`` reports for it
    (``--help``); ``tracks`` the accepted ``--track`` values, the first the default (empty: none).
    """

    name: str
    title: str
    layout: str
    metric: str
    read: Callable[[Path, str | None], Iterable]
    tracks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Imported:
    """An import's metadata entries and the listed files it skipped as missing (``skip_missing``)."""

    entries: list[dict]
    skipped: list[str]


def parse_key(key: str, where: str) -> bool:
    """Whether an official key (``bonafide``/``spoof``) says forged; a DatasetError for anything else."""
    try:
        return KEYS[key.strip().lower()]
    except KeyError:
        raise DatasetError(f"{where}: key {key!r} is neither bonafide nor spoof") from None


def protocol_rows(path: Path, columns: int) -> Iterable[tuple[str, list[str]]]:
    """``(where, fields)`` of each non-empty line of a whitespace-separated protocol file, which must
    have at least ``columns`` fields; a missing file is a DatasetError naming it."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise DatasetError(f"not found: {path}") from None
    for n, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < columns:
            raise DatasetError(f"{path}:{n}: expected {columns} columns, got {len(fields)}: {line!r}")
        yield f"{path}:{n}", fields


def first_existing(*paths: Path) -> Path:
    """The first of ``paths`` that exists; a DatasetError listing them all when none does."""
    for path in paths:
        if path.exists():
            return path
    raise DatasetError("not found: " + " nor ".join(str(p) for p in paths))


def probe_duration(path: Path) -> float:
    """The duration (s) of the first audio track of ``path``, from the file itself.

    The track's own length where the container declares it (FLAC's sample count, a WAV's data
    size: exact), else the container's, else the decoded samples counted.
    """
    from dfstream.engine.media.decode import open_media

    try:
        with open_media(path) as container:
            if not container.streams.audio:
                raise DatasetError(f"{path}: has no audio track")
            stream = container.streams.audio[0]
            if stream.duration is not None and stream.time_base:
                return float(stream.duration * stream.time_base)
            if container.duration is not None:
                import av

                return container.duration / av.time_base
            samples = sum(frame.samples for frame in container.decode(stream))
            return samples / stream.sample_rate
    except DatasetError:
        raise
    except DfstreamError as e:
        raise DatasetError(f"{path}: cannot read its duration: {e}") from None


def utterance_entry(corpus: str, utterance: Utterance, duration: float) -> dict:
    """The metadata entry of an audio-only file: forged spans in the fused and audio labels, none visual."""
    if utterance.spans is None:
        spans = [[0.0, duration]] if utterance.spoof else []
    else:
        spans = [[float(s), float(e)] for s, e in utterance.spans]
    return {
        "file": utterance.file,
        "split": utterance.split,
        "modify_type": "audio_modified" if spans else "real",
        "fake_segments": spans,
        "audio_fake_segments": spans,
        "visual_fake_segments": [],
        "audio_model": utterance.attack if utterance.spoof else None,
        "visual_model": None,
        "corpus": corpus,
        "key": "spoof" if utterance.spoof else "bonafide",
        "duration": duration,
        **utterance.extra,
    }


def _missing(root: Path, files: list[str], corpus: str, skip_missing: bool) -> set[str]:
    """The listed files not on disk under ``root`` (an error unless ``skip_missing``); a file listed twice is one."""
    duplicated = [f for f, n in Counter(files).items() if n > 1]
    if duplicated:
        raise DatasetError(f"{corpus}: {len(duplicated)} files are listed more than once, e.g. {duplicated[:3]}")
    missing = [f for f in files if not (root / f).is_file()]
    if missing and not skip_missing:
        raise DatasetError(
            f"{len(missing)} of the {len(files)} files {corpus}'s protocol lists are missing under {root}, "
            f"e.g. {', '.join(missing[:3])}; --skip-missing imports the others and says how many it skipped"
        )
    return set(missing)


def import_corpus(
    corpus: Corpus, root, track: str | None = None, skip_missing: bool = False, progress: Progress = SILENT
) -> Imported:
    """Read ``corpus`` from its official layout under ``root`` into metadata entries (see the module doc)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{corpus.name}: ROOT {root} is not a folder")
    if corpus.tracks:
        track = track or corpus.tracks[0]
        if track not in corpus.tracks:
            raise DatasetError(f"{corpus.name} has no track {track!r}; valid: {', '.join(corpus.tracks)}")
    elif track is not None:
        raise DatasetError(f"{corpus.name} has no tracks; leave out --track")
    records = list(corpus.read(root, track))
    if not records:
        raise DatasetError(f"{corpus.name}: the protocol under {root} lists no files")
    missing = _missing(
        root, [r.file if isinstance(r, Utterance) else r["file"] for r in records], corpus.name, skip_missing
    )
    entries = []
    for record in tracked(progress, records, f"{corpus.name}: reading files", "file"):
        if isinstance(record, Utterance):
            if record.file not in missing:
                entries.append(utterance_entry(corpus.name, record, probe_duration(root / record.file)))
        elif record["file"] not in missing:
            entries.append({**record, "corpus": corpus.name})
    if missing:
        log.warning("%s: skipped %d listed files missing under %s (--skip-missing)", corpus.name, len(missing), root)
    return Imported(entries, sorted(missing))


def write_metadata(entries: list[dict], path) -> Path:
    """Write the entries as a JSON list, one entry a line (``load_metadata`` reads it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = ",\n".join(json.dumps(e, ensure_ascii=False) for e in entries)
    path.write_text(f"[\n{body}\n]\n")
    return path


def summary(entries: list[dict]) -> dict:
    """Files, bona fide and forged files per split, and forged files per attack/generator label."""
    splits: dict[str, Counter] = {}
    attacks: Counter = Counter()
    for e in entries:
        forged = e.get("modify_type", "real") != "real" or e.get("key") == "spoof"
        counts = splits.setdefault(e["split"], Counter())
        counts["files"] += 1
        counts["spoof" if forged else "bonafide"] += 1
        if forged:
            attacks[e.get("audio_model") or e.get("visual_model") or "(none named)"] += 1
    return {
        "files": len(entries),
        "splits": {s: {k: c[k] for k in ("files", "bonafide", "spoof")} for s, c in splits.items()},
        "attacks": dict(sorted(attacks.items())),
    }


def format_summary(name: str, imported: Imported, out: Path) -> str:
    """The summary :func:`summary` as lines for the terminal."""
    s = summary(imported.entries)
    lines = [f"{name}: {s['files']} files -> {out}", f"  {'split':8s} {'files':>8s} {'bonafide':>9s} {'spoof':>8s}"]
    for split, c in s["splits"].items():
        lines.append(f"  {split:8s} {c['files']:8d} {c['bonafide']:9d} {c['spoof']:8d}")
    if s["attacks"]:
        lines.append("  forged files per attack/generator: " + ", ".join(f"{a} {n}" for a, n in s["attacks"].items()))
    if imported.skipped:
        lines.append(f"  skipped {len(imported.skipped)} listed files missing on disk (--skip-missing)")
    return "\n".join(lines)
