"""Fuzzing the decode path: seed chunks of every container, byte mutations, and the promise checked.

Shared by ``tests/test_decode_limits.py`` (a bounded hypothesis run in CI) and
``bench/fuzz.py`` (a longer run that reports cases and findings).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from helpers import burst, encode_bytes

from dfstream.engine.core.errors import MediaError
from dfstream.engine.core.types import Chunk
from dfstream.engine.media.decode import SAMPLE_RATE
from dfstream.engine.media.limits import LimitsConfig

REGRESSIONS = Path(__file__).parent / "fuzz_regressions"
# container format, codec, rate, channels[, video codec]: the containers of test_decode.py and
# test_video_decode.py, as chunks
SEEDS = [
    ("wav", "pcm_s16le", 16000, 1),
    ("flac", "flac", 22050, 1),
    ("mp3", "libmp3lame", 44100, 2),
    ("ogg", "libopus", 48000, 1),
    ("adts", "aac", 16000, 1),
    ("mpegts", "aac", 44100, 2),
    ("webm", "libopus", 48000, 1),
    ("matroska", "flac", 32000, 2),
    ("mp4", "aac", 48000, 1),
    ("mp4", "aac", 16000, 1, "libx264"),
    ("mpegts", "aac", 44100, 1, "libx264"),
    ("webm", "libopus", 48000, 1, "libvpx"),
    ("matroska", "flac", 32000, 1, "libvpx-vp9"),
]
LIMITS = LimitsConfig(max_chunk_seconds=30.0, decode_timeout_seconds=5.0, max_gap_seconds=30.0, max_chunk_frames=300)
_SEED_BYTES: dict[int, bytes] = {}


def seed(i: int) -> bytes:
    """A valid 0.6 s chunk of container ``SEEDS[i]`` (a tone burst; 64x64 frames at 10 fps for video seeds)."""
    if i not in _SEED_BYTES:
        fmt, codec, rate, channels, *video = SEEDS[i]
        _SEED_BYTES[i] = encode_bytes(fmt, codec, rate, channels, burst(rate, 0.6, 0.2, 0.4), 0.0, bool(video), *video)
    return _SEED_BYTES[i]


def mutate(data: bytes, edits) -> bytes:
    """Apply ``(kind, position, value)`` edits: 0 set a byte, 1 cut the tail, 2 insert a run, 3 repeat a run."""
    out = bytearray(data)
    for kind, pos, value in edits:
        if not out:
            break
        pos %= len(out)
        if kind == 0:
            out[pos] = value
        elif kind == 1:
            del out[max(1, pos) :]
        elif kind == 2:
            out[pos:pos] = bytes([value]) * (1 + value % 16)
        else:
            out[pos:pos] = out[pos : pos + 1 + value]
    return bytes(out)


_PROCESSOR = None


def processor():
    """A tiny random audio-visual model's stream processor (decode -> crop -> score is the path under test)."""
    global _PROCESSOR
    if _PROCESSOR is None:
        from dataclasses import replace

        from helpers import tiny_av_config

        from dfstream.engine.runtime.detector import Detector
        from dfstream.engine.runtime.stream import StreamProcessor

        _PROCESSOR = StreamProcessor(Detector.from_config(replace(tiny_av_config(), limits=LIMITS)))
    return _PROCESSOR


def outcome(payload: bytes) -> str:
    """``"scored"`` or the MediaError reason; AssertionError when the promise breaks.

    The promise: decoding gives float32 mono audio within ``LIMITS`` with
    finite samples and/or at most ``max_chunk_frames`` uint8 face crops with a
    face flag each, which score to a verdict with finite numbers; or it raises
    MediaError. Any other exception propagates (a finding).
    """
    p = processor()
    try:
        block = p.decode(Chunk("f", 0, payload, "application/octet-stream", None))
    except MediaError as e:
        return e.reason
    audio, video = block.inputs.get("audio"), block.inputs.get("visual")
    if audio is not None:
        samples = audio.units
        assert samples.dtype == np.float32 and samples.ndim == 1, "not float32 mono"
        assert len(samples) <= LIMITS.max_chunk_seconds * SAMPLE_RATE + SAMPLE_RATE, "over max_chunk_seconds"
        assert np.isfinite(samples).all(), "non-finite samples"
    if video is not None:
        images, faces = video.units, video.present
        assert images.dtype == np.uint8 and images.ndim == 4 and images.shape[1:] == (32, 32, 3), "bad crops"
        assert len(images) <= LIMITS.max_chunk_frames and faces.shape == (len(images),), "over max_chunk_frames"
    verdict = p.feed("fuzz", 0, block, final=True)  # final: the stream's state is dropped again
    assert verdict.score is None or np.isfinite(verdict.score), "non-finite score"
    assert all(np.isfinite(d.score) for d in verdict.detections), "non-finite span score"
    return "scored"
