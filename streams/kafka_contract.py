"""The Kafka message contract (DESIGN.md): chunks in, verdicts and dead letters out.

Input record: key = stream id (UTF-8); value = one self-contained media chunk;
headers ``dfs-seq`` (integer, required), ``dfs-t0`` (stream seconds of the
chunk's start, optional), ``dfs-final`` (``1``/``true`` at end of stream,
optional), ``content-type`` (``audio/wav``, ``video/mp2t``, raw PCM types of
:mod:`dfstream.engine.media.decode`; optional, the container is probed without it).

:func:`parse_record` turns a record into a :class:`dfstream.engine.core.types.Chunk` or raises
:class:`BadRecord` with a reason code; the dead letter then carries the original
value and headers plus ``dfs-error: <reason>: <message>``. This module imports
no torch.
"""

from __future__ import annotations

import json
import math

from dfstream.engine.core.types import Chunk, Verdict

SEQ, T0, FINAL, CONTENT_TYPE, ERROR = "dfs-seq", "dfs-t0", "dfs-final", "content-type", "dfs-error"
DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_STREAM_ID_BYTES = 1024


class BadRecord(Exception):
    """A record that breaks the contract; ``reason`` is a short code (``no-stream-id``, ...)."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason, self.message = reason, message


def _text(value: bytes | None, name: str) -> str | None:
    if value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRecord("bad-header", f"header {name} is not UTF-8") from None


def parse_record(key: bytes | None, value: bytes | None, headers, max_bytes: int) -> Chunk:
    """Validate one input record and build its :class:`Chunk` (raises :class:`BadRecord`)."""
    stream_id = _text(key, "key")
    if not stream_id:
        raise BadRecord("no-stream-id", "the record has no key; the key must be the stream id")
    if len(key) > MAX_STREAM_ID_BYTES:
        raise BadRecord("no-stream-id", f"the key is {len(key)} bytes; stream ids are at most {MAX_STREAM_ID_BYTES}")
    fields = {}
    for name, raw in headers or ():
        if name in fields:
            raise BadRecord("bad-header", f"header {name} appears twice")
        fields[name] = raw
    size = len(value or b"")
    if size > max_bytes:
        raise BadRecord("too-large", f"the chunk is {size} bytes; the limit (serve.max_chunk_bytes) is {max_bytes}")
    seq_text = _text(fields.get(SEQ), SEQ)
    if seq_text is None:
        raise BadRecord("bad-seq", f"header {SEQ} is missing")
    try:
        seq = int(seq_text)
    except ValueError:
        raise BadRecord("bad-seq", f"header {SEQ}={seq_text[:40]!r} is not an integer") from None
    if seq < 0:
        raise BadRecord("bad-seq", f"header {SEQ}={seq} is negative")
    t0 = None
    t0_text = _text(fields.get(T0), T0)
    if t0_text is not None:
        try:
            t0 = float(t0_text)
        except ValueError:
            raise BadRecord("bad-header", f"header {T0}={t0_text[:40]!r} is not a number") from None
        if not math.isfinite(t0) or t0 < 0:
            raise BadRecord("bad-header", f"header {T0}={t0_text[:40]!r} must be a finite time >= 0")
    final_text = (_text(fields.get(FINAL), FINAL) or "0").strip().lower()
    if final_text not in ("0", "1", "true", "false", ""):
        raise BadRecord("bad-header", f"header {FINAL}={final_text[:40]!r} must be 1/0/true/false")
    content_type = _text(fields.get(CONTENT_TYPE), CONTENT_TYPE) or DEFAULT_CONTENT_TYPE
    return Chunk(stream_id, seq, value or b"", content_type, t0, final_text in ("1", "true"))


def chunk_headers(chunk: Chunk) -> list[tuple[str, bytes]]:
    """The headers a producer puts on ``chunk``'s record."""
    headers = [(SEQ, str(chunk.seq).encode()), (CONTENT_TYPE, chunk.content_type.encode())]
    if chunk.t0 is not None:
        headers.append((T0, repr(float(chunk.t0)).encode()))
    if chunk.final:
        headers.append((FINAL, b"1"))
    return headers


def dead_letter_headers(headers, reason: str, message: str) -> list[tuple[str, bytes]]:
    """The original headers plus ``dfs-error`` (replacing one already there)."""
    kept = [(k, v) for k, v in headers or () if k != ERROR]
    return kept + [(ERROR, f"{reason}: {message}"[:1000].encode())]


def verdict_value(verdict: Verdict) -> bytes:
    """The output record's value: the verdict's JSON (schema ``dfstream.verdict/1``)."""
    return json.dumps(verdict.to_dict(), separators=(",", ":")).encode()
