"""The simulated telephone line that `train.degrade` passes audio windows through."""

import numpy as np

from dfstream.modalities.audio.channel import mu_law, telephone


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
