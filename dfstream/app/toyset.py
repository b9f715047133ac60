"""A tiny SYNTHETIC dataset in the AV-Deepfake1M metadata format.

It exists so that the demo, the tests and the benchmarks run from nothing, with
known boundaries. It is not speech and not a deepfake benchmark: "genuine"
audio is a formant-shaped harmonic signal with natural-ish pitch jitter and
breath noise, cut into syllables; "forged" spans replace it, at the same
loudness and syllable envelope, cross-faded at the edges, with the output of
one of three toy "generators" (the ``audio_model`` label, for attribution):
``toy-vocoder`` (perfectly periodic buzz on the same pitch contour plus a
high-frequency noise band), ``toy-whisper`` (noise through the same formants
plus a bright band above 3 kHz, no pitch) and ``toy-robot`` (a monotone
odd-harmonic buzz through a 5-bit quantizer). A model that learns this toy task
has learned nothing about real deepfakes; its model card says so.
"""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np

from dfstream.engine.core.progress import SILENT, Progress, tracked

RATE = 16000
GENERATORS = ("toy-vocoder", "toy-whisper", "toy-robot")


def _syllable_envelope(rng, n: int) -> np.ndarray:
    env = np.zeros(n, np.float64)
    pos = int(rng.uniform(0.05, 0.2) * RATE)
    while pos < n:
        length = int(rng.uniform(0.12, 0.3) * RATE)
        seg = np.sin(np.linspace(0, np.pi, length)) ** 0.7 * rng.uniform(0.5, 1.0)
        env[pos : pos + length] = seg[: max(0, min(length, n - pos))]
        pos += length + int(rng.exponential(0.06) * RATE)
        if rng.random() < 0.1:
            pos += int(rng.uniform(0.2, 0.5) * RATE)  # a pause
    return env


def _harmonics(phase: np.ndarray, f0: np.ndarray, amplitude_of) -> np.ndarray:
    out = np.zeros_like(phase)
    for h in range(1, int(7600 / f0.min()) + 1):
        freq = h * f0
        out += np.where(freq < 7600, amplitude_of(freq, h), 0.0) * np.sin(h * phase)
    return out


def toy_signal(rng, n: int, generator: str):
    """(genuine, forged) versions of one utterance sharing loudness and syllables."""
    t = np.arange(n) / RATE
    base = rng.uniform(95, 230)
    f0 = base * (1 + 0.12 * np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * t + rng.uniform(0, 6)))
    jitter = np.cumsum(rng.normal(0, 0.4, n)) / np.sqrt(np.arange(1, n + 1))
    formants = rng.uniform([350, 1000, 2200], [800, 2000, 3200])

    def formant_gain(freq, h):
        return sum(np.exp(-0.5 * ((freq - f) / 120.0) ** 2) for f in formants) + 0.05 / h

    genuine = _harmonics(2 * np.pi * np.cumsum(f0 * (1 + 0.01 * jitter)) / RATE, f0, formant_gain)
    genuine += 0.05 * rng.normal(0, 1, n) * genuine.std()
    spectrum = np.fft.rfft(rng.normal(0, 1, n))
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    if generator == "toy-vocoder":
        forged = _harmonics(2 * np.pi * np.cumsum(f0) / RATE, f0, lambda freq, h: 1.0 / h)
        spectrum[(freqs < 4500) | (freqs > 7000)] = 0
        hiss = np.fft.irfft(spectrum, n)
        forged += 0.15 * forged.std() * hiss / (hiss.std() + 1e-9)
    elif generator == "toy-whisper":
        forged = np.fft.irfft(spectrum * (formant_gain(freqs, 1) + 0.5 * (freqs > 3000)), n)
    elif generator == "toy-robot":
        flat = np.full(n, base)
        forged = _harmonics(2 * np.pi * np.cumsum(flat) / RATE, flat, lambda freq, h: (h % 2) / h)
        forged = np.round(forged / np.abs(forged).max() * 15) / 15  # through a 5-bit quantizer
    else:
        raise ValueError(f"unknown toy generator {generator!r}; valid: {', '.join(GENERATORS)}")
    env = _syllable_envelope(rng, n)
    genuine, forged = genuine * env, forged * env
    return genuine / (genuine.std() + 1e-9), forged / (forged.std() + 1e-9)


