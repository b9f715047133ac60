"""Face detection, tracking and crops (modalities/visual/faces.py).

``draw_face`` paints the toy set's synthetic face (dfstream/app/toyvideo.py), which
OpenCV's frontal-face Haar cascade detects.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

from dfstream.app.toyvideo import draw_face as toy_face
from dfstream.engine.core.errors import RegistryError
from dfstream.modalities.visual.faces import FACE_DETECTORS, Crops, HaarFaceDetector, crop_faces, face_detector


def draw_face(canvas: np.ndarray, cx: float, cy: float, height: float, mouth_open: float = 0.0) -> np.ndarray:
    """The toy set's face (:func:`dfstream.app.toyvideo.draw_face`) painted in place; returns ``canvas``."""
    toy_face(canvas, cx, cy, height, mouth_open)
    return canvas


def gray(height=240, width=320, n=None):
    shape = (height, width, 3) if n is None else (n, height, width, 3)
    return np.full(shape, 110, np.uint8)  # the toy face must be brighter than its background


@pytest.fixture(scope="module")
def haar():
    return HaarFaceDetector()


class Script:
    """A stub detector that returns prepared boxes frame by frame."""

    def __init__(self, boxes):
        self.boxes = [np.asarray(b, np.float64).reshape(-1, 4) for b in boxes]
        self.calls = 0

    def detect(self, frame):
        self.calls += 1
        return self.boxes[self.calls - 1]


@pytest.mark.parametrize(
    "cx, cy, height, mouth",
    [(160, 120, 100, 0.0), (100, 110, 80, 1.0), (220, 130, 120, 0.5), (160, 120, 160, 0.0), (150, 140, 90, 1.0)],
)
def test_detects_drawn_face(haar, cx, cy, height, mouth):
    frame = draw_face(gray(), cx, cy, height, mouth)
    boxes = haar.detect(frame)
    assert boxes.shape == (1, 4) and boxes.dtype == np.float64
    x0, y0, x1, y1 = boxes[0]
    assert x0 < cx < x1 and y0 < cy < y1
    assert abs((x1 - x0) - height) < 0.3 * height and abs((y1 - y0) - height) < 0.3 * height


def test_boxes_are_in_input_pixels_after_downscale(haar):
    frame = draw_face(gray(480, 640), 400, 260, 200)
    ((x0, y0, x1, y1),) = haar.detect(frame)
    assert x0 < 400 < x1 and y0 < 260 < y1 and 140 < x1 - x0 < 260


def test_no_detection_on_plain_or_noise(haar):
    rng = np.random.default_rng(0)
    assert haar.detect(gray()).shape == (0, 4)
    assert haar.detect(np.zeros((480, 640, 3), np.uint8)).shape == (0, 4)
    for _ in range(3):
        assert haar.detect(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)).shape == (0, 4)


def test_draw_face_mouth_changes_only_the_mouth():
    closed, opened = draw_face(gray(), 160, 120, 100, 0.0), draw_face(gray(), 160, 120, 100, 1.0)
    rows, cols = np.nonzero((closed != opened).any(axis=-1))
    assert rows.min() > 120 + 0.33 * 100 - 15 and rows.max() < 120 + 0.33 * 100 + 15
    assert cols.min() > 160 - 25 and cols.max() < 160 + 25
    untouched = draw_face(gray(), 160, 120, 100)
    assert (untouched[:, :90] == 110).all() and (untouched[:50] == 110).all()


def test_shared_detector_is_safe_across_threads(haar):
    frames = [draw_face(gray(), 100 + 20 * i, 120, 90) for i in range(4)]
    expected = [haar.detect(f) for f in frames]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(haar.detect, frames * 3))
    for i, boxes in enumerate(got):
        np.testing.assert_array_equal(boxes, expected[i % 4])


def _face_centroid(crop):
    """Centre of mass (x, y) of the non-background pixels of a crop, and their fraction."""
    mask = np.abs(crop.astype(int) - 128).max(axis=-1) > 20
    ys, xs = np.nonzero(mask)
    return xs.mean(), ys.mean(), mask.mean()


def test_crops_follow_a_moving_face(haar):
    centres = [(70 + 25 * i, 100 + 6 * i) for i in range(8)]
    frames = np.stack([draw_face(gray(), cx, cy, 90) for cx, cy in centres])
    crops = crop_faces(frames, 64, haar)
    assert isinstance(crops, Crops)
    assert crops.images.shape == (8, 64, 64, 3) and crops.images.dtype == np.uint8
    assert crops.faces.dtype == bool and crops.faces.all()
    for image in crops.images:
        x, y, fraction = _face_centroid(image)
        assert abs(x - 31.5) < 5 and abs(y - 31.5) < 5 and fraction > 0.15  # whole frame: 0.06


