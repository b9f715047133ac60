"""Cut a video file into self-contained container segments, without re-encoding.

``dfstream produce`` publishes a file with video as a live encoder would:
segments that each start at a video keyframe and last at least
``chunk_seconds``, every one a complete Matroska file (its own header, so a
consumer decodes it alone), with the compressed packets copied unchanged.
Matroska carries every codec dfstream decodes (H.264, VP8/VP9, AAC, Opus, ...).
Each segment keeps the source's timestamps (the muxer is told not to shift
negative ones, which AAC priming produces), so chunks carry no ``dfs-t0``:
their own container times place audio and video on the stream's timeline.
Imports no torch.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import av

from dfstream.engine.core.errors import MediaError
from dfstream.engine.core.types import Chunk
from dfstream.engine.media.blocks import with_final
from dfstream.engine.media.decode import demux, open_media
from dfstream.engine.media.video import video_stream

CONTENT_TYPE = "video/x-matroska"


def _seconds(packet) -> float | None:
    t = packet.pts if packet.pts is not None else packet.dts
    return None if t is None or packet.time_base is None else float(t * packet.time_base)


class _Segment:
    """One Matroska file being written: the streams of the source, copied."""

    def __init__(self, sources):
        self.buffer = io.BytesIO()
        # keep the source's timestamps (AAC priming is negative): a segment's frames stay on the stream's time grid
        self.container = av.open(self.buffer, mode="w", format="matroska", options={"avoid_negative_ts": "disabled"})
        self.streams = {s.index: self.container.add_stream_from_template(s) for s in sources}
        self.t0: float | None = None
        self.end = 0.0

    def mux(self, packet, t: float | None) -> None:
        if t is not None:
            self.t0 = t if self.t0 is None else min(self.t0, t)
            duration = float(packet.duration * packet.time_base) if packet.duration and packet.time_base else 0.0
            self.end = max(self.end, t + duration)
        packet.stream = self.streams[packet.stream_index]
        self.container.mux(packet)

    def chunk(self, stream_id: str, seq: int, final: bool = False) -> tuple[Chunk, float, float]:
        """Close the file: ``(chunk, start, seconds)``."""
        self.container.close()
        start = self.t0 or 0.0
        return Chunk(stream_id, seq, self.buffer.getvalue(), CONTENT_TYPE, None, final), start, self.end - start


def video_chunks(path: Path, stream_id: str, chunk_seconds: float) -> Iterator[tuple[Chunk, float, float]]:
    """Segments of ``path``: ``(chunk, start, seconds)``, ``video/x-matroska`` chunks, the last
    marked final; ``start`` is the stream time of the segment's earliest packet, ``seconds``
    the media time its packets cover.

    A segment closes at the first video keyframe at least ``chunk_seconds`` after
    its start, so segments are as long as the source's keyframe interval allows.
    Raises MediaError for a file without video or that cannot be read.
    """
    with open_media(path) as source:
        video = video_stream(source)
        if video is None:
            raise MediaError("no video stream", "no-video")
        seq = -1
        try:
            for seq, (segment, final) in enumerate(with_final(_segments(source, video, chunk_seconds))):
                yield segment.chunk(stream_id, seq, final)
        except av.error.FFmpegError as e:
            raise MediaError(f"cannot cut {path} into segments ({e.__class__.__name__}: {e})", "corrupt") from None
        if seq < 0:
            raise MediaError("the video stream holds no packets", "no-video")


def _segments(source, video, chunk_seconds: float) -> Iterator[_Segment]:
    """The segments of ``source`` (its ``video`` stream and first audio stream), each still open."""
    sources = [video] + list(source.streams.audio[:1])
    segment = None
    for packet in demux(source, sources):
        if packet.size == 0:
            continue  # a demuxer's flush packet
        t = _seconds(packet)
        if segment is None or (
            packet.stream_index == video.index
            and packet.is_keyframe
            and segment.t0 is not None
            and t is not None
            and t - segment.t0 >= chunk_seconds
        ):
            if segment is not None:
                yield segment
            segment = _Segment(sources)
        segment.mux(packet, t)
    if segment is not None:
        yield segment
