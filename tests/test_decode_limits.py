"""Untrusted media stays within ``limits``: each breach is a MediaError with its own reason.

Also a bounded fuzz run (hypothesis): mutated chunks of every container either
decode within the limits and score, or fail with MediaError, never anything else. Inputs
that once broke that promise live in ``tests/fuzz_regressions`` and run here.
"""

from __future__ import annotations

import io
from dataclasses import replace
from fractions import Fraction

import av
import numpy as np
import pytest
from fuzzing import LIMITS as FUZZ_LIMITS
from fuzzing import REGRESSIONS, SEEDS, mutate, outcome, seed
from helpers import burst, encode_bytes, tiny_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dfstream.engine.core.errors import MediaError
from dfstream.engine.core.types import Chunk
from dfstream.engine.media.decode import LIMITS, SAMPLE_RATE, decode_audio, decode_chunk, raw_pcm_content_type
from dfstream.engine.runtime.stream import StreamProcessor


def reason(call) -> str:
    with pytest.raises(MediaError) as e:
        call()
    return e.value.reason


def jumping_mkv(jump_seconds: float) -> bytes:
    """0.1 s of PCM in Matroska, then 0.1 s more stamped ``jump_seconds`` later."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="matroska") as out:
        stream = out.add_stream("pcm_s16le", rate=SAMPLE_RATE, layout="mono")
        for pts in (0, round(jump_seconds * SAMPLE_RATE)):
            frame = av.AudioFrame.from_ndarray(np.full((1, 1600), 1000, np.int16), format="s16", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = SAMPLE_RATE, pts, Fraction(1, SAMPLE_RATE)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buf.getvalue()


def test_a_timestamp_jump_inside_a_chunk_is_bounded():
    payload = jumping_mkv(700.0)
    assert reason(lambda: decode_audio(payload)) == "timestamp-jump"  # 700 s of silence > 600 s
    wide = replace(LIMITS, max_gap_seconds=1000.0)
    assert reason(lambda: decode_audio(payload, wide)) == "too-long"  # 700 s decoded > 600 s
    block = decode_audio(payload, replace(wide, max_chunk_seconds=800.0))
    assert len(block.samples) == round(700.1 * SAMPLE_RATE) and block.samples[1600:-1600].max() == 0


def test_a_timestamp_jump_between_chunks_is_refused_and_the_stream_goes_on():
    processor = StreamProcessor(detector_with_limits(LIMITS))
    pcm = np.zeros(8000, np.float32).tobytes()
    processor.process(Chunk("s", 0, pcm, raw_pcm_content_type(), 0.0))
    far = Chunk("s", 1, pcm, raw_pcm_content_type(), 1e9)  # would be 1e9 s of silence
    assert reason(lambda: processor.process(far)) == "timestamp-jump"
    assert processor.states["s"].tracks["audio"].received == 8000  # nothing was placed
    verdict = processor.process(Chunk("s", 2, pcm, raw_pcm_content_type(), 0.5, final=True))
    assert verdict.span.start == 0.5 and "s" not in processor.states


def detector_with_limits(limits):
    from dfstream.engine.runtime.detector import Detector

    config = replace(tiny_config(), limits=limits)
    return Detector.from_config(config)


def test_format_limits_on_containers():
    stereo_44k = encode_bytes("wav", "pcm_s16le", 44100, 2, burst(44100, 0.5, 0.1, 0.2))
    assert reason(lambda: decode_audio(stereo_44k, replace(LIMITS, max_channels=1))) == "too-many-channels"
    assert reason(lambda: decode_audio(stereo_44k, replace(LIMITS, max_sample_rate=16000))) == "bad-rate"
    assert reason(lambda: decode_audio(stereo_44k, replace(LIMITS, decode_timeout_seconds=1e-9))) == "decode-timeout"
    assert len(decode_audio(stereo_44k).samples) == 8000


@pytest.mark.parametrize(
    "content_type,payload,why",
    [
        ("audio/pcm;format=s16le;rate=1", b"\0\0" * 100, "bad-rate"),  # 1 Hz: 16000x upsampling
        ("audio/pcm;format=s16le;rate=0", b"\0\0" * 100, "bad-rate"),
        ("audio/pcm;format=s16le;rate=16000;channels=0", b"\0\0" * 100, "too-many-channels"),
        ("audio/pcm;format=s16le;rate=16000;channels=65", b"\0\0" * 65, "too-many-channels"),
        ("audio/pcm;format=s16le;rate=16000", b"\0\0" * 16000 * 31, "too-long"),  # 31 s > FUZZ_LIMITS' 30 s
    ],
)
def test_raw_pcm_limits(content_type, payload, why):
    chunk = Chunk("r", 0, payload, content_type, 0.0)
    assert reason(lambda: decode_chunk(chunk, FUZZ_LIMITS)) == why


EDITS = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1, max_size=8)


@settings(
    max_examples=160, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(container=st.integers(0, len(SEEDS) - 1), edits=EDITS)
def test_mutated_chunks_decode_within_limits_or_fail_cleanly(container, edits):
    outcome(mutate(seed(container), edits))


def test_fuzz_regressions():
    """Inputs ``bench/fuzz.py`` found, kept so that they stay fixed."""
    paths = sorted(REGRESSIONS.glob("*.bin"))
    assert paths, "tests/fuzz_regressions is empty"
    for path in paths:
        outcome(path.read_bytes())
