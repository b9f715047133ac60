"""Feature-extractor frames carried between a stream's windows: the same verdicts, less audio encoded."""

import numpy as np
import pytest
from helpers import assert_same_verdict, busy_detector, tiny_config

from dfstream.engine.media.decode import AudioBlock, decode_audio
from dfstream.engine.runtime.detector import Detector
from dfstream.engine.runtime.stream import StreamProcessor
from dfstream.streams.replay import file_chunks


def counting(processor):
    """Record the samples each window row gives the audio branch's feature extractor (windows scored
    from scratch go through it too: the branch is shared, so copy the list before scoring any)."""
    branch, seen = processor.detector.branches["audio"], []
    real = branch.frontend

    def frontend(wav):
        seen.extend([wav.shape[-1]] * len(wav))
        return real(wav)

    branch.frontend = frontend
    return seen


@pytest.mark.parametrize("chunk_seconds", [0.3, 0.5, 1.7])
def test_carried_frames_give_the_verdicts_of_windows_scored_from_scratch(clip, chunk_seconds):
    det = busy_detector(clip)
    assert det.cacheable == ("audio",)
    cached, scratch = StreamProcessor(det), StreamProcessor(det, reuse_frames=False)
    chunks = list(file_chunks(clip, "s", chunk_seconds))
    seen = counting(cached)
    got = [cached.process(c) for c in chunks]
    seen = list(seen)  # the branch's own windows from scratch go through frontend too, from here on
    expected = [scratch.process(c) for c in chunks]
    for a, b in zip(got, expected, strict=True):
        assert_same_verdict(a, b)
    assert any(v.detections for v in got)
    plan = det.plan
    # every window encodes only its hop (+ one frame of context); the zeros before the stream's
    # start, the first window's context, once
    assert sorted(seen) == [plan.context] + [plan.length - plan.context + plan.frame] * (len(seen) - 1)
    assert len(cached.frames["audio"]) == 0  # the final chunk forgets the stream


def test_interleaved_streams_in_one_batch_and_a_stream_that_restarts(clip):
    det = busy_detector(clip)
    audio = decode_audio(clip).samples
    hop = det.plan.hop
    items = [
        (sid, k, AudioBlock(audio[k * hop : (k + 1) * hop], k * hop / 16000), False)
        for k in range(4)
        for sid in ("a", "b")
    ]
    cached, scratch = StreamProcessor(det), StreamProcessor(det, reuse_frames=False)
    seen = counting(cached)
    got = cached.feed_many(items)  # four windows of each of two streams in one batch
    seen = list(seen)
    expected = [scratch.feed(*item) for item in items]
    for a, b in zip(got, expected, strict=True):
        assert_same_verdict(a, b)
    plan = det.plan  # both streams' window 0 share the frames of the zeros before their start
    assert sorted(seen) == [plan.context] + [plan.length - plan.context + plan.frame] * 8
    # a state moved to another processor starts without carried frames (window 4: all its
    # audio encoded) and still agrees
    moved = StreamProcessor(det)
    moved.import_state("a", cached.export_state("a"))
    seen = counting(moved)
    more = ("a", 4, AudioBlock(audio[4 * hop : 5 * hop], 4 * hop / 16000), True)
    assert_same_verdict(moved.feed(*more), scratch.feed(*more))
    assert seen[0] == plan.length
    cached.close("b")
    assert len(cached.frames["audio"]) == 1  # "a" stays until it ends here


def test_per_window_normalisation_shares_nothing():
    det = Detector.from_config(tiny_config(audio={"encoder": {"feature_norm": "group"}}))
    assert det.cacheable == () and StreamProcessor(det).frames == {}
    no_context = Detector.from_config(tiny_config(inference={"context_seconds": 0.0}))
    assert no_context.cacheable == ()


def test_windows_the_gate_turns_away_still_carry_their_frames(clip):
    det = busy_detector(clip)

    def gate(hops):  # windows 1, 4, 7, ... of the stream are "not speech"
        n = np.arange(gate.seen, gate.seen + len(hops))
        gate.seen += len(hops)
        return n % 3 != 1

    gate.seen = 0
    cached, scratch = (
        StreamProcessor(det, gate=gate, gate_branch="audio"),
        StreamProcessor(det, gate=gate, gate_branch="audio", reuse_frames=False),
    )
    seen = counting(cached)
    chunks = list(file_chunks(clip, "s", 0.5))  # one window per chunk
    got = [cached.process(c) for c in chunks]
    seen = list(seen)  # the scratch windows below go through frontend too
    windows, gate.seen = gate.seen, 0
    expected = [scratch.process(c) for c in chunks]
    for a, b in zip(got, expected, strict=True):
        assert_same_verdict(a, b)
    assert windows >= 6 and any(v.speech is False for v in got)
    plan = det.plan
    assert seen.count(plan.length) == 0 and seen.count(plan.context) == 1  # window 0: the zeros' frames once


def test_audio_visual_streams_carry_both_branches_frames(tmp_path):
    """Video frames are encoded once too (the ViT sees each frame alone); a chunk without video ends
    the visual chain instead of encoding its black filler."""
    from helpers import crops, prepared, tiny_av_config

    det = Detector.from_config(tiny_av_config())
    assert det.cacheable == ("audio", "visual")
    rng = np.random.default_rng(4)
    blocks = []
    for k in range(8):  # 0.5 s chunks: audio always, video in all but chunk 5
        audio = AudioBlock(rng.normal(0, 0.1, 8000).astype(np.float32), k * 0.5)
        video = (
            None if k == 5 else crops(rng.integers(0, 255, (5, 32, 32, 3), np.uint8), np.arange(5) != 2, k * 0.5, 10.0)
        )
        blocks.append(prepared(audio, video))
    cached, scratch = StreamProcessor(det), StreamProcessor(det, reuse_frames=False)
    vit, frames_seen = det.branches["visual"], []
    real = vit.encode
    vit.encode = lambda x: frames_seen.append(x.shape[0] * x.shape[1]) or real(x)
    got = [cached.feed("av", k, b, k == 7) for k, b in enumerate(blocks)]
    carried = sum(frames_seen)
    frames_seen.clear()
    expected = [scratch.feed("av", k, b, k == 7) for k, b in enumerate(blocks)]
    for a, b in zip(got, expected, strict=True):
        assert_same_verdict(a, b)
    plan = det.plans["visual"]
    whole, new = plan.length, plan.hop_frames + 1
    assert sum(frames_seen) == 7 * whole  # from scratch: every window with video, all its frames
    # carried: window 6 whole (it follows the chunk without video), the others their new frames,
    # and the black frames before the stream's start (window 0's context) once
    assert carried == whole + 6 * new + plan.context
