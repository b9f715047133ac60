"""Audio through a lossy codec and back, in memory (PyAV): what a compressed channel leaves.

Training uses it to show the model speech that went through MP3, AAC or Opus
(``audio.channels``), so that a codec's traces are not taken for a generator's.
Encoders delay their output (priming samples); the decoded signal is put back in
place by the lag of its cross-correlation with the input, so every sample keeps its time.
"""

from __future__ import annotations

import io

import av
import numpy as np
import soxr

# codec -> (container format, the rate the encoder is given)
CODECS = {"mp3": ("mp3", 16000), "aac": ("adts", 16000), "opus": ("ogg", 48000)}
MAX_LAG = 4096  # samples at the input's rate; encoder delays are well under this


def round_trip(samples: np.ndarray, rate: int, codec: str, bit_rate: int) -> np.ndarray:
    """Mono float32 ``samples`` at ``rate`` encoded with ``codec`` at ``bit_rate`` bits/s and decoded,
    at ``rate`` again, aligned to the input and of its length (zeros where the decoder gave less)."""
    if codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r}; valid: {', '.join(CODECS)}")
    fmt, codec_rate = CODECS[codec]
    x = np.asarray(samples, np.float32)
    y = soxr.resample(x, rate, codec_rate) if codec_rate != rate else x
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=fmt) as out:
        stream = out.add_stream("libopus" if codec == "opus" else codec, rate=codec_rate)
        stream.bit_rate = bit_rate
        stream.layout = "mono"
        for start in range(0, len(y), 1024):
            frame = av.AudioFrame.from_ndarray(y[None, start : start + 1024].copy(), format="flt", layout="mono")
            frame.sample_rate = codec_rate
            frame.pts = start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    buffer.seek(0)
    parts = []
    with av.open(buffer, "r") as src:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        for frame in src.decode(audio=0):
            parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
        parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    decoded = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return _aligned(decoded, x)


def _aligned(decoded: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``decoded`` shifted by the lag (0..:data:`MAX_LAG`) that best matches ``reference``, cut or
    padded to its length."""
    n = len(reference)
    span = min(n, 4 * MAX_LAG)
    if span > 0 and len(decoded) > 0:
        a = np.pad(decoded, (0, max(0, span + MAX_LAG - len(decoded))))[: span + MAX_LAG]
        corr = np.correlate(a.astype(np.float64), reference[:span].astype(np.float64), mode="valid")
        lag = int(np.argmax(corr)) if np.any(corr) else 0
    else:
        lag = 0
    out = decoded[lag : lag + n]
    return np.pad(out, (0, n - len(out))).astype(np.float32)
