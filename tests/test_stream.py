"""The streaming path: windows on a stream-time grid, chunked == whole-file."""

import copy

import numpy as np
import pytest
import torch
from helpers import assert_same_verdict, busy_detector, tiny_config

from dfstream.engine.core.config import replace
from dfstream.engine.media.decode import AudioBlock, decode_audio
from dfstream.engine.runtime.detector import Detector
from dfstream.engine.runtime.stream import StreamProcessor
from dfstream.engine.runtime.windows import WindowPlan
from dfstream.streams.replay import file_chunks


def detections(verdicts):
    return [(d.span.start, d.span.end, d.score) for v in verdicts for d in v.detections]


def test_plan_geometry():
    plan = WindowPlan.build(tiny_config().inference, 16000, 320, 400)
    assert (plan.hop, plan.context, plan.pad, plan.length, plan.first_kept) == (8000, 8000, 80, 16080, 25)
    assert plan.complete(15999, False) == 1 and plan.complete(16000, False) == 2
    assert plan.complete(16001, True) == 3
    assert plan.kept_frames(2, 16001) == 1 and plan.kept_frames(1, None) == 25
    audio = np.arange(1, 20001, dtype=np.float32)
    w0 = plan.cut(audio, 0, 0, None)
    assert w0[:8000].sum() == 0 and w0[8000] == 1 and w0[-81] == 8000 and w0[-80:].sum() == 0
    w2 = plan.cut(audio[4000:], 4000, 2, 20000)  # audio before 4000 was dropped; window 2 starts at 8000
    assert w2[0] == 8001 and w2[11999] == 20000 and w2[12000:].sum() == 0
    assert plan.keep_from(2) == 8000


def test_frame_step_must_divide_hop():
    from dfstream.engine.core.errors import ConfigError

    with pytest.raises(ConfigError, match="multiple of the frame step"):
        WindowPlan.build(replace(tiny_config(), "inference.hop_seconds", 0.51).inference, 16000, 320, 400)


@pytest.mark.parametrize("chunk_seconds", [0.3, 0.5, 1.7, 2.0])
def test_chunked_equals_whole_file(clip, chunk_seconds):
    det = busy_detector(clip)
    whole_block = decode_audio(clip)
    whole = StreamProcessor(det).feed("clip", 0, whole_block, final=True)
    processor = StreamProcessor(det)
    chunked = [processor.process(c) for c in file_chunks(clip, "clip", chunk_seconds)]
    assert len(chunked) == int(np.ceil(whole_block.duration / chunk_seconds))
    assert processor.states == {}  # the final chunk released the stream's state
    expected, got = detections([whole]), detections(chunked)
    assert len(expected) >= 3 and len(got) == len(expected)
    for (s0, e0, p0), (s1, e1, p1) in zip(expected, got):
        assert abs(s0 - s1) <= 0.02 and abs(e0 - e1) <= 0.02 and p0 == pytest.approx(p1, abs=1e-4)
    assert all(3.0 <= s < e <= whole_block.t0 + whole_block.duration + 1e-9 for s, e, _ in got)
    # the scored spans tile the stream without gaps or overlaps
    scored = [v.scored for v in chunked if v.scored is not None]
    assert scored[0].start == pytest.approx(3.0)
    assert all(a.end == pytest.approx(b.start) for a, b in zip(scored, scored[1:]))
    assert scored[-1].end == pytest.approx(whole_block.t0 + whole_block.duration)
    assert max(v.score for v in chunked if v.score is not None) == pytest.approx(whole.score, abs=1e-5)


def test_chunks_shorter_than_hop_get_no_score_until_a_window_completes():
    det = Detector.from_config(tiny_config())
    p = StreamProcessor(det)
    v0 = p.feed("s", 0, AudioBlock(np.zeros(4000, np.float32), 0.0))
    v1 = p.feed("s", 1, AudioBlock(np.zeros(4000, np.float32), 0.25))
    assert v0.score is None and v0.scored is None
    assert v1.scored.start == 0.0 and v1.scored.end == pytest.approx(0.5) and 0 <= v1.score <= 1


def test_gap_between_chunks_is_silence_on_the_timeline():
    det = Detector.from_config(tiny_config())
    p = StreamProcessor(det)
    p.feed("s", 0, AudioBlock(np.ones(8000, np.float32) * 0.1, 10.0))
    v = p.feed("s", 1, AudioBlock(np.ones(8000, np.float32) * 0.1, 11.0), final=True)
    assert v.scored.start == pytest.approx(10.5) and v.scored.end == pytest.approx(11.5)


