"""The cross-stream scheduler: batch/no-batch equivalence, order, fairness, bounds; precision paths on CPU."""

import copy
import threading
import time

import numpy as np
import pytest
import torch
from helpers import assert_same_verdict, busy_detector

from dfstream.engine.core.config import replace
from dfstream.engine.core.errors import MediaError
from dfstream.engine.core.types import Chunk, Span, Verdict
from dfstream.engine.media.decode import LIMITS, decode_audio, decode_chunk, raw_pcm_content_type
from dfstream.engine.runtime.detector import Detector
from dfstream.engine.runtime.precision import int8_layers
from dfstream.engine.runtime.scheduler import Cancelled, Scheduler
from dfstream.engine.runtime.sections import SchedulerConfig
from dfstream.engine.runtime.stream import StreamProcessor
from dfstream.streams.replay import file_blocks, file_chunks


class FakeProcessor:
    """Records the batches it is given; the first batch waits for ``gate``."""

    def __init__(self, gate: threading.Event | None = None):
        self.batches, self.gate, self.closed = [], gate, []
        self.entered = threading.Event()

    def feed_many(self, items, started=None):
        self.entered.set()
        if self.gate is not None and not self.batches:
            self.gate.wait(10)
        self.batches.append([(sid, seq) for sid, seq, _, _ in items])
        return [Verdict(sid, seq, Span(0, 1), None, None, (), "fake", 0.0, final) for sid, seq, _, final in items]

    def close(self, stream_id):
        self.closed.append(stream_id)

    limits = LIMITS

    def share_cores(self, cores):
        pass

    def init_worker(self):
        pass

    def check(self, stream_id, block):  # the real check is StreamProcessor's (test_decode_limits)
        pass

    def load(self, chunk):
        return decode_chunk(chunk, self.limits)


def pcm(stream_id, seq, n=160, final=False):
    return Chunk(stream_id, seq, np.zeros(n, np.float32).tobytes(), raw_pcm_content_type(), seq * n / 16000, final)


def test_batched_through_the_scheduler_equals_one_chunk_at_a_time(clip):
    det = busy_detector(clip)
    chunks = {sid: list(file_chunks(clip, sid, size)) for sid, size in (("a", 0.7), ("b", 1.3), ("c", 2.0))}
    reference = {}
    for sid, cs in chunks.items():
        one = StreamProcessor(det)
        reference[sid] = [one.process(c) for c in cs]
    futures = {sid: [] for sid in chunks}
    with Scheduler(StreamProcessor(det), SchedulerConfig(batch_chunks=4, max_wait_ms=50)) as sched:
        for k in range(max(len(cs) for cs in chunks.values())):  # streams interleaved, as live
            for sid, cs in chunks.items():
                if k < len(cs):
                    futures[sid].append(sched.submit(cs[k]))
    assert sched.stats.largest_batch > 1 and sched.stats.chunks == sum(len(cs) for cs in chunks.values())
    for sid in chunks:
        got = [f.result() for f in futures[sid]]
        for x, y in zip(got, reference[sid], strict=True):
            assert_same_verdict(x, y)
    assert any(v.detections for f in futures.values() for v in (x.result() for x in f))


def test_a_stream_reaches_the_model_in_order_even_when_decoding_finishes_out_of_order():
    class SlowFirst(FakeProcessor):
        def load(self, chunk):
            if chunk.seq == 0:
                time.sleep(0.2)
            return super().load(chunk)

    fake = SlowFirst()
    with Scheduler(fake, SchedulerConfig(batch_chunks=8, max_wait_ms=0, decode_workers=4)) as sched:
        futures = [sched.submit(pcm("s", k)) for k in range(6)]
    assert [f.result().seq for f in futures] == list(range(6))
    order = [seq for batch in fake.batches for _, seq in batch]
    assert order == list(range(6))


