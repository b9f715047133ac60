"""A telephone line, simulated on waveforms: what ``train.degrade`` passes audio windows through.

:func:`telephone` band-passes to the G.712 telephone band (300-3400 Hz), resamples
to 8 kHz, companding to 8 bits with the mu-law (mu = 255, the continuous law;
G.711's encoder uses a 16-segment approximation of it), and resamples back.
Deterministic: the same samples give the same output, so a training window's
degraded copy can be encoded once and cached beside the clean one.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

LINE_RATE = 8000
BAND = (300.0, 3400.0)
MU = 255.0


def mu_law(x: np.ndarray, bits: int = 8) -> np.ndarray:
    """``x`` (full scale 1.0) companded with the mu-law, quantised to ``bits`` (mid-tread: 2^(bits-1) - 1
    steps each side of an exact zero, as G.711 keeps silence silent) and expanded back."""
    y = np.sign(x) * np.log1p(MU * np.minimum(np.abs(x), 1.0)) / np.log1p(MU)
    steps = 2 ** (bits - 1) - 1
    y = np.round(y * steps) / steps
    return (np.sign(y) * np.expm1(np.abs(y) * np.log1p(MU)) / MU).astype(np.float32)


def band_pass(x: np.ndarray, rate: int, low: float = BAND[0], high: float = BAND[1]) -> np.ndarray:
    """``x`` ``(..., n)`` band-passed to [``low``, ``high``] Hz (4th-order Butterworth, zero phase: no
    delay); ``high`` is lowered below Nyquist when ``rate`` needs it. Returns ``x`` itself when it is
    too short for the filter's padding, otherwise a new float64 array."""
    from scipy.signal import butter, sosfiltfilt  # scipy comes with scikit-learn

    sos = butter(4, [low, min(high, 0.45 * rate)], btype="bandpass", fs=rate, output="sos")
    if x.shape[-1] <= 3 * (2 * len(sos) + 1):
        return x
    return sosfiltfilt(sos, x, axis=-1)


def telephone(wav: np.ndarray, rate: int) -> np.ndarray:
    """Waveforms ``(..., n)`` at ``rate`` Hz as heard through a telephone line, same shape and rate.

    :func:`band_pass` to the telephone band, resample to 8 kHz (polyphase), 8-bit
    mu-law, resample back to ``rate``. Windows too short for the filter pass unchanged."""
    from scipy.signal import resample_poly

    x = np.asarray(wav, np.float32)
    n = x.shape[-1]
    passed = band_pass(x, rate)
    if passed is x:
        return x
    x = passed
    ratio = Fraction(LINE_RATE, rate).limit_denominator(1000)
    line = mu_law(np.clip(resample_poly(x, ratio.numerator, ratio.denominator, axis=-1), -1.0, 1.0))
    back = resample_poly(line, ratio.denominator, ratio.numerator, axis=-1)
    out = np.zeros_like(x, dtype=np.float32)
    keep = min(n, back.shape[-1])
    out[..., :keep] = back[..., :keep]
    return out
