"""PyAV decoding: every container, paths and bytes, PTS, resampling, raw PCM, bad input."""

import numpy as np
import pytest
from helpers import burst, encode, encode_bytes, onset, video_only

from dfstream.engine.core.errors import MediaError
from dfstream.engine.core.types import Chunk
from dfstream.engine.media.decode import (
    SAMPLE_RATE,
    AudioBlock,
    decode_audio,
    decode_chunk,
    iter_audio,
    place,
    raw_pcm_content_type,
)

# (container format, file suffix, codec, sample rate, channels, timing tolerance in s)
CONTAINERS = [
    ("wav", "wav", "pcm_s16le", 44100, 2, 0.006),
    ("flac", "flac", "flac", 22050, 1, 0.006),
    ("mp3", "mp3", "libmp3lame", 44100, 2, 0.006),  # FFmpeg stamps its first sample at the skipped delay
    ("ogg", "opus", "libopus", 48000, 2, 0.03),
    ("ipod", "m4a", "aac", 44100, 2, 0.07),
    ("mp4", "mp4", "aac", 48000, 1, 0.07),
    ("mpegts", "ts", "aac", 44100, 2, 0.07),
    ("webm", "webm", "libopus", 48000, 1, 0.03),
    ("matroska", "mkv", "flac", 32000, 2, 0.006),
]


@pytest.mark.parametrize("fmt,suffix,codec,rate,channels,tol", CONTAINERS, ids=[c[1] for c in CONTAINERS])
def test_every_container_decodes_to_16k_mono_on_time(tmp_path, fmt, suffix, codec, rate, channels, tol):
    signal = burst(rate, 2.0, 0.75, 1.25)
    path = tmp_path / f"clip.{suffix}"
    encode(str(path), fmt, codec, rate, channels, signal)
    for source in (path, path.read_bytes()):
        block = decode_audio(source)
        assert block.samples.dtype == np.float32 and block.samples.ndim == 1
        assert abs(block.duration - 2.0) < 0.08
        assert abs(block.t0 + onset(block.samples) - 0.75) < tol + 0.005
        assert 0.3 < np.abs(block.samples).max() < 0.7  # channel mean keeps the amplitude


@pytest.mark.parametrize("rate", [16000, 44100])
def test_an_mp3_starts_at_0_not_at_its_encoder_delay(tmp_path, rate):
    path = tmp_path / "clip.mp3"
    encode(str(path), "mp3", "libmp3lame", rate, 1, burst(rate, 1.0, 0.5, 0.7))
    for source in (path, path.read_bytes()):
        block = decode_audio(source)
        assert block.t0 == 0.0
        assert onset(block.samples) == pytest.approx(0.5, abs=0.006)


def test_pts_offset_is_stream_time(tmp_path):
    signal = burst(16000, 1.0, 0.25, 0.5)
    path = tmp_path / "late.mkv"
    encode(str(path), "matroska", "flac", 16000, 1, signal, start=5.0)
    block = decode_audio(path)
    assert block.t0 == pytest.approx(5.0, abs=1e-3)
    assert block.t0 + onset(block.samples) == pytest.approx(5.25, abs=0.006)


def test_mpegts_bytes_keep_their_timestamps():
    signal = burst(48000, 1.0, 0.5, 0.8)
    block = decode_audio(encode_bytes("mpegts", "aac", 48000, 2, signal, start=10.0))
    assert block.t0 + onset(block.samples) == pytest.approx(10.5, abs=0.07)


def test_resampling_preserves_frequency_and_length(tmp_path):
    rate, freq = 44100, 1000.0
    t = np.arange(rate * 2) / rate
    path = tmp_path / "tone.wav"
    encode(str(path), "wav", "pcm_s16le", rate, 1, (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32))
    block = decode_audio(path)
    assert len(block.samples) == pytest.approx(2 * SAMPLE_RATE, abs=2)
    spectrum = np.abs(np.fft.rfft(block.samples))
    assert np.fft.rfftfreq(len(block.samples), 1 / SAMPLE_RATE)[spectrum.argmax()] == pytest.approx(freq, abs=1)