def test_a_busy_stream_cannot_starve_a_quiet_one():
    gate = threading.Event()
    fake = FakeProcessor(gate)
    with Scheduler(fake, SchedulerConfig(batch_chunks=4, max_wait_ms=0)) as sched:
        sched.submit(pcm("busy", 0))
        assert fake.entered.wait(5)  # the model thread holds the first batch at the gate
        busy = [sched.submit(pcm("busy", k)) for k in range(1, 41)]
        quiet = sched.submit(pcm("quiet", 0))
        time.sleep(0.2)  # every chunk decoded while the model is held
        gate.set()
    assert quiet.result().stream_id == "quiet" and all(f.result() for f in busy)
    assert fake.batches[0] == [("busy", 0)]
    # the next batch is filled round robin: the quiet stream is in it, not after the 40 busy chunks
    assert ("quiet", 0) in fake.batches[1] and len(fake.batches[1]) == 4
    assert [seq for b in fake.batches for sid, seq in b if sid == "busy"] == list(range(41))


def test_submit_blocks_at_max_pending():
    gate = threading.Event()
    fake = FakeProcessor(gate)
    sched = Scheduler(fake, SchedulerConfig(batch_chunks=1, max_wait_ms=0, max_pending=3))
    submitted = []
    producer = threading.Thread(target=lambda: [submitted.append(sched.submit(pcm("s", k))) for k in range(6)])
    producer.start()
    time.sleep(0.3)
    assert len(submitted) == 3  # the fourth submit waits for a slot
    gate.set()
    producer.join(5)
    sched.close()
    assert len(submitted) == 6 and [f.result().seq for f in submitted] == list(range(6))


def test_a_chunk_that_does_not_decode_fails_alone():
    fake = FakeProcessor()
    bad = Chunk("s", 1, b"\x00\x01\x02", raw_pcm_content_type(), 0.01)  # not a whole float32 sample
    with Scheduler(fake, SchedulerConfig(batch_chunks=4, max_wait_ms=20)) as sched:
        futures = [sched.submit(pcm("s", 0)), sched.submit(bad), sched.submit(pcm("s", 2))]
    assert futures[0].result().seq == 0 and futures[2].result().seq == 2
    with pytest.raises(MediaError):
        futures[1].result()
    assert [seq for b in fake.batches for _, seq in b] == [0, 2]


def test_precision_paths_agree_on_cpu(clip):
    """float32, bfloat16 weights and dynamic int8: the same frames within the documented tolerances."""
    fp32 = busy_detector(clip)
    audio = decode_audio(clip).samples
    reference = fp32.score_stream(audio).probs
    int8 = Detector(replace(fp32.config, "inference.quantize", "int8"), copy.deepcopy(fp32.model), fp32.model_id, None)
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

    quantized = [n for n, m in int8.model.named_modules() if isinstance(m, Int8Linear)]
    assert quantized and sorted(quantized) == sorted(int8_layers(fp32.model))
    assert not any("attention" in n for n in quantized)
    assert all(type(m) is torch.nn.Linear for n, m in int8.model.named_modules() if "q_proj" in n)
    got = int8.score_stream(audio).probs
    assert got.shape == reference.shape and np.abs(got - reference).max() < 0.05  # documented tolerance


def test_int8_quantizes_an_audio_visual_model():
    """The visual branch holds a face detector with a lock: quantization must not try to copy it."""
    from helpers import tiny_av_config
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

    det = Detector.from_config(replace(tiny_av_config(), "inference.quantize", "int8"))
    assert {n.split(".")[0] for n, m in det.model.named_modules() if isinstance(m, Int8Linear)} >= {"audio", "visual"}
    windows = {
        name: np.zeros(
            (2, plan.length) + det.branches[name].empty_input(0).shape[1:], det.branches[name].empty_input(0).dtype
        )
        for name, plan in det.plans.items()
    }
    assert det.score(windows).probs.shape[0] == 2