def test_missing_face_is_held_then_marked(haar):
    frames = gray(n=10)
    for i in (0, 1, 2, 8, 9):
        draw_face(frames[i], 160, 120, 100)
    crops = crop_faces(frames, 48, haar, hold=2)
    assert crops.faces.tolist() == [True] * 5 + [False] * 3 + [True] * 2
    whole = cv2.resize(frames[5], (48, 48), interpolation=cv2.INTER_AREA)
    for i in (5, 6, 7):
        np.testing.assert_array_equal(crops.images[i], whole)
    assert (crops.images[3] == 110).all() and (crops.images[4] == 110).all()  # held box over plain gray


def test_largest_face_is_tracked_when_the_other_grows():
    haar = HaarFaceDetector(detect_side=480)  # full resolution: the 70 px face would be 35 px at 240
    frames = gray(240, 480, n=6)
    frames[:, :, :240] = (90, 100, 130)  # bluish left half, reddish right half: which face a crop holds
    frames[:, :, 240:] = (130, 100, 90)
    for i, other in enumerate([70, 80, 95, 110, 120, 130]):
        draw_face(frames[i], 100, 120, 105)
        draw_face(frames[i], 380, 120, other)
    first, last = (np.sort(np.diff(haar.detect(frames[i])[:, ::2], axis=1)[:, 0]) for i in (0, -1))  # widths
    assert first.size == last.size == 2 and np.abs(first - [70, 105]).max() < 30 and last[1] > last[0] + 10
    crops = crop_faces(frames, 64, haar)
    assert crops.faces.all()
    assert (crops.images[:, 0, 0, 2] > crops.images[:, 0, 0, 0] + 30).all()  # all crops on the left face
    alone = crop_faces(frames[-1:], 64, haar)  # without a track, the now-larger right face wins
    assert alone.images[0, 0, 0, 0] > alone.images[0, 0, 0, 2] + 30


def test_crop_geometry_and_tracking_rules_exact():
    ys, xs = np.mgrid[0:120, 0:160]
    frame = np.stack([xs, ys, (xs + ys) % 256], axis=-1).astype(np.uint8)
    frames = np.stack([frame] * 6)
    script = Script(
        [
            [[40, 40, 80, 80], [90, 10, 150, 70]],  # largest = the 60 px box
            [[40, 40, 80, 80], [95, 12, 151, 68]],  # tracked: IoU 0.84 with the kept box
            [[30, 40, 90, 100], [96, 14, 150, 68]],  # tracked (IoU 0.93) although the other is larger now
            [],  # held (hold=1)
            [],  # lost
            [[0, 0, 20, 20]],  # re-acquired near the corner: shifted inside the frame
        ]
    )
    crops = crop_faces(frames, 30, script, margin=0.25, hold=1)
    assert crops.faces.tolist() == [True, True, True, True, False, True]
    # box (90,10,150,70) grown by 15 px per side -> 90 px square centred (120, 40), shifted to x 70..160, y 0..90
    np.testing.assert_array_equal(
        crops.images[0], cv2.resize(frame[0:90, 70:160], (30, 30), interpolation=cv2.INTER_AREA)
    )
    np.testing.assert_array_equal(crops.images[2], crops.images[3])
    np.testing.assert_array_equal(crops.images[4], cv2.resize(frame, (30, 30), interpolation=cv2.INTER_AREA))
    # box (0,0,20,20) grown to 30 px square centred (10, 10), shifted to 0..30: same size, copied exactly
    np.testing.assert_array_equal(crops.images[5], frame[0:30, 0:30])


def test_square_crop_clipped_to_a_small_frame():
    frames = np.arange(2 * 10 * 16 * 3, dtype=np.uint8).reshape(2, 10, 16, 3)
    crops = crop_faces(frames, 8, Script([[[2, 2, 14, 8]], [[0, 0, 100, 100]]]), margin=0.5)
    assert crops.faces.all()
    np.testing.assert_array_equal(crops.images[0], cv2.resize(frames[0, :, 0:16], (8, 8), interpolation=cv2.INTER_AREA))
    np.testing.assert_array_equal(crops.images[1], cv2.resize(frames[1], (8, 8), interpolation=cv2.INTER_AREA))


