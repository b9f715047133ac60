"""A tiny SYNTHETIC audio-visual dataset in the AV-Deepfake1M metadata format.

It exists so that the visual branch and audio-visual fusion can be trained and
tested from nothing, with known boundaries. It is NOT a deepfake benchmark and
holds no real faces or speech: the picture is a drawn cartoon face
(:func:`draw_face`) drifting slowly over a tinted mid-gray background with slow
noise; its mouth opens with the syllable envelope of the sound. The sound is
dfstream/app/toyset.py's formant toy audio (genuine/forged pair from ``toy_signal``,
forged spans cross-faded in exactly as ``_toy_file`` does, scaled 0.1).

Kinds of file cycle ``real``, ``audio_modified``, ``visual_modified``,
``both_modified``. Audio spans come from a toy audio generator (``audio_model``,
dfstream.app.toyset.GENERATORS). Visual spans touch only a box around the lower face
(:func:`lower_face_box`), faded in and out over 3 frames inside the span, by a
toy visual generator (``visual_model``): ``toy-blend`` (lower face replaced by
a colour-shifted, blurred copy pasted with a hard seam: spatial artifact),
``toy-freeze`` (mouth frozen at the span's first frame: it stops following the
audio) and ``toy-shuffle`` (mouth taken from frames shuffled within the span).
``both_modified`` files manipulate the SAME spans in both modalities, so
``fake_segments`` (the union) equals each list. Spans are at least 0.6 s long.

Files are H.264 (yuv420p, crf 20) + AAC 16 kHz mono MP4s. Metadata and frames
before encoding are deterministic for a seed; encoded bytes need not be.
The default set (24 files of 3-6 s, 110 s in all, 320x240 at 25 fps) took 25-29 s (19 s CPU) on this
project's 2-core machine while it was shared (load ~5): ~40% toy audio synthesis, ~15% drawing,
~45% H.264/AAC encoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from dfstream.app.toyset import GENERATORS, RATE, splice, split_of, toy_signal, write_metadata
from dfstream.engine.core.errors import ConfigError
from dfstream.engine.core.progress import SILENT, Progress, tracked

VISUAL_GENERATORS = ("toy-blend", "toy-freeze", "toy-shuffle")
KINDS = ("real", "audio_modified", "visual_modified", "both_modified")
_RAMP_FRAMES = 3
_SUB = 16  # fixed-point sub-pixel factor for cv2 drawing (shift=4)


def draw_face(
    canvas: np.ndarray, cx: float, cy: float, height: float, mouth_open: float = 0.0, tone=(200, 160, 130)
) -> None:
    """Draw a cartoon face, in place, that OpenCV's frontal-face Haar cascade detects.

    canvas: uint8 RGB (H, W, 3); cx, cy: centre of the head (pixels); height: head
    height (pixels, width is 0.74 x height); mouth_open in [0, 1] (the jaw drops:
    only pixels below the nose change); tone: skin RGB. Detection is reliable when the
    skin is clearly brighter than the background and the square box of side 1.2 x height
    around the centre lies inside the canvas.
    """
    rows, cols = canvas.shape[:2]
    h = float(height)
    w = 0.74 * h
    x0, x1 = int(max(0, np.floor(cx - 0.6 * w))), int(min(cols, np.ceil(cx + 0.6 * w)))
    y0, y1 = int(max(0, np.floor(cy - 0.6 * h))), int(min(rows, np.ceil(cy + 0.6 * h)))
    if x1 <= x0 or y1 <= y0:
        return
    below = canvas[y0:y1, x0:x1].astype(np.float32)
    layer, mask = below.copy(), np.zeros(below.shape[:2], np.float32)
    skin = np.asarray(tone, np.float32)

    def ellipse(img, x, y, a, b, colour, start=0, end=360):
        centre = (round((cx + x * w - x0) * _SUB), round((cy + y * h - y0) * _SUB))
        axes = (round(a * w * _SUB), round(b * h * _SUB))
        cv2.ellipse(img, centre, axes, 0, start, end, colour, -1, cv2.LINE_AA, 4)

    def shade(f):
        return tuple(float(v) for v in skin * f)

    ellipse(mask, 0, 0, 0.5, 0.5, 1.0)
    ellipse(layer, 0, 0, 0.5, 0.5, shade(1.0))  # head
    ellipse(layer, 0, -0.32, 0.5, 0.2, shade(0.35), 180, 360)  # hair
    for side in (-1, 1):
        ellipse(layer, side * 0.2, -0.08, 0.13, 0.07, shade(0.6))  # eye socket
        ellipse(layer, side * 0.2, -0.08, 0.05, 0.035, shade(0.2))  # pupil
        ellipse(layer, side * 0.2, -0.19, 0.14, 0.03, shade(0.3))  # eyebrow
    ellipse(layer, 0, 0.08, 0.05, 0.12, shade(0.8))  # nose ridge
    ellipse(layer, 0, 0.17, 0.09, 0.035, shade(0.55))  # nose shadow
    opening = 0.06 * float(np.clip(mouth_open, 0.0, 1.0))
    ellipse(layer, 0, 0.3 + opening / 2, 0.15, 0.035 + opening / 2, shade(0.5))  # lips: top edge fixed
    ellipse(layer, 0, 0.3 + opening / 2, 0.12, 0.006 + opening / 2, shade(0.3))  # opening
    k = 2 * max(1, int(h * 0.03)) + 1
    layer = cv2.GaussianBlur(layer, (k, k), 0)
    mask = cv2.GaussianBlur(mask, (k, k), 0)[..., None]
    canvas[y0:y1, x0:x1] = np.clip(mask * layer + (1 - mask) * below + 0.5, 0, 255).astype(np.uint8)


def lower_face_box(cx: float, cy: float, height: float, size=(320, 240)) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) pixels, clipped to ``size`` (W, H): the only region visual manipulations touch."""
    w = 0.74 * height
    x0, x1 = round(cx - 0.38 * w), round(cx + 0.38 * w)
    y0, y1 = round(cy + 0.12 * height), round(cy + 0.48 * height)
    return max(0, x0), max(0, y0), min(size[0], x1), min(size[1], y1)


