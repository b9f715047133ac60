"""The timing check: how far each re-encoded copy is from its original in time.

A copy is decoded the way the engine decodes it (:func:`dfstream.engine.media.decode.decode_audio`,
16 kHz mono) and compared with the original: decoded and declared duration,
time of the first sample, alignment (cross-correlation lag) and, for
audio-visual files, the video packets' count and first and last presentation
times. All times in seconds; a copy more than :data:`TOLERANCE_S` off is not
``ok`` (:func:`timing`), and :func:`timing_summary` gives the worst of each
over a condition's files.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from dfstream.engine.core.errors import MediaError
from dfstream.engine.media.decode import SAMPLE_RATE, decode_audio
from dfstream.engine.media.video import video_stream

TOLERANCE_S = 0.05  # a copy whose duration, start or alignment is further off than this is reported
MAX_LAG_S = 0.25  # alignment search range of the timing check


def lag_seconds(a: np.ndarray, b: np.ndarray, max_lag: int) -> float | None:
    """Delay of ``b`` behind ``a`` (16 kHz mono) in seconds, from the cross-correlation peak within
    ``max_lag`` samples (at most one sample less than the shorter signal: beyond that the circular
    correlation wraps); None when either is silent. Uses the first 30 s."""
    n = min(len(a), len(b), 30 * SAMPLE_RATE)
    a, b = a[:n].astype(np.float64), b[:n].astype(np.float64)
    if n < 2 or not a.any() or not b.any():
        return None
    size = 1 << int(np.ceil(np.log2(2 * n)))
    corr = np.fft.irfft(np.conj(np.fft.rfft(a, size)) * np.fft.rfft(b, size), size)
    max_lag = min(max_lag, n - 1)
    lags = np.r_[0 : max_lag + 1, -max_lag:0]
    return float(lags[np.argmax(corr[lags])] / SAMPLE_RATE)


def video_times(path: Path) -> tuple[int, float, float] | None:
    """``(frames, first, last)`` presentation times (s) of the video packets, or None without video."""
    with av.open(str(path)) as c:
        stream = video_stream(c)
        if stream is None:
            return None
        times = [float(p.pts * p.time_base) for p in c.demux(stream) if p.pts is not None]
    return (len(times), min(times), max(times)) if times else (0, 0.0, 0.0)


def audio_declared(path: Path) -> tuple[float | None, float]:
    """The first audio stream's declared duration (s; None when not declared) and codec frame length (s)."""
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        cc = stream.codec_context
        if stream.duration is not None and stream.time_base is not None:
            declared = float(stream.duration * stream.time_base)
        else:
            declared = c.duration / av.time_base if c.duration is not None else None
        return declared, (cc.frame_size or 0) / cc.sample_rate


def timing(src: Path, dst: Path) -> dict:
    """How far the copy ``dst`` is from ``src`` in time (seconds), decoded the way the engine decodes.

    Returns
    -------
    dict
        ``duration_diff_s`` (decoded, copy minus original), ``start_diff_s`` (time
        of the first sample), ``lag_s`` (the copy's delay from the cross-correlation
        peak), the same for the video packets of audio-visual files, and ``ok``: all
        within :data:`TOLERANCE_S`, except that the decoded copy may be longer by up
        to one codec frame more (encoder padding past the original's end that
        FFmpeg's decoder keeps although the container marks it: it moves no label).
        ``declared_duration_diff_s`` (the containers' declared durations) is for
        information: the copy encodes what the original decodes to, padding of the
        original's own codec included. ``error`` instead when the engine cannot
        decode the copy (its own check of declared against decoded duration included).
    """
    try:
        a, b = decode_audio(src), decode_audio(dst)
    except MediaError as e:
        return {"error": str(e), "ok": False}
    (declared_a, _), (declared_b, frame) = audio_declared(src), audio_declared(dst)
    result = {
        "duration_diff_s": round(b.duration - a.duration, 4),
        "declared_duration_diff_s": (
            round(declared_b - declared_a, 4) if declared_a is not None and declared_b is not None else None
        ),
        "start_diff_s": round(b.t0 - a.t0, 4),
        "lag_s": lag_seconds(a.samples, b.samples, round(MAX_LAG_S * SAMPLE_RATE)),
    }
    va, vb = video_times(src), video_times(dst)
    if va and vb:
        result.update(
            video_frames_diff=vb[0] - va[0],
            video_start_diff_s=round(vb[1] - va[1], 4),
            video_end_diff_s=round(vb[2] - va[2], 4),
        )
    strict = [
        result[k]
        for k in ("start_diff_s", "lag_s", "video_start_diff_s", "video_end_diff_s")
        if result.get(k) is not None
    ]
    result["ok"] = (
        all(abs(v) <= TOLERANCE_S for v in strict)
        and result.get("video_frames_diff", 0) == 0
        and -TOLERANCE_S <= result["duration_diff_s"] <= TOLERANCE_S + frame
    )
    return result


def timing_summary(checks: dict[str, dict]) -> dict:
    """The largest deviation of each kind over the files, and the files not ``ok`` (see :func:`timing`)."""
    keys = (
        "duration_diff_s",
        "declared_duration_diff_s",
        "start_diff_s",
        "lag_s",
        "video_frames_diff",
        "video_start_diff_s",
        "video_end_diff_s",
    )
    worst = {k: max((abs(c[k]) for c in checks.values() if c.get(k) is not None), default=None) for k in keys}
    return {
        "max_abs": {k: v for k, v in worst.items() if v is not None},
        "tolerance_s": TOLERANCE_S,
        "files_off": sorted(f for f, c in checks.items() if not c["ok"]),
    }
