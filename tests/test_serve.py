"""``dfstream serve`` against the real broker: verdicts, dead letters, failover, shutdown, restart."""

from __future__ import annotations

import json
import signal
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers import assert_same_verdict, busy_detector, encode_bytes
from kafka import KafkaConsumer
from kafka_helpers import (
    FAST_GROUP,
    ThreadWorker,
    committed,
    configs,
    names,
    read_all,
    send,
    serve_process,
    verdicts_by_key,
    wait_for,
    without_latency,
)

from dfstream.engine.runtime.checkpoint import load_checkpoint, save_checkpoint
from dfstream.engine.runtime.stream import StreamProcessor
from dfstream.streams.kafka_contract import chunk_headers
from dfstream.streams.produce import produce_files
from dfstream.streams.replay import file_chunks
from dfstream.streams.topic_replay import replay_topic

pytestmark = pytest.mark.kafka
CHUNK = 0.7


@pytest.fixture(scope="module")
def detector(clip):
    return busy_detector(clip)


def reference(detector, clip, stream_id):
    """What replay says for the stream, chunk by chunk, without latency."""
    processor = StreamProcessor(detector)
    return [without_latency(processor.process(c).to_dict()) for c in file_chunks(clip, stream_id, CHUNK)]


def crossing(verdicts, boundaries):
    """Detections whose span crosses one of the chunk ``boundaries``."""
    return [d for v in verdicts for d in v["detections"] if any(d["start"] < b < d["end"] for b in boundaries)]


def test_verdicts_match_replay_and_offsets_are_committed(kafka_bootstrap, detector, clip, tmp_path):
    n = names("e2e")
    kcfg, scfg = configs(kafka_bootstrap, n, queue_chunks=3, batch_chunks=2)
    streams = ["cam/a", "cam/b"]
    counts = produce_files([(clip, s) for s in streams], kcfg, n["in_topic"], CHUNK, partitions=2)
    chunks = list(file_chunks(clip, "x", CHUNK))
    assert counts == {"files": 2, "chunks": 2 * len(chunks), "seconds": pytest.approx(2 * 7.37, abs=0.01), "failed": 0}
    worker = ThreadWorker(StreamProcessor(detector), kcfg, scfg)
    try:
        got = wait_for(
            lambda: (lambda v: len(v) == 2 * len(chunks) and v)(
                verdicts_by_key(read_all(kafka_bootstrap, n["out_topic"]))
            ),
            60,
            "all verdicts",
        )
        wait_for(
            lambda: sum(committed(kafka_bootstrap, n["group"]).values()) == 2 * len(chunks), 20, "offsets committed"
        )
    finally:
        worker.close()
    boundaries = [c.t0 for c in chunks[1:]]
    for s in streams:
        expected = reference(detector, clip, s)
        mine = [got[(s, seq)] for seq in range(len(chunks))]
        assert all(len(v) == 1 for v in mine)  # no duplicates in a clean run
        for v, e in zip(mine, expected, strict=True):
            assert_same_verdict(v[0], e)  # what replay says (batching: SCORE_TOLERANCE)
        assert crossing(expected, boundaries)  # spans cross chunk boundaries, once each
    assert worker.worker.peak_depth <= 3
    assert worker.worker.metrics.pauses._value.get() >= 1  # backpressure paused the input
    assert not read_all(kafka_bootstrap, n["dlq_topic"])
    # replay --from-topic re-runs the stored range with the same result
    results = replay_topic(StreamProcessor(detector), kcfg, n["in_topic"], tmp_path / "out", scfg.max_chunk_bytes)
    lines = [json.loads(x) for x in (tmp_path / "out" / "verdicts.jsonl").read_text().splitlines()]
    assert sorted((v["stream_id"], v["seq"]) for v in lines) == sorted(got)
    for v in lines:
        assert_same_verdict(v, reference(detector, clip, v["stream_id"])[v["seq"]])
    assert set(results) == set(streams)
    lines = replay_topic(
        StreamProcessor(detector),
        kcfg,
        n["in_topic"],
        tmp_path / "part",
        scfg.max_chunk_bytes,
        from_offset=2,
        to_offset=4,
    )
    assert len(lines) == 2
    part = (tmp_path / "part" / "verdicts.jsonl").read_text().splitlines()
    assert len(part) == 4 and {json.loads(x)["seq"] for x in part} == {2, 3}
    stamps = sorted(r.timestamp for r in read_all(kafka_bootstrap, n["in_topic"]))
    timed = replay_topic(
        StreamProcessor(detector),
        kcfg,
        n["in_topic"],
        tmp_path / "timed",
        scfg.max_chunk_bytes,
        from_ms=stamps[0],
        to_ms=stamps[-1] + 1,
    )
    assert sum(1 for _ in open(tmp_path / "timed" / "verdicts.jsonl")) == len(stamps) and len(timed) == 2
    replay_topic(
        StreamProcessor(detector), kcfg, n["in_topic"], tmp_path / "none", scfg.max_chunk_bytes, from_ms=stamps[-1] + 1
    )
    assert (tmp_path / "none" / "verdicts.jsonl").read_text() == ""


