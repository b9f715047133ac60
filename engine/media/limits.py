"""The media layer's config section, ``limits``: what untrusted media may make the decoders do."""

from __future__ import annotations

from dataclasses import dataclass

from dfstream.engine.core.config import Section, check


@dataclass(frozen=True)
class LimitsConfig(Section):
    """Bounds on what untrusted media may make the decoder do (:mod:`dfstream.engine.media.decode`).

    Every violation is a :class:`~dfstream.engine.core.errors.MediaError` with its own reason
    (in brackets). Each applies to chunks (bytes payloads from Kafka or a topic
    replay); files replayed from disk are checked for rate, channels and
    gaps but may be as long as they are, decoded block by block.
    """

    max_chunk_seconds: float = 600.0  # decoded audio per chunk [too-long]
    decode_timeout_seconds: float = 30.0  # wall time decoding one chunk, checked between frames [decode-timeout]
    max_gap_seconds: float = 600.0  # a timestamp jump filled with silence, files included [timestamp-jump]
    max_channels: int = 64  # [too-many-channels]
    min_sample_rate: int = 1000  # native rates outside [min, max] Hz [bad-rate]
    max_sample_rate: int = 384000
    max_chunk_frames: int = 3000  # sampled video frames per chunk [too-many-frames]
    max_frame_pixels: int = 8192 * 8192  # a decoded video frame's width x height [frame-too-large]

    def validate(self) -> None:
        check(
            [
                (
                    self.max_chunk_seconds > 0
                    and self.decode_timeout_seconds > 0
                    and self.max_gap_seconds >= 0
                    and self.max_channels >= 1,
                    "limits.max_chunk_seconds and decode_timeout_seconds must be > 0, max_gap_seconds >= 0, "
                    "max_channels >= 1",
                ),
                (
                    0 < self.min_sample_rate <= self.max_sample_rate,
                    "limits needs 0 < min_sample_rate <= max_sample_rate",
                ),
                (
                    self.max_chunk_frames >= 1 and self.max_frame_pixels >= 1,
                    "limits.max_chunk_frames and max_frame_pixels must be >= 1",
                ),
            ]
        )


LIMITS = LimitsConfig()
"""The default bounds (``configs/default.yaml`` section ``limits``)."""
