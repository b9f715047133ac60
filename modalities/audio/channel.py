"""Channels simulated on waveforms: what ``train.degrade`` passes audio windows through.

``audio.channels`` names the ones training draws from, one per window (:func:`degrade`):

- ``telephone``: a telephone line (below);
- ``rawboost``: RawBoost's three noises in series (Tak et al., ICASSP 2022): convolutive
  (a random multi-band filter and its 2nd/3rd-order powers), impulsive signal-dependent
  (up to 10 % of samples scaled by a random factor) and stationary coloured (white noise
  through a random filter, 10-40 dB under the signal);
- ``codec``: MP3 (24-48 kbit/s), AAC (24-48 kbit/s) or Opus (10-24 kbit/s), round trip
  (:mod:`dfstream.engine.media.codec`);
- ``reverb``: a synthetic room (exponentially decaying noise, RT60 0.15-0.7 s);
- ``resample``: band-limited to 8, 11.025 or 12 kHz sampling and back.

Every channel also sets a gain of -6 to +6 dB. The draw is seeded by the window's own
samples, so a window's degraded copy is the same every epoch and is encoded once and
cached beside the clean one.

:func:`telephone` band-passes to the G.712 telephone band (300-3400 Hz), resamples
to 8 kHz, companding to 8 bits with the mu-law (mu = 255, the continuous law;
G.711's encoder uses a 16-segment approximation of it), and resamples back.
Deterministic: the same samples give the same output, so a training window's
degraded copy can be encoded once and cached beside the clean one.
"""

from __future__ import annotations

import zlib
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
    x = np.asarray(wav, np.float32)
    passed = band_pass(x, rate)
    if passed is x:
        return x
    line = _through_rate(passed, rate, LINE_RATE, lambda y: mu_law(np.clip(y, -1.0, 1.0)))
    return line.astype(np.float32, copy=False)


def _through_rate(x: np.ndarray, rate: int, low: int, inside=None) -> np.ndarray:
    """``x`` ``(..., n)`` resampled (polyphase) from ``rate`` to ``low`` Hz, through ``inside`` there (if
    given), and back: the same shape, zeros where the round trip comes out short."""
    from scipy.signal import resample_poly

    ratio = Fraction(low, rate).limit_denominator(1000)
    there = resample_poly(x, ratio.numerator, ratio.denominator, axis=-1)
    back = resample_poly(there if inside is None else inside(there), ratio.denominator, ratio.numerator, axis=-1)
    out = np.zeros(x.shape, back.dtype)
    keep = min(x.shape[-1], back.shape[-1])
    out[..., :keep] = back[..., :keep]
    return out


def _fir(rng, rate: int, bands: int, taps: int = 65) -> np.ndarray:
    """A random multi-band FIR filter: ``bands`` pass bands of random centre (20 Hz - 0.45 rate) and width."""
    from scipy.signal import firwin

    h = np.zeros(taps)
    for _ in range(bands):
        centre = rng.uniform(20, 0.45 * rate)
        width = rng.uniform(100, 1000)
        lo, hi = max(centre - width / 2, 10.0), min(centre + width / 2, 0.49 * rate)
        h += firwin(taps, [lo, hi], pass_zero=False, fs=rate) if hi - lo > 20 else 0
    return h


def _normalised(y: np.ndarray, like: np.ndarray) -> np.ndarray:
    return y * (np.sqrt(np.mean(like**2)) / max(np.sqrt(np.mean(y**2)), 1e-9))


def rawboost(x: np.ndarray, rate: int, rng) -> np.ndarray:
    """RawBoost's convolutive, impulsive and coloured additive noises, in series (module docstring)."""
    from scipy.signal import fftconvolve

    y = np.zeros_like(x, dtype=np.float64)
    for power, gain in ((1, 1.0), (2, rng.uniform(0, 0.3)), (3, rng.uniform(0, 0.1))):
        filtered = fftconvolve(x, _fir(rng, rate, int(rng.integers(3, 8))), mode="same")
        y += gain * _normalised(filtered, x) ** power / max(np.abs(x).max(), 1e-6) ** (power - 1)
    y = _normalised(y, x)
    hit = rng.random(len(y)) < rng.uniform(0, 0.1)
    y[hit] += y[hit] * rng.uniform(-1, 1, int(hit.sum())) * rng.uniform(0.5, 2)
    noise = fftconvolve(rng.standard_normal(len(y)), _fir(rng, rate, int(rng.integers(1, 4))), mode="same")
    snr = rng.uniform(10, 40)
    return y + _normalised(noise, y) * 10 ** (-snr / 20)


def reverb(x: np.ndarray, rate: int, rng) -> np.ndarray:
    """``x`` in a synthetic room: direct sound plus exponentially decaying noise, RT60 0.15-0.7 s."""
    from scipy.signal import fftconvolve

    rt60 = rng.uniform(0.15, 0.7)
    t = np.arange(int(rt60 * rate)) / rate
    rir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)
    rir[0] = rng.uniform(1, 4) * np.abs(rir).max()
    return _normalised(fftconvolve(x, rir)[: len(x)], x)


def resample(x: np.ndarray, rate: int, rng) -> np.ndarray:
    """``x`` band-limited by a round trip through 8, 11.025 or 12 kHz sampling."""
    return _through_rate(x, rate, int(rng.choice([8000, 11025, 12000])))


def codec(x: np.ndarray, rate: int, rng) -> np.ndarray:
    """``x`` through MP3, AAC or Opus at a low bit rate and back."""
    from dfstream.engine.media.codec import round_trip  # PyAV: only when the channel is drawn

    name = str(rng.choice(["mp3", "aac", "opus"]))
    kbps = rng.uniform(10, 24) if name == "opus" else rng.uniform(24, 48)
    return round_trip(np.clip(x, -1, 1), rate, name, int(kbps * 1000))


CHANNELS = {
    "telephone": lambda x, rate, rng: telephone(x, rate),
    "rawboost": rawboost,
    "codec": codec,
    "reverb": reverb,
    "resample": resample,
}
"""Channel name -> ``fn(samples, rate, rng)``, for ``audio.channels``."""


def degrade(wav: np.ndarray, rate: int, channels: tuple[str, ...]) -> np.ndarray:
    """Windows ``(B, n)`` each through one of ``channels``, drawn by a generator seeded from the
    window's own samples (so the same window always comes out the same), with a gain of -6 to +6 dB
    (``telephone`` alone: no gain and no draw, as before channels could be chosen); clipped to [-1, 1]."""
    x = np.asarray(wav, np.float32)
    if tuple(channels) == ("telephone",):
        return telephone(x, rate)
    out = np.empty_like(x)
    for row, dest in zip(x.reshape(-1, x.shape[-1]), out.reshape(-1, x.shape[-1])):
        rng = np.random.default_rng([zlib.crc32(row.tobytes()), 29])
        name = channels[int(rng.integers(len(channels)))]
        y = CHANNELS[name](row.astype(np.float64), rate, rng) if np.any(row) else row
        dest[:] = np.clip(y * 10 ** (rng.uniform(-6, 6) / 20), -1, 1)
    return out