def test_streams_are_independent():
    det = Detector.from_config(tiny_config())
    rng = np.random.default_rng(0)
    a, b = (rng.normal(0, 0.1, 16000).astype(np.float32) for _ in range(2))
    together = StreamProcessor(det)
    mixed = [
        together.feed("a", 0, AudioBlock(a[:8000], 0)),
        together.feed("b", 0, AudioBlock(b[:8000], 0)),
        together.feed("a", 1, AudioBlock(a[8000:], 0.5), True),
        together.feed("b", 1, AudioBlock(b[8000:], 0.5), True),
    ]
    alone = StreamProcessor(det)
    only_a = [alone.feed("a", 0, AudioBlock(a[:8000], 0)), alone.feed("a", 1, AudioBlock(a[8000:], 0.5), True)]
    assert [mixed[0].score, mixed[2].score] == pytest.approx([only_a[0].score, only_a[1].score], abs=1e-6)


@pytest.mark.parametrize("n", [0, 1, 100, 319])
def test_silence_and_very_short_audio_give_a_verdict_without_detections(n):
    det = Detector.from_config(tiny_config())
    v = StreamProcessor(det).feed("s", 0, AudioBlock(np.zeros(n, np.float32), 0.0), final=True)
    assert v.detections == () and v.final
    assert (v.score is None) == (n == 0)


def test_bfloat16_inference_stays_close_to_float32(clip):
    fp32 = busy_detector(clip)
    bf16 = Detector(
        replace(fp32.config, "inference.dtype", "bfloat16"), copy.deepcopy(fp32.model), fp32.model_id, None
    )  # converted in place: a copy
    audio = decode_audio(clip).samples
    a, b = fp32.score_stream(audio), bf16.score_stream(audio)
    assert b.probs.dtype == np.float32 and a.probs.shape == b.probs.shape
    assert np.abs(a.probs - b.probs).max() < 0.05  # documented tolerance for bf16 weights (configs/default.yaml)
    branch = bf16.model["audio"]
    assert {p.dtype for p in branch.encoder.parameters()} == {torch.bfloat16}
    trained = [p for n, p in bf16.model.named_parameters() if ".encoder." not in f".{n}"]
    assert trained and {p.dtype for p in trained} == {torch.float32}  # back-ends and fusion stay float32


def test_feed_many_equals_feeding_one_by_one(clip):
    det = busy_detector(clip)
    audio = decode_audio(clip).samples
    a, b = audio[:40000], audio[40000:90000]
    items = [
        ("a", 0, AudioBlock(a[:16000], 0.0), False),
        ("b", 0, AudioBlock(b[:8000], 1.0), False),
        ("a", 1, AudioBlock(a[16000:], 1.0), True),
        ("b", 1, AudioBlock(b[8000:], 1.5), True),
    ]
    batched = StreamProcessor(det).feed_many(items)
    single = StreamProcessor(det)
    one_by_one = [single.feed(*item) for item in items]
    for x, y in zip(batched, one_by_one, strict=True):
        assert_same_verdict(x, y)
    assert sum(len(v.detections) for v in batched) > 0


def test_state_moves_between_processors(clip):
    """A stream exported after chunk k and imported elsewhere goes on exactly as if never moved.

    Bit for bit with carried feature frames off (a moved stream recomputes them: equal up to float
    rounding, tested in test_frame_cache.py)."""
    from dfstream.engine.runtime.stream_state import StateError

    det = busy_detector(clip)

    def fresh():
        return StreamProcessor(det, reuse_frames=False)

    chunks = list(file_chunks(clip, "s", 0.7))
    whole = [fresh().process(c) for c in chunks]  # fresh processor per chunk would lose state
    one = fresh()
    reference = [one.process(c) for c in chunks]
    assert detections(reference) and whole != reference
    for k in (1, 4, len(chunks) - 2):
        first = fresh()
        moved = [first.process(c) for c in chunks[:k]]
        data = first.export_state("s", {"note": k})
        second = fresh()
        assert second.import_state("s", data) == {"note": k}
        moved += [second.process(c) for c in chunks[k:]]
        assert [v.to_dict() | {"latency_ms": 0} for v in moved] == [v.to_dict() | {"latency_ms": 0} for v in reference]
        assert detections(moved) == detections(reference)
    other = Detector.from_config(replace(tiny_config(), "inference.hop_seconds", 1.0))
    with pytest.raises(StateError, match="geometry"):
        StreamProcessor(other).import_state("s", data)
    with pytest.raises(StateError):
        StreamProcessor(det).import_state("s", b"\x00" * 20)
