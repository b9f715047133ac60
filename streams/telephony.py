"""The telephony media-stream protocol: mu-law (G.711), events in, verdict events out.

The JSON event stream telephony platforms send over a WebSocket: ``connected``;
``start`` (``start.streamSid`` or top-level ``streamSid``, ``start.mediaFormat``
= ``{encoding: audio/x-mulaw, sampleRate: 8000, channels: 1}``); ``media``
(``media.payload`` = base64 mu-law, ``media.timestamp``, ``sequenceNumber``);
``mark``; ``stop``. No torch here.
"""

from __future__ import annotations

import base64
import binascii
import json

import numpy as np

from dfstream.engine.core.errors import DfstreamError
from dfstream.engine.core.types import Verdict

EVENTS = ("connected", "start", "media", "mark", "stop")
LABELS = ("likely-synthetic", "likely-genuine", "no-speech")


class ProtocolError(DfstreamError):
    """A client message that breaks the protocol; ``code`` is a short reason."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def _mulaw_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    magnitude = (((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 0x07)
    return (np.where(u & 0x80, 0x84 - magnitude, magnitude - 0x84) / 32768.0).astype(np.float32)


MULAW_TABLE = _mulaw_table()


def mulaw_decode(data: bytes) -> np.ndarray:
    """G.711 mu-law bytes -> float32 samples in [-1, 1]."""
    return MULAW_TABLE[np.frombuffer(data, np.uint8)]


def mulaw_encode(samples: np.ndarray) -> bytes:
    """Float32 samples in [-1, 1] -> G.711 mu-law bytes (for clients, tests and benchmarks)."""
    s = np.clip(np.round(np.asarray(samples) * 32768), -32768, 32767).astype(np.int32)
    sign = (s < 0).astype(np.int32) << 7
    s = np.minimum(np.abs(s), 32635) + 0x84
    exponent = np.clip(np.floor(np.log2(s)).astype(np.int32) - 7, 0, 7)
    mantissa = (s >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def parse_event(text: str | bytes) -> dict:
    """A client's JSON event, checked for shape (raises ProtocolError)."""
    try:
        event = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ProtocolError("malformed-json", f"not JSON: {e}") from None
    if not isinstance(event, dict) or not isinstance(event.get("event"), str):
        raise ProtocolError("malformed-event", "an event is a JSON object with a string 'event' field")
    if event["event"] not in EVENTS:
        raise ProtocolError("unknown-event", f"unknown event {event['event']!r}; valid: {', '.join(EVENTS)}")
    return event


def stream_sid(event: dict) -> str:
    """The stream id of a ``start`` event."""
    sid = event.get("streamSid") or (event.get("start") or {}).get("streamSid")
    if not isinstance(sid, str) or not sid:
        raise ProtocolError("missing-stream-sid", "'start' needs a streamSid")
    return sid


def check_format(event: dict) -> None:
    """Accept only the media format we decode: mono 8 kHz mu-law."""
    fmt = (event.get("start") or {}).get("mediaFormat") or {}
    encoding = fmt.get("encoding", "audio/x-mulaw")
    rate, channels = fmt.get("sampleRate", 8000), fmt.get("channels", 1)
    if encoding != "audio/x-mulaw" or rate != 8000 or channels != 1:
        raise ProtocolError(
            "unsupported-format",
            f"media format {encoding} {rate} Hz x{channels} is not supported; send audio/x-mulaw, 8000 Hz, 1 channel",
        )


def media_audio(event: dict) -> np.ndarray:
    """Decoded samples of a ``media`` event (raises ProtocolError on a bad payload)."""
    payload = (event.get("media") or {}).get("payload")
    if not isinstance(payload, str):
        raise ProtocolError("bad-media", "'media' needs media.payload, base64 mu-law")
    try:
        return mulaw_decode(base64.b64decode(payload, validate=True))
    except (binascii.Error, ValueError) as e:
        raise ProtocolError("bad-base64", f"media.payload is not base64: {e}") from None


def label(verdict: Verdict, synthetic_threshold: float) -> str:
    """``no-speech`` when the VAD rejected the hop, else by score against the threshold."""
    if verdict.speech is False or verdict.score is None:
        return "no-speech"
    return "likely-synthetic" if verdict.score >= synthetic_threshold else "likely-genuine"


def verdict_event(sid: str, verdict: Verdict, synthetic_threshold: float) -> dict:
    """The ``verdict`` event answered for a hop."""
    detections = [d.to_dict() for d in verdict.detections]
    return {
        "event": "verdict",
        "streamSid": sid,
        "seq": verdict.seq,
        "span": verdict.span.to_list(),
        "score": None if verdict.score is None else round(verdict.score, 6),
        "label": label(verdict, synthetic_threshold),
        "detections": detections,
        "attribution": [d["attribution"][0] for d in detections if d["attribution"]],
        "latency_ms": round(verdict.latency_ms, 3),
        "model": verdict.model,
    }


def error_event(code: str, message: str, sid: str | None = None) -> dict:
    return {"event": "error", "streamSid": sid, "code": code, "message": message}