def test_blocks_are_exact_and_equal_whole_decode(tmp_path):
    path = tmp_path / "a.flac"
    encode(str(path), "flac", "flac", 44100, 2, burst(44100, 3.3, 1.0, 2.0))
    blocks = list(iter_audio(path, 1.0))
    assert [len(b.samples) for b in blocks[:-1]] == [16000] * (len(blocks) - 1)
    assert [b.t0 for b in blocks] == pytest.approx([i * 1.0 for i in range(len(blocks))])
    whole = decode_audio(path).samples
    assert np.array_equal(np.concatenate([b.samples for b in blocks]), whole)


def test_place_fills_gaps_and_trims_overlaps():
    x = np.ones(10, np.float32)
    assert np.array_equal(place(x, 100, 100, 1000), x)
    assert np.array_equal(place(x, 101, 100, 1000), x)  # 1 ms jitter ignored
    gap = place(x, 105, 100, 1000)
    assert len(gap) == 15 and gap[:5].sum() == 0
    assert len(place(x, 95, 100, 1000)) == 5


@pytest.mark.parametrize(
    "content_type,dtype,scale",
    [
        ("audio/L16;rate=16000", ">i2", 32768),
        ("audio/pcm;format=s16le;rate=16000", "<i2", 32768),
        ("audio/pcm;format=f32le;rate=16000", "<f4", 1),
    ],
)
def test_raw_pcm_chunks(content_type, dtype, scale):
    x = (burst(16000, 0.5, 0.1, 0.3) * scale).astype(dtype)
    block = decode_chunk(Chunk("s", 0, x.tobytes(), content_type, t0=3.0))
    assert block.t0 == 3.0 and len(block.samples) == 8000
    assert np.allclose(block.samples, x.astype(np.float32) / scale, atol=1e-6)


def test_raw_pcm_stereo_8k_is_mixed_and_resampled():
    x = np.zeros((800, 2), "<i2")
    x[:, 0] = 16384
    block = decode_chunk(Chunk("s", 0, x.tobytes(), "audio/pcm;format=s16le;rate=8000;channels=2"))
    assert len(block.samples) == 1600
    assert np.median(block.samples) == pytest.approx(0.25, abs=0.01)


def test_raw_pcm_content_type_round_trip():
    x = np.arange(10, dtype=np.float32)
    assert np.array_equal(decode_chunk(Chunk("s", 0, x.tobytes(), raw_pcm_content_type())).samples, x)


@pytest.mark.parametrize("content_type", ["audio/pcm;format=u8;rate=8000", "audio/L16", "audio/L16;rate=x"])
def test_bad_raw_pcm_content_types(content_type):
    with pytest.raises(MediaError):
        decode_chunk(Chunk("s", 0, b"\0\0", content_type))


def test_odd_raw_pcm_length():
    with pytest.raises(MediaError, match="whole number"):
        decode_chunk(Chunk("s", 0, b"\0\0\0", "audio/L16;rate=16000"))


def test_bad_inputs(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.mp3").write_text("this is not media at all\n" * 20)
    video_only(tmp_path / "silent.mp4")
    cases = {
        tmp_path / "missing.wav": "no such file",
        tmp_path / "empty.wav": "empty",
        tmp_path / "text.mp3": "not a readable media",
        tmp_path / "silent.mp4": "no audio stream",
        tmp_path: "directory",
    }
    for path, message in cases.items():
        with pytest.raises(MediaError, match=message):
            decode_audio(path)
    with pytest.raises(MediaError, match="empty payload"):
        decode_audio(b"")


def test_truncated_files(tmp_path):
    wav = tmp_path / "cut.wav"
    encode(str(wav), "wav", "pcm_s16le", 16000, 1, burst(16000, 4.0, 1, 2))
    data = wav.read_bytes()
    wav.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match="truncated"):
        decode_audio(wav)
    mp4 = tmp_path / "cut.mp4"
    encode(str(mp4), "mp4", "aac", 16000, 1, burst(16000, 2.0, 1, 2))
    mp4.write_bytes(mp4.read_bytes()[:-400])  # loses the moov atom at the end
    with pytest.raises(MediaError):
        decode_audio(mp4)


def test_audio_block_duration():
    assert AudioBlock(np.zeros(8000, np.float32), 1.0).duration == 0.5
