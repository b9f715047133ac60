"""Real face clips, and forged stretches of video made in the lower face.

A clip is a stretch of one real face video at 25 fps, played forwards and then
backwards when the stretch outlasts the source (ping-pong), framed per clip by a
random zoom (0.8-1 of the largest 4:3 window), shift, mirror and brightness, at
320x240. The face box of every source frame is found once by the engine's own
detector (OpenCV Haar, :mod:`dfstream.modalities.visual.faces`), gaps filled from the
nearest detection and smoothed over 5 frames, and carried through the framing
analytically.

Visual generators edit an ellipse over the mouth and chin (feathered, so no seam
line), faded in and out over 3 frames inside the span; frames outside it are
untouched:

- ``mouth-freeze``: the mouth of the span's first frame, held (lips stop moving);
- ``mouth-shuffle``: mouths of the span's frames in a random order;
- ``mouth-transplant``: the mouth of ANOTHER face video, colour-matched;
- ``mouth-warp``: the mouth stretched and squeezed vertically at 2-4 Hz (a puppet jaw);
- ``mouth-reencode``: the mouth re-encoded on its own (JPEG quality 8-20 after a slight blur), as
  a pasted region that went through another codec is;
- ``mouth-interp``: every mouth the blend of the frames 2-3 before and after it (frame
  interpolation: the lips ghost and lag the face around them).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from dfstream.modalities.visual.faces import HaarFaceDetector

GENERATORS = ("mouth-freeze", "mouth-shuffle", "mouth-transplant", "mouth-warp", "mouth-reencode", "mouth-interp")
SIZE = (320, 240)  # W, H
RAMP = 3


def face_boxes(frames: np.ndarray) -> np.ndarray:
    """(x0, y0, x1, y1) of the largest face per frame ``(N, 4)``: frames without a detection take the
    nearest frame's, then a 5-frame moving average; all NaN when no frame has a face."""
    detector = HaarFaceDetector(240)
    boxes = np.full((len(frames), 4), np.nan)
    for i, frame in enumerate(frames):
        found = detector.detect(frame)
        if len(found):
            boxes[i] = found[np.argmax((found[:, 2] - found[:, 0]) * (found[:, 3] - found[:, 1]))]
    seen = np.flatnonzero(~np.isnan(boxes[:, 0]))
    if not len(seen):
        return boxes
    nearest = seen[np.abs(np.arange(len(frames))[:, None] - seen[None, :]).argmin(1)]
    boxes = boxes[nearest]
    kernel = np.ones(5) / 5
    padded = np.pad(boxes, ((2, 2), (0, 0)), mode="edge")
    return np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(4)], 1)


@dataclass(frozen=True)
class Framing:
    """One clip's view of its source: crop (x0, y0, side_w, side_h) in source pixels, mirror, gain."""

    x0: float
    y0: float
    w: float
    h: float
    mirror: bool
    gain: float

    @classmethod
    def draw(cls, width: int, height: int, rng) -> Framing:
        w = min(width, height * 4 / 3) * rng.uniform(0.8, 1.0)
        h = w * 3 / 4
        return cls(
            rng.uniform(0, width - w),
            rng.uniform(0, height - h),
            w,
            h,
            bool(rng.random() < 0.5),
            rng.uniform(0.85, 1.15),
        )

    def apply(self, frame: np.ndarray) -> np.ndarray:
        m = np.float32(
            [[SIZE[0] / self.w, 0, -self.x0 * SIZE[0] / self.w], [0, SIZE[1] / self.h, -self.y0 * SIZE[1] / self.h]]
        )
        out = cv2.warpAffine(frame, m, SIZE, flags=cv2.INTER_AREA if self.w > SIZE[0] else cv2.INTER_LINEAR)
        out = cv2.convertScaleAbs(out, alpha=self.gain)
        return out[:, ::-1].copy() if self.mirror else out

    def box(self, box: np.ndarray) -> np.ndarray:
        sx, sy = SIZE[0] / self.w, SIZE[1] / self.h
        x0, y0, x1, y1 = (
            (box[0] - self.x0) * sx,
            (box[1] - self.y0) * sy,
            (box[2] - self.x0) * sx,
            (box[3] - self.y0) * sy,
        )
        return np.array([SIZE[0] - x1, y0, SIZE[0] - x0, y1] if self.mirror else [x0, y0, x1, y1])


def pingpong(start: int, count: int, length: int) -> np.ndarray:
    """``count`` source frame indices from ``start``, reflecting at both ends of ``length`` frames."""
    period = max(1, 2 * (length - 1))
    k = (start + np.arange(count)) % period
    return np.where(k < length, k, period - k)