def test_whole_frame_mode():
    rng = np.random.default_rng(2)
    big = rng.integers(0, 256, (3, 40, 50, 3), dtype=np.uint8)
    crops = crop_faces(big, 20, None)
    assert crops.faces.all() and crops.images.shape == (3, 20, 20, 3)
    np.testing.assert_array_equal(crops.images[1], cv2.resize(big[1], (20, 20), interpolation=cv2.INTER_AREA))
    small = rng.integers(0, 256, (2, 8, 6, 3), dtype=np.uint8)
    grown = crop_faces(small, 16, None)
    np.testing.assert_array_equal(grown.images[0], cv2.resize(small[0], (16, 16), interpolation=cv2.INTER_LINEAR))


def test_empty_sequence(haar):
    for detector in (haar, None):
        crops = crop_faces(np.zeros((0, 240, 320, 3), np.uint8), 32, detector)
        assert crops.images.shape == (0, 32, 32, 3) and crops.images.dtype == np.uint8
        assert crops.faces.shape == (0,) and crops.faces.dtype == bool


def test_tiny_frames(haar):
    frames = np.full((3, 1, 1, 3), (10, 20, 30), np.uint8)
    crops = crop_faces(frames, 16, haar)
    assert not crops.faces.any()
    assert (crops.images == np.array([10, 20, 30], np.uint8)).all()
    assert haar.detect(np.zeros((5, 30, 3), np.uint8)).shape == (0, 4)
    assert crop_faces(frames, 16, Script([[[0, 0, 1, 1]]] * 3)).faces.all()


def test_bad_input_and_registry(haar):
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        haar.detect(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        crop_faces(np.zeros((2, 8, 8, 3), np.float32), 8, None)
    with pytest.raises(ValueError, match="size"):
        crop_faces(np.zeros((2, 8, 8, 3), np.uint8), 0, None)
    assert set(FACE_DETECTORS) == {"haar", "blazeface"}
    assert isinstance(face_detector("haar"), HaarFaceDetector)
    with pytest.raises(RegistryError, match="haar"):
        face_detector("mtcnn")


def test_detect_every_keeps_the_tracked_box_between_detections():
    box = [40, 30, 80, 70]
    frames = gray(48, 96, n=6)
    every = Script([box] * 3)
    sparse = crop_faces(frames, 16, every, detect_every=2)
    dense = crop_faces(frames, 16, Script([box] * 6))
    assert every.calls == 3 and sparse.faces.all()  # frames 0, 2 and 4 searched
    np.testing.assert_array_equal(sparse.images, dense.images)
    lost = Script([[]] * 6)  # no track: every frame is searched
    assert not crop_faces(frames, 16, lost, detect_every=3).faces.any() and lost.calls == 6


class Counting(HaarFaceDetector):
    """Haar with its whole-frame and size-band searches counted."""

    def __init__(self):
        super().__init__()
        self.full = self.near = 0

    def detect(self, frame):
        self.full += 1
        return super().detect(frame)

    def detect_near(self, frame, box):
        self.near += 1
        return super().detect_near(frame, box)


def test_tracked_search_gives_the_full_searchs_crops(haar):
    rng = np.random.default_rng(4)
    frames = np.stack([draw_face(gray(), 110 + 12 * i + rng.uniform(-3, 3), 115 + 3 * i, 95 + 4 * i) for i in range(8)])
    frames[5] = gray()  # the face leaves for a frame: held, then searched for in the whole frame again
    counting = Counting()
    tracked = crop_faces(frames, 48, counting, search="tracked")
    full = crop_faces(frames, 48, haar, search="full")
    np.testing.assert_array_equal(tracked.images, full.images)
    assert tracked.faces.tolist() == full.faces.tolist() == [True] * 8
    # whole-frame searches: frame 0 (no track yet) and frame 5 (the band found no face there);
    # the band: frames 1-7 (frame 6 too, for the box held over frame 5 is still tracked)
    assert counting.near == 7 and counting.full == 2


def test_size_band_search_skips_faces_of_another_size(haar):
    frame = draw_face(draw_face(gray(240, 320), 100, 125, 160), 260, 50, 45)  # a big and a small face
    boxes = haar.detect(frame)
    sides = sorted(boxes[:, 2] - boxes[:, 0])
    assert len(boxes) == 2 and sides[1] > 2.4 * sides[0]
    big = boxes[np.argmax(boxes[:, 2] - boxes[:, 0])]
    small = boxes[np.argmin(boxes[:, 2] - boxes[:, 0])]
    np.testing.assert_array_equal(haar.detect_near(frame, big), big[None])
    np.testing.assert_array_equal(haar.detect_near(frame, small), small[None])
    with pytest.raises(ValueError, match="search"):
        crop_faces(gray(n=1), 16, haar, search="sideways")
