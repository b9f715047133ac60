"""Audio-visual streaming: fusion with a modality missing, span modality, A/V alignment, chunk invariance."""

import numpy as np
import pytest
import torch
from helpers import TINY_AV_MEDIA, assert_same_verdict, crops, prepared, tiny_av_config

from dfstream.app.toyvideo import make_toy_av_set
from dfstream.engine.core.errors import MediaError
from dfstream.engine.core.types import Chunk
from dfstream.engine.media.blocks import decode_media
from dfstream.engine.media.decode import AudioBlock
from dfstream.engine.runtime.detector import Detector
from dfstream.engine.runtime.stream import StreamProcessor
from dfstream.fusion.config import LocalizerConfig
from dfstream.fusion.fusion import ABSENT_LOGIT, DynamicFusion, span_modality
from dfstream.fusion.localizer import Localizer
from dfstream.streams.replay import file_blocks


@pytest.fixture(scope="module")
def av_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("av")
    meta = make_toy_av_set(root, files=4, seed=3, min_seconds=2.0, max_seconds=2.6, size=(160, 120))
    return root, meta


@pytest.fixture(scope="module")
def detector():
    return Detector.from_config(tiny_av_config())


@pytest.mark.parametrize("rule", ["any", "weighted"])
def test_fusion_with_one_modality_missing_is_the_other_branch_exactly(rule):
    torch.manual_seed(0)
    fusion = DynamicFusion({"audio": 4, "visual": 3}, rule=rule)
    b, f = 2, 5
    logits = {"audio": torch.randn(b, f), "visual": torch.randn(b, f)}
    embs = {"audio": torch.randn(b, f, 4), "visual": torch.randn(b, f, 3)}
    yes, no = torch.ones(b, f, dtype=torch.bool), torch.zeros(b, f, dtype=torch.bool)
    fused, w = fusion(logits, embs, {"audio": yes, "visual": no})
    same = torch.equal if rule == "weighted" else lambda a, b: torch.allclose(a, b, atol=1e-5)
    assert same(fused, logits["audio"]) and torch.equal(w[..., 1], torch.zeros(b, f))
    fused, _ = fusion(logits, embs, {"audio": no, "visual": yes})
    assert same(fused, logits["visual"])
    fused, w = fusion(logits, embs, {"audio": no, "visual": no})
    assert torch.all(fused == ABSENT_LOGIT) and torch.all(w == 0)
    fused, w = fusion(logits, embs, {"audio": yes, "visual": yes})
    assert torch.allclose(w.sum(-1), torch.ones(b, f))
    lo, hi = torch.minimum(logits["audio"], logits["visual"]), torch.maximum(logits["audio"], logits["visual"])
    if rule == "weighted":  # a convex combination
        assert torch.all(fused >= lo - 1e-6) and torch.all(fused <= hi + 1e-6)
    else:  # noisy-OR: forged unless both are real, so at least as likely as either alone
        pa, pv = torch.sigmoid(logits["audio"].double()), torch.sigmoid(logits["visual"].double())
        assert torch.allclose(torch.sigmoid(fused.double()), 1 - (1 - pa) * (1 - pv), atol=1e-6)
        assert torch.all(fused >= hi - 1e-6)
        assert sum(p.numel() for p in fusion.parameters()) == 0


def test_noisy_or_fusion_is_stable_at_the_extremes_and_in_bfloat16():
    fusion = DynamicFusion({"audio": 2, "visual": 2}, rule="any")
    la = torch.tensor([[-60.0, -60.0, 40.0, 0.0]])
    lv = torch.tensor([[-60.0, 40.0, -60.0, 0.0]])
    yes = torch.ones(1, 4, dtype=torch.bool)
    fused, w = fusion({"audio": la, "visual": lv}, {}, {"audio": yes, "visual": yes})
    assert torch.isfinite(fused).all() and torch.isfinite(w).all()
    assert abs(float(fused[0, 0]) - (-60 + np.log(2))) < 1e-3  # two tiny chances add up
    assert torch.allclose(fused[0, 1:3], torch.tensor([40.0, 40.0]))
    assert abs(float(fused[0, 3]) - np.log(3)) < 1e-5  # 1 - 0.5 * 0.5 = 0.75
    half, _ = fusion({"audio": la.bfloat16(), "visual": lv.bfloat16()}, {}, {"audio": yes, "visual": yes})
    assert half.dtype == torch.bfloat16 and torch.allclose(half.float(), fused, atol=0.3)
    with pytest.raises(ValueError, match="rule"):
        DynamicFusion({"audio": 2}, rule="mean")


