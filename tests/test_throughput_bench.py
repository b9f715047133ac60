"""bench/throughput.py's streams, schedule and scoring (the timed runs themselves are the benchmark's)."""

import json
import sys
from pathlib import Path

import numpy as np
from helpers import busy_detector

from dfstream.app.toyset import make_toyset
from dfstream.engine.runtime.sections import SchedulerConfig
from dfstream.engine.runtime.stream import StreamProcessor

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from throughput import average_precision_50, dataset_streams, run_baseline, run_engine, schedule  # noqa: E402


def test_dataset_files_are_dealt_to_slots_and_played_in_order(tmp_path):
    meta = make_toyset(tmp_path, files=20, seed=3, min_seconds=1.0, max_seconds=1.6)
    test = [e for e in json.loads(meta.read_text()) if e["split"] == "test"]
    slots, labels = dataset_streams(tmp_path, "test", 2, 0.5)
    assert sorted(labels) == sorted(e["file"] for e in test) and len(slots) == 2
    for i, slot in enumerate(slots):  # each slot plays its files one after another, each chunked whole
        files = [c.stream_id for c, _, _ in slot]
        assert files == sorted(files, key=files.index) and set(files) == {e["file"] for e in test[i::2]}
    realtime = schedule(slots, 0.5, realtime=True)
    assert [t for t, _ in realtime] == sorted(t for t, _ in realtime)
    arrival = {id(c): t for t, c in realtime}
    for i, slot in enumerate(slots):  # slot i starts i/n of a chunk late; a chunk arrives once played
        expected = i / len(slots) * 0.5 + np.cumsum([seconds for _, _, seconds in slot])
        np.testing.assert_allclose([arrival[id(c)] for c, _, _ in slot], expected)
    fast = schedule(slots, 0.5, realtime=False)
    assert {t for t, _ in fast} == {0.0} and sorted(id(c) for _, c in fast) == sorted(id(c) for _, c in realtime)
    for sid in labels:  # every stream's chunks keep their order
        seqs = [c.seq for _, c in fast if c.stream_id == sid]
        assert seqs == list(range(len(seqs)))


def test_engine_and_baseline_score_the_same_streams_alike(tmp_path):
    make_toyset(tmp_path, files=14, seed=4, min_seconds=1.2, max_seconds=1.6)
    slots, labels = dataset_streams(tmp_path, "test", 2, 0.5)
    order = schedule(slots, 0.5, realtime=False)
    det = busy_detector(tmp_path / json.loads((tmp_path / "metadata.json").read_text())[0]["file"])
    engine, got = run_engine(det, order, SchedulerConfig(batch_chunks=4, max_wait_ms=5))
    baseline, expected = run_baseline(det, order)
    key = lambda v: (v.stream_id, v.seq)  # noqa: E731
    assert sorted(map(key, got)) == sorted(map(key, expected)) == sorted(key(c) for _, c in order)
    assert engine["media_s"] == baseline["media_s"] > 0 and any(v.detections for v in got)
    assert all(r["cpu_s"] > 0 and 0 < r["cpu_busy"] for r in (engine, baseline))
    assert average_precision_50(got, labels) == average_precision_50(expected, labels)
    # against a processor fed file by file, the scheduler's detections are the same
    alone = StreamProcessor(det)
    assert [d.span for v in sorted(got, key=key) for d in v.detections] == [
        d.span for _, c in sorted(order, key=lambda r: key(r[1])) for d in alone.process(c).detections
    ]


def test_usage_counts_the_cpu_seconds_of_every_thread():
    import threading
    import time

    from throughput import Usage

    def spin():  # until this thread alone has used 0.2 s of CPU, however busy the machine is
        start = time.thread_time()
        while time.thread_time() - start < 0.2:
            pass

    with Usage() as usage:
        other = threading.Thread(target=spin)
        other.start()
        spin()
        other.join()
    assert usage.peak > 0 and usage.cpu >= 0.4  # both threads' CPU seconds