def unknown_codec_wav() -> bytes:
    data = b"\x00\x01" * 8000
    fmt = struct.pack("<HHIIHH", 0x7777, 1, 16000, 32000, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + len(data))
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )


def test_bad_input_goes_to_the_dead_letter_topic(kafka_bootstrap, detector, clip):
    n = names("dlq")
    kcfg, scfg = configs(kafka_bootstrap, n, max_chunk_bytes=200_000)
    wav = encode_bytes("wav", "pcm_s16le", 16000, 1, np.zeros(16000, np.float32) + 0.1)

    def h(seq, **kw):
        return [("dfs-seq", str(seq).encode()), ("content-type", b"audio/wav")] + [(k, v) for k, v in kw.items()]

    bad = [
        (None, wav, h(0), "no-stream-id"),
        (b"x1", wav, [("dfs-seq", b"one")], "bad-seq"),
        (b"x2", wav, [("content-type", b"audio/wav")], "bad-seq"),
        (b"x3", b"this is not media at all" * 10, h(0), "not-media"),
        (b"x4", wav[: len(wav) // 2], h(0), "truncated"),
        (b"x5", unknown_codec_wav(), h(0), "unsupported-codec"),
        (b"x6", b"\x00" * 200_001, h(0), "too-large"),
    ]
    good = list(file_chunks(clip, "good", CHUNK))
    order = [
        (b"o", wav, h(0), None),
        (b"o", wav, h(2), None),
        (b"o", wav, h(1), "out-of-order"),
        (b"o", wav, h(2), "duplicate"),
        (b"o", wav, h(3), None),
        (b"o", wav, h(4, **{"dfs-t0": b"1e9"}), "timestamp-jump"),
    ]  # 1e9 s of silence: limits
    records = []
    for i, c in enumerate(good):
        records.append((c.stream_id.encode(), c.payload, chunk_headers(c)))
        if i < len(bad):
            records.append(bad[i][:3])
        if i < len(order):
            records.append(order[i][:3])
    send(kafka_bootstrap, n["in_topic"], records)
    worker = ThreadWorker(StreamProcessor(detector), kcfg, scfg)
    try:
        expected_dlq = len(bad) + 3
        dead = wait_for(
            lambda: (lambda r: len(r) >= expected_dlq and r)(read_all(kafka_bootstrap, n["dlq_topic"])),
            60,
            "dead letters",
        )
        out = wait_for(
            lambda: (lambda v: len(v) >= len(good) + 3 and v)(
                verdicts_by_key(read_all(kafka_bootstrap, n["out_topic"]))
            ),
            60,
            "verdicts",
        )
        wait_for(lambda: sum(committed(kafka_bootstrap, n["group"]).values()) == len(records), 20, "all committed")
    finally:
        worker.close()
    assert len(dead) == expected_dlq
    reasons = {}
    for r in dead:
        headers = dict(r.headers)
        reasons.setdefault(headers["dfs-error"].decode().split(":")[0], []).append(r)
    for key, value, hdrs, reason in bad + [o for o in order if o[3]]:
        (match,) = [
            r for r in reasons[reason] if r.key == key and dict(r.headers).get("dfs-seq") == dict(hdrs).get("dfs-seq")
        ]
        assert match.value == value  # the original bytes
        assert [x for x in match.headers if x[0] != "dfs-error"] == list(hdrs)  # the original headers
    assert sorted(seq for (sid, seq) in out if sid == "o") == [0, 2, 3]
    for s, expected in enumerate(reference(detector, clip, "good")):
        assert_same_verdict(out[("good", s)][0], expected)


class SlowProcessor(StreamProcessor):
    """Scores like StreamProcessor, ``delay`` seconds slower per batch: chunks wait in the work queue."""

    def __init__(self, detector, delay: float):
        super().__init__(detector)
        self.delay = delay

    def feed_many(self, *args, **kwargs):
        time.sleep(self.delay)
        return super().feed_many(*args, **kwargs)


def test_rebalance_with_chunks_queued_loses_nothing(kafka_bootstrap, detector, clip):
    """A member joins and leaves while the worker has chunks queued: they are fetched again, not lost.

    kafka-python 3 keeps a retained partition's fetch position across an eager
    rebalance and calls the listener on its own I/O thread; the worker must
    rewind to the committed offset and must not queue records polled across it.
    """
    n = names("rebal")
    kcfg, scfg = configs(kafka_bootstrap, n, queue_chunks=64, batch_chunks=1)
    streams = [f"r{i}" for i in range(4)]
    chunks = {s: list(file_chunks(clip, s, CHUNK)) for s in streams}
    send(
        kafka_bootstrap,
        n["in_topic"],
        [c for k in range(len(chunks[streams[0]])) for c in (chunks[s][k] for s in streams)],
    )
    worker = ThreadWorker(SlowProcessor(detector, 0.1), kcfg, scfg)
    intruder = KafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id=n["group"], enable_auto_commit=False, **FAST_GROUP
    )
    try:
        wait_for(lambda: worker.worker.metrics.chunks.labels("verdict")._value.get() >= 2, 60, "first verdicts")
        intruder.subscribe([n["in_topic"]])
        wait_for(
            lambda: intruder.poll(100, max_records=1) is not None and intruder.assignment(),
            60,
            "the intruder's assignment",
        )
        intruder.close()  # leaves the group without committing: its partitions come back
        total = sum(len(c) for c in chunks.values())
        got = wait_for(
            lambda: (lambda v: len(v) == total and v)(verdicts_by_key(read_all(kafka_bootstrap, n["out_topic"]))),
            90,
            "every (stream, seq) to get a verdict",
        )
    finally:
        worker.close()
    assert worker.worker.metrics.refetched._value.get() > 0  # chunks were queued when the rebalance came
    for s in streams:
        for seq, expected in enumerate(reference(detector, clip, s)):
            for v in got[(s, seq)]:
                assert_same_verdict(v, expected)
    assert not read_all(kafka_bootstrap, n["dlq_topic"])


def worker_config(tmp_path, n, **serve) -> Path:
    path = tmp_path / "serve.yaml"
    # float32 as in this process (conftest): the references the workers' verdicts are held to are computed here
    path.write_text(
        yaml.safe_dump(
            {"kafka": dict(FAST_GROUP), "serve": {**n, "partitions": 4, **serve}, "inference": {"dtype": "float32"}}
        )
    )
    return path


def assigned(log_path) -> list | None:
    """Partitions of the worker's latest assignment (from its JSON log)."""
    events = [json.loads(x) for x in log_path.read_text().splitlines() if x.startswith("{")]
    got = [e["partitions"] for e in events if e["event"] == "assigned"]
    return got[-1] if got else None


def test_worker_killed_mid_stream_loses_nothing(kafka_bootstrap, detector, clip, tmp_path):
    n = names("kill")
    model = save_checkpoint(detector, tmp_path / "model", None)
    config = worker_config(tmp_path, n, batch_chunks=1)
    streams = [f"call-{i}" for i in range(6)]
    chunks = {s: list(file_chunks(clip, s, CHUNK)) for s in streams}
    send(kafka_bootstrap, n["in_topic"], [chunks[s][0] for s in streams])  # creates the topics' traffic
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    a = serve_process(kafka_bootstrap, config, model, logs[0])
    b = serve_process(kafka_bootstrap, config, model, logs[1])
    try:
        wait_for(
            lambda: all(assigned(p) for p in logs) and sorted(assigned(logs[0]) + assigned(logs[1])) == [0, 1, 2, 3],
            90,
            "both workers assigned",
        )
        for k in range(1, len(chunks[streams[0]])):
            send(kafka_bootstrap, n["in_topic"], [chunks[s][k] for s in streams])
            if k == 4:
                wait_for(
                    lambda: len(verdicts_by_key(read_all(kafka_bootstrap, n["out_topic"]))) >= 4 * len(streams),
                    30,
                    "verdicts before the kill",
                )
                a.send_signal(signal.SIGKILL)
            time.sleep(0.2)
        total = sum(len(c) for c in chunks.values())
        got = wait_for(
            lambda: (lambda v: len(v) == total and v)(verdicts_by_key(read_all(kafka_bootstrap, n["out_topic"]))),
            90,
            "every (stream, seq) to get a verdict",
        )
    finally:
        for p in (a, b):
            p.kill()
            p.wait()
    assert a.returncode == -signal.SIGKILL
    events = [json.loads(x) for x in logs[1].read_text().splitlines() if x.startswith("{")]
    takeover = [e for e in events if e["event"] == "assigned" and e["partitions"] == [0, 1, 2, 3]]
    assert takeover and takeover[-1]["streams_restored"] > 0  # B took A's streams over from the state topic
    loaded = load_checkpoint(model)
    for s in streams:
        for seq, expected in enumerate(reference(loaded, clip, s)):
            copies = got[(s, seq)]
            # duplicates only as documented: the same verdict again, apart from latency
            for v in copies:
                assert_same_verdict(v, expected)
    assert not read_all(kafka_bootstrap, n["dlq_topic"])


def test_sigterm_finishes_commits_and_leaves(kafka_bootstrap, detector, clip, tmp_path):
    n = names("term")
    model = save_checkpoint(detector, tmp_path / "model", None)
    config = worker_config(tmp_path, n)
    log = tmp_path / "w.log"
    records = [c for s in ("s1", "s2") for c in file_chunks(clip, s, CHUNK)]
    send(kafka_bootstrap, n["in_topic"], records[:4])
    worker = serve_process(kafka_bootstrap, config, model, log)
    try:
        wait_for(lambda: assigned(log), 90, "assignment")
        wait_for(lambda: len(read_all(kafka_bootstrap, n["out_topic"])) >= 4, 30, "first verdicts")
        send(kafka_bootstrap, n["in_topic"], records[4:])
        time.sleep(0.3)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0
    finally:
        worker.kill()
    events = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    stopped = [e for e in events if e["event"] == "stopped"]
    assert stopped, log.read_text()[-2000:]
    out = verdicts_by_key(read_all(kafka_bootstrap, n["out_topic"]))
    done = committed(kafka_bootstrap, n["group"])
    in_records = read_all(kafka_bootstrap, n["in_topic"])
    # every committed record has its verdict, and what was done is committed
    for r in in_records:
        key = (r.key.decode(), int(dict(r.headers)["dfs-seq"]))
        if r.offset < done.get(r.partition, 0):
            assert key in out
        if key in out:
            assert r.offset < done.get(r.partition, 0)
    assert sum(done.values()) == len(out) and len(out) >= 4


def test_broker_restart_mid_stream(durable_broker, detector, clip):
    bootstrap = durable_broker.bootstrap
    n = names("restart")
    kcfg, scfg = configs(bootstrap, n)
    chunks = {s: list(file_chunks(clip, s, CHUNK)) for s in ("r1", "r2")}
    half = len(chunks["r1"]) // 2
    send(bootstrap, n["in_topic"], [c for s in chunks for c in chunks[s][:half]])
    worker = ThreadWorker(StreamProcessor(detector), kcfg, scfg)
    try:
        wait_for(
            lambda: len(verdicts_by_key(read_all(bootstrap, n["out_topic"]))) == 2 * half,
            90,
            "verdicts before the restart",
        )
        durable_broker.restart_broker()
        send(bootstrap, n["in_topic"], [c for s in chunks for c in chunks[s][half:]])
        total = sum(len(c) for c in chunks.values())
        got = wait_for(
            lambda: (lambda v: len(v) == total and v)(verdicts_by_key(read_all(bootstrap, n["out_topic"]))),
            120,
            "all verdicts after the restart",
        )
    finally:
        worker.close()
    for s in chunks:
        for seq, expected in enumerate(reference(detector, clip, s)):
            for v in got[(s, seq)]:
                assert_same_verdict(v, expected)


def test_output_topic_unavailable_commits_nothing_and_loses_nothing(kafka_bootstrap, detector, clip):
    """Produces to the output topic fail for a while (injected into the worker's producer): the worker
    retries, commits nothing meanwhile, and every chunk gets its verdict, once, when the topic is back."""
    import threading

    from kafka.errors import KafkaTimeoutError

    from dfstream.streams.serve import Worker

    n = names("noout")
    kcfg, scfg = configs(kafka_bootstrap, n, retry_backoff_seconds=0.2, retry_backoff_max_seconds=0.5)
    chunks = list(file_chunks(clip, "u", CHUNK))
    send(kafka_bootstrap, n["in_topic"], chunks)
    worker = Worker(StreamProcessor(detector), kcfg, scfg)
    worker.connect()
    real_send, outage = worker.producer.send, threading.Event()
    outage.set()

    def send_or_fail(topic, *args, **kwargs):
        if outage.is_set() and topic == n["out_topic"]:
            raise KafkaTimeoutError("injected: the output topic is unavailable")
        return real_send(topic, *args, **kwargs)

    worker.producer.send = send_or_fail
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: worker.metrics.broker_errors.labels("produce")._value.get() >= 3, 60, "failed produces")
        assert not committed(kafka_bootstrap, n["group"])  # nothing committed without its verdict
        assert not read_all(kafka_bootstrap, n["out_topic"])
        outage.clear()
        got = wait_for(
            lambda: (lambda v: len(v) == len(chunks) and v)(verdicts_by_key(read_all(kafka_bootstrap, n["out_topic"]))),
            60,
            "every verdict after the outage",
        )
        wait_for(lambda: sum(committed(kafka_bootstrap, n["group"]).values()) == len(chunks), 30, "all committed")
    finally:
        stop.set()
        thread.join(60)
    for seq, expected in enumerate(reference(detector, clip, "u")):
        (verdict,) = got[("u", seq)]
        assert_same_verdict(verdict, expected)


