"""The visual branch's config section, ``visual``."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

from dfstream.engine.core.config import Section, check


@dataclass(frozen=True)
class ViTConfig(Section):
    """The vision transformer (``transformers`` ``ViTModel``) of the visual branch.

    With ``pretrained`` set to a local model directory or a hub id
    (``org/name[@revision]``, looked up in the Hugging Face cache; ``dfstream fetch-encoders``
    fills it), the weights load from there and the size fields are ignored; otherwise the
    encoder is built from these sizes (random init).
    """

    pretrained: str | None = None
    image_size: int = 112
    patch_size: int = 16
    hidden_size: int = 192
    num_layers: int = 4
    num_heads: int = 3
    intermediate_size: int = 768
    seed: int = 0


@dataclass(frozen=True)
class VisualBranchConfig(Section):
    """Visual branch: sampled frames -> face crops -> ViT -> temporal back-end.

    Frames are sampled at ``fps`` on a grid of stream time and decoded scaled
    so that their longer side is at most ``decode_side`` pixels (the face
    detector's input). ``crop`` ``face`` scores a crop of the tracked largest
    face, ``frame`` the whole frame; ``face_detector`` names an entry of
    ``dfstream.modalities.visual.faces.FACE_DETECTORS`` (``haar``, OpenCV's cascade,
    needs nothing; ``blazeface``, MediaPipe's detector, finds far more faces
    and needs ``dfstream fetch-face-model`` once). ``detect_every`` > 1 runs the
    detector on every n-th sampled frame while a face is tracked (the box is
    kept in between). ``mouth_channels`` > 0 adds :mod:`dfstream.modalities.visual.mouth`:
    the crop's mouth region and its motion through a small CNN with that many
    channels, summed into the back-end's input; 0 leaves the ViT alone.
    """

    encoder: ViTConfig = field(default_factory=ViTConfig)
    fps: float = 5.0
    decode_side: int = 320
    crop: str = "face"
    face_detector: str = "haar"
    face_margin: float = 0.25
    detect_every: int = 1
    mouth_channels: int = 32
    backend_dim: int = 128
    backend_layers: int = 1
    dropout: float = 0.1

    def validate(self) -> None:
        check(
            [
                (
                    self.fps > 0 and abs(0.02 * self.fps * round(1 / (0.02 * self.fps)) - 1) < 1e-9,
                    "visual.fps must divide 50 (frames on the 20 ms audio grid: 1, 2, 2.5, 5, 10, 12.5, 25 or 50)",
                ),
                (self.crop in ("face", "frame"), "visual.crop must be 'face' or 'frame'"),
                (
                    self.mouth_channels == 0 or self.mouth_channels >= 2,
                    "visual.mouth_channels must be 0 (no mouth path) or >= 2",
                ),
                (
                    self.decode_side >= 16 and self.face_margin >= 0 and self.detect_every >= 1,
                    "visual.decode_side must be >= 16, visual.face_margin >= 0 and visual.detect_every >= 1",
                ),
                (
                    self.encoder.image_size % self.encoder.patch_size == 0,
                    "visual.encoder.image_size must be a multiple of patch_size",
                ),
            ]
        )

    ADDED_LATER: typing.ClassVar[dict] = {"mouth_channels": 0}
    """Keys added after checkpoints were first written, with the value that means "as before"."""
