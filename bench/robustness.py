"""Robustness to re-encoding: how a trained checkpoint degrades when the test split is re-encoded.

Media rarely reaches a detector as it was recorded: a platform re-encodes the
audio to a low-bitrate codec and the picture at a high CRF or a smaller size, a
phone line band-limits the voice and sends it as 8 kHz G.711 mu-law. This
benchmark re-encodes every file of one split of an AV-Deepfake1M-format
dataset in each of these ways (with PyAV, never the ffmpeg CLI) and runs the
product's own pipeline on each copy - ``dfstream replay`` then ``dfstream
eval`` - so the numbers are what a user of the checkpoint would measure.

Conditions (``--conditions``; all by default; ``clean`` always runs, it is the
reference every drop is measured from):

* ``clean``: the files as they are (hard links where possible, else copies).
* ``mp3-32k``, ``aac-32k``, ``opus-16k``: the audio in MP3 at 32 kbit/s, AAC at
  32 kbit/s, Opus at 16 kbit/s.
* ``telephone``: the audio band-passed to the telephone band (300-3400 Hz,
  zero-phase 4th-order Butterworth), mixed to mono, resampled to 8 kHz and
  stored as G.711 mu-law (``pcm_mulaw``) at 8 kHz; the engine resamples to
  16 kHz itself.
* ``noise-20db``: additive white Gaussian noise at 20 dB SNR (noise power from
  the mean power of the whole file), seeded by ``--seed`` and the file name;
  stored as 16-bit PCM at the input's rate.
* ``h264-crf40``: the video re-encoded H.264 at CRF 40.
* ``downscale-half``: the video at half width and height (rounded down to even),
  H.264 at CRF 23.

Timing is kept exactly, so that the labels still apply: every audio and video
frame keeps its presentation time, and the containers used skip the encoder's
delay (MP4 edit lists, Matroska, Ogg pre-skip). MP3 goes into MP4, not a raw
``.mp3``, whose first sample FFmpeg places at the encoder delay (69 ms at
16 kHz). A lossy copy may decode up to one codec frame past the original's end
(encoder padding FFmpeg's decoder keeps): that moves no label. Each copy is
checked after it is written: decoded the way the engine decodes it, its
duration, start time and alignment (cross-correlation lag) against the
original are recorded, and a copy more than 50 ms off is reported. (An input
whose audio starts after 0 s - none in this dataset format - keeps that start
only where the container can hold it; the check reports the ones that do not.)

Audio conditions copy the video stream of an audio-visual file as it is; video
conditions copy its audio when MP4 takes the codec, else re-encode it AAC
128 kbit/s. The video conditions skip files without video, and are skipped
(with a note) when the split has none.

Layout of ``--work``: ``<condition>/<file>`` (the copies, named like the
metadata's ``file`` with the condition's suffix), ``<condition>/metadata.json``
(the split's entries, pointing at those names), ``results/<condition>/`` (replay
outputs, ``metrics.json``, the two commands' logs). It is kept after the run.

    python bench/robustness.py --meta DATA/metadata.json --root DATA --model MODEL [--index INDEX] \\
        [--conditions clean,mp3-32k,...] [--limit N] [--markdown card.md]

Writes bench/results/robustness.json: per condition AP@0.5, AP@0.75, detection
AUC (attribution top-1 with --index), their drop from clean, files, seconds and
the timing check; the command line and the machine.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

import av
import numpy as np
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from replay_speed import machine  # noqa: E402  (same machine record for every benchmark)

from engine.dataset import load_metadata  # noqa: E402
from engine.decode import SAMPLE_RATE, decode_audio  # noqa: E402
from engine.errors import MediaError  # noqa: E402
from engine.video import has_video, video_stream  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MARKER = ".robustness"  # marks a condition folder this benchmark wrote (and may clear on a rerun)
FRAME = 1024  # samples per audio frame handed to an encoder (PyAV re-frames them to the codec's size)
TOLERANCE_S = 0.05  # a copy whose duration, start or alignment is further off than this is reported
MAX_LAG_S = 0.25  # alignment search range of the timing check
MP4_AUDIO = frozenset({"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"})  # copied as they are into MP4
AAC_BIT_RATE = 128_000  # bits/s: video conditions' audio when it cannot be copied


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


def telephone_band(x: np.ndarray, rate: int, rng: np.random.Generator,
                   low: float = 300.0, high: float = 3400.0) -> np.ndarray:
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
    from scipy.signal import butter, sosfiltfilt  # scipy comes with scikit-learn
    high = min(high, 0.45 * rate)
    sos = butter(4, [low, high], btype="bandpass", fs=rate, output="sos")
    if x.shape[-1] <= 3 * (2 * len(sos) + 1):  # too short for filtfilt's padding
        return x
    return sosfiltfilt(sos, x, axis=-1).astype(np.float32)


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


CONDITIONS = {c.name: c for c in (
    Condition("clean", "clean", "the files as they are (reference)"),
    # MP3 in MP4, not a raw .mp3: FFmpeg reports a raw MP3's first sample at the encoder delay its LAME tag
    # skips (1105 samples: 69 ms at 16 kHz), and the engine takes that as stream time. Not Matroska either:
    # its declared duration counts that delay, and the engine's truncation check can trip on it.
    Condition("mp3-32k", "audio", "audio MP3 32 kbit/s", "libmp3lame", 32_000, suffix=".mp4"),
    Condition("aac-32k", "audio", "audio AAC 32 kbit/s", "aac", 32_000, suffix=".m4a"),
    Condition("opus-16k", "audio", "audio Opus 16 kbit/s", "libopus", 16_000, suffix=".ogg", av_suffix=".mkv"),
    Condition("telephone", "audio", "audio 300-3400 Hz, mono, G.711 mu-law 8 kHz", "pcm_mulaw", None, 8000, True,
              telephone_band, suffix=".wav", av_suffix=".mov"),
    Condition("noise-20db", "audio", "audio + white noise at 20 dB SNR (whole file), 16-bit PCM", "pcm_s16le",
              process=add_noise, suffix=".wav", av_suffix=".mov"),
    Condition("h264-crf40", "video", "video H.264 CRF 40", crf=40),
    Condition("downscale-half", "video", "video at half width and height, H.264 CRF 23", crf=23, scale=2),
)}
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


# ----------------------------------------------------------------------------- re-encoding

def read_audio(path: Path) -> tuple[np.ndarray, int, float]:
    """All audio of the first audio stream at its own rate.

    Returns
    -------
    samples : np.ndarray
        float32, shape ``(channels, n)``; more than two channels are mixed to one.
    rate : int
        Sample rate in Hz.
    t0 : float
        Presentation time of the first sample, seconds.
    """
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        channels = stream.codec_context.layout.nb_channels
        layout = "stereo" if channels == 2 else "mono"
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=stream.codec_context.sample_rate)
        parts, t0 = [], None
        for frame in c.decode(stream):
            if t0 is None:
                t0 = float(frame.time) if frame.time is not None else 0.0
            parts += [f.to_ndarray() for f in resampler.resample(frame)]
        parts += [f.to_ndarray() for f in resampler.resample(None)]
        samples = np.concatenate(parts, axis=1) if parts else np.zeros((1, 0), np.float32)
        return samples.astype(np.float32, copy=False), stream.codec_context.sample_rate, t0 or 0.0


def codec_rate(codec: str, rate: int) -> int:
    """``rate`` if the encoder takes it, else the lowest rate above it that it takes (else its highest)."""
    rates = av.Codec(codec, "w").audio_rates
    if not rates or rate in rates:
        return rate
    above = sorted(r for r in rates if r >= rate)
    return above[0] if above else max(rates)


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``samples`` (float32, ``(channels, n)`` at ``rate`` Hz) at ``target`` Hz (soxr, delay compensated)."""
    if target == rate:
        return samples
    resampled = soxr.resample(samples.T, rate, target, quality="HQ").reshape(-1, samples.shape[0])
    return np.ascontiguousarray(resampled.T, dtype=np.float32)


