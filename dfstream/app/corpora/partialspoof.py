"""PartialSpoof (Zhang et al.): bona fide utterances with spoofed segments spliced in, labelled in time.

Official files read (ROOT is PartialSpoof's ``database/`` folder, or holds it):

* ``protocols/PartialSpoof_LA_cm_protocols/PartialSpoof.LA.cm.{train,dev,eval}.trl.txt``, lines
  ``SPEAKER FILE - ATTACK KEY`` (as ASVspoof 2019's; the utterance key is the 5th column, as the
  authors' ``cal_EER.sh`` reads it);
* ``{train,dev,eval}/con_data/rttm_2cls_0sil``, the segment labels in RTTM (``SPEAKER FILE 1
  START DUR <NA> <NA> LABEL <NA> <NA>``), as the authors' ``metric/SegmentEER.py`` reads them:
  spans labelled ``spoof`` are forged; where ``label2num/label2num_2cls_0sil`` exists, every label
  it maps to the same class as ``spoof`` is (the official class map), else a label other than
  ``spoof`` and ``bonafide`` is an error. Touching forged spans are merged;
* ``{train,dev,eval}/con_wav/FILE.wav``, whose duration is read from the WAV.

Splits train, val (dev), test (eval). ``segment_labels/*_seglab_*.npy`` (pickled dicts) are never
read: dfstream loads no pickles, and the RTTM holds the same labels at any resolution. A file
whose protocol key disagrees with its RTTM spans keeps both (``key`` and the spans) and is counted
in a warning.

Not verified against the real files (no copy here; read from the authors' repository and scripts):
that the database archives ship ``con_data/rttm_2cls_0sil`` (the authors' scripts read it from
there); the labels it holds besides ``bonafide`` and ``spoof``; the protocol's attack column.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from dfstream.app.corpora.common import Corpus, Utterance, parse_key, protocol_rows
from dfstream.engine.core.errors import DatasetError

log = logging.getLogger(__name__)

PARTS = (("train", "train"), ("dev", "val"), ("eval", "test"))
"""(PartialSpoof's set name, split)."""


def label_classes(base: Path) -> tuple[set[str], set[str]]:
    """``(forged, known)`` RTTM labels: by the official class map where it exists (forged: those it
    puts with ``spoof``), else ``spoof`` of ``bonafide`` and ``spoof``."""
    path = base / "label2num" / "label2num_2cls_0sil"
    if not path.is_file():
        return {"spoof"}, {"spoof", "bonafide"}
    classes = dict(line.split()[:2] for line in path.read_text().splitlines() if line.strip())
    if "spoof" not in classes:
        raise DatasetError(f"{path}: maps no label 'spoof'")
    return {label for label, number in classes.items() if number == classes["spoof"]}, set(classes)


def read_rttm(path: Path, forged: set[str], known: set[str], labels: Counter) -> dict[str, list[list[float]]]:
    """Forged spans per file from an RTTM (merged where they touch); ``labels`` counts every label seen."""
    spans: dict[str, list[list[float]]] = {}
    for where, fields in protocol_rows(path, 8):
        file, label = fields[1], fields[7]
        try:
            start, duration = float(fields[3]), float(fields[4])
        except ValueError:
            raise DatasetError(f"{where}: start and duration must be numbers: {fields[3:5]}") from None
        labels[label] += 1
        if label not in known:
            raise DatasetError(f"{where}: unknown label {label!r}; known: {', '.join(sorted(known))}")
        if label in forged and duration > 0:
            spans.setdefault(file, []).append([start, start + duration])
    for file, found in spans.items():
        found.sort()
        merged = [found[0]]
        for start, end in found[1:]:
            if start <= merged[-1][1] + 1e-6:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        spans[file] = merged
    return spans


def read(root: Path, track: str | None):
    base = root / "database" if (root / "database" / "protocols").is_dir() else root
    prefix = "" if base == root else "database/"
    forged, known = label_classes(base)
    disagree, labels = [], Counter()
    for part, split in PARTS:
        protocol = base / "protocols" / "PartialSpoof_LA_cm_protocols" / f"PartialSpoof.LA.cm.{part}.trl.txt"
        rttm = read_rttm(base / part / "con_data" / "rttm_2cls_0sil", forged, known, labels)
        for where, fields in protocol_rows(protocol, 5):
            name, attack, key = fields[1], fields[3], fields[4]
            spoof = parse_key(key, where)
            spans = tuple((s, e) for s, e in rttm.get(name, ()))
            if spoof != bool(spans):
                disagree.append(name)
            yield Utterance(
                f"{prefix}{part}/con_wav/{name}.wav",
                split,
                spoof,
                None if attack == "-" else attack,
                spans,
                {"speaker": fields[0]},
            )
    log.info("partialspoof: RTTM labels %s", ", ".join(f"{k} {n}" for k, n in sorted(labels.items())))
    if disagree:
        log.warning(
            "partialspoof: %d files' protocol key disagrees with their RTTM spans (kept as they are), e.g. %s",
            len(disagree),
            ", ".join(disagree[:3]),
        )


PARTIALSPOOF = Corpus(
    "partialspoof",
    "PartialSpoof: spoofed segments in bona fide utterances, forged spans from its RTTM labels",
    "PartialSpoof's database/: protocols/PartialSpoof_LA_cm_protocols/, {train,dev,eval}/con_wav/ and "
    "{train,dev,eval}/con_data/rttm_2cls_0sil",
    "the segment-level EER at 10-640 ms from --pred's spans, and the utterance EER from --scores",
    read,
)