def _fake_segments(rng, duration: float) -> list[list[float]]:
    segments = []
    for _ in range(rng.integers(1, 3)):
        length = rng.uniform(0.4, min(1.6, 0.6 * duration))
        start = min(rng.uniform(0.2, max(0.3, duration - length - 0.2)), duration - length - 0.05)
        if all(start > e + 0.3 or start + length < s - 0.3 for s, e in segments):
            segments.append([round(start, 2), round(start + length, 2)])
    return sorted(segments)


def write_wav(path: Path, samples: np.ndarray) -> None:
    pcm = np.clip(samples * 32767, -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())


def make_toyset(
    out: str | Path,
    files: int = 96,
    seed: int = 0,
    min_seconds: float = 4.0,
    max_seconds: float = 8.0,
    generators: tuple[str, ...] = GENERATORS,
    progress: Progress = SILENT,
) -> Path:
    """Write ``files`` WAV files and ``metadata.json`` under ``out``; return the metadata path.

    About a third of the files are genuine; the rest hold 1-2 forged spans of one
    generator each, taking ``generators`` in turn.
    Splits: 70% train, 15% val, 15% test (at least one file each when ``files`` >= 3).
    """
    out = Path(out)
    rng = np.random.default_rng(seed)
    entries = []
    try:
        for i in tracked(progress, range(files), "toyset", "file"):
            entries.append(_toy_file(out, rng, i, split_of(i, files), min_seconds, max_seconds, generators))
    finally:  # also on Ctrl-C: the metadata of the files written so far
        path = write_metadata(out, entries, _readme(generators))
    return path


def split_of(i: int, files: int) -> str:
    """Split of toy file ``i`` of ``files``: the first 15% test, the next 15% val, the rest train
    (at least one test and one val file when ``files`` >= 3)."""
    n_val = n_test = max(1, round(files * 0.15)) if files >= 3 else 0
    return "test" if i < n_test else "val" if i < n_test + n_val else "train"


def splice(genuine: np.ndarray, forged: np.ndarray, segments) -> np.ndarray:
    """``genuine`` with ``forged`` in ``segments`` ([start, end] seconds), cross-faded over up to
    10 ms at each edge, scaled by 0.1 (float64, 16 kHz)."""
    mix = np.zeros(len(genuine))
    for s, e in segments:
        a, b = int(s * RATE), int(e * RATE)
        ramp = min(160, (b - a) // 4)
        mask = np.ones(b - a)
        mask[:ramp], mask[-ramp:] = np.linspace(0, 1, ramp), np.linspace(1, 0, ramp)
        mix[a:b] = mask
    return 0.1 * ((1 - mix) * genuine + mix * forged)


def _toy_file(
    out: Path, rng, i: int, split: str, min_seconds: float, max_seconds: float, generators: tuple[str, ...]
) -> dict:
    """Write toy file number ``i`` and return its metadata entry."""
    duration = round(float(rng.uniform(min_seconds, max_seconds)), 2)
    n = int(duration * RATE)
    generator = generators[(i - i // 3 - 1) % len(generators)]  # cycles over the fake files
    genuine, forged = toy_signal(rng, n, generator)
    segments = [] if i % 3 == 0 else _fake_segments(rng, duration)
    audio = splice(genuine, forged, segments)
    name = f"{split}/{i:04d}.wav"
    (out / split).mkdir(parents=True, exist_ok=True)
    write_wav(out / name, audio)
    return {
        "file": name,
        "original": None,
        "split": split,
        "modify_type": "audio_modified" if segments else "real",
        "audio_model": generator if segments else None,
        "fake_segments": segments,
        "audio_fake_segments": segments,
        "visual_fake_segments": [],
        "video_frames": 0,
        "audio_frames": n,
    }


def write_metadata(out: Path, entries: list[dict], readme: str) -> Path:
    """Write ``metadata.json`` (the entries) and ``README.md`` (``readme``) under ``out``; return the metadata path."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "metadata.json"
    path.write_text(json.dumps(entries, indent=1) + "\n")
    (out / "README.md").write_text(readme)
    return path


def _readme(generators: tuple[str, ...]) -> str:
    return (
        "# dfstream toy set (SYNTHETIC)\n\nGenerated by `dfstream toyset` (dfstream/app/toyset.py): "
        "formant-shaped harmonic signals, not speech; forged spans come from three toy generators "
        f"({', '.join(generators)}; the `audio_model` field). "
        "For smoke tests and the demo only. No third-party material; no licence concerns.\n"
    )