def test_span_modality_rule():
    av = {"audio": "audio", "visual": "visual"}
    assert span_modality({"audio": 0.9, "visual": 0.2}, av, 0.5) == "audio"
    assert span_modality({"audio": 0.1, "visual": 0.7}, av, 0.5) == "visual"
    assert span_modality({"audio": 0.6, "visual": 0.5}, av, 0.5) == "audio-visual"
    assert span_modality({"audio": 0.3, "visual": 0.4}, av, 0.5) == "visual"  # neither: the stronger
    assert span_modality({"audio": 0.1}, av, 0.5) == "audio"  # one-branch model
    # branches are named freely; their modalities decide: two audio branches make audio spans
    two = {"wavlm": "audio", "energy": "audio", "faces": "visual"}
    assert span_modality({"wavlm": 0.9, "energy": 0.8, "faces": 0.1}, two, 0.5) == "audio"
    assert span_modality({"wavlm": 0.9, "energy": 0.1, "faces": 0.8}, two, 0.5) == "audio-visual"


def test_localizer_assigns_modality_from_branch_curves():
    params = LocalizerConfig(0.5, 0.3, 0.0, 0.0)
    fused = np.array([0.1, 0.9, 0.9, 0.1, 0.1, 0.8, 0.8, 0.1, 0.9, 0.9, 0.1])
    audio = np.array([0.0, 0.9, 0.8, 0.0, 0.0, 0.1, 0.2, 0.0, 0.7, 0.6, 0.0])
    visual = np.array([0.0, 0.1, 0.2, 0.0, 0.0, 0.9, 0.7, 0.0, 0.6, 0.9, 0.0])
    loc = Localizer(params, 0.1, 0.0, {"audio": "audio", "visual": "visual"})
    found = loc.push(fused[:6], None, {"audio": audio[:6], "visual": visual[:6]})
    found += loc.push(fused[6:], None, {"audio": audio[6:], "visual": visual[6:]})
    assert [(round(d.span.start, 6), round(d.span.end, 6), d.modality) for d in found] == [
        (0.1, 0.3, "audio"),
        (0.5, 0.7, "visual"),
        (0.8, 1.0, "audio-visual"),
    ]


def frames_block(n, t0, fps, value=100, faces=True):
    images = np.full((n, 32, 32, 3), value, np.uint8)
    return crops(images, np.full(n, faces, bool), t0, fps)


def test_audio_and_video_align_on_stream_time_not_on_counts(detector):
    p = StreamProcessor(detector)
    audio = AudioBlock(np.zeros(16000, np.float32), 0.0)  # 0-1 s
    video = frames_block(5, 0.5, 10.0)  # 0.5-1.0 s: starts late
    v = p.feed("s", 0, prepared(audio, video))
    visual = v.trace.branches["visual"]  # 20 ms steps over 0-1 s
    assert len(visual) == 50 and np.all(visual[:25] == 0) and np.all(visual[25:] > 0)
    # the next video frames come at 1.3 s: the gap is absent, not shifted onto 1.0 s
    v = p.feed("s", 1, prepared(AudioBlock(np.zeros(8000, np.float32), 1.0), frames_block(2, 1.3, 10.0)))
    visual = v.trace.branches["visual"]
    assert v.scored.start == pytest.approx(1.0) and len(visual) == 25
    assert np.all(visual[:15] == 0) and np.all(visual[15:] > 0)
    assert p.states["s"].tracks["visual"].received == 15


