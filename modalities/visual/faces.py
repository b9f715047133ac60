"""Offline face detection, tracking of the largest face, and margin crops for the visual encoder.

Two detectors (``visual.face_detector``): ``haar``, the default, OpenCV's
frontal-face cascade, which ships inside ``opencv-python-headless`` 4.x and
needs nothing, and ``blazeface``, MediaPipe's short-range detector run in torch
(:mod:`dfstream.modalities.visual.blazeface`; its weights are fetched once from PyPI by
``dfstream fetch-face-model``, and mediapipe itself, which pins ``numpy<2``, is
never installed). On the real-material test split BlazeFace finds a face
in 100 / 72.7 / 100 % of the sampled frames of its three face videos where
Haar finds one in 98.5 / 38.3 / 4.1 % (``bench/face_coverage.py``), at a
fraction of the cost per frame. A frame without a face is kept, whole, and
marked (``Crops.faces``), never dropped.

Haar's detection parameters (:class:`HaarFaceDetector`): the frame is converted to
gray, downscaled with ``INTER_AREA`` so its longer side is at most
``detect_side`` px (no histogram equalisation: the cascade already normalises
each window's variance, and a global equalisation of a flat background wrecked
detection of the test faces), then
``detectMultiScale(scaleFactor=1.15, minNeighbors=4, minSize=max(24 px, 10 % of
the shorter side))``. A 15 % scale step costs ~25 % less than the usual 1.1
(measured below) with boxes still within ~15 % of the face size; 4 neighbours
gave no false detection on 240 synthetic texture/shape frames (minNeighbors=3:
1; scaleFactor 1.1 with 3: 4) and every test face; faces under a tenth of the
picture are too small to crop for the encoder and are not searched for. Recall
on the test suite's synthetic faces (``tests/test_faces.py::draw_face``, random
positions with the face's square box inside the frame, 40 per size): 39-40/40
from 45 px in the detection image up to the full frame height, ~60 % at 37 px;
so at ``detect_side=240`` a 640x480 frame needs faces of ~120 px or more (raise
``detect_side`` for small faces). Faces cut by the frame edge are often missed.

Measured per 640x480 frame, ``detect`` only, best of 10x10 calls, one OpenCV
thread, on the 2-core development machine while other test suites were running
(load average ~3, so an idle machine is faster)::

    .venv/bin/python -c "import sys,timeit,numpy as np,cv2; sys.path.insert(0,'tests'); \
    from test_faces import draw_face, gray; from dfstream.modalities.visual.faces import HaarFaceDetector as D; \
    r=np.random.default_rng(0); f=np.clip(128+60*cv2.resize(r.normal(0,1,(60,80,3)).astype('f4'), \
    (640,480),interpolation=cv2.INTER_CUBIC),0,255).astype(np.uint8); draw_face(f,320,240,200); \
    g=draw_face(gray(480,640),320,240,200); cv2.setNumThreads(1); \
    [print(s,n,'%.1f ms' % (100*min(timeit.repeat(lambda: d.detect(i),number=10,repeat=10)))) \
    for s in (240,320) for d in [D(s)] for n,i in (('texture',f),('gray',g))]"

    detect_side  200 px face on smooth random texture   on flat gray
    240          39.9 ms/frame  (scaleFactor 1.1: 51.9)  8.1 ms/frame
    320          77.4 ms/frame  (scaleFactor 1.1: 104.5) 11.0 ms/frame

With OpenCV's default threads (2) the textured case measured 23-48 ms at 240 and
75-90 ms at 320 across repeated runs on the loaded machine.

While a face is tracked (:func:`crop_faces`, ``search="tracked"``, the default),
Haar first searches only the window sizes a box overlapping the tracked one by
IoU > ``TRACK_IOU`` can have (side within ``NEAR_BAND`` = 0.4-2.4 of the tracked
box's: IoU > 0.3 needs 0.55-1.83, the rest is room for the grouping of raw
windows), and searches the whole frame when that finds none. OpenCV scans each
scale of the pyramid alike either way, so the band's raw windows are the full
search's; only a group of them straddling the band's edge can come out
differently. On
the real-material test split (2623 frames at 5 fps, cut in 2 s chunks as the
stream path prepares them) every crop was identical and ``crop_faces`` took
34.2 s against 38.1 s (one run, while nothing else ran). A narrower band
(0.55-1.85) saved 21 % but changed 1 crop of 2623.

Threads: ``cv2.CascadeClassifier`` is not safe to call from several threads at
once. Each detector owns its cascade and guards ``detect`` with its own lock, so
sharing one instance is safe but serialised; for parallel detection make one
detector per worker thread (construction loads the XML, ~15 ms).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from dfstream.engine.core.errors import ConfigError, lookup
from dfstream.modalities.visual.boxes import area, iou

CASCADE_FILE = "haarcascade_frontalface_default.xml"
SCALE_FACTOR = 1.15
MIN_NEIGHBORS = 4
MIN_FACE_FRACTION = 0.10
CASCADE_WINDOW = 24
TRACK_IOU = 0.3
NEAR_BAND = (0.4, 2.4)
FACE_SEARCHES = ("tracked", "full")


class FaceDetector(Protocol):
    """Anything that finds faces in one frame. A detector may also have
    ``detect_many(frames (N, H, W, 3)) -> list of (K, 4) arrays``, :meth:`detect` of
    each frame; :func:`crop_faces` then passes a whole sequence at once (a batch).
    It may have ``detect_near(frame, box)``, the faces that could continue a tracked
    ``box`` (:meth:`HaarFaceDetector.detect_near`), which :func:`crop_faces` tries first."""

    def detect(self, frame: np.ndarray) -> np.ndarray:
        """Face boxes in ``frame``.

        Parameters
        ----------
        frame : np.ndarray
            uint8, shape (H, W, 3), RGB.

        Returns
        -------
        np.ndarray
            float, shape (K, 4): (x0, y0, x1, y1) in the frame's pixels, any order.
        """
        ...


class HaarFaceDetector:
    """OpenCV's bundled frontal-face Haar cascade (see the module docstring).

    Parameters
    ----------
    detect_side : int
        Frames are downscaled so their longer side is at most this many pixels
        before detection (speed); boxes come back in the input frame's pixels.
    """

    def __init__(self, detect_side: int = 240):
        if int(detect_side) < CASCADE_WINDOW:
            raise ConfigError(
                f"detect_side={detect_side} is smaller than the cascade's "
                f"{CASCADE_WINDOW} px window; use at least {CASCADE_WINDOW} (240 is typical)"
            )
        self.detect_side = int(detect_side)
        self._cascade = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADE_FILE)
        if self._cascade.empty():
            raise ConfigError(
                f"cannot load {CASCADE_FILE} from {cv2.data.haarcascades}; reinstall opencv-python-headless"
            )
        self._lock = threading.Lock()

    def detect(self, frame: np.ndarray) -> np.ndarray:
        """Face boxes as :meth:`FaceDetector.detect` gives them (float64); none when the
        frame is smaller than the cascade's window after downscaling.
        """
        return self._search(frame, None)

    def detect_near(self, frame: np.ndarray, box: np.ndarray) -> np.ndarray:
        """Face boxes of ``frame`` searched only at the window sizes that a box overlapping
        ``box`` (frame pixels, a tracked face) by IoU > ``TRACK_IOU`` can have: the sides
        within ``NEAR_BAND`` of ``box``'s width (see the module docstring). It returns the
        full search's boxes of those sizes, except where a group of raw windows straddles
        the band's edge; :func:`crop_faces` falls back to :meth:`detect` when none of
        them overlaps ``box`` enough.
        """
        return self._search(frame, np.asarray(box, np.float64))

    def _search(self, frame: np.ndarray, near: np.ndarray | None) -> np.ndarray:
        """The cascade over the downscaled gray frame: every size from the smallest face, or
        the band about ``near``'s width."""
        _check_frames(frame, ndim=3)
        height, width = frame.shape[:2]
        scale = min(1.0, self.detect_side / max(height, width))
        gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        shorter = min(gray.shape)
        if shorter < CASCADE_WINDOW:
            return np.zeros((0, 4), np.float64)
        side = max(CASCADE_WINDOW, round(MIN_FACE_FRACTION * shorter))
        to_frame = np.array([width / gray.shape[1], height / gray.shape[0]] * 2)  # exact for the rounded size
        sizes = {"minSize": (side, side)}
        if near is not None:
            # The window sides a box overlapping ``near`` by IoU > TRACK_IOU can have, with room for
            # the grouping of raw windows (see detect_near).
            w = (near[2] - near[0]) / to_frame[0]
            low, high = max(side, int(NEAR_BAND[0] * w)), int(np.ceil(NEAR_BAND[1] * w))
            if high < low:
                return np.zeros((0, 4), np.float64)
            sizes = {"minSize": (low, low), "maxSize": (high, high)}
        with self._lock:
            found = self._cascade.detectMultiScale(gray, scaleFactor=SCALE_FACTOR, minNeighbors=MIN_NEIGHBORS, **sizes)
        boxes = np.asarray(found, np.float64).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        return boxes * to_frame  # undo the downscale: x * (W / w) per axis


