"""Video files cut into self-contained Matroska segments for producers (streams/segment.py)."""

import numpy as np
import pytest
from helpers import TINY_AV_MEDIA, encode, tiny_av_config

from dfstream.app.toyvideo import make_toy_av_set
from dfstream.engine.core.errors import MediaError
from dfstream.engine.media.blocks import decode_media
from dfstream.engine.media.video import decode_video
from dfstream.engine.runtime.detector import Detector
from dfstream.engine.runtime.stream import StreamProcessor
from dfstream.streams.produce import media_chunks
from dfstream.streams.segment import CONTENT_TYPE, video_chunks


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    root = tmp_path_factory.mktemp("seg")
    make_toy_av_set(root, files=1, seed=2, min_seconds=4.2, max_seconds=4.4, size=(160, 120))
    return next(root.glob("*/*.mp4"))


def test_segments_start_at_keyframes_and_decode_alone(clip):
    segments = list(video_chunks(clip, "cam", 1.0))
    chunks, starts = [c for c, _, _ in segments], [t for _, t, _ in segments]
    assert len(chunks) == 5 and [c.seq for c in chunks] == list(range(5))  # 1 s keyframe interval, 4.3 s
    assert [c.final for c in chunks] == [False] * 4 + [True] and all(c.content_type == CONTENT_TYPE for c in chunks)
    assert all(a < b for a, b in zip(starts, starts[1:])) and all(c.t0 is None for c in chunks)
    assert 4.2 <= sum(seconds for _, _, seconds in segments) <= 4.4 + 0.2  # plus AAC priming and padding
    config = tiny_av_config()
    for chunk, start in zip(chunks, starts):  # the container's own times, the source's (no dfs-t0 needed)
        block = decode_media(chunk, TINY_AV_MEDIA, config.limits)
        assert block.video is not None and block.audio is not None and len(block.video.frames) >= 1
        assert block.t0 == pytest.approx(start, abs=1e-3)


def test_segments_hold_exactly_the_files_frames_and_stream_through(clip):
    config = tiny_av_config()
    segments = list(video_chunks(clip, "cam", 1.0))
    chunks = [c for c, _, _ in segments]
    whole = decode_video(clip, config.branch("visual").fps, config.branch("visual").decode_side)
    parts = [decode_video(c.payload, config.branch("visual").fps, config.branch("visual").decode_side) for c in chunks]
    # packets are copied, not re-encoded: the same frames on the same stream-time grid
    assert [round(p.t0 * 10) for p in parts] == [round(t * 10 + 0.5) for _, t, _ in segments]
    assert np.array_equal(np.concatenate([p.frames for p in parts]), whole.frames)
    live = StreamProcessor(Detector.from_config(config))
    verdicts = [live.process(c) for c in chunks]
    scored = [v.scored for v in verdicts if v.scored is not None]
    assert all(a.end == pytest.approx(b.start) for a, b in zip(scored, scored[1:]))
    assert all(np.any(v.trace.branches["visual"] > 0) for v in verdicts if v.trace is not None)
    assert live.states == {} and verdicts[-1].final


def test_producer_sends_audio_files_as_pcm_and_video_files_as_segments(tmp_path, clip):
    wav = tmp_path / "a.wav"
    encode(wav, "wav", "pcm_s16le", 16000, 1, np.zeros(16000, np.float32))
    pcm = list(media_chunks(wav, "a", 0.5))
    assert len(pcm) == 2 and pcm[1][1:] == (0.5, 0.5) and pcm[0][0].content_type.startswith("audio/pcm")
    assert list(media_chunks(clip, "v", 2.0))[0][0].content_type == CONTENT_TYPE
    with pytest.raises(MediaError, match="no video"):
        list(video_chunks(wav, "a", 1.0))