def test_cli_produce_and_replay_from_topic(kafka_bootstrap, clip, tmp_path, capsys):
    from helpers import TINY

    from dfstream.app.cli import main

    topic = names("cli")["in_topic"]
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({**TINY, "serve": {"partitions": 1}}))
    assert (
        main(
            [
                "produce",
                str(clip),
                "--bootstrap",
                kafka_bootstrap,
                "--topic",
                topic,
                "--chunk-seconds",
                "1.5",
                "--config",
                str(config),
            ]
        )
        == 0
    )
    assert "published 5 chunk(s)" in capsys.readouterr().out
    assert (
        main(
            [
                "replay",
                "--from-topic",
                topic,
                "--bootstrap",
                kafka_bootstrap,
                "--out",
                str(tmp_path / "o"),
                "--model",
                "random",
                "--config",
                str(config),
                "--quiet",
            ]
        )
        == 0
    )
    lines = [json.loads(x) for x in (tmp_path / "o" / "verdicts.jsonl").read_text().splitlines()]
    assert [v["seq"] for v in lines] == [0, 1, 2, 3, 4] and lines[-1]["final"]
    assert [v["span"] for v in lines] == [[3.0 + 1.5 * k, min(3.0 + 1.5 * (k + 1), 10.37)] for k in range(5)]
    assert json.loads((tmp_path / "o" / "predictions.json").read_text()).keys() == {clip.as_posix()}
    assert main(["replay", str(clip), "--from-topic", topic]) == 2
    assert "not both" in capsys.readouterr().err