@dataclass(frozen=True)
class ToyClip:
    """Everything that decides one toy file; the render functions are pure functions of it.

    Spans are ``((start_s, end_s), ...)`` in seconds, rounded to 0.01; ``size`` is (W, H).
    """

    index: int
    split: str
    kind: str
    duration: float
    seed: int
    audio_model: str | None
    visual_model: str | None
    audio_segments: tuple
    visual_segments: tuple
    fps: int = 25
    size: tuple = (320, 240)

    @property
    def name(self) -> str:
        return f"{self.split}/{self.index:04d}.mp4"

    @property
    def video_frames(self) -> int:
        return round(self.duration * self.fps)

    @property
    def audio_frames(self) -> int:
        return round(self.duration * RATE)

    def entry(self) -> dict:
        """The AV-Deepfake1M metadata entry."""
        union = union_spans(self.audio_segments + self.visual_segments)
        return {
            "file": self.name,
            "original": None,
            "split": self.split,
            "modify_type": self.kind,
            "audio_model": self.audio_model,
            "visual_model": self.visual_model,
            "fake_segments": union,
            "audio_fake_segments": [list(s) for s in self.audio_segments],
            "visual_fake_segments": [list(s) for s in self.visual_segments],
            "video_frames": self.video_frames,
            "audio_frames": self.audio_frames,
        }


def union_spans(spans) -> list[list[float]]:
    """``[[start, end], ...]`` merged where they overlap or touch, sorted."""
    merged: list[list[float]] = []
    for s, e in sorted(spans):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return merged


def _spans(rng, duration: float) -> tuple:
    """1-2 spans of 0.6-1.6 s, 0.2 s from the start, 0.1 s from the end, more than 0.3 s apart."""
    spans: list[tuple[float, float]] = []
    for _ in range(rng.integers(1, 3)):
        length = round(float(rng.uniform(0.6, max(0.6, min(1.6, 0.45 * duration)))), 2)
        start = round(float(rng.uniform(0.2, duration - length - 0.1)), 2)
        if all(start > e + 0.3 or start + length < s - 0.3 for s, e in spans):
            spans.append((start, round(start + length, 2)))
    return tuple(sorted(spans))


