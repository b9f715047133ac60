"""The conditions of the robustness benchmark: the ways a split is re-encoded.

Each :class:`Condition` names an audio re-encoding (codec, bits per second,
sample rate in Hz, mono mix, a processing step applied to the samples first)
or a video re-encoding (x264 CRF, size divisor). The processing steps here work
on float32 samples of shape ``(channels, n)``, full scale 1.0, at a rate in Hz:
:func:`add_noise` (white noise at an SNR in dB) and :func:`telephone_band`
(the 300-3400 Hz telephone band). :data:`CONDITIONS` holds every condition,
:func:`parse_conditions` reads ``--conditions``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dfstream.modalities.audio.channel import band_pass

# ----------------------------------------------------------------------------- audio processing


def add_noise(x: np.ndarray, rate: int, rng: np.random.Generator, snr_db: float = 20.0) -> np.ndarray:
    """White Gaussian noise at ``snr_db`` below the mean power of the whole signal.

    Parameters
    ----------
    x : np.ndarray
        float32, shape ``(channels, n)``, full scale 1.0.
    rate : int
        Sample rate in Hz (unused: white noise has no shape).
    rng : np.random.Generator
        Source of the noise (seeded per file by the caller).
    snr_db : float
        Signal-to-noise ratio in dB, over all samples of all channels.

    Returns
    -------
    np.ndarray
        float32, shape ``(channels, n)``, clipped to [-1, 1].
    """
    power = float(np.mean(np.square(x, dtype=np.float64))) if x.size else 0.0
    noise = rng.standard_normal(x.shape) * np.sqrt(power / 10 ** (snr_db / 10))
    return np.clip(x + noise, -1.0, 1.0).astype(np.float32)


def telephone_band(
    x: np.ndarray, rate: int, rng: np.random.Generator, low: float = 300.0, high: float = 3400.0
) -> np.ndarray:
    """Band-pass to the telephone channel (ITU-T G.712: 300-3400 Hz), zero phase (no delay).

    Parameters
    ----------
    x : np.ndarray
        float32, shape ``(channels, n)``.
    rate : int
        Sample rate in Hz.
    rng : np.random.Generator
        Unused (the same signature as the other processing steps).
    low, high : float
        Pass band in Hz; ``high`` is lowered below Nyquist when ``rate`` needs it.

    Returns
    -------
    np.ndarray
        float32, shape ``(channels, n)``.
    """
    return band_pass(x, rate, low, high).astype(np.float32)  # the filter training's telephone line uses


# ----------------------------------------------------------------------------- conditions


@dataclass(frozen=True)
class Condition:
    """One way the split is re-encoded.

    Attributes
    ----------
    name : str
        Key in :data:`CONDITIONS`, folder name under ``--work``.
    kind : str
        ``clean`` (files as they are), ``audio`` (audio re-encoded, video copied)
        or ``video`` (video re-encoded, audio copied; files without video skipped).
    description : str
        One line for the result and the Markdown table.
    codec : str | None
        Audio encoder (``audio`` conditions).
    bit_rate : int | None
        Audio bits per second (lossy codecs).
    rate : int | None
        Output sample rate in Hz; None: the input's, or the nearest the codec takes.
    mono : bool
        Mix the audio down to one channel.
    process : Callable | None
        ``(samples (channels, n) float32, rate Hz, rng) -> samples``, applied before encoding.
    suffix : str
        Suffix of the copies of audio-only files.
    av_suffix : str
        Suffix of the copies of files with video (a container that holds the codec and H.264).
    crf : int | None
        x264 constant rate factor (``video`` conditions).
    scale : int
        Width and height are divided by this (``video`` conditions).
    """

    name: str
    kind: str
    description: str
    codec: str | None = None
    bit_rate: int | None = None
    rate: int | None = None
    mono: bool = False
    process: Callable | None = None
    suffix: str = ""
    av_suffix: str = ".mp4"
    crf: int | None = None
    scale: int = 1


CONDITIONS = {
    c.name: c
    for c in (
        Condition("clean", "clean", "the files as they are (reference)"),
        # MP3 in MP4, not a raw .mp3: FFmpeg reports a raw MP3's first sample at the encoder delay its LAME tag
        # skips (1105 samples: 69 ms at 16 kHz); engines before decode.COUNTED_FROM_SKIP took that as stream time,
        # and MP4 keeps this bench's results comparable with theirs. Not Matroska either:
        # its declared duration counts that delay, and the engine's truncation check can trip on it.
        Condition("mp3-32k", "audio", "audio MP3 32 kbit/s", "libmp3lame", 32_000, suffix=".mp4"),
        Condition("aac-32k", "audio", "audio AAC 32 kbit/s", "aac", 32_000, suffix=".m4a"),
        Condition("opus-16k", "audio", "audio Opus 16 kbit/s", "libopus", 16_000, suffix=".ogg", av_suffix=".mkv"),
        Condition(
            "telephone",
            "audio",
            "audio 300-3400 Hz, mono, G.711 mu-law 8 kHz",
            "pcm_mulaw",
            None,
            8000,
            True,
            telephone_band,
            suffix=".wav",
            av_suffix=".mov",
        ),
        Condition(
            "noise-20db",
            "audio",
            "audio + white noise at 20 dB SNR (whole file), 16-bit PCM",
            "pcm_s16le",
            process=add_noise,
            suffix=".wav",
            av_suffix=".mov",
        ),
        Condition("h264-crf40", "video", "video H.264 CRF 40", crf=40),
        Condition("downscale-half", "video", "video at half width and height, H.264 CRF 23", crf=23, scale=2),
    )
}
"""Every condition, keyed by name (``--conditions``)."""


def parse_conditions(text: str | None) -> list[Condition]:
    """``clean`` first, then the named conditions (comma list; None or ``all``: every one).

    Raises
    ------
    SystemExit
        On an unknown name; the message lists the valid ones.
    """
    if not text or text == "all":
        return list(CONDITIONS.values())
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONDITIONS]
    if unknown:
        raise SystemExit(f"unknown condition(s) {', '.join(unknown)}; valid: {', '.join(CONDITIONS)}")
    return [CONDITIONS["clean"]] + [CONDITIONS[n] for n in dict.fromkeys(names) if n != "clean"]
