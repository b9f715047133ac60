"""Copy-synthesis: a stretch of real speech re-made by a vocoder, words and speaker kept.

A copy-synthesis forgery says what the speaker said, in the speaker's pitch and timing;
only the vocoder's traces tell it apart, which is what a detector must learn to find in
generators it never saw (the ASVspoof lesson). Each function maps float32 16 kHz samples
to as many samples, deterministic for a seed, and needs no program beyond librosa/scipy:

- ``griffinlim``: the 80-band mel spectrogram, phase recovered by Griffin-Lim;
- ``lpc-vocoder``: an LPC-10-style source-filter vocoder: per 25 ms frame an order-18
  all-pole envelope, driven by a pulse train at the frame's pitch (YIN) when voiced and by
  white noise when not, overlap-added;
- ``harmonic-noise``: a harmonic-plus-noise model: harmonics of the YIN pitch up to 4 kHz
  with amplitudes read off the short-time spectrum, plus the spectrum above (and in
  unvoiced frames all of it) as noise of random phase;
- ``pitch-shift``: the stretch moved 2-5 semitones up or down by a phase vocoder and
  resampling (librosa), a crude voice conversion: the words stay, the voice moves.
"""

from __future__ import annotations

import librosa
import numpy as np
from scipy.signal import lfilter

RATE = 16000
FRAME, HOP = 400, 160  # 25 ms frames every 10 ms
F0_RANGE = (60.0, 400.0)


def griffinlim(real: np.ndarray, seed: int) -> np.ndarray:
    """``real`` resynthesised from its 80-band mel spectrogram by Griffin-Lim (32 iterations, the
    phase started from ``seed``); the same length."""
    mel = librosa.feature.melspectrogram(y=real, sr=RATE, n_fft=1024, hop_length=256, n_mels=80)
    magnitude = librosa.feature.inverse.mel_to_stft(mel, sr=RATE, n_fft=1024)
    out = librosa.griffinlim(magnitude, n_iter=32, hop_length=256, n_fft=1024, length=len(real), random_state=seed)
    return out.astype(np.float32)