def test_decoded_blocks_and_a_failure_keep_their_stream_order():
    fake = FakeProcessor()
    fake.prepare = lambda block: block
    with Scheduler(fake, SchedulerConfig(batch_chunks=4, max_wait_ms=20)) as sched:
        blocks = [sched.submit_block("s", k, decode_chunk(pcm("s", k), LIMITS)) for k in range(2)]
        failed = sched.submit_error("s", 2, MediaError("the file broke here", "corrupt"))
        other = sched.submit(pcm("t", 0))
    assert [f.result().seq for f in blocks] == [0, 1] and other.result().stream_id == "t"
    with pytest.raises(MediaError, match="broke here"):
        failed.result()
    assert fake.closed == ["s"]  # the failure ends its stream: its state is dropped
    assert [seq for b in fake.batches for sid, seq in b if sid == "s"] == [0, 1]


def test_cancel_resolves_what_the_model_has_not_taken():
    gate = threading.Event()
    fake = FakeProcessor(gate)
    sched = Scheduler(fake, SchedulerConfig(batch_chunks=1, max_wait_ms=0))
    first = sched.submit(pcm("s", 0))
    assert fake.entered.wait(5)  # the model thread holds chunk 0
    rest = [sched.submit(pcm("s", k)) for k in range(1, 4)] + [sched.submit(pcm("t", 0))]
    time.sleep(0.2)
    threading.Timer(0.2, gate.set).start()
    sched.close(cancel=True)
    assert first.result().seq == 0
    for future in rest:
        with pytest.raises(Cancelled):
            future.result()
    assert sorted(fake.closed) == ["s", "t"] and fake.batches == [[("s", 0)]]


def test_replay_scores_files_together_and_writes_them_in_input_order(clip, tmp_path):
    """Several files in flight, batched across them: each file's verdicts equal replaying it alone."""
    import json
    import shutil

    from dfstream.streams.replay import replay

    det = busy_detector(clip)
    config = replace(replace(det.config, "scheduler.decode_workers", 2), "scheduler.batch_chunks", 4)
    det = Detector(config, det.model, det.model_id, None)
    inputs = []
    for name in ("c.mkv", "a.mkv", "b.mkv"):
        shutil.copy(clip, tmp_path / name)
        inputs.append((tmp_path / name, name))
    reference = {}
    for path, sid in inputs:
        one = StreamProcessor(det)
        blocks = list(file_blocks(path, 0.9, det.media))
        reference[sid] = [one.feed(sid, seq, block, final) for seq, (block, final) in enumerate(blocks)]
    results = replay(inputs, StreamProcessor(det), tmp_path / "out", 0.9)
    lines = [json.loads(x) for x in (tmp_path / "out" / "verdicts.jsonl").read_text().splitlines()]
    assert [v["stream_id"] for v in lines] == [sid for _, sid in inputs for _ in reference[sid]]
    for line, expected in zip(lines, [v for _, sid in inputs for v in reference[sid]], strict=True):
        assert_same_verdict(line, expected)
    assert all(results[sid].error is None for _, sid in inputs)
    assert any(v.detections for vs in reference.values() for v in vs)


def test_replay_progress_survives_files_longer_than_their_containers_declare(clip, tmp_path, monkeypatch, capsys):
    """The progress bar's total is the containers' declared durations; padded codecs decode a little longer,
    and tqdm used to drop a total the count had passed, so the bar's format failed at close."""
    import dfstream.streams.replay as replay_module
    from dfstream.app.logs import Bars

    det = busy_detector(clip)
    monkeypatch.setattr(replay_module, "probe_seconds", lambda path: 1.0)  # declares far less than it holds
    results = replay_module.replay([(clip, "c.mkv")], StreamProcessor(det), tmp_path / "out", 0.9, Bars(show=True))
    assert results["c.mkv"].error is None
    assert "media-s" in capsys.readouterr().err