def add_audio(out, codec: str, samples: np.ndarray, rate: int, bit_rate: int | None):
    """Add an audio stream for ``samples`` (shape ``(channels, n)``, ``rate`` Hz) to ``out``."""
    stream = out.add_stream(codec, rate=rate, layout="stereo" if samples.shape[0] == 2 else "mono")
    if bit_rate:
        stream.bit_rate = bit_rate
    return stream


def write_audio(out, stream, samples: np.ndarray, rate: int, t0: float) -> None:
    """Encode ``samples`` (float32, ``(channels, n)`` at ``rate`` Hz, first sample at ``t0`` s) into ``stream``."""
    layout = "stereo" if samples.shape[0] == 2 else "mono"
    start = round(t0 * rate)
    for i in range(0, samples.shape[1], FRAME):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, i:i + FRAME]), format="fltp",
                                           layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = rate, start + i, Fraction(1, rate)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def copy_packets(out, container, source, target) -> None:
    """Mux every packet of ``source`` (a stream of ``container``) unchanged into ``target``."""
    for packet in container.demux(source):
        if packet.dts is None and packet.pts is None:  # the demuxer's end-of-stream packet
            continue
        packet.stream = target
        out.mux(packet)


def degrade_audio(cond: Condition, src: Path, dst: Path, seed: list[int]) -> None:
    """Re-encode the audio of ``src`` into ``dst`` as ``cond`` says; a video stream is copied as it is.

    ``seed`` seeds ``cond.process`` (:func:`numpy.random.default_rng`).
    """
    samples, rate, t0 = read_audio(src)
    if cond.process is not None:
        samples = cond.process(samples, rate, np.random.default_rng(seed))
    if cond.mono and samples.shape[0] > 1:
        samples = samples.mean(axis=0, keepdims=True)
    target = cond.rate or codec_rate(cond.codec, rate)
    samples = resample(samples, rate, target)
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = video_stream(inp)
        astream = add_audio(out, cond.codec, samples, target, cond.bit_rate)
        vout = out.add_stream_from_template(vin) if vin is not None else None
        write_audio(out, astream, samples, target, t0)
        if vin is not None:
            copy_packets(out, inp, vin, vout)


