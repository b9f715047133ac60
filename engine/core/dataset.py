"""Dataset metadata in the AV-Deepfake1M and LAV-DF formats.

AV-Deepfake1M: a JSON list of ``{file, split, modify_type, fake_segments,
audio_fake_segments, visual_fake_segments, ...}``. LAV-DF: ``{file, split,
fake_periods, modify_audio, modify_video, ...}``. Segments are
``[[start_s, end_s], ...]``. Both load into :class:`Item`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from dfstream.engine.core.errors import DatasetError
from dfstream.engine.core.types import Span

LABEL_KEYS = ("fake_segments", "audio_fake_segments", "visual_fake_segments")


@dataclass(frozen=True)
class Item:
    """One labelled file: path relative to the dataset root, split, spans per label key."""

    file: str
    split: str
    segments: dict  # label key -> tuple[Span, ...]
    raw: dict

    @property
    def is_fake(self) -> bool:
        return bool(self.segments["fake_segments"])


def _spans(value, where: str) -> tuple[Span, ...]:
    try:
        return tuple(Span(float(s), float(e)) for s, e in value)
    except (TypeError, ValueError) as e:
        raise DatasetError(f"{where}: segments must be [[start, end], ...]: {e}") from None


def _item(entry: dict, index: int) -> Item:
    where = f"metadata entry {index} ({entry.get('file', '?')})"
    if "file" not in entry:
        raise DatasetError(f"{where}: has no 'file'")
    if "fake_periods" in entry and "fake_segments" not in entry:  # LAV-DF
        periods = _spans(entry["fake_periods"], where)
        segments = {
            "fake_segments": periods,
            "audio_fake_segments": periods if entry.get("modify_audio") else (),
            "visual_fake_segments": periods if entry.get("modify_video") else (),
        }
    elif "fake_segments" in entry:  # AV-Deepfake1M
        fake = _spans(entry["fake_segments"], where)
        kind = entry.get("modify_type", "")

        def part(key, modified):
            if key in entry:
                return _spans(entry[key], where)
            return fake if kind in (modified, "both_modified") else ()

        segments = {
            "fake_segments": fake,
            "audio_fake_segments": part("audio_fake_segments", "audio_modified"),
            "visual_fake_segments": part("visual_fake_segments", "visual_modified"),
        }
    else:
        raise DatasetError(f"{where}: neither 'fake_segments' (AV-Deepfake1M) nor 'fake_periods' (LAV-DF)")
    return Item(entry["file"], entry.get("split", "train"), segments, entry)


def read_json(path: str | Path, what: str):
    """Parse the JSON file ``path``; ``what`` names it in the DatasetError if it cannot."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DatasetError(f"{what} file not found: {path}") from None
    except json.JSONDecodeError as e:
        raise DatasetError(f"{what} {path} is not valid JSON: {e}") from None


def load_metadata(path: str | Path) -> list[Item]:
    """Read an AV-Deepfake1M / LAV-DF metadata JSON list."""
    entries = read_json(path, "metadata")
    if not isinstance(entries, list):
        raise DatasetError(f"metadata {path} must be a JSON list of entries")
    return [_item(e, i) for i, e in enumerate(entries)]
