"""The channels `train.degrade` passes audio windows through: the telephone line, RawBoost, codecs, rooms."""

import numpy as np
import pytest

from dfstream.engine.core.errors import ConfigError
from dfstream.engine.media.codec import round_trip
from dfstream.engine.runtime.config import config_from_dict
from dfstream.modalities.audio.channel import CHANNELS, degrade, mu_law, telephone


def _band_power(x: np.ndarray, rate: int, low: float, high: float) -> float:
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    return float(power[(freqs >= low) & (freqs < high)].mean())


def test_telephone_keeps_the_band_and_removes_what_a_line_cannot_carry():
    rate, t = 16000, np.arange(32000) / 16000
    tones = {f: np.sin(2 * np.pi * f * t) for f in (100.0, 1000.0, 5000.0)}
    x = (0.2 * sum(tones.values())).astype(np.float32)[None]
    y = telephone(x, rate)
    assert y.shape == x.shape and y.dtype == np.float32
    kept = {f: _band_power(y[0], rate, f - 5, f + 5) / _band_power(x[0], rate, f - 5, f + 5) for f in tones}
    assert 0.7 < kept[1000.0] < 1.3  # in the band: through, within the 8-bit line's error
    assert kept[100.0] < 0.01 and kept[5000.0] < 1e-4  # below 300 Hz and above the 8 kHz line's Nyquist


def test_telephone_is_deterministic_keeps_silence_and_passes_short_windows():
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((3, 8000))).astype(np.float32)
    assert np.array_equal(telephone(x, 16000), telephone(x.copy(), 16000))
    assert not np.allclose(telephone(x, 16000), x, atol=1e-3)
    assert np.array_equal(telephone(np.zeros((2, 8000), np.float32), 16000), np.zeros((2, 8000), np.float32))
    short = x[:, :20]
    assert np.array_equal(telephone(short, 16000), short)


def test_mu_law_has_255_levels_an_exact_zero_and_fixed_full_scale():
    x = np.linspace(-1, 1, 100001)
    y = mu_law(x)
    assert len(np.unique(y)) == 255 and mu_law(np.zeros(1))[0] == 0.0
    assert np.allclose(mu_law(np.array([-1.0, 1.0])), [-1.0, 1.0])
    small, large = np.abs(y - x)[np.abs(x) < 0.01].max(), np.abs(y - x)[np.abs(x) > 0.9].max()
    assert small < 0.001 < large  # the law spends its levels near zero


def _speechlike(n: int = 16000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    tone = sum(np.sin(2 * np.pi * k * 140 * t) / k for k in range(1, 15))
    return (0.2 * tone * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.standard_normal(n)).astype(np.float32)


def test_every_channel_of_the_config_is_implemented():
    every = config_from_dict({"audio": {"channels": list(CHANNELS)}}).branch("audio").channels
    assert every == tuple(CHANNELS) == ("telephone", "rawboost", "codec", "reverb", "resample")
    with pytest.raises(ConfigError, match="audio.channels must name one or more of telephone, rawboost"):
        config_from_dict({"audio": {"channels": ["telephone", "vinyl"]}})
    assert config_from_dict({"audio": {"channels": ["codec", "reverb"]}}).branch("audio").channels == (
        "codec",
        "reverb",
    )


def test_degrade_draws_a_channel_per_window_from_its_own_samples():
    x = np.stack([_speechlike(seed=s) for s in range(8)])
    channels = tuple(CHANNELS)
    y = degrade(x, 16000, channels)
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all() and np.abs(y).max() <= 1
    assert np.array_equal(y, degrade(x.copy(), 16000, channels))  # the same window, the same copy
    assert np.array_equal(y[3], degrade(x[3:4], 16000, channels)[0])  # whatever batch it sits in
    assert not any(np.allclose(a, b, atol=1e-3) for a, b in zip(y, x))
    silent = np.zeros((1, 16000), np.float32)
    assert np.array_equal(degrade(silent, 16000, channels), silent)
    # the telephone line alone is the channel every checkpoint before audio.channels was trained with
    assert np.array_equal(degrade(x, 16000, ("telephone",)), telephone(x, 16000))


@pytest.mark.parametrize("name", sorted(CHANNELS))
def test_each_channel_keeps_length_level_and_time(name):
    t = np.arange(32000) / 16000
    x = 0.1 * np.random.default_rng(2).standard_normal(32000) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    y = CHANNELS[name](x, 16000, np.random.default_rng(1))
    assert y.shape == x.shape and np.isfinite(y).all()
    level = 20 * np.log10(np.sqrt(np.mean(y**2)) / np.sqrt(np.mean(x**2)))
    assert abs(level) < 6, level
    # no channel moves the signal in time: the cross-correlation peaks within 2 ms of lag 0
    lags = np.arange(-200, 201)
    corr = [np.dot(x[400:-400], np.roll(y, -k)[400:-400]) for k in lags]
    assert abs(lags[int(np.argmax(np.abs(corr)))]) <= 32, name


@pytest.mark.parametrize("codec", ["mp3", "aac", "opus"])
def test_codec_round_trip_is_aligned_and_lossy(codec):
    x = _speechlike(32000)
    y = round_trip(x, 16000, codec, 32000)
    assert y.shape == x.shape and y.dtype == np.float32
    snr = 10 * np.log10(np.mean(x**2) / np.mean((x - y) ** 2))
    assert 5 < snr < 60, snr  # aligned (a misplaced copy scores below 0 dB) and not lossless
    with pytest.raises(ValueError, match="unknown codec"):
        round_trip(x, 16000, "vorbis-ish", 32000)