def degrade_video(cond: Condition, src: Path, dst: Path) -> None:
    """Re-encode the video of ``src`` into ``dst`` (H.264 at ``cond.crf``, size divided by ``cond.scale``).

    Frames keep their presentation times; the audio is copied when MP4 takes its
    codec, else re-encoded AAC at :data:`AAC_BIT_RATE`.
    """
    with av.open(str(src)) as inp:
        vin, ain = video_stream(inp), (inp.streams.audio[0] if inp.streams.audio else None)
        copy_audio = ain is not None and ain.codec_context.name in MP4_AUDIO
    pcm = None
    if ain is not None and not copy_audio:
        samples, rate, t0 = read_audio(src)
        pcm = (resample(samples, rate, codec_rate("aac", rate)), codec_rate("aac", rate), t0)
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin, ain = video_stream(inp), (inp.streams.audio[0] if inp.streams.audio else None)
        width = max(2, vin.codec_context.width // cond.scale // 2 * 2)
        height = max(2, vin.codec_context.height // cond.scale // 2 * 2)
        vout = out.add_stream("libx264", rate=vin.average_rate or vin.guessed_rate or 25,
                              options={"crf": str(cond.crf)})
        vout.width, vout.height, vout.pix_fmt = width, height, "yuv420p"
        vout.codec_context.time_base = vin.time_base
        aout = None
        if copy_audio:
            aout = out.add_stream_from_template(ain)
        elif pcm is not None:
            aout = add_audio(out, "aac", pcm[0], pcm[1], AAC_BIT_RATE)
        streams = [vin, ain] if copy_audio else [vin]
        for packet in inp.demux(streams):
            if packet.stream is ain:
                if packet.dts is not None or packet.pts is not None:
                    packet.stream = aout
                    out.mux(packet)
                continue
            for frame in packet.decode():
                scaled = frame.reformat(width=width, height=height, format="yuv420p")
                scaled.pts, scaled.time_base = frame.pts, vin.time_base
                out.mux(vout.encode(scaled))
        out.mux(vout.encode(None))
        if pcm is not None:
            write_audio(out, aout, *pcm)


def copy_name(cond: Condition, file: str, video: bool) -> str:
    """The copy's path relative to the condition folder: ``file`` with the condition's suffix."""
    if cond.kind == "clean":
        return file
    suffix = cond.av_suffix if video else cond.suffix
    return Path(file).with_suffix(suffix).as_posix()


def degrade(cond: Condition, src: Path, dst: Path, seed: list[int]) -> None:
    """Write ``src`` as condition ``cond`` would deliver it to ``dst`` (``clean``: a hard link, or a copy)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if cond.kind == "clean":
        try:  # not a symbolic link: replay resolves links, and the file would be named after its target
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
    elif cond.kind == "audio":
        degrade_audio(cond, src, dst, seed)
    else:
        degrade_video(cond, src, dst)


# ----------------------------------------------------------------------------- timing check

def lag_seconds(a: np.ndarray, b: np.ndarray, max_lag: int) -> float | None:
    """Delay of ``b`` behind ``a`` (16 kHz mono) in seconds, from the cross-correlation peak within
    ``max_lag`` samples; None when either is silent. Uses the first 30 s."""
    n = min(len(a), len(b), 30 * SAMPLE_RATE)
    a, b = a[:n].astype(np.float64), b[:n].astype(np.float64)
    if n < 2 or not a.any() or not b.any():
        return None
    size = 1 << int(np.ceil(np.log2(2 * n)))
    corr = np.fft.irfft(np.conj(np.fft.rfft(a, size)) * np.fft.rfft(b, size), size)
    lags = np.r_[0:max_lag + 1, -max_lag:0]
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
    result = {"duration_diff_s": round(b.duration - a.duration, 4),
              "declared_duration_diff_s": (round(declared_b - declared_a, 4)
                                           if declared_a is not None and declared_b is not None else None),
              "start_diff_s": round(b.t0 - a.t0, 4),
              "lag_s": lag_seconds(a.samples, b.samples, round(MAX_LAG_S * SAMPLE_RATE))}
    va, vb = video_times(src), video_times(dst)
    if va and vb:
        result.update(video_frames_diff=vb[0] - va[0], video_start_diff_s=round(vb[1] - va[1], 4),
                      video_end_diff_s=round(vb[2] - va[2], 4))
    strict = [result[k] for k in ("start_diff_s", "lag_s", "video_start_diff_s", "video_end_diff_s")
              if result.get(k) is not None]
    result["ok"] = (all(abs(v) <= TOLERANCE_S for v in strict) and result.get("video_frames_diff", 0) == 0
                    and -TOLERANCE_S <= result["duration_diff_s"] <= TOLERANCE_S + frame)
    return result


def stream_format(path: Path) -> dict:
    """Container, and codec / rate / channels / size / bits per second of each stream, read back from ``path``."""
    with av.open(str(path)) as c:
        result = {"container": c.format.name}
        for s in c.streams:
            cc = s.codec_context
            if s.type == "audio":
                result["audio"] = {"codec": cc.name, "sample_rate": cc.sample_rate,
                                   "channels": cc.layout.nb_channels, "bit_rate": cc.bit_rate or None}
            elif s.type == "video" and s is video_stream(c):
                result["video"] = {"codec": cc.name, "width": cc.width, "height": cc.height,
                                   "bit_rate": cc.bit_rate or None}
    return result


def timing_summary(checks: dict[str, dict]) -> dict:
    """The largest deviation of each kind over the files, and the files not ``ok`` (see :func:`timing`)."""
    keys = ("duration_diff_s", "declared_duration_diff_s", "start_diff_s", "lag_s", "video_frames_diff",
            "video_start_diff_s", "video_end_diff_s")
    worst = {k: max((abs(c[k]) for c in checks.values() if c.get(k) is not None), default=None) for k in keys}
    return {"max_abs": {k: v for k, v in worst.items() if v is not None}, "tolerance_s": TOLERANCE_S,
            "files_off": sorted(f for f, c in checks.items() if not c["ok"])}


# ----------------------------------------------------------------------------- the pipeline

def dfstream(*args: str, log: Path) -> subprocess.CompletedProcess:
    """Run the CLI of this Python environment (``python -m engine.cli``), its output saved to ``log``."""
    command = [sys.executable, "-m", "engine.cli", *args]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    log.write_text(f"$ {shlex.join(command)}\n(exit {proc.returncode})\n{proc.stdout}{proc.stderr}")
    return proc


def prepare_folder(folder: Path) -> None:
    """Create ``folder``; one a previous run of this benchmark wrote is cleared, any other must be empty."""
    if folder.exists():
        if (folder / MARKER).exists():
            shutil.rmtree(folder)
        elif any(folder.iterdir()):
            raise SystemExit(f"{folder} exists and was not written by this benchmark; pass another --work")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("written by bench/robustness.py; cleared when it runs again\n")


def run_condition(cond: Condition, items: list, root: Path, work: Path, args) -> dict:
    """Re-encode the split as ``cond``, replay and evaluate it; the condition's row of the result."""
    tic = time.perf_counter()
    folder, results = work / cond.name, work / "results" / cond.name
    for f in (folder, results):
        prepare_folder(f)
    entries, checks, skipped, formats = [], {}, [], {}
    for item in items:
        src = root / item.file
        video = has_video(src)
        if cond.kind == "video" and not video:
            skipped.append(item.file)
            continue
        name = copy_name(cond, item.file, video)
        degrade(cond, src, folder / name, [args.seed, zlib.crc32(item.file.encode())])
        if cond.kind != "clean":
            checks[item.file] = timing(src, folder / name)
            formats.setdefault("audio-visual" if video else "audio-only", stream_format(folder / name))
        entries.append({**item.raw, "file": name})
    row = {"description": cond.description, "files": len(entries)}
    if skipped:
        row["skipped_files"] = {"count": len(skipped), "reason": "no video stream"}
    if not entries:
        row["skipped"] = "no file of the split has a video stream"
        return row
    names = [e["file"] for e in entries]
    if len(set(names)) != len(names):
        raise SystemExit(f"{cond.name}: two files of the split map to the same copy name")
    meta = folder / "metadata.json"
    meta.write_text(json.dumps(entries, indent=1) + "\n")
    if formats:
        row["output_format"] = formats  # read back from the first copy of each kind
    if checks:
        row["timing_check"] = timing_summary(checks)
        (results / "timing.json").write_text(json.dumps(checks, indent=1) + "\n")
    encoded = time.perf_counter()

    replay = ["replay", str(folder), "--root", str(folder), "--model", args.model, "--out", str(results), "--quiet"]
    if args.index:
        replay += ["--index", args.index]
    proc = dfstream(*replay, log=results / "replay.log")
    failed = re.search(r"(\d+) file\(s\), (\d+) failed", proc.stdout + proc.stderr)
    row["replay_failed_files"] = int(failed.group(2)) if failed else None
    if not (results / "predictions.json").exists():
        raise SystemExit(f"{cond.name}: dfstream replay wrote no predictions (see {results / 'replay.log'})")
    replayed = time.perf_counter()

    evaluate = ["eval", "--pred", str(results / "predictions.json"), "--scores", str(results / "scores.csv"),
                "--meta", str(meta), "--split", args.split, "--out", str(results / "metrics.json")]
    if args.index:
        evaluate += ["--verdicts", str(results / "verdicts.jsonl"), "--index", args.index]
    proc = dfstream(*evaluate, log=results / "eval.log")
    if proc.returncode != 0:
        raise SystemExit(f"{cond.name}: dfstream eval failed (see {results / 'eval.log'})")
    metrics = json.loads((results / "metrics.json").read_text())
    ap = metrics.get("localization", {}).get("ap", {})
    row.update({"ap@0.5": ap.get("0.5"), "ap@0.75": ap.get("0.75"),
                "auc": (metrics.get("detection") or {}).get("auc"),
                "files_without_prediction": metrics.get("files_without_prediction")})
    if metrics.get("files_without_prediction"):
        print(f"  warning: {metrics['files_without_prediction']} file(s) have no prediction "
              f"(see {results / 'replay.log'})", file=sys.stderr)
    if args.index:
        row["attribution_top1"] = (metrics.get("attribution") or {}).get("top1_accuracy")
    done = time.perf_counter()
    row["seconds"] = {"encode": round(encoded - tic, 2), "replay": round(replayed - encoded, 2),
                      "eval": round(done - replayed, 2), "total": round(done - tic, 2)}
    row["metrics"] = str(results / "metrics.json")
    return row


def add_drops(rows: dict) -> None:
    """``drop``: clean minus the condition, for AP@0.5 and AUC (positive: worse than clean)."""
    clean = rows["clean"]
    for name, row in rows.items():
        if "skipped" in row:
            continue
        row["drop"] = {k: (round(clean[k] - row[k], 4) if clean.get(k) is not None and row.get(k) is not None
                           else None) for k in ("ap@0.5", "auc")}
        if row["files"] != clean["files"]:
            row["drop"]["note"] = f"over {row['files']} files with video, clean over {clean['files']}"


# ----------------------------------------------------------------------------- tables

COLUMNS = ("condition", "files", "AP@0.5", "AP@0.75", "AUC", "dAP@0.5", "dAUC", "seconds")


def table_rows(rows: dict) -> list[list[str]]:
    def num(v):
        return "n/a" if v is None else f"{v:.4f}"
    out = []
    for name, row in rows.items():
        if "skipped" in row:
            out.append([name, "0", "skipped", "", "", "", "", ""])
            continue
        drop = row.get("drop", {})
        out.append([name, str(row["files"]), num(row.get("ap@0.5")), num(row.get("ap@0.75")), num(row.get("auc")),
                    num(drop.get("ap@0.5")), num(drop.get("auc")), f"{row['seconds']['total']:.1f}"])
    return out


def text_table(rows: dict) -> str:
    body = table_rows(rows)
    widths = [max(len(r[i]) for r in [list(COLUMNS), *body]) for i in range(len(COLUMNS))]
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    return "\n".join(fmt.format(*r) for r in [list(COLUMNS), *body])


def markdown_table(result: dict) -> str:
    rows = result["conditions"]
    head = ["condition", "re-encoding", "files", "AP@0.5", "AP@0.75", "AUC", "ΔAP@0.5", "ΔAUC"]
    lines = [f"Robustness of `{result['model']['model_id']}` on split `{result['split']}` of `{result['meta']}` "
             f"({result['files']} files; Δ = clean − condition, positive is worse).", "",
             "| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * 6) + "|"]
    for r in table_rows(rows):
        desc = rows[r[0]]["description"] + (f" ({rows[r[0]]['skipped']})" if "skipped" in rows[r[0]] else "")
        lines.append("| " + " | ".join([f"`{r[0]}`", desc, *r[1:7]]) + " |")
    notes = [f"- `{n}`: {row['drop']['note']}" for n, row in rows.items() if row.get("drop", {}).get("note")]
    return "\n".join(lines + ([""] + notes if notes else [])) + "\n"


# ----------------------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] + " Re-encodes every file of a split per condition (PyAV), runs "
        "`dfstream replay` and `dfstream eval` on each, and reports AP@0.5, AP@0.75 and AUC against clean.",
        epilog="Conditions: " + "; ".join(f"{c.name}: {c.description}" for c in CONDITIONS.values()))
    parser.add_argument("--meta", required=True, help="AV-Deepfake1M-format metadata JSON (list of entries with "
                        "file, split, fake_segments, ...)")
    parser.add_argument("--root", required=True, help="folder the metadata's 'file' entries are relative to")
    parser.add_argument("--model", required=True, help="checkpoint folder (model.safetensors + dfstream.json)")
    parser.add_argument("--index", help="attribution index folder: attribution top-1 is measured too")
    parser.add_argument("--split", default="test", help="metadata split to re-encode and evaluate (default: %(default)s)")
    parser.add_argument("--conditions", default="all",
                        help=f"comma list of {', '.join(CONDITIONS)}, or all (default); clean always runs: it is "
                        "the reference")
    parser.add_argument("--work", help="folder for the copies and the replay outputs, kept after the run "
                        "(default: a new temporary folder under .cache/robustness)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "robustness.json"), help="result JSON (default: bench/results/robustness.json)")
    parser.add_argument("--markdown", help="also write the table as Markdown here (for a model card)")
    parser.add_argument("--limit", type=int, help="only the first N files of the split (smoke tests)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the added noise, mixed with each file's name (default: %(default)s)")
    args = parser.parse_args()
    conditions = parse_conditions(args.conditions)
    root = Path(args.root)
    items = [i for i in load_metadata(args.meta) if i.split == args.split][:args.limit]
    if not items:
        raise SystemExit(f"no metadata entries of split {args.split!r} in {args.meta}")
    if args.work:
        work = Path(args.work)
    else:
        (ROOT / ".cache" / "robustness").mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="run-", dir=ROOT / ".cache" / "robustness"))
    checkpoint = json.loads((Path(args.model) / "dfstream.json").read_text())
    with_video = sum(has_video(root / i.file) for i in items)
    result = {
        "benchmark": "robustness", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(), "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "model": {"path": args.model, "model_id": checkpoint.get("model_id"),
                  "branches": checkpoint.get("config", {}).get("branches")},
        "index": args.index, "meta": args.meta, "root": args.root, "split": args.split, "limit": args.limit,
        "files": len(items), "files_with_video": with_video, "work": str(work), "seed": args.seed,
        "metric_keys": "AP from metrics.json localization.ap['0.5'|'0.75'] (fake_segments), AUC from "
                       "detection.auc; drop = clean - condition",
        "conditions": {},
    }
    for cond in conditions:
        print(f"{cond.name}: {cond.description} ...", file=sys.stderr, flush=True)
        row = run_condition(cond, items, root, work, args)
        result["conditions"][cond.name] = row
        off = row.get("timing_check", {}).get("files_off")
        if off:
            print(f"  warning: {len(off)} file(s) more than {TOLERANCE_S * 1000:.0f} ms off in time: "
                  f"{', '.join(off[:5])}", file=sys.stderr)
    add_drops(result["conditions"])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(markdown_table(result))
    print(text_table(result["conditions"]))
    print(f"wrote {args.out}" + (f" and {args.markdown}" if args.markdown else "") + f"; copies and outputs in {work}")


if __name__ == "__main__":
    main()