def test_audio_visual_segments_through_serve(kafka_bootstrap, tmp_path):
    """A video file published as Matroska segments: serve's verdicts equal processing the segments locally."""
    from helpers import tiny_av_config

    from dfstream.app.toyvideo import make_toy_av_set
    from dfstream.engine.runtime.detector import Detector
    from dfstream.streams.segment import video_chunks

    make_toy_av_set(tmp_path / "av", files=1, seed=4, min_seconds=3.0, max_seconds=3.2, size=(160, 120))
    video = next((tmp_path / "av").glob("*/*.mp4"))
    detector = Detector.from_config(tiny_av_config())
    n = names("av")
    kcfg, scfg = configs(kafka_bootstrap, n)
    counts = produce_files([(video, "cam/v")], kcfg, n["in_topic"], 1.0, partitions=1)
    segments = [c for c, _, _ in video_chunks(video, "cam/v", 1.0)]
    assert counts["chunks"] == len(segments) >= 3 and counts["failed"] == 0
    worker = ThreadWorker(StreamProcessor(detector), kcfg, scfg)
    try:
        got = wait_for(
            lambda: (lambda v: len(v) == len(segments) and v)(
                verdicts_by_key(read_all(kafka_bootstrap, n["out_topic"]))
            ),
            60,
            "all verdicts",
        )
    finally:
        worker.close()
    local = StreamProcessor(detector)
    for c in segments:
        assert_same_verdict(got[("cam/v", c.seq)][0], without_latency(local.process(c).to_dict()))
    assert not read_all(kafka_bootstrap, n["dlq_topic"])
