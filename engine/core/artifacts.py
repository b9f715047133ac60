"""Helpers for the files dfstream writes and verifies: checksums and versioned JSON sidecars."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from dfstream.engine.core.errors import DfstreamError


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_sidecar_json(path: str | Path, expected_format: str, what: str, kind: str, error: type[DfstreamError]) -> dict:
    """Read a JSON sidecar whose ``format`` field must equal ``expected_format``.

    ``what`` names the artifact ("dfstream checkpoint"), ``kind`` its format
    family ("checkpoint"); failures raise ``error`` with a message saying which.
    """
    path = Path(path)
    if not path.exists():
        raise error(f"{path.parent} is not a {what}: {path.name} is missing")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise error(f"{path} is not valid JSON: {e}") from None
    if not isinstance(data, dict) or data.get("format") != expected_format:
        found = data.get("format") if isinstance(data, dict) else None
        raise error(f"{path}: unsupported {kind} format {found!r} (expected {expected_format})")
    return data
