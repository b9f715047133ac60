"""BlazeFace (MediaPipe's short-range face detector) in torch, batched over frames.

The network is MediaPipe's own graph and weights (:mod:`dfstream.modalities.visual.face_model`
fetches them), run by :class:`dfstream.modalities.visual.graph_net.GraphNet`; its outputs
match the TFLite interpreter's within 6e-5 on random inputs (checked with
``ai-edge-litert`` when this was written). Around it, as MediaPipe's
``face_detection_short_range`` graph does:

- input: the RGB frame letterboxed into 128 x 128 (aspect kept, centred,
  black borders, ``INTER_AREA``), scaled to [-1, 1];
- 896 SSD anchors: a 16 x 16 grid with 2 anchors per cell (stride 8), then an
  8 x 8 grid with 6 (stride 16), centres at ``(i + 0.5) / grid``, unit size;
- box = (dx, dy, w, h) / 128 around the anchor centre, score =
  sigmoid(logit clipped to +-100), kept at or above ``min_score`` (0.5, MediaPipe's
  default);
- weighted non-maximum suppression at IoU 0.3: each kept box is the
  score-weighted mean of the boxes it suppresses.

Against the Haar cascade: on the real-material test split
(``bench/face_coverage.py``) it finds a face in far more frames, e.g. the
tilted head of ``carphone`` and the face cut by the frame edge in
``pexels-wolfgang`` (numbers in README), and a chunk's frames go through it in
one batch, so it costs less per frame as well. It is not the default because
the shipped recipe retrained on its crops scored lower (README, "Face
detectors and fusion rules").
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np
import torch

from dfstream.modalities.visual.boxes import iou
from dfstream.modalities.visual.face_model import default_path, load
from dfstream.modalities.visual.graph_net import GraphNet

SIDE = 128
MIN_SCORE = 0.5
NMS_IOU = 0.3
_GRIDS = ((16, 2), (8, 6))  # (cells per side, anchors per cell)


def anchors() -> np.ndarray:
    """The 896 anchor centres ``(x, y)`` on the unit square, in the network's output order."""
    rows = []
    for cells, per_cell in _GRIDS:
        centre = (np.arange(cells) + 0.5) / cells
        y, x = np.meshgrid(centre, centre, indexing="ij")
        rows.append(np.repeat(np.stack([x.ravel(), y.ravel()], 1), per_cell, axis=0))
    return np.concatenate(rows)


@functools.lru_cache(maxsize=4)
def _network(path: str) -> GraphNet:
    net = GraphNet(*load(Path(path)))
    return net.eval().requires_grad_(False)


class BlazeFaceDetector:
    """Face boxes from BlazeFace; :meth:`detect_many` runs a whole frame sequence as one batch.

    Safe to share between threads (the network is read-only under ``torch.inference_mode``).

    Parameters
    ----------
    path : Path or None
        The converted weights; None = :func:`dfstream.modalities.visual.face_model.default_path`.
    min_score : float
        Detections below this score are dropped.
    batch : int
        Frames per forward pass.
    """

    def __init__(self, path: Path | None = None, min_score: float = MIN_SCORE, batch: int = 64):
        self.net = _network(str(Path(path) if path else default_path()))
        self.min_score, self.batch = float(min_score), int(batch)
        self._anchors = anchors()

    def detect(self, frame: np.ndarray) -> np.ndarray:
        """Face boxes (K, 4) as (x0, y0, x1, y1) in ``frame``'s pixels, best first."""
        return self.detect_many(frame[None])[0]

    def detect_many(self, frames: np.ndarray) -> list[np.ndarray]:
        """:meth:`detect` of each frame of uint8 RGB ``(N, H, W, 3)``, in one or a few batches."""
        if len(frames) == 0:
            return []
        height, width = frames.shape[1:3]
        scale = SIDE / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        ox, oy = (SIDE - size[0]) // 2, (SIDE - size[1]) // 2
        boxed = np.zeros((len(frames), SIDE, SIDE, 3), np.uint8)
        for i, frame in enumerate(frames):
            boxed[i, oy : oy + size[1], ox : ox + size[0]] = cv2.resize(
                np.ascontiguousarray(frame), size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            )
        regress, probs = [], []
        with torch.inference_mode():
            for start in range(0, len(boxed), self.batch):
                x = torch.from_numpy(boxed[start : start + self.batch]).permute(0, 3, 1, 2).float()
                r, c = self.net(x.div_(127.5).sub_(1.0))
                regress.append(r[..., :4].numpy())
                probs.append(torch.sigmoid(c[..., 0].clamp(-100.0, 100.0)).numpy())
        regress, scores = np.concatenate(regress), np.concatenate(probs)
        out = []
        for r, s in zip(regress, scores):
            keep = s >= self.min_score
            centre = r[keep, :2] / SIDE + self._anchors[keep]
            half = r[keep, 2:4] / SIDE / 2
            boxes = np.concatenate([centre - half, centre + half], 1) * SIDE  # letterbox pixels
            boxes = weighted_nms(boxes, s[keep], NMS_IOU)
            boxes -= np.array([ox, oy, ox, oy])
            out.append((boxes / scale).astype(np.float64))
        return out


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, min_iou: float) -> np.ndarray:
    """Weighted NMS of boxes (K, 4): best first, each the score-weighted mean of its cluster (the boxes
    overlapping it by more than ``min_iou``)."""
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]
    kept = []
    alive = np.ones(len(boxes), bool)
    for i in range(len(boxes)):
        if not alive[i]:
            continue
        cluster = alive & (iou(boxes[i], boxes) > min_iou)
        cluster[i] = True
        weights = scores[cluster][:, None]
        kept.append((boxes[cluster] * weights).sum(0) / weights.sum())
        alive &= ~cluster
    return np.array(kept, np.float64).reshape(-1, 4)