def _pitch(real: np.ndarray) -> np.ndarray:
    """Per-frame pitch (Hz) on the :data:`HOP` grid, 0 where unvoiced: YIN, voiced where the frame's
    normalised autocorrelation at that lag exceeds 0.45 and the frame is within 35 dB of the loudest."""
    n_frames = 1 + len(real) // HOP
    padded = np.pad(real, (FRAME, FRAME))
    f0 = librosa.yin(padded, fmin=F0_RANGE[0], fmax=F0_RANGE[1], sr=RATE, frame_length=1024, hop_length=HOP)
    f0 = f0[FRAME // HOP : FRAME // HOP + n_frames]
    f0 = np.pad(f0, (0, max(0, n_frames - len(f0))), mode="edge")
    frames = librosa.util.frame(np.pad(real, (FRAME // 2, FRAME)), frame_length=FRAME, hop_length=HOP)[:, :n_frames]
    energy = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=0))
    loud = energy > energy.max() * 10 ** (-35 / 20)
    voiced = np.zeros(n_frames, bool)
    for i in np.flatnonzero(loud):
        lag = int(round(RATE / f0[i]))
        x = frames[:, i] - frames[:, i].mean()
        if lag < FRAME - 40:
            a, b = x[:-lag], x[lag:]
            voiced[i] = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9) > 0.45
    return np.where(voiced, f0, 0.0)


def _frame_rate_to_samples(values: np.ndarray, n: int) -> np.ndarray:
    """Per-frame values on the :data:`HOP` grid, linearly interpolated to ``n`` samples."""
    return np.interp(np.arange(n), np.arange(len(values)) * HOP, values)


def lpc_vocoder(real: np.ndarray, seed: int, order: int = 18) -> np.ndarray:
    """``real`` through an LPC source-filter vocoder (see the module docstring); the same length and
    the same frame energies."""
    rng = np.random.default_rng(seed)
    n = len(real)
    f0 = _pitch(real)
    window = np.hanning(FRAME)
    padded = np.pad(real.astype(np.float64), (FRAME // 2, FRAME))
    out = np.zeros(len(padded))
    norm = np.zeros(len(padded))
    phase = 0.0
    for i in range(len(f0)):
        seg = padded[i * HOP : i * HOP + FRAME] * window
        if not np.any(seg):
            continue
        a = librosa.lpc(seg + 1e-6 * rng.standard_normal(FRAME), order=order)
        residual = lfilter(a, [1.0], seg)
        if f0[i] > 0:
            period = RATE / f0[i]
            times = np.arange(FRAME) + phase
            excitation = (np.diff(np.floor(np.concatenate([[times[0] - 1], times]) / period)) > 0).astype(float)
            excitation -= excitation.mean()
            phase = (phase + HOP) % period
        else:
            excitation = rng.standard_normal(FRAME)
        excitation *= np.sqrt(np.mean(residual**2) / max(np.mean(excitation**2), 1e-12))
        out[i * HOP : i * HOP + FRAME] += lfilter([1.0], a, excitation) * window
        norm[i * HOP : i * HOP + FRAME] += window**2
    out = out / np.maximum(norm, 1e-3)
    out = out[FRAME // 2 : FRAME // 2 + n]
    return np.clip(np.nan_to_num(out), -1, 1).astype(np.float32)


def harmonic_noise(real: np.ndarray, seed: int, cutoff: float = 4000.0) -> np.ndarray:
    """``real`` through a harmonic-plus-noise model (see the module docstring); the same length."""
    rng = np.random.default_rng(seed)
    n = len(real)
    f0 = _pitch(real)
    n_fft = 1024
    spec = np.abs(librosa.stft(real, n_fft=n_fft, hop_length=HOP, win_length=FRAME, center=True))[:, : len(f0)]
    spec = np.pad(spec, ((0, 0), (0, len(f0) - spec.shape[1])), mode="edge")
    freqs = np.fft.rfftfreq(n_fft, 1 / RATE)
    # amplitude of a sinusoid from its peak in a Hann-windowed STFT: 2 * peak / sum(window)
    scale = 2.0 / np.hanning(FRAME).sum()
    f0_s = _frame_rate_to_samples(f0, n)
    voiced_s = f0_s > 0
    phase = np.cumsum(2 * np.pi * np.where(voiced_s, f0_s, 0.0) / RATE)
    harmonics = np.zeros(n)
    top = int(cutoff // F0_RANGE[0])
    for k in range(1, top + 1):
        fk = k * f0
        amp = np.array([np.interp(f, freqs, spec[:, i]) if 0 < f < cutoff else 0.0 for i, f in enumerate(fk)])
        if not amp.any():
            break
        harmonics += _frame_rate_to_samples(amp * scale, n) * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    # the noise part: the magnitude above the cutoff (voiced frames) or everywhere (unvoiced), random phase
    keep = np.where((f0 > 0)[None, :], (freqs >= cutoff)[:, None], True)
    noise_mag = spec * keep
    noise = librosa.istft(
        noise_mag * np.exp(2j * np.pi * rng.random(noise_mag.shape)),
        hop_length=HOP,
        win_length=FRAME,
        n_fft=n_fft,
        length=n,
    )
    return np.clip(harmonics + noise, -1, 1).astype(np.float32)


def pitch_shift(real: np.ndarray, seed: int) -> np.ndarray:
    """``real`` shifted by 2-5 semitones, up or down (drawn from ``seed``); the same length."""
    rng = np.random.default_rng(seed)
    steps = rng.uniform(2, 5) * rng.choice([-1, 1])
    return librosa.effects.pitch_shift(real, sr=RATE, n_steps=float(steps)).astype(np.float32)[: len(real)]


RESYNTHESIS = {
    "griffinlim": griffinlim,
    "lpc-vocoder": lpc_vocoder,
    "harmonic-noise": harmonic_noise,
    "pitch-shift": pitch_shift,
}
"""Copy-synthesis generators by name: ``fn(real, seed) -> samples`` of the same length."""