def plan_clips(
    files: int = 24, seed: int = 0, min_seconds: float = 3.0, max_seconds: float = 6.0, fps: int = 25, size=(320, 240)
) -> list[ToyClip]:
    """The ``files`` clips of a toy set, without rendering anything (splits 70/15/15 as in toyset)."""
    if not 1.5 <= min_seconds <= max_seconds:
        raise ConfigError(f"toy clips need 1.5 <= min_seconds <= max_seconds; got {min_seconds}, {max_seconds}")
    if fps < 1 or min(size) < 32 or size[0] % 2 or size[1] % 2:
        raise ConfigError(f"toy clips need fps >= 1 and an even frame size of at least 32x32; got {fps}, {size}")
    rng = np.random.default_rng(seed)
    clips = []
    for i in range(files):
        split = split_of(i, files)
        kind = KINDS[i % 4]
        duration = round(float(rng.uniform(min_seconds, max_seconds)), 2)
        spans = _spans(rng, duration) if kind != "real" else ()
        audio = kind in ("audio_modified", "both_modified")
        visual = kind in ("visual_modified", "both_modified")
        clips.append(
            ToyClip(
                i,
                split,
                kind,
                duration,
                int(rng.integers(2**32)),
                GENERATORS[(i // 4) % len(GENERATORS)] if audio else None,
                VISUAL_GENERATORS[(i // 4 + (kind == "both_modified")) % len(VISUAL_GENERATORS)] if visual else None,
                spans if audio else (),
                spans if visual else (),
                fps,
                tuple(size),
            )
        )
    return clips


def render_audio(clip: ToyClip) -> tuple[np.ndarray, np.ndarray]:
    """(audio, genuine): float64 (audio_frames,) at 16 kHz; audio is the file's sound, scaled 0.1."""
    n = clip.audio_frames
    genuine, forged = toy_signal(
        np.random.default_rng([clip.seed, 0]), n, clip.audio_model or GENERATORS[clip.index % len(GENERATORS)]
    )
    return splice(genuine, forged, clip.audio_segments), genuine


def face_track(clip: ToyClip) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cx, cy, height) of the face per video frame, pixels, each float64 (video_frames,)."""
    rng = np.random.default_rng([clip.seed, 1])
    (cols, rows), frames = clip.size, clip.video_frames
    low = min(70.0, 0.4 * rows)
    h0 = rng.uniform(low, max(low, min(150.0, rows / 1.7)))
    t = np.arange(frames) / clip.fps
    height = h0 * (1 + 0.04 * np.sin(2 * np.pi * rng.uniform(0.05, 0.2) * t + rng.uniform(0, 6)))
    margin = 0.62 * h0 * 1.04
    lo, hi = np.array([margin, margin]), np.array([cols - margin, rows - margin])
    start = rng.uniform(lo, hi)
    end = np.clip(start + rng.normal(0, 8 * clip.duration, 2), lo, hi)
    ease = (0.5 - 0.5 * np.cos(np.pi * t / clip.duration))[:, None]
    pos = start + (end - start) * ease + 1.5 * np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 6, 2)[:, None]).T
    pos = np.clip(pos, lo, hi)
    return pos[:, 0], pos[:, 1], height


def _mouth_opening(genuine: np.ndarray, frames: int, fps: int) -> np.ndarray:
    edges = np.round(np.arange(frames + 1) * RATE / fps).astype(int)
    rms = np.array([np.sqrt(np.mean(genuine[a:b] ** 2)) if b > a else 0.0 for a, b in zip(edges, edges[1:])])
    rms = np.convolve(np.pad(rms, 1, mode="edge"), [0.25, 0.5, 0.25], mode="valid")
    return np.clip(rms / (np.percentile(rms, 98) + 1e-9), 0, 1)


def _background(rng, clip: ToyClip) -> np.ndarray:
    """uint8 (video_frames, H, W, 3): tinted mid-gray with noise that changes slowly (keys 1 s apart)."""
    (cols, rows), frames = clip.size, clip.video_frames
    base = rng.uniform(95, 120) + rng.uniform(-10, 10, 3)
    keys = [
        base.astype(np.float32)
        + cv2.resize(rng.normal(0, 8, (6, 8, 3)).astype(np.float32), (cols, rows), interpolation=cv2.INTER_CUBIC)
        for _ in range(int(clip.duration) + 2)
    ]
    out = np.empty((frames, rows, cols, 3), np.uint8)
    for j in range(frames):
        k, f = divmod(j / clip.fps, 1.0)
        out[j] = cv2.addWeighted(keys[int(k)], 1 - f, keys[int(k) + 1], f, 0.0, dtype=cv2.CV_8U)
    return out


def render_frames(clip: ToyClip, manipulate: bool = True, genuine: np.ndarray | None = None) -> np.ndarray:
    """The file's video, uint8 RGB (video_frames, H, W, 3); ``manipulate=False``: without visual spans.

    genuine: the genuine audio from :func:`render_audio` (recomputed when None).
    """
    if genuine is None:
        genuine = render_audio(clip)[1]
    rng = np.random.default_rng([clip.seed, 2])
    tone = tuple(np.clip(np.array([200, 160, 130]) * rng.uniform(0.97, 1.12) + rng.uniform(-8, 8, 3), 0, 255))
    cx, cy, height = face_track(clip)
    mouth = _mouth_opening(genuine, clip.video_frames, clip.fps)
    frames = _background(rng, clip)
    for j in range(clip.video_frames):
        draw_face(frames[j], cx[j], cy[j], height[j], mouth[j], tone)
    if manipulate:
        shift = rng.normal(0, 1, 3)
        shift = (22 * shift / np.linalg.norm(shift)).astype(np.float32)
        source = frames.copy()
        for n, (s, e) in enumerate(clip.visual_segments):
            _manipulate(clip, frames, source, (cx, cy, height), s, e, shift, np.random.default_rng([clip.seed, 3, n]))
    return frames


def _manipulate(clip, frames, source, track, start, end, shift, rng) -> None:
    """Apply ``clip.visual_model`` to the frames whose centre lies in [start, end), inside lower_face_box."""
    cx, cy, height = track
    inside = [j for j in range(len(frames)) if start <= (j + 0.5) / clip.fps < end]
    ramp = min(_RAMP_FRAMES, max(1, len(inside) // 4))
    order = np.arange(len(inside))
    if clip.visual_model == "toy-shuffle":
        while len(order) > 1 and (order == np.arange(len(order))).any():
            order = rng.permutation(len(inside))
    for k, j in enumerate(inside):
        alpha = min(1.0, (k + 1) / (ramp + 1), (len(inside) - k) / (ramp + 1))
        x0, y0, x1, y1 = lower_face_box(cx[j], cy[j], height[j], clip.size)
        if x1 <= x0 or y1 <= y0:
            continue
        h, w = height[j], 0.74 * height[j]
        mask = np.zeros((y1 - y0, x1 - x0), np.float32)
        centre = (round((cx[j] - x0) * _SUB), round((cy[j] + 0.3 * h - y0) * _SUB))
        if clip.visual_model == "toy-blend":
            cv2.ellipse(
                mask, centre, (round(0.33 * w * _SUB), round(0.15 * h * _SUB)), 0, 0, 360, 0.9, -1, cv2.LINE_AA, 4
            )  # hard edge: a visible seam
            kb = 2 * max(1, int(0.04 * h)) + 1
            patch = cv2.GaussianBlur(frames[j, y0:y1, x0:x1].astype(np.float32) + shift, (kb, kb), 0)
        else:
            centre = (centre[0], round((cy[j] + 0.32 * h - y0) * _SUB))
            cv2.ellipse(
                mask, centre, (round(0.26 * w * _SUB), round(0.09 * h * _SUB)), 0, 0, 360, 1.0, -1, cv2.LINE_AA, 4
            )
            kf = 2 * max(1, int(0.03 * h)) + 1
            mask = cv2.GaussianBlur(mask, (kf, kf), 0)
            i = inside[0] if clip.visual_model == "toy-freeze" else inside[order[k]]
            scale = h / height[i]  # map face i onto face j
            m = np.float32([[scale, 0, cx[j] - scale * cx[i] - x0], [0, scale, cy[j] - scale * cy[i] - y0]])
            patch = cv2.warpAffine(
                source[i], m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            ).astype(np.float32)
        a = (alpha * mask)[..., None]
        region = frames[j, y0:y1, x0:x1].astype(np.float32)
        frames[j, y0:y1, x0:x1] = np.clip((1 - a) * region + a * patch + 0.5, 0, 255).astype(np.uint8)


def encode_mp4(path: Path, frames: np.ndarray, audio: np.ndarray, fps: int) -> None:
    """H.264 yuv420p crf 20, a keyframe every second (as live encoders send), + AAC 16 kHz mono,
    interleaved by time."""
    with av.open(str(path), "w", format="mp4") as out:
        # mbtree off and one thread: with x264's macroblock-tree rate control the same frames encoded
        # twice in one process could give different bytes (it read memory earlier allocations left)
        video = out.add_stream(
            "libx264", rate=fps, options={"crf": "20", "preset": "veryfast", "g": str(fps), "x264-params": "mbtree=0"}
        )
        video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        video.codec_context.thread_count = 1
        sound = out.add_stream("aac", rate=RATE, layout="mono")
        chunk = sound.codec_context.frame_size or 1024
        pcm, sent = audio.astype(np.float32)[None, :], 0

        def send_audio(until: int) -> int:
            done = sent
            while done < min(pcm.shape[1], until):
                piece = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(pcm[:, done : done + chunk]), format="fltp", layout="mono"
                )
                piece.sample_rate, piece.pts, piece.time_base = RATE, done, Fraction(1, RATE)
                out.mux(sound.encode(piece))
                done += chunk
            return done

        for j, image in enumerate(frames):
            # the same BT.601 limited-range conversion as swscale's, several times faster
            frame = av.VideoFrame.from_ndarray(cv2.cvtColor(image, cv2.COLOR_RGB2YUV_I420), format="yuv420p")
            frame.pts, frame.time_base = j, Fraction(1, fps)
            out.mux(video.encode(frame))
            sent = send_audio(round((j + 1) * RATE / fps))
        send_audio(pcm.shape[1])
        out.mux(video.encode(None))
        out.mux(sound.encode(None))


def make_toy_av_set(
    out: str | Path,
    files: int = 24,
    seed: int = 0,
    min_seconds: float = 3.0,
    max_seconds: float = 6.0,
    fps: int = 25,
    size=(320, 240),
    progress: Progress = SILENT,
) -> Path:
    """Write ``files`` toy MP4s, ``metadata.json`` and a README under ``out``; return the metadata path.

    size: (W, H) pixels; durations uniform in [min_seconds, max_seconds] s (>= 1.5), rounded to 0.01.
    """
    out = Path(out)
    entries = []
    try:
        for clip in tracked(progress, plan_clips(files, seed, min_seconds, max_seconds, fps, size), "toyvideo", "file"):
            audio, genuine = render_audio(clip)
            (out / clip.split).mkdir(parents=True, exist_ok=True)
            encode_mp4(out / clip.name, render_frames(clip, genuine=genuine), audio, fps)
            entries.append(clip.entry())
    finally:  # also on Ctrl-C: the metadata of the files written so far
        path = write_metadata(
            out,
            entries,
            (
                "# dfstream toy audio-visual set (SYNTHETIC)\n\nGenerated by dfstream/app/toyvideo.py "
                "(`make_toy_av_set`): drawn cartoon faces over a tinted gray background and formant-shaped "
                "toy audio, not real faces or speech. Audio spans come from toy audio generators "
                f"({', '.join(GENERATORS)}; `audio_model`), lower-face spans from toy visual generators "
                f"({', '.join(VISUAL_GENERATORS)}; `visual_model`). Not a deepfake benchmark: for smoke tests "
                "and training from nothing only. No third-party material; no licence concerns.\n"
            ),
        )
    return path
