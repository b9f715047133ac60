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


def telephone(wav: np.ndarray, rate: int) -> np.ndarray:
    """Waveforms ``(..., n)`` at ``rate`` Hz as heard through a telephone line, same shape and rate.

    Band-pass (4th-order Butterworth, zero phase), resample to 8 kHz (polyphase),
    8-bit mu-law, resample back to ``rate``. Windows too short for the filter pass unchanged."""
    from scipy.signal import butter, resample_poly, sosfiltfilt  # scipy comes with scikit-learn
    x = np.asarray(wav, np.float32)
    n = x.shape[-1]
    sos = butter(4, [BAND[0], min(BAND[1], 0.45 * rate)], btype="bandpass", fs=rate, output="sos")
    if n <= 3 * (2 * len(sos) + 1):
        return x
    x = sosfiltfilt(sos, x, axis=-1)
    ratio = Fraction(LINE_RATE, rate).limit_denominator(1000)
    line = mu_law(np.clip(resample_poly(x, ratio.numerator, ratio.denominator, axis=-1), -1.0, 1.0))
    back = resample_poly(line, ratio.denominator, ratio.numerator, axis=-1)
    out = np.zeros_like(x, dtype=np.float32)
    keep = min(n, back.shape[-1])
    out[..., :keep] = back[..., :keep]
    return out
