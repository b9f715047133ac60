"""Re-encoding with PyAV: each file of the split written as a condition delivers it.

:func:`degrade` writes one copy: a hard link (``clean``), the audio re-encoded
with the video stream copied (:func:`degrade_audio`), or the video re-encoded
H.264 with the audio copied or re-encoded AAC (:func:`degrade_video`). Every
audio sample and video frame keeps its presentation time (seconds). Samples are
float32 of shape ``(channels, n)`` at a rate in Hz throughout.
:func:`copy_name` names the copies; :func:`stream_format` reads back what a
copy was written as.
"""

from __future__ import annotations

import os
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soxr

from dfstream.engine.media.video import video_stream
from robust.conditions import Condition

FRAME = 1024  # samples per audio frame handed to an encoder (PyAV re-frames them to the codec's size)
MP4_AUDIO = frozenset({"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"})  # copied as they are into MP4
AAC_BIT_RATE = 128_000  # bits/s: video conditions' audio when it cannot be copied


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
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples[:, i : i + FRAME]), format="fltp", layout=layout
        )
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
        vout = out.add_stream(
            "libx264", rate=vin.average_rate or vin.guessed_rate or 25, options={"crf": str(cond.crf)}
        )
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


def stream_format(path: Path) -> dict:
    """Container, and codec / rate / channels / size / bits per second of each stream, read back from ``path``."""
    with av.open(str(path)) as c:
        result = {"container": c.format.name}
        for s in c.streams:
            cc = s.codec_context
            if s.type == "audio":
                result["audio"] = {
                    "codec": cc.name,
                    "sample_rate": cc.sample_rate,
                    "channels": cc.layout.nb_channels,
                    "bit_rate": cc.bit_rate or None,
                }
            elif s.type == "video" and s is video_stream(c):
                result["video"] = {
                    "codec": cc.name,
                    "width": cc.width,
                    "height": cc.height,
                    "bit_rate": cc.bit_rate or None,
                }
    return result
