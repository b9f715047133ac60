"""Real utterances from one speech pool, and forged stretches spliced into them.

An utterance is the pool's recordings (words, syllables or sentences), each trimmed of
silence and set to a level drawn per utterance (-26 to -18 dBFS RMS, +-2 dB per unit),
one after another with pauses of 0.12-0.45 s. The stretches a forgery may replace are
0.4-1.6 s long, starting and ending inside speech (:func:`choose_spans`), so that it
holds words and pauses like the speech around it and no splice falls into a silence.

A forged stretch (:func:`splice`) is a phrase of words spoken by a synthesizer,
time-fitted to the stretch (phase-vocoder time stretch, librosa), set to the stretch's
own level while voiced, and cross-faded over 10 ms at both edges, so no gap, step in
loudness or click marks the splice; or, for a copy-synthesis generator (:mod:`realset.vocoders`), the
stretch itself resynthesised. A noise bed
(pink, 30-45 dB under the speech) is added after splicing, so pauses are never digital
silence and the bed runs unbroken through forged and real stretches alike.
"""

from __future__ import annotations

import librosa
import numpy as np

from realset.sources import RATE
from realset.vocoders import RESYNTHESIS

FADE = 160  # 10 ms cross-fade at each splice edge (samples)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def compose(units: list[np.ndarray], seconds: float, rng) -> np.ndarray:
    """An utterance of exactly ``seconds`` (float32, 16 kHz) from ``units`` in turn (reused
    cyclically); a unit that overruns the end is cut there with a 20 ms fade."""
    n = round(seconds * RATE)
    out = np.zeros(n, np.float32)
    level = rng.uniform(-26, -18)
    pos, k = round(rng.uniform(0.0, 0.1) * RATE), 0
    while pos < n - RATE // 10:
        unit = units[k % len(units)]
        unit = librosa.effects.trim(unit, top_db=35)[0] if len(unit) else unit
        k += 1
        if len(unit) < RATE // 20:
            if k > 2 * len(units) and not out.any():
                raise ValueError("no usable recording among the units (all silent, too short or undecodable)")
            continue
        gain = 10 ** ((level + rng.uniform(-2, 2)) / 20) / max(_rms(unit), 1e-6)
        piece = (unit * gain)[: n - pos].copy()
        if len(piece) < len(unit):
            fade = min(len(piece), 320)
            piece[len(piece) - fade :] *= np.linspace(1, 0, fade, dtype=np.float32)
        out[pos : pos + len(piece)] = piece
        pos += len(piece) + round(rng.uniform(0.12, 0.45) * RATE)
    return out


def voiced(audio: np.ndarray) -> np.ndarray:
    """Voiced sample positions of ``audio``: inside ``librosa.effects.split`` intervals (30 dB under the
    peak), 30 ms away from their edges, every 5 ms."""
    spots = [
        np.arange(a + 480, b - 480, 80)
        for a, b in librosa.effects.split(audio, top_db=30, frame_length=512, hop_length=128)
    ]
    return np.concatenate(spots) if spots else np.zeros(0, int)


def choose_spans(
    audio: np.ndarray, count: int, rng, shortest: float = 0.4, longest: float = 1.6, gap: float = 0.3
) -> list[tuple[int, int]]:
    """Up to ``count`` stretches ``(start, end)`` (samples) to forge, ``gap`` s apart. Both ends lie
    inside speech, not in pauses, so a forged stretch holds words and pauses as the real speech around
    it does, and no splice falls in a silence."""
    spots, chosen = voiced(audio), []
    for _ in range(40 * count):
        if len(chosen) == count or not len(spots):
            break
        a = int(spots[rng.integers(len(spots))])
        target = a + rng.uniform(shortest, longest) * RATE
        b = int(spots[np.abs(spots - target).argmin()])
        if not shortest * RATE <= b - a <= longest * RATE:
            continue
        if all(a > e + gap * RATE or b < s - gap * RATE for s, e in chosen):
            chosen.append((a, b))
    return sorted(chosen)


