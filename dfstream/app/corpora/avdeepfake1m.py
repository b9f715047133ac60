"""AV-Deepfake1M (and ++) and LAV-DF: audio-visual corpora with forged spans per modality.

Both ship metadata close to the project's format; the importer merges their splits into one list
with paths relative to ROOT, normalises LAV-DF into the AV-Deepfake1M form and adds ``corpus``.
Durations and spans are the corpus's own (no file is probed; each must exist).

Official files read (relative to ROOT):

* **AV-Deepfake1M**: ``train_metadata.json`` and ``val_metadata.json``, JSON lists of ``{file,
  split, modify_type, fake_segments, audio_fake_segments, visual_fake_segments, audio_model,
  video_frames, audio_frames, ...}`` with ``file`` relative to ``train/`` (``val/``), as the
  official loader (``avdeepfake1m.loader``) reads them; the entries become ``train/FILE`` and
  ``val/FILE``, splits train and val, all other fields kept. The test set's ``test_files.txt``
  has no labels and is not imported (the summary says how many files it lists). AV-Deepfake1M++
  is read the same way.
* **LAV-DF**: ``metadata.json``, a JSON list of ``{file, split, fake_periods, modify_audio,
  modify_video, duration, n_fakes, ...}`` with ``file`` (``train/000000.mp4``) relative to ROOT;
  splits train, dev (-> val), test. ``fake_periods`` become ``fake_segments`` and, for the
  modified modalities, ``audio_fake_segments`` / ``visual_fake_segments``; the other fields are
  kept. LAV-DF names no generator (``audio_model`` null).

Not verified against the real files: that AV-Deepfake1M++ has the same two lists (a public
recipe reads its ``train_metadata.json`` so); that every entry of each list carries the three
segment lists (when the modality lists are absent they are derived from ``modify_type``, as
:mod:`dfstream.engine.core.dataset` does).
"""

from __future__ import annotations

import logging
from pathlib import Path

from dfstream.app.corpora.common import Corpus
from dfstream.engine.core.dataset import read_json
from dfstream.engine.core.errors import DatasetError

log = logging.getLogger(__name__)

MODIFY_TYPES = ("real", "audio_modified", "visual_modified", "both_modified")
LAVDF_SPLITS = {"train": "train", "dev": "val", "test": "test"}


def _entries(path: Path) -> list:
    entries = read_json(path, "metadata")
    if not isinstance(entries, list):
        raise DatasetError(f"{path} must be a JSON list of entries")
    return entries


def _segments(entry: dict, key: str, where: str) -> list:
    spans = entry.get(key)
    if not isinstance(spans, list) or any(not isinstance(s, list) or len(s) != 2 for s in spans):
        raise DatasetError(f"{where}: {key!r} must be [[start, end], ...]")
    return spans


def read_avdeepfake1m(root: Path, track: str | None):
    found = False
    for split in ("train", "val"):
        path = root / f"{split}_metadata.json"
        if not path.is_file():
            continue
        found = True
        for n, entry in enumerate(_entries(path)):
            where = f"{path} entry {n} ({entry.get('file', '?')})"
            if "file" not in entry or entry.get("modify_type") not in MODIFY_TYPES:
                raise DatasetError(f"{where}: needs 'file' and a 'modify_type' of {', '.join(MODIFY_TYPES)}")
            fake = _segments(entry, "fake_segments", where)
            kind = entry["modify_type"]
            parts = {}
            for key, modified in (
                ("audio_fake_segments", "audio_modified"),
                ("visual_fake_segments", "visual_modified"),
            ):
                derived = fake if kind in (modified, "both_modified") else []
                parts[key] = _segments(entry, key, where) if key in entry else derived
            yield {
                **entry,
                "file": f"{split}/{entry['file']}",
                "split": split,
                "fake_segments": fake,
                **parts,
                "audio_model": entry.get("audio_model"),
                "visual_model": entry.get("visual_model"),
            }
    if not found:
        raise DatasetError(f"avdeepfake1m: neither train_metadata.json nor val_metadata.json in {root}")
    test = root / "test_files.txt"
    if test.is_file():
        count = sum(1 for line in test.read_text().splitlines() if line.strip())
        log.info("avdeepfake1m: %s lists %d unlabelled test files: not imported", test, count)


def read_lavdf(root: Path, track: str | None):
    path = root / "metadata.json"
    for n, entry in enumerate(_entries(path)):
        where = f"{path} entry {n} ({entry.get('file', '?')})"
        if "file" not in entry or entry.get("split") not in LAVDF_SPLITS:
            raise DatasetError(f"{where}: needs 'file' and a 'split' of {', '.join(LAVDF_SPLITS)}")
        periods = _segments(entry, "fake_periods", where)
        audio, visual = bool(entry.get("modify_audio")), bool(entry.get("modify_video"))
        if periods and not (audio or visual):
            raise DatasetError(f"{where}: has fake_periods but modifies neither audio nor video")
        kind = {(True, True): "both_modified", (True, False): "audio_modified", (False, True): "visual_modified"}
        rest = {k: v for k, v in entry.items() if k not in ("fake_periods", "modify_audio", "modify_video")}
        yield {
            **rest,
            "split": LAVDF_SPLITS[entry["split"]],
            "modify_type": kind.get((audio, visual), "real") if periods else "real",
            "fake_segments": periods,
            "audio_fake_segments": periods if audio else [],
            "visual_fake_segments": periods if visual else [],
            "audio_model": None,
            "visual_model": None,
        }


AVDEEPFAKE1M = Corpus(
    "avdeepfake1m",
    "AV-Deepfake1M (or ++): audio-visual, forged spans per modality, splits train/val (test has no labels)",
    "train_metadata.json, val_metadata.json, train/ and val/ with the videos they list",
    "AP/AR and the 1M-Deepfakes score from --pred, AUC from --scores",
    read_avdeepfake1m,
)
LAVDF = Corpus(
    "lavdf",
    "LAV-DF: audio-visual, forged spans per modality, splits train/val (dev)/test",
    "metadata.json and the train/, dev/, test/ folders it lists",
    "AP/AR from --pred, AUC from --scores",
    read_lavdf,
)