def test_an_audio_file_under_an_av_model_never_runs_the_visual_branch(detector, monkeypatch):
    calls = []
    branch = detector.branches["visual"]
    monkeypatch.setattr(branch, "forward", lambda x: calls.append(1) or None)
    p = StreamProcessor(detector)
    v = p.feed("a", 0, AudioBlock(np.random.default_rng(0).normal(0, 0.1, 24000).astype(np.float32), 0.0), True)
    assert calls == [] and v.score is not None
    assert np.all(v.trace.branches["visual"] == 0) and np.all(v.trace.branches["audio"] > 0)
    # one modality present: the fused curve is the audio branch's own
    assert np.allclose(v.trace.fused, v.trace.branches["audio"], atol=1e-6)


def test_a_video_without_audio_runs_the_visual_branch_alone(detector, monkeypatch):
    calls = []
    branch = detector.branches["audio"]
    monkeypatch.setattr(branch, "head_forward", lambda x: calls.append(1) or None)  # ends every audio path
    p = StreamProcessor(detector)
    v = p.feed("v", 0, prepared(None, frames_block(15, 0.0, 10.0)), True)
    assert calls == [] and v.scored.duration == pytest.approx(1.5)
    assert np.all(v.trace.branches["audio"] == 0)
    assert np.allclose(v.trace.fused, v.trace.branches["visual"], atol=1e-6)


def test_frames_without_a_face_count_as_absent_visual_evidence(detector):
    p = StreamProcessor(detector)
    faces = np.array([True] * 5 + [False] * 5)
    block = crops(np.full((10, 32, 32, 3), 90, np.uint8), faces, 0.0, 10.0)
    v = p.feed("f", 0, prepared(None, block), True)
    per_frame = v.trace.branches["visual"].reshape(10, 5)  # a 10 fps frame covers five 20 ms steps
    assert np.all(per_frame[:5] > 0) and np.all(per_frame[5:] == 0) and np.all(v.trace.fused[25:] == 0)


@pytest.mark.parametrize("chunk_seconds", [0.5, 1.0])
def test_av_file_chunked_equals_whole(av_set, detector, chunk_seconds):
    root, _ = av_set
    path = next(root.glob("train/*.mp4"))

    def run(seconds):
        p = StreamProcessor(detector)
        verdicts = [
            p.feed("x", seq, p.admit("x", block), final)
            for seq, (block, final) in enumerate(file_blocks(path, seconds, detector.media))
        ]
        fused = np.concatenate([v.trace.fused for v in verdicts if v.trace is not None])
        return verdicts, fused

    whole, fused_whole = run(100.0)
    chunked, fused_chunked = run(chunk_seconds)
    assert len(whole) == 1 and len(chunked) > 2
    assert len(fused_whole) == len(fused_chunked) and np.abs(fused_whole - fused_chunked).max() < 1e-5
    spans = [(d.span.start, d.span.end, d.modality) for v in chunked for d in v.detections]
    assert spans == [(d.span.start, d.span.end, d.modality) for d in whole[0].detections]


def test_state_moves_between_processors_mid_stream(av_set, detector):
    root, _ = av_set
    path = sorted(root.glob("*/*.mp4"))[0]
    blocks = list(file_blocks(path, 0.5, detector.media))
    one = StreamProcessor(detector)
    expected = [one.feed("s", i, one.admit("s", b), f) for i, (b, f) in enumerate(blocks)]
    first, second = StreamProcessor(detector), StreamProcessor(detector)
    got = [first.feed("s", i, first.admit("s", b), f) for i, (b, f) in enumerate(blocks[:2])]
    second.import_state("s", first.export_state("s"))
    got += [second.feed("s", i, second.admit("s", b), f) for i, (b, f) in enumerate(blocks[2:], 2)]
    for a, b in zip(got, expected, strict=True):
        assert_same_verdict(a, b)


def test_video_chunk_bytes_decode_with_t0_override(av_set):
    root, _ = av_set
    path = sorted(root.glob("*/*.mp4"))[0]
    config = tiny_av_config()
    block = decode_media(Chunk("s", 0, path.read_bytes(), "video/mp4", t0=10.0), TINY_AV_MEDIA, config.limits)
    assert block.audio is not None and block.video is not None
    assert block.t0 == pytest.approx(10.0) and block.video.fps == 10.0
    assert abs(block.video.t0 - block.audio.t0) < 0.1  # the container's own A/V offset is kept


