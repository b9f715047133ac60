"""A folder of valid media of every container replay accepts, made with PyAV.

Each :class:`Case` is one file: a container, its tracks (codec, start, length)
and what it tests: tracks of unequal length either way, a track that starts
late, negative start times (AAC priming in MP4 edit lists, Opus pre-skip),
variable frame rate, a display rotation, audio only and video only. Every
file is valid: it plays whole in a player. The picture is a flat gray whose
level steps every frame, the sound a 440 Hz tone, so both decode to known
content.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


@dataclass(frozen=True)
class Track:
    """One track: ``codec``, its first timestamp ``start`` (s) and ``seconds`` of media."""

    codec: str
    seconds: float
    start: float = 0.0


@dataclass(frozen=True)
class Case:
    """One file of the corpus: ``name`` (with its suffix), the muxer, its tracks, and what it tests."""

    name: str
    fmt: str
    audio: Track | None = None
    video: Track | None = None
    note: str = ""
    vfr: bool = False  # frame durations alternate 50 ms and 150 ms
    rotate: int = 0  # display rotation (degrees), in the container's display matrix
    rate: int = 44100  # audio sample rate (Hz)
    negative: bool = False  # the muxer keeps negative timestamps (no shift to 0)


CASES = (
    Case(
        "webm_audio_shorter.webm",
        "webm",
        Track("libopus", 4.0),
        Track("libvpx-vp9", 7.5),
        "VP9 + Opus, audio 4.0 s, video 7.5 s (Matroska audio has no duration of its own)",
        rate=48000,
    ),
    Case(
        "mkv_video_shorter.mkv",
        "matroska",
        Track("aac", 5.0),
        Track("libx264", 2.0),
        "H.264 + AAC, video ends 3 s before the audio",
    ),
    Case(
        "mkv_audio_late.mkv",
        "matroska",
        Track("flac", 2.0, start=1.5),
        Track("libx264", 4.0),
        "the audio track starts 1.5 s after the video",
    ),
    Case(
        "mp4_audio_shorter.mp4",
        "mp4",
        Track("aac", 2.0),
        Track("libx264", 5.0),
        "H.264 + AAC, audio 2 s of a 5 s file (AAC priming: a negative start in the edit list)",
    ),
    Case("mp4_vfr.mp4", "mp4", Track("aac", 3.0), Track("libx264", 3.0), "variable frame rate", vfr=True),
    Case("mov_rotated.mov", "mov", Track("aac", 3.0), Track("libx264", 3.0), "rotated 90 degrees", rotate=90),
    Case(
        "mov_video_late.mov",
        "mov",
        Track("alac", 4.0),
        Track("mpeg4", 2.0, start=1.0),
        "MPEG-4 video starting 1 s into the audio",
    ),
    Case(
        "ts_audio_shorter.ts",
        "mpegts",
        Track("mp2", 2.0),
        Track("mpeg2video", 4.0),
        "MPEG-TS, MPEG-2 video + MP2 audio, audio half as long",
    ),
    Case(
        "ts_video_shorter.ts",
        "mpegts",
        Track("aac", 4.0),
        Track("libx264", 1.5),
        "MPEG-TS, H.264 + AAC, video ends first",
    ),
    Case(
        "mkv_negative_start.mkv",
        "matroska",
        Track("libopus", 3.0, start=-0.5),
        Track("libx264", 2.5),
        "the audio starts at -0.5 s (timestamps kept negative)",
        rate=48000,
        negative=True,
    ),
    Case(
        "mp4_negative_start.mp4",
        "mp4",
        Track("aac", 3.0, start=-0.4),
        Track("libx264", 2.6),
        "the audio starts at -0.4 s (an edit list)",
        negative=True,
    ),
    Case("ogg_opus.ogg", "ogg", Track("libopus", 3.0), None, "Ogg/Opus (pre-skip: a negative start)", rate=48000),
    Case("ogg_vorbis_late.ogg", "ogg", Track("vorbis", 2.5, start=0.5), None, "Ogg/Vorbis starting at 0.5 s"),
    Case("m4a_aac.m4a", "ipod", Track("aac", 3.0), None, "M4A (AAC, audio only)"),
    Case("mp3_lame.mp3", "mp3", Track("libmp3lame", 3.0), None, "MP3 (LAME header)"),
    Case("flac.flac", "flac", Track("flac", 3.0), None, "FLAC"),
    Case("wav_pcm.wav", "wav", Track("pcm_s16le", 3.0), None, "WAV, 16-bit PCM"),
    Case("mp4_video_only.mp4", "mp4", None, Track("libx264", 3.0), "H.264, no audio track"),
    Case("webm_video_only.webm", "webm", None, Track("libvpx", 3.0), "VP8, no audio track"),
)
"""The corpus: every container replay accepts (MP4, MOV, M4A, MKV, WebM, MPEG-TS, Ogg, WAV, FLAC, MP3)."""

FPS = 10  # video frames per second (the VFR case alternates 5 and 15 fps frame durations)
SIDE = (96, 64)  # (width, height) of the coded picture
TONE = 440.0  # Hz


def _audio(out, track: Track, rate: int) -> list:
    """Encode ``track``'s tone; returns the packets (muxed by :func:`write` in time order)."""
    layout = "mono" if track.codec in ("libopus",) else "stereo"
    stream = out.add_stream(track.codec, rate=rate, layout=layout)
    if track.codec == "vorbis":
        stream.codec_context.options = {"strict": "experimental"}
    size = stream.codec_context.frame_size or 1024
    n = round(track.seconds * rate)
    tone = (0.3 * np.sin(2 * np.pi * TONE * np.arange(n) / rate)).astype(np.float32)
    channels = 1 if layout == "mono" else 2
    convert = av.AudioResampler(format=stream.codec_context.format.name, layout=layout, rate=rate)
    offset = round(track.start * rate)
    packets = []
    for i in range(0, n, size):
        frame = av.AudioFrame.from_ndarray(np.tile(tone[i : i + size], (channels, 1)), format="fltp", layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = rate, offset + i, Fraction(1, rate)
        for f in convert.resample(frame):
            f.pts, f.time_base = offset + i, Fraction(1, rate)
            packets += stream.encode(f)
    packets += stream.encode(None)
    return packets


def _video(out, case: Case) -> list:
    track = case.video
    rate = Fraction(FPS * 3) if case.vfr else Fraction(FPS)  # VFR: a 1/30 s time base, durations 1.5 and 4.5 ticks
    stream = out.add_stream(track.codec, rate=FPS)
    stream.width, stream.height, stream.pix_fmt = *SIDE, "yuv420p"
    stream.codec_context.time_base = 1 / rate
    if track.codec == "libx264":
        stream.codec_context.options = {"bf": "0"} if case.vfr else {}
    if case.rotate:
        stream.set_display_rotation(case.rotate)
    packets, t, i = [], track.start, 0
    while t < track.start + track.seconds - 1e-9:
        img = np.full((SIDE[1], SIDE[0], 3), (i * 10) % 250, np.uint8)
        img[: SIDE[1] // 4, : SIDE[0] // 4] = 255  # a corner mark, so a rotation shows
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = round(t * rate)
        frame.time_base = 1 / rate
        packets += stream.encode(frame)
        step = (0.05 if i % 2 == 0 else 0.15) if case.vfr else 1.0 / FPS
        t, i = t + step, i + 1
    packets += stream.encode(None)
    return packets


def write(case: Case, folder: Path) -> Path:
    """Write ``case`` into ``folder``; returns its path."""
    path = Path(folder) / case.name
    options = {"avoid_negative_ts": "disabled"} if case.negative else {}
    with av.open(str(path), "w", format=case.fmt, options=options) as out:
        packets = []
        if case.video is not None:
            packets += _video(out, case)
        if case.audio is not None:
            packets += _audio(out, case.audio, case.rate)
        packets.sort(key=lambda p: float(p.dts * p.time_base) if p.dts is not None else 0.0)
        for packet in packets:
            out.mux(packet)
    return path


def write_corpus(folder: Path, cases=CASES) -> dict[str, Case]:
    """Every case into ``folder`` (created); returns file name -> case."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return {write(case, folder).name: case for case in cases}