def _blazeface() -> FaceDetector:
    from dfstream.modalities.visual.blazeface import BlazeFaceDetector  # torch, and its weights: only when asked

    return BlazeFaceDetector()


FACE_DETECTORS = {"haar": HaarFaceDetector, "blazeface": _blazeface}


def face_detector(name: str) -> FaceDetector:
    """A new detector registered as ``name`` (the error lists the valid names)."""
    return lookup(FACE_DETECTORS, name, "face detector")()


@dataclass(frozen=True)
class Crops:
    """Face crops of a frame sequence.

    Attributes
    ----------
    images : np.ndarray
        uint8, shape (N, S, S, 3), RGB.
    faces : np.ndarray
        bool, shape (N,): whether frame i had a (tracked) face; False rows hold
        the whole frame resized.
    """

    images: np.ndarray
    faces: np.ndarray


def crop_faces(
    frames: np.ndarray,
    size: int,
    detector: FaceDetector | None,
    margin: float = 0.25,
    hold: int = 2,
    detect_every: int = 1,
    search: str = "tracked",
) -> Crops:
    """Track the largest face through ``frames`` and crop it with a margin.

    In each frame the detection overlapping the previous kept box most (IoU
    above 0.3) is kept, else the largest one. A frame without detections reuses
    the previous box for up to ``hold`` frames; after that the track is lost
    and the frame gets ``faces[i] = False`` and the whole frame resized. The
    crop is the box grown by ``margin`` of its width / height on each side,
    made square about its centre, shifted inside the frame (clipped only when
    larger than the frame), and resized with ``INTER_AREA`` when shrinking,
    ``INTER_LINEAR`` when growing.

    Parameters
    ----------
    frames : np.ndarray
        uint8, shape (N, H, W, 3), RGB; N may be 0.
    size : int
        Side S of the square crops, pixels.
    detector : FaceDetector or None
        None = whole-frame mode: every frame resized, ``faces`` all True.
    margin : float
        Fraction of the box size added on each side.
    hold : int
        Consecutive frames without a detection that reuse the last kept box, frames.
    detect_every : int
        While a face is tracked, run the detector on every ``detect_every``-th
        frame only and keep the box in between (speed); without a track every
        frame is searched.
    search : str
        ``tracked``: while a face is tracked and the detector has a
        ``detect_near(frame, box)`` (Haar), search first only at the sizes a
        box overlapping the tracked one can have, and search the whole frame
        when that finds no such box; ``full``: every search is a whole-frame one.

    Returns
    -------
    Crops
        ``images`` uint8 (N, size, size, 3), ``faces`` bool (N,).
    """
    _check_frames(frames)
    if int(size) < 1 or margin < 0 or hold < 0 or detect_every < 1 or search not in FACE_SEARCHES:
        raise ValueError(
            f"need size >= 1, margin >= 0, hold >= 0, detect_every >= 1, search in {FACE_SEARCHES}; "
            f"got {size}, {margin}, {hold}, {detect_every}, {search!r}"
        )
    size = int(size)
    images = np.zeros((len(frames), size, size, 3), np.uint8)
    faces = np.zeros(len(frames), bool)
    previous, missed = None, 0
    many = getattr(detector, "detect_many", None)
    found = many(frames) if many is not None and detect_every == 1 else None  # one batch
    near = getattr(detector, "detect_near", None) if search == "tracked" else None
    for i, frame in enumerate(frames):
        box = None
        if detector is None:
            faces[i] = True
        elif previous is not None and i % detect_every:
            box = previous  # between detections the tracked box stays
            faces[i] = True
        else:
            boxes = None if found is None else np.asarray(found[i], np.float64).reshape(-1, 4)
            if boxes is None and near is not None and previous is not None:
                boxes = np.asarray(near(frame, previous), np.float64).reshape(-1, 4)
                if not (len(boxes) and iou(previous, boxes).max() > TRACK_IOU):
                    boxes = None  # the tracked face is not among them: search the whole frame
            if boxes is None:
                boxes = np.asarray(detector.detect(frame), np.float64).reshape(-1, 4)
            if len(boxes):
                overlap = iou(previous, boxes) if previous is not None else np.zeros(len(boxes))
                box = boxes[overlap.argmax()] if overlap.max() > TRACK_IOU else boxes[area(boxes).argmax()]
                missed = 0
            elif previous is not None and missed < hold:
                box, missed = previous, missed + 1
            previous = box
            faces[i] = box is not None
        region = frame if box is None else _square_crop(frame, box, margin)
        images[i] = _resize(region, size)
    return Crops(images=images, faces=faces)


