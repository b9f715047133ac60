"""Valid media of every accepted container decodes whole; only data cut before its own index is truncated.

The corpus (tests/media_corpus.py) has tracks of unequal length both ways, tracks that start late,
negative start times, variable frame rate, a rotation, audio only and video only.
"""

from __future__ import annotations

import math

import av
import numpy as np
import pytest
from media_corpus import CASES, SIDE, Case, Track, write, write_corpus

from dfstream.engine.core.errors import MediaError
from dfstream.engine.media.blocks import MediaRequest, VideoSampling, iter_media
from dfstream.engine.media.decode import decode_audio
from dfstream.engine.media.video import decode_video

AV = MediaRequest(audio=True, video=VideoSampling(5.0, 320))
BLOCK = 2.0
AUDIO_SLACK = 0.07  # s: encoder priming and padding (AAC 1024 + 1024 samples at 44.1 kHz, Opus pre-skip)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    return folder, write_corpus(folder)


def _tracks(path):
    """Audio and video blocks of ``path`` through replay's decoding (iter_media), joined per track."""
    audio, video = [], []
    for block in iter_media(path, BLOCK, AV):
        if block.audio is not None:
            audio.append(block.audio)
        if block.video is not None:
            video.append(block.video)
    return audio, video


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_every_valid_file_decodes_whole_in_blocks_on_one_grid(corpus, case: Case):
    folder, _ = corpus
    audio, video = _tracks(folder / case.name)
    assert bool(audio) == (case.audio is not None) and bool(video) == (case.video is not None)
    if case.audio is not None:
        start, seconds = audio[0].t0, sum(b.duration for b in audio)
        expected = case.audio.start if case.fmt != "mp4" else max(0.0, case.audio.start)  # MP4: an edit list
        shift = 0.2 if case.fmt == "mpegts" else 0.0  # the TS muxer delays every track
        assert expected - 0.03 <= start <= expected + shift + 0.03, (start, case.audio)
        end = (
            case.video.start + case.video.seconds
            if case.fmt == "mp4" and case.audio.start < 0
            else case.audio.start + case.audio.seconds
        )  # the MP4 muxer's edit list ends the audio with the video
        assert abs((start + seconds) - (end + shift * (start > expected + 0.03))) < AUDIO_SLACK + shift, (
            start,
            seconds,
            case.audio,
        )
        for a, b in zip(audio, audio[1:]):  # gapless
            assert math.isclose(a.t0 + a.duration, b.t0, abs_tol=1e-9)
    if case.video is not None:
        frames = np.concatenate([b.frames for b in video])
        h, w = frames.shape[1:3]
        assert (h, w) == ((SIDE[0], SIDE[1]) if case.rotate % 180 else (SIDE[1], SIDE[0]))
        if case.rotate:  # the corner mark, top left in the coded picture, turned a quarter counter-clockwise
            mark = frames[0, ..., 0] > 200
            assert mark[-h // 4 :, : w // 4].all() and not mark[: h // 4].any()
        start, seconds = video[0].t0, sum(b.duration for b in video)
        shift = 0.2 if case.fmt == "mpegts" else 0.0
        assert case.video.start - 1e-6 <= start <= case.video.start + shift + 1e-6
        assert abs(seconds - case.video.seconds) <= 0.2 + 1e-6  # one grid step at 5 fps
    # every block holds what each track has in one interval [origin + k * BLOCK, origin + (k + 1) * BLOCK)
    blocks = list(iter_media(folder / case.name, BLOCK, AV))
    origin = min(b.t0 for b in blocks)
    for block in blocks:
        k = math.floor((block.t0 - origin) / BLOCK + 1e-9)
        for track in (block.audio, block.video):
            if track is not None:
                assert origin + k * BLOCK - 1e-6 <= track.t0 < origin + (k + 1) * BLOCK
                last = (
                    track.t0 + (len(track.samples) - 1) / 16000
                    if track is block.audio
                    else track.t0 + (len(track.frames) - 1) / track.fps
                )
                assert last < origin + (k + 1) * BLOCK


@pytest.mark.parametrize("case", [c for c in CASES if c.audio is not None], ids=lambda c: c.name)
def test_the_audio_path_alone_takes_every_file_with_audio(corpus, case):
    """An audio-only model: the container's duration (its longest track's) is no claim on the audio."""
    folder, _ = corpus
    assert decode_audio(folder / case.name).duration > 0.5 * case.audio.seconds


@pytest.mark.parametrize("case", [c for c in CASES if c.video is not None], ids=lambda c: c.name)
def test_the_video_path_alone_takes_every_file_with_video(corpus, case):
    folder, _ = corpus
    assert decode_video(folder / case.name, 5.0, 320).duration >= case.video.seconds - 0.2


@pytest.mark.parametrize(
    "name",
    [
        "webm_audio_shorter.webm",
        "mkv_audio_late.mkv",
        "mkv_video_shorter.mkv",
        "mkv_negative_start.mkv",
        "webm_video_only.webm",
    ],
)
def test_a_matroska_file_cut_short_is_truncated_on_both_paths(corpus, tmp_path, name):
    """Matroska declares only the file's duration: data that ends well before it is truncated."""
    folder, cases = corpus
    data = (folder / name).read_bytes()
    cut = tmp_path / name
    cut.write_bytes(data[: len(data) * 6 // 10])
    if cases[name].audio is not None:
        with pytest.raises(MediaError, match="truncated: the file declares"):
            decode_audio(cut)
    with pytest.raises(MediaError, match="truncated: the file declares"):
        decode_video(cut, 5.0, 320)


def test_an_mp4_cut_short_is_refused(tmp_path):
    """An MP4 with its index first (faststart) cut short: its video is truncated, its audio fails at the
    cut; an MP4 cut before its index (moov at the end) is no readable media."""
    source = write(Case("whole.mp4", "mp4", Track("aac", 3.0), Track("libx264", 3.0)), tmp_path)
    fast = tmp_path / "fast.mp4"
    with av.open(str(source)) as src, av.open(str(fast), "w", options={"movflags": "faststart"}) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    for path in (fast, source):
        data = path.read_bytes()
        path.write_bytes(data[: len(data) * 6 // 10])
    with pytest.raises(MediaError, match="truncated: the file declares 3.00 s"):
        decode_video(fast, 5.0, 320)
    with pytest.raises(MediaError, match="truncated"):
        decode_audio(fast)
    for decode in (decode_audio, lambda p: decode_video(p, 5.0, 320)):
        with pytest.raises(MediaError) as e:
            decode(source)
        assert e.value.reason == "not-media"
