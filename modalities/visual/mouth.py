"""The visual branch's learned mouth path: the mouth region and its motion -> a small CNN.

Why it exists: the ViT we can build here is random and frozen, and its [CLS]
state of a whole face barely moves when only the mouth is edited (the
real-material set's visual forgeries edit mouth and chin only). The region
below the eyes, with its change since the previous sampled frame, shows what
those edits leave: a mouth that stops moving, one that jumps, a blend seam, a
warp. Only this CNN and the back-end learn; the region's pixels are cut from
the face crop (no parameters), so they are cached with the ViT's states.

The region is the crop's lower half, middle half of its width (a face crop
with the default margin holds the mouth there): ``(3, S/2, S/2)`` of an
``S``-pixel crop.
"""

from __future__ import annotations

import torch
from torch import nn


def mouth_region(frames: torch.Tensor) -> torch.Tensor:
    """Crops ``(..., 3, S, S)`` -> their mouth regions ``(..., 3, S/2, S/2)``."""
    s = frames.shape[-1]
    return frames[..., s // 2 : s // 2 * 2, s // 4 : s // 4 + s // 2]


class MouthCNN(nn.Module):
    """Mouth regions ``(B, T, 3, R, R)`` -> per-frame features ``(B, T, out_dim)``.

    Each frame is seen with its difference from the window's previous frame
    (the first frame's is zero): 6 channels, three stride-2 3x3 convolution
    blocks (batch norm, ReLU), average pooled over the region.

    Parameters
    ----------
    channels : int
        Channels of the last two blocks (the first has half).
    out_dim : int
        Features per frame (the back-end's width).
    """

    def __init__(self, channels: int, out_dim: int):
        super().__init__()
        blocks, c_in = [], 6
        for c in (channels // 2, channels, channels):
            blocks += [nn.Conv2d(c_in, c, 3, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU()]
            c_in = c
        self.body = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1))
        self.proj = nn.Linear(channels, out_dim)

    def forward(self, mouth: torch.Tensor) -> torch.Tensor:
        b, t = mouth.shape[:2]
        motion = torch.cat([torch.zeros_like(mouth[:, :1]), mouth[:, 1:] - mouth[:, :-1]], dim=1)
        x = torch.cat([mouth, motion], dim=2).flatten(0, 1)  # (B T, 6, R, R)
        return self.proj(self.body(x).flatten(1)).reshape(b, t, -1)