def _check_frames(frames, ndim: int = 4) -> None:
    if not (
        isinstance(frames, np.ndarray) and frames.ndim == ndim and frames.shape[-1] == 3 and frames.dtype == np.uint8
    ):
        shape = getattr(frames, "shape", None)
        dtype = getattr(frames, "dtype", type(frames).__name__)
        raise ValueError(
            f"frames must be uint8 RGB of shape (N, H, W, 3) (one frame (H, W, 3)); got shape {shape}, dtype {dtype}"
        )


def _square_crop(frame: np.ndarray, box: np.ndarray, margin: float) -> np.ndarray:
    """The square, margin-grown region around ``box`` inside ``frame`` (a view, >= 1x1 px)."""
    height, width = frame.shape[:2]
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side = max((x1 - x0) * (1 + 2 * margin), (y1 - y0) * (1 + 2 * margin), 1.0)
    bounds = []
    for centre, extent in ((cx, width), (cy, height)):
        length = min(side, extent)
        start = min(max(centre - side / 2, 0.0), extent - length)
        lo = int(np.clip(np.floor(start + 0.5), 0, extent - 1))
        bounds.append((lo, int(np.clip(lo + round(length), lo + 1, extent))))
    (xa, xb), (ya, yb) = bounds
    return frame[ya:yb, xa:xb]


def _resize(region: np.ndarray, size: int) -> np.ndarray:
    """``region`` (h, w, 3) resized to (size, size, 3): INTER_AREA shrinking, INTER_LINEAR growing."""
    interpolation = cv2.INTER_AREA if max(region.shape[:2]) > size else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(region), (size, size), interpolation=interpolation)