def render(source: np.ndarray, boxes: np.ndarray, index: np.ndarray, framing: Framing) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``(N, 240, 320, 3)`` and their face boxes ``(N, 4)`` for source ``index``."""
    return (np.stack([framing.apply(source[i]) for i in index]), np.stack([framing.box(boxes[i]) for i in index]))


def _mouth(box: np.ndarray) -> tuple[int, int, int, int, tuple, tuple]:
    """Bounding rectangle (x0, y0, x1, y1) of the mouth-and-chin ellipse, its centre and axes (pixels)."""
    w, h = box[2] - box[0], box[3] - box[1]
    cx, cy = (box[0] + box[2]) / 2, box[1] + 0.80 * h
    ax, ay = 0.30 * w, 0.20 * h
    x0, y0 = max(0, int(cx - ax * 1.3)), max(0, int(cy - ay * 1.3))
    x1, y1 = min(SIZE[0], int(cx + ax * 1.3) + 1), min(SIZE[1], int(cy + ay * 1.3) + 1)
    return x0, y0, x1, y1, (cx - x0, cy - y0), (ax, ay)


def _patch(frames: np.ndarray, boxes: np.ndarray, i: int, box: np.ndarray, x0: int, y0: int, x1: int, y1: int):
    """Face ``i``'s pixels mapped onto ``box`` (scale and shift), the rectangle (x0..x1, y0..y1) of the result."""
    s = (box[2] - box[0]) / max(boxes[i, 2] - boxes[i, 0], 1.0)
    m = np.float32([[s, 0, box[0] - s * boxes[i, 0] - x0], [0, s, box[1] - s * boxes[i, 1] - y0]])
    return cv2.warpAffine(
        frames[i], m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    ).astype(np.float32)


def manipulate(
    frames: np.ndarray,
    boxes: np.ndarray,
    j0: int,
    j1: int,
    generator: str,
    rng,
    donor: tuple[np.ndarray, np.ndarray] | None = None,
) -> None:
    """Apply ``generator`` in place to frames ``j0 <= j < j1``. ``donor`` (frames, boxes), at least as
    many frames as the span, is the other face ``mouth-transplant`` takes its mouth from."""
    span = frames[j0:j1].copy()  # the span as it was: edits read unedited frames
    n = j1 - j0
    order = np.arange(j0, j1)
    if generator == "mouth-shuffle":
        while n > 1 and (order == np.arange(j0, j1)).any():
            order = j0 + rng.permutation(n)
    phase, freq = rng.uniform(0, 2 * np.pi), rng.uniform(2, 4)
    quality, step = int(rng.integers(8, 21)), int(rng.integers(2, 4))
    for k, j in enumerate(range(j0, j1)):
        alpha = min(1.0, (k + 1) / (RAMP + 1), (n - k) / (RAMP + 1))
        x0, y0, x1, y1, centre, axes = _mouth(boxes[j])
        if x1 - x0 < 4 or y1 - y0 < 4:
            continue
        region = span[k, y0:y1, x0:x1].astype(np.float32)
        if generator == "mouth-freeze":
            patch = _patch(span, boxes[j0:j1], 0, boxes[j], x0, y0, x1, y1)
        elif generator == "mouth-shuffle":
            patch = _patch(span, boxes[j0:j1], int(order[k]) - j0, boxes[j], x0, y0, x1, y1)
        elif generator == "mouth-transplant":
            patch = _patch(donor[0], donor[1], k, boxes[j], x0, y0, x1, y1)
            patch = (patch - patch.mean((0, 1))) / (patch.std((0, 1)) + 1e-3) * region.std((0, 1)) + region.mean((0, 1))
        elif generator == "mouth-warp":
            s = 1 + 0.25 * np.sin(2 * np.pi * freq * k / 25 + phase)
            m = np.float32([[1, 0, 0], [0, s, centre[1] * (1 - s)]])
            patch = cv2.warpAffine(
                region, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
        elif generator == "mouth-reencode":
            soft = cv2.GaussianBlur(region.astype(np.uint8), (3, 3), 0)
            _, jpeg = cv2.imencode(".jpg", soft, [cv2.IMWRITE_JPEG_QUALITY, quality])
            patch = cv2.imdecode(jpeg, cv2.IMREAD_COLOR).astype(np.float32)
        elif generator == "mouth-interp":
            before, after = max(0, k - step), min(n - 1, k + step)
            patch = 0.5 * (
                _patch(span, boxes[j0:j1], before, boxes[j], x0, y0, x1, y1)
                + _patch(span, boxes[j0:j1], after, boxes[j], x0, y0, x1, y1)
            )
        else:
            raise ValueError(f"unknown visual generator {generator!r}; valid: {', '.join(GENERATORS)}")
        mask = np.zeros((y1 - y0, x1 - x0), np.float32)
        cv2.ellipse(mask, (round(centre[0]), round(centre[1])), (round(axes[0]), round(axes[1])), 0, 0, 360, 1.0, -1)
        k_blur = 2 * max(1, int(0.25 * axes[1])) + 1
        a = (alpha * cv2.GaussianBlur(mask, (k_blur, k_blur), 0))[..., None]
        frames[j, y0:y1, x0:x1] = np.clip((1 - a) * region + a * patch + 0.5, 0, 255).astype(np.uint8)
