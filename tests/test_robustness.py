"""bench/robustness.py (bench/robust/): each condition's re-encoding on 1-second generated files (codec, rate,
size, timing)."""

import sys
from pathlib import Path

import av
import numpy as np
import pytest
from helpers import burst, encode

from dfstream.engine.media.video import video_stream

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))  # bench/ is scripts, not a package
from robust.conditions import CONDITIONS, parse_conditions  # noqa: E402
from robust.reencode import copy_name, degrade, read_audio  # noqa: E402
from robust.timing import TOLERANCE_S, timing  # noqa: E402

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
    cond = CONDITIONS[name]
    src = wav(tmp_path, rate, channels)
    dst = tmp_path / name / copy_name(cond, src.name, video=False)
    degrade(cond, src, dst, [0, 1])
    codecs, out_rate, mono = AUDIO[name]
    _, codec, got_rate, got_channels = audio_of(dst)
    assert codec in codecs
    assert got_rate == (out_rate or rate)
    assert got_channels == (1 if mono else channels)
    check = timing(src, dst)
    assert check["ok"], check
    assert abs(check["duration_diff_s"]) <= TOLERANCE_S + 1024 / rate
    assert check["start_diff_s"] == 0 and check["lag_s"] == 0


def test_noise_is_20db_below_the_signal(tmp_path):
    src = wav(tmp_path, 16000, 1)
    dst = tmp_path / "noisy.wav"
    degrade(CONDITIONS["noise-20db"], src, dst, [0, 1])
    clean, noisy = read_audio(src)[0], read_audio(dst)[0]
    snr = 10 * np.log10(np.mean(clean**2) / np.mean((noisy - clean) ** 2))
    assert abs(snr - 20) < 0.3
    again = tmp_path / "again.wav"
    degrade(CONDITIONS["noise-20db"], src, again, [0, 1])
    assert again.read_bytes() == dst.read_bytes()  # fixed seed


@pytest.fixture
def av_clip(tmp_path):
    """1 s of 64x64 H.264 at 10 fps with AAC 16 kHz mono, in MP4."""
    path = tmp_path / "av.mp4"
    encode(str(path), "mp4", "aac", 16000, 1, burst(16000, 1.0, 0.3, 0.6), video=True)
    return path


@pytest.mark.parametrize("name,size", [("h264-crf40", (64, 64)), ("downscale-half", (32, 32))])
def test_video_condition_reencodes_the_picture_and_keeps_the_audio(tmp_path, av_clip, name, size):
    cond = CONDITIONS[name]
    dst = tmp_path / name / copy_name(cond, "av.mp4", video=True)
    degrade(cond, av_clip, dst, [0, 1])
    with av.open(str(dst)) as c:
        v = video_stream(c)
        assert (v.codec_context.name, v.codec_context.width, v.codec_context.height) == ("h264", *size)
        assert c.streams.audio[0].codec_context.name == "aac"
    check = timing(av_clip, dst)
    assert check["ok"] and check["video_frames_diff"] == 0, check


def test_audio_condition_keeps_the_video(tmp_path, av_clip):
    cond = CONDITIONS["telephone"]
    dst = tmp_path / copy_name(cond, "av.mp4", video=True)
    degrade(cond, av_clip, dst, [0, 1])
    assert dst.suffix == ".mov"
    assert audio_of(dst)[1:] == ("pcm_mulaw", 8000, 1)
    with av.open(str(dst)) as c:
        v = video_stream(c)
        assert (v.codec_context.name, v.codec_context.width) == ("h264", 64)
    check = timing(av_clip, dst)
    assert check["ok"] and check["video_frames_diff"] == 0, check


def test_conditions_start_with_clean_and_unknown_ones_list_the_valid():
    assert [c.name for c in parse_conditions("telephone,mp3-32k")] == ["clean", "telephone", "mp3-32k"]
    assert list(CONDITIONS) == [c.name for c in parse_conditions(None)]
    with pytest.raises(SystemExit, match="valid: clean, mp3-32k"):
        parse_conditions("gsm")


def test_the_runner_imports_its_parts_and_explains_itself():
    import subprocess

    script = Path(__file__).resolve().parent.parent / "bench" / "robustness.py"
    out = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, check=True)
    assert "--conditions" in out.stdout and "re-encod" in out.stdout


@pytest.mark.parametrize("n, shift", [(1500, 300), (1500, -300), (800, 100)])
def test_lag_of_short_audio_is_found_without_wrapping(n, shift):
    from robust.timing import lag_seconds

    x = np.random.default_rng(0).standard_normal(n + abs(shift))
    a, b = (x[abs(shift) :], x[:n]) if shift > 0 else (x[:n], x[abs(shift) :])  # b behind a by shift samples
    assert lag_seconds(a, b, 4000) == pytest.approx(shift / 16000)