def test_an_audio_visual_chunk_is_opened_once_and_decodes_as_each_track_alone(av_set, monkeypatch):
    """decode_media opens the payload once for both decoders (dfstream.engine.media.decode.Demuxed): the same samples
    and frames as decoding each track from its own open; a payload cut short fails both alike."""
    import av

    from dfstream.engine.media.decode import decode_audio
    from dfstream.engine.media.video import decode_video

    root, _ = av_set
    payload = sorted(root.glob("*/*.mp4"))[0].read_bytes()
    config = tiny_av_config()
    opened, real_open = [], av.open
    monkeypatch.setattr(av, "open", lambda *a, **k: opened.append(1) or real_open(*a, **k))
    block = decode_media(Chunk("s", 0, payload, "video/mp4"), TINY_AV_MEDIA, config.limits)
    assert len(opened) == 1
    audio = decode_audio(payload, config.limits)
    video = decode_video(payload, config.branch("visual").fps, config.branch("visual").decode_side, config.limits)
    assert np.array_equal(block.audio.samples, audio.samples) and block.audio.t0 == audio.t0
    assert np.array_equal(block.video.frames, video.frames) and block.video.t0 == video.t0
    for cut in (len(payload) // 3, 2 * len(payload) // 3):
        try:
            alone = (
                decode_video(
                    payload[:cut], config.branch("visual").fps, config.branch("visual").decode_side, config.limits
                ),
                decode_audio(payload[:cut], config.limits),
            )
        except MediaError as e:
            with pytest.raises(MediaError) as got:
                decode_media(Chunk("s", 0, payload[:cut], "video/mp4"), TINY_AV_MEDIA, config.limits)
            assert (got.value.reason, str(got.value)) == (e.reason, str(e))
        else:
            together = decode_media(Chunk("s", 0, payload[:cut], "video/mp4"), TINY_AV_MEDIA, config.limits)
            assert np.array_equal(together.audio.samples, alone[1].samples)


@pytest.mark.slow
def test_train_and_eval_on_visual_only_fakes(tmp_path, capsys):
    import json

    import yaml
    from helpers import TINY, TINY_VISUAL

    from dfstream.app.cli import main

    data = tmp_path / "av"
    assert main(["toyset", "--video", "--out", str(data), "--files", "12", "--seed", "5"]) == 0
    entries = json.loads((data / "metadata.json").read_text())
    visual_only = [e for e in entries if e["modify_type"] in ("real", "visual_modified")]
    assert {e["modify_type"] for e in visual_only} == {"real", "visual_modified"}
    (data / "visual_only.json").write_text(json.dumps(visual_only))
    cfg = tmp_path / "av.yaml"
    cfg.write_text(
        yaml.safe_dump({**TINY, "branches": ["audio", "visual"], "visual": TINY_VISUAL, "train": {"epochs": 2}})
    )
    assert (
        main(
            [
                "train",
                "--meta",
                str(data / "visual_only.json"),
                "--root",
                str(data),
                "--out",
                str(tmp_path / "ck"),
                "--config",
                str(cfg),
                "--data-description",
                "SYNTHETIC toy AV",
            ]
        )
        == 0
    )
    card = json.loads((tmp_path / "ck" / "dfstream.json").read_text())
    assert card["training"]["data"]["labels"] == "fake_segments"
    assert set(card["architecture"]) == {"audio", "visual"} and card["specifications"]["visual"]["sample_rate"] == 10.0
    out = tmp_path / "out"
    assert (
        main(["replay", str(data), "--root", str(data), "--model", str(tmp_path / "ck"), "--out", str(out), "--quiet"])
        == 0
    )
    verdicts = [json.loads(line) for line in (out / "verdicts.jsonl").read_text().splitlines()]
    assert {v["stream_id"] for v in verdicts} == {e["file"] for e in entries} and all(
        "error" not in v for v in verdicts
    )
    assert (
        main(
            [
                "eval",
                "--pred",
                str(out / "predictions.json"),
                "--scores",
                str(out / "scores.csv"),
                "--meta",
                str(data / "visual_only.json"),
                "--verdicts",
                str(out / "verdicts.jsonl"),
                "--out",
                str(out / "m.json"),
            ]
        )
        == 0
    )
    metrics = json.loads((out / "m.json").read_text())
    assert set(metrics["by_modality"]) == {"visual"}  # no audio labels in a visual-only set
    visual = metrics["by_modality"]["visual"]
    assert visual["labels"] == "visual_fake_segments" and set(visual["ap"]) == {"0.5", "0.75", "0.9", "0.95"}
    assert all(v is None or 0 <= v <= 1 for v in visual["ap"].values())
    assert "visual spans" in capsys.readouterr().out


def test_audio_and_video_of_very_different_lengths(detector):
    p = StreamProcessor(detector)
    audio = AudioBlock(np.random.default_rng(1).normal(0, 0.1, 48000).astype(np.float32), 0.0)  # 3 s
    video = crops(np.full((10, 32, 32, 3), 90, np.uint8), np.ones(10, bool), 0.0, 10.0, dropped=2)  # 1 s
    v = p.feed("s", 0, prepared(audio, video), final=True)
    assert v.span.to_list() == [0.0, 3.0] and v.scored.to_list() == [0.0, 3.0] and v.dropped_frames == 2
    visual = v.trace.branches["visual"]
    assert len(visual) == 150 and np.all(visual[:50] > 0) and np.all(visual[50:] == 0)
    assert np.all(v.trace.branches["audio"] > 0) and p.states == {}


def test_a_video_chunk_goes_through_the_live_path(av_set, detector):
    """What serve does with a Kafka record holding an MP4 segment: decode, crop faces, score both branches."""
    root, _ = av_set
    path = sorted(root.glob("*/*.mp4"))[0]
    p = StreamProcessor(detector)
    v = p.process(Chunk("cam", 0, path.read_bytes(), "video/mp4", t0=5.0, final=True))
    assert v.span.start == pytest.approx(5.0) and v.dropped_frames == 0 and p.states == {}
    assert np.any(v.trace.branches["visual"] > 0) and np.any(v.trace.branches["audio"] > 0)
    assert json_round_trip(v) == v.to_dict()


def json_round_trip(verdict):
    import json

    from dfstream.engine.core.types import Verdict

    return Verdict.from_dict(json.loads(verdict.to_json())).to_dict()


def test_tracks_far_apart_inside_one_block_are_refused_before_any_state_changes(detector):
    p = StreamProcessor(detector)
    far = prepared(AudioBlock(np.zeros(1600, np.float32), 0.0), frames_block(2, 700.0, 10.0))
    with pytest.raises(MediaError) as e:
        p.admit("s", far)  # fuzzing found this one: 700 s of absent video before the first frame
    assert e.value.reason == "timestamp-jump" and p.states == {}
    p.feed("s", 0, prepared(AudioBlock(np.zeros(1600, np.float32), 0.0), frames_block(1, 0.0, 10.0)))
    late = prepared(AudioBlock(np.zeros(1600, np.float32), 0.1), frames_block(1, 650.0, 10.0))
    with pytest.raises(MediaError):
        p.admit("s", late)  # the video track of a running stream jumps
    assert p.states["s"].tracks["visual"].received == 1


def test_parallel_branches_give_exactly_the_sequential_verdicts(av_set, detector):
    """Each branch on its own thread (inference.parallel_branches, the default) computes what it computes
    alone: the verdicts of a batch of streams, carried frames included, equal the one-after-another ones."""
    from dfstream.engine.core.config import replace

    assert detector.parallel and detector._pool is not None
    # one torch thread per branch in both: torch's kernels may round differently on another number of
    # threads (branches in turn get all of them by default; seen: 6e-8 apart in 3 of 6 random weight draws)
    config = replace(detector.config, "inference.threads", 1)
    detector = Detector(config, detector.model, "dfstream-random", None)
    sequential = Detector(
        replace(config, "inference.parallel_branches", False), detector.model, "dfstream-random", None
    )
    assert detector.parallel and not sequential.parallel and sequential._pool is None
    assert detector.threads_parallel == sequential.threads == 1
    root, _ = av_set
    paths = sorted(root.glob("*/*.mp4"))[:3]

    def run(det):
        p = StreamProcessor(det)
        blocks = {f"s{i}": list(file_blocks(path, 0.5, det.media)) for i, path in enumerate(paths)}
        out = []
        for k in range(max(len(b) for b in blocks.values())):  # a batch holds one chunk of every stream
            items = [(sid, k, b[k][0], b[k][1]) for sid, b in blocks.items() if k < len(b)]
            out += p.feed_many(items)
        return out

    got, expected = run(detector), run(sequential)
    assert len(got) > 6
    for a, b in zip(got, expected, strict=True):
        assert_same_verdict(a, b, tol=0.0)
    assert any(v.trace is not None for v in got)


def test_threads_default_to_torchs_less_the_decode_pool_divided_among_the_branches_at_once(detector):
    from dfstream.engine.core.config import replace
    from dfstream.engine.runtime.device import DEFAULT_THREADS, intra_op_threads
    from dfstream.engine.runtime.scheduler import Scheduler
    from dfstream.engine.runtime.sections import SchedulerConfig

    assert intra_op_threads(3, 2, 5) == 3 and intra_op_threads(0, 1) == DEFAULT_THREADS
    assert intra_op_threads(0, 2) == max(1, DEFAULT_THREADS // 2) and intra_op_threads(0, 10**6) == 1
    assert intra_op_threads(0, 2, 2) == max(1, (DEFAULT_THREADS - 2) // 2) and intra_op_threads(0, 1, 10**6) == 1
    det = Detector(detector.config, detector.model, "dfstream-random", None)
    assert det.threads == DEFAULT_THREADS and det.threads_parallel == max(1, DEFAULT_THREADS // 2)
    seen = []  # (branch, torch's threads in the thread that runs it): torch's count is per thread
    hooks = [
        det.branches[name].encoder.register_forward_pre_hook(
            lambda module, args, name=name: seen.append((name, torch.get_num_threads()))
        )
        for name in det.branches
    ]
    both = {
        name: np.zeros(
            (2, plan.length) + det.branches[name].empty_input(0).shape[1:], det.branches[name].empty_input(0).dtype
        )
        for name, plan in det.plans.items()
    }
    try:
        det.score(both)
        parallel = det.threads_parallel  # each branch's batch in two parts, shared by the pool's threads
        assert sorted(seen) == [("audio", parallel)] * 2 + [("visual", parallel)] * 2
        seen.clear()
        det.score({"audio": both["audio"]})  # the visual branch has nothing to do: audio gets every thread
        assert seen == [("audio", DEFAULT_THREADS)]
        with Scheduler(StreamProcessor(det), SchedulerConfig(decode_workers=3)) as sched:
            workers = sched._pool.submit(torch.get_num_threads).result()
        assert workers == 1  # the decode pool is the parallelism: one torch thread per worker
        assert det.reserved_cores == 3 and det.threads == max(1, DEFAULT_THREADS - 3)
        assert det.threads_parallel == max(1, (DEFAULT_THREADS - 3) // 2)
        seen.clear()
        det.score(both)
        assert sorted(seen) == [("audio", det.threads_parallel)] * 2 + [("visual", det.threads_parallel)] * 2
    finally:
        for hook in hooks:
            hook.remove()
    pinned = Detector(replace(detector.config, "inference.threads", 1), detector.model, "dfstream-random", None)
    pinned.share_cores(0)
    assert pinned.threads == pinned.threads_parallel == 1


def test_a_detectors_branch_threads_end_with_it(detector):
    import gc

    det = Detector(detector.config, detector.model, "dfstream-random", None)
    both = {
        name: np.zeros(
            (1, plan.length) + det.branches[name].empty_input(0).shape[1:], det.branches[name].empty_input(0).dtype
        )
        for name, plan in det.plans.items()
    }
    det.score(both)
    threads = list(det._pool._threads)
    assert threads and all(t.is_alive() for t in threads)
    del det
    gc.collect()
    for t in threads:
        t.join(5)
    assert not any(t.is_alive() for t in threads)