def _levels(x: np.ndarray) -> np.ndarray:
    """RMS of the 20 ms frames of ``x``."""
    frames = x[: len(x) // 320 * 320].reshape(-1, 320).astype(np.float64)
    return np.sqrt(np.mean(frames**2, axis=1))


def _voiced_rms(x: np.ndarray) -> float:
    """RMS of the 20 ms frames of ``x`` within 30 dB of its loudest (all of ``x`` when under one frame)."""
    level = _levels(x)
    if not len(level):
        return _rms(x)
    return float(np.sqrt(np.mean(level[level > level.max() * 10 ** (-30 / 20)] ** 2)))


def _voiced_share(x: np.ndarray, floor: float | None = None) -> float:
    """Share of 20 ms frames of ``x`` louder than ``floor`` (RMS; default 30 dB under its loudest frame)."""
    level = _levels(x)
    if not len(level):
        return 1.0
    return float(np.mean(level > (level.max() * 10 ** (-30 / 20) if floor is None else floor)))


def fit_phrase(bank: dict[str, np.ndarray], length: int, spoken_share: float, rng) -> tuple[list[str], np.ndarray]:
    """Bank words in a random order with pauses between them, filling exactly ``length`` samples
    (float32), words taking about ``spoken_share`` of it; the words are time-stretched (phase
    vocoder) by one factor to fit."""
    words = [w for w in bank if len(bank[w]) > RATE // 20]
    speak = min(length, max(RATE // 10, spoken_share * length))
    said, total = [], 0
    while total < 0.9 * speak or not said:
        said.append(words[int(rng.integers(len(words)))])
        total += len(bank[said[-1]])
    rate = total / speak
    spoken = [librosa.effects.time_stretch(bank[w], rate=rate) if abs(rate - 1) > 0.02 else bank[w] for w in said]
    rest = max(0, length - sum(len(x) for x in spoken))
    cuts = np.sort(rng.uniform(0, 1, len(spoken) - 1)) if len(spoken) > 1 else np.zeros(0)
    pauses = np.diff(np.round(np.concatenate([[0], cuts, [1]]) * rest).astype(int))
    # the phrase opens and closes inside speech (as the stretch does): the pause budget goes between words
    parts = [spoken[0]]
    for pause, word in zip(pauses[1:-1] if len(spoken) > 1 else [], spoken[1:]):
        parts += [np.zeros(pause, np.float32), word]
    parts.append(np.zeros(pauses[0] + pauses[-1] if len(spoken) > 1 else rest, np.float32))
    phrase = np.concatenate(parts)
    return said, np.pad(phrase, (0, max(0, length - len(phrase))))[:length].astype(np.float32)


def splice(audio: np.ndarray, start: int, end: int, generator: str, bank: dict | None, rng) -> list[str]:
    """Replace ``audio[start:end]`` in place by ``generator``'s speech, matched to the stretch's level
    while voiced, cross-faded over :data:`FADE` samples at both edges; returns the words spoken
    (none for copy-synthesis, which keeps the speaker's own)."""
    real = audio[start:end]
    if generator in RESYNTHESIS:
        pad = RATE // 10
        a, b = max(0, start - pad), min(len(audio), end + pad)
        fake, words = RESYNTHESIS[generator](audio[a:b], int(rng.integers(1 << 31)))[start - a : end - a], []
    else:
        # as much of the phrase voiced as of the real stretch (the shortcut check's notion of voiced):
        # words have quiet frames of their own, so the spoken share is corrected twice by measurement
        floor = _levels(audio).max() * 10 ** (-30 / 20)
        want, seed = _voiced_share(real, floor), int(rng.integers(1 << 31))
        share = want
        for _ in range(3):
            words, fake = fit_phrase(bank, end - start, share, np.random.default_rng(seed))
            heard = fake * (_voiced_rms(real) / max(_voiced_rms(fake), 1e-6))
            share = min(1.0, share * want / max(_voiced_share(heard, floor), 0.05))
    fake = fake * (_voiced_rms(real) / max(_voiced_rms(fake), 1e-6))
    mix = np.ones(end - start, np.float32)
    ramp = min(FADE, (end - start) // 4)
    mix[:ramp] = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, ramp))
    mix[len(mix) - ramp :] = mix[:ramp][::-1]
    audio[start:end] = (1 - mix) * real + mix * fake
    return words


def noise_bed(audio: np.ndarray, rng) -> np.ndarray:
    """``audio`` plus pink noise 30-45 dB under its voiced RMS; clipped to [-1, 1]."""
    spectrum = np.fft.rfft(rng.normal(0, 1, len(audio)))
    spectrum /= np.sqrt(np.maximum(np.fft.rfftfreq(len(audio), 1 / RATE), 20.0))
    pink = np.fft.irfft(spectrum, len(audio))
    sounding = audio[np.abs(audio) > 1e-4]
    level = _rms(sounding) * 10 ** (-rng.uniform(30, 45) / 20)
    return np.clip(audio + pink * level / max(_rms(pink), 1e-12), -1, 1).astype(np.float32)
