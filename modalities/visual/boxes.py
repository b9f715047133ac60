"""Box geometry shared by the face detectors and the face tracker: boxes are ``(x0, y0, x1, y1)`` in pixels."""

from __future__ import annotations

import numpy as np


def area(boxes: np.ndarray) -> np.ndarray:
    """Areas of boxes ``(..., 4)``; shape ``(...)``."""
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one box ``(4,)`` with each of ``boxes`` ``(K, 4)``; shape ``(K,)``."""
    w = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = w * h
    union = area(box) + area(boxes) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
