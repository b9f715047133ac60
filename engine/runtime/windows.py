"""Sliding-window geometry on a grid of stream time.

Window ``k`` scores frames ``[k*H, (k+1)*H)`` (``H`` = frames per hop) and sees
the audio ``[k*hop - context, (k+1)*hop)`` followed by ``receptive - frame``
samples of zeros, so that its last frame is complete without waiting for the
next chunk. Audio before the stream start is zeros. Every window has the same
length, and its content depends only on stream time — never on where chunks
were cut — so a stream scored chunk by chunk and the same stream scored whole
run identical windows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dfstream.engine.core.errors import ConfigError
from dfstream.engine.runtime.sections import InferenceConfig


@dataclass(frozen=True)
class WindowPlan:
    """Geometry, all in samples of the branch's input rate.

    Attributes
    ----------
    frame : int
        Samples per output frame.
    hop_frames : int
        Frames scored per window.
    context : int
        Samples of left context per window.
    pad : int
        Zero samples appended so the last frame's receptive field is complete.
    """

    frame: int
    hop_frames: int
    context: int
    pad: int

    @classmethod
    def build(cls, inference: InferenceConfig, sample_rate: int, frame: int, receptive: int) -> WindowPlan:
        """From config seconds; hop and context must be whole frames."""

        def frames(seconds: float, name: str) -> int:
            n = seconds * sample_rate / frame
            if abs(n - round(n)) > 1e-6:
                raise ConfigError(
                    f"inference.{name}={seconds} must be a multiple of the frame step {frame / sample_rate} s"
                )
            return round(n)

        return cls(
            frame,
            frames(inference.hop_seconds, "hop_seconds"),
            frames(inference.context_seconds, "context_seconds") * frame,
            receptive - frame,
        )

    @property
    def hop(self) -> int:
        return self.hop_frames * self.frame

    @property
    def length(self) -> int:
        """Samples in every window."""
        return self.context + self.hop + self.pad

    @property
    def first_kept(self) -> int:
        """Index, in the encoder's output frames, of the first frame a window scores."""
        return self.context // self.frame

    def complete(self, received: int, final: bool) -> int:
        """Number of windows whose audio is all there after ``received`` samples."""
        if final:
            return math.ceil(received / self.hop)
        return received // self.hop

    def kept_frames(self, k: int, total: int | None) -> int:
        """Frames window ``k`` scores: a full hop, or up to the stream's ``total`` samples."""
        if total is None:
            return self.hop_frames
        return max(0, min(self.hop_frames, math.ceil((total - k * self.hop) / self.frame)))

    def cut(self, audio: np.ndarray, audio_start: int, k: int, total: int | None) -> np.ndarray:
        """Samples of window ``k`` from ``audio``, which holds stream samples from ``audio_start``.

        ``total`` (samples in the whole stream, known at its end) bounds the real audio.
        Any array of units works (video frames ``(n, S, S, 3)``, masks); outside
        the data the window holds zeros.
        """
        lo, hi = k * self.hop - self.context, (k + 1) * self.hop
        if total is not None:
            hi = min(hi, total)
        out = np.zeros((self.length,) + audio.shape[1:], audio.dtype)
        a, b = max(lo, audio_start), min(hi, audio_start + len(audio))
        if b > a:
            out[a - lo : b - lo] = audio[a - audio_start : b - audio_start]
        return out

    def keep_from(self, k: int) -> int:
        """First stream sample that window ``k`` and later ones still need."""
        return max(0, k * self.hop - self.context)
