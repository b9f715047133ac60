"""bench/robustness.py: each condition's re-encoding on 1-second generated files (codec, rate, size, timing)."""
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from helpers import burst, encode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))  # bench/ is scripts, not a package
import robustness  # noqa: E402

# condition -> (decoder names, decoded sample rate (None: the input's), mono)
AUDIO = {
    "mp3-32k": ({"mp3", "mp3float"}, None, False),
    "aac-32k": ({"aac"}, None, False),
    "opus-16k": ({"opus", "libopus"}, 48000, False),  # FFmpeg decodes Opus at 48 kHz
    "telephone": ({"pcm_mulaw"}, 8000, True),
    "noise-20db": ({"pcm_s16le"}, None, False),
}
INPUTS = [(16000, 1), (44100, 2)]


def wav(tmp_path, rate: int, channels: int) -> Path:
    path = tmp_path / f"in-{rate}-{channels}.wav"
    encode(str(path), "wav", "pcm_s16le", rate, channels, burst(rate, 1.0, 0.3, 0.6))
    return path


def audio_of(path: Path):
    with av.open(str(path)) as c:
        cc = c.streams.audio[0].codec_context
        return c.format.name, cc.name, cc.sample_rate, cc.layout.nb_channels


@pytest.mark.parametrize("rate,channels", INPUTS, ids=[f"{r}Hz-{c}ch" for r, c in INPUTS])
@pytest.mark.parametrize("name", list(AUDIO))
def test_audio_condition_codec_rate_and_timing(tmp_path, name, rate, channels):
    cond = robustness.CONDITIONS[name]
    src = wav(tmp_path, rate, channels)
    dst = tmp_path / name / robustness.copy_name(cond, src.name, video=False)
    robustness.degrade(cond, src, dst, [0, 1])
    codecs, out_rate, mono = AUDIO[name]
    _, codec, got_rate, got_channels = audio_of(dst)
    assert codec in codecs
    assert got_rate == (out_rate or rate)
    assert got_channels == (1 if mono else channels)
    check = robustness.timing(src, dst)
    assert check["ok"], check
    assert abs(check["duration_diff_s"]) <= robustness.TOLERANCE_S + 1024 / rate
    assert check["start_diff_s"] == 0 and check["lag_s"] == 0


def test_noise_is_20db_below_the_signal(tmp_path):
    src = wav(tmp_path, 16000, 1)
    dst = tmp_path / "noisy.wav"
    robustness.degrade(robustness.CONDITIONS["noise-20db"], src, dst, [0, 1])
    clean, noisy = robustness.read_audio(src)[0], robustness.read_audio(dst)[0]
    snr = 10 * np.log10(np.mean(clean ** 2) / np.mean((noisy - clean) ** 2))
    assert abs(snr - 20) < 0.3
    again = tmp_path / "again.wav"
    robustness.degrade(robustness.CONDITIONS["noise-20db"], src, again, [0, 1])
    assert again.read_bytes() == dst.read_bytes()  # fixed seed


@pytest.fixture
def av_clip(tmp_path):
    """1 s of 64x64 H.264 at 10 fps with AAC 16 kHz mono, in MP4."""
    path = tmp_path / "av.mp4"
    encode(str(path), "mp4", "aac", 16000, 1, burst(16000, 1.0, 0.3, 0.6), video=True)
    return path


@pytest.mark.parametrize("name,size", [("h264-crf40", (64, 64)), ("downscale-half", (32, 32))])
def test_video_condition_reencodes_the_picture_and_keeps_the_audio(tmp_path, av_clip, name, size):
    cond = robustness.CONDITIONS[name]
    dst = tmp_path / name / robustness.copy_name(cond, "av.mp4", video=True)
    robustness.degrade(cond, av_clip, dst, [0, 1])
    with av.open(str(dst)) as c:
        v = robustness.video_stream(c)
        assert (v.codec_context.name, v.codec_context.width, v.codec_context.height) == ("h264", *size)
        assert c.streams.audio[0].codec_context.name == "aac"
    check = robustness.timing(av_clip, dst)
    assert check["ok"] and check["video_frames_diff"] == 0, check


def test_audio_condition_keeps_the_video(tmp_path, av_clip):
    cond = robustness.CONDITIONS["telephone"]
    dst = tmp_path / robustness.copy_name(cond, "av.mp4", video=True)
    robustness.degrade(cond, av_clip, dst, [0, 1])
    assert dst.suffix == ".mov"
    assert audio_of(dst)[1:] == ("pcm_mulaw", 8000, 1)
    with av.open(str(dst)) as c:
        v = robustness.video_stream(c)
        assert (v.codec_context.name, v.codec_context.width) == ("h264", 64)
    check = robustness.timing(av_clip, dst)
    assert check["ok"] and check["video_frames_diff"] == 0, check


def test_conditions_start_with_clean_and_unknown_ones_list_the_valid():
    assert [c.name for c in robustness.parse_conditions("telephone,mp3-32k")] == ["clean", "telephone", "mp3-32k"]
    assert list(robustness.CONDITIONS) == [c.name for c in robustness.parse_conditions(None)]
    with pytest.raises(SystemExit, match="valid: clean, mp3-32k"):
        robustness.parse_conditions("gsm")
