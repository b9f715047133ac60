"""Soak: serve and the call hook under input faster than the engine, for a bounded time.

    python bench/soak.py [--minutes 3] [--rate 50] [--calls 8] [--parts serve,call-hook] [--out PATH]

* serve: one ``dfstream serve`` process (default architecture, random weights)
  against a memory-mode development broker; a producer publishes ``--rate``
  chunks/s (0.5 s of 8 kHz PCM each, streams of 20 chunks, then new streams),
  more than the engine scores on this machine. Sampled every second: the worker's
  resident memory (/proc), its work-queue depth and chunks scored (its
  Prometheus endpoint) and the backlog (chunks produced and not yet committed:
  it grows, as the producer is faster; what must stay bounded is the worker's
  queue and memory). After the time is up the producer
  stops, the worker drains, and every produced (stream id, seq) is looked up in
  the verdict and dead-letter topics (lost must be 0).
* call hook: one ``dfstream call-hook`` process; ``--calls`` clients stream raw
  8 kHz PCM as fast as the server lets them (no pacing), each call 30 s of
  audio then ``stop`` and a new call. Sampled every second: the server's
  resident memory; counted: verdicts, summaries, error events, unexpected closes.

Memory is judged after a warm-up (the first third): the slope of a straight
line through the samples (MB per minute) and the growth from the end of the
warm-up to the end. Writes JSON with the machine it ran on.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # broker and record helpers shared with the integration tests

from kafka_helpers import FAST_GROUP, committed, free_port, names  # noqa: E402

from dfstream.engine.core.config import config_from_dict  # noqa: E402
from dfstream.engine.core.types import Chunk  # noqa: E402
from dfstream.engine.runtime.checkpoint import save_checkpoint  # noqa: E402
from dfstream.engine.runtime.detector import Detector  # noqa: E402
from dfstream.streams.dev_broker import DevBroker  # noqa: E402
from dfstream.streams.kafka_contract import chunk_headers  # noqa: E402

CHUNK_SAMPLES = 4000  # 0.5 s at 8 kHz
CHUNKS_PER_STREAM = 20


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory_verdict(times: list[float], rss: list[float]) -> dict:
    """Slope (MB/min) of a line through the samples after the first third, and the growth over that span."""
    t, m = np.array(times), np.array(rss)
    keep = t >= t[0] + (t[-1] - t[0]) / 3
    slope = float(np.polyfit(t[keep] / 60, m[keep], 1)[0]) if keep.sum() >= 3 else float("nan")
    return {
        "rss_mb_start": round(float(m[0]), 1),
        "rss_mb_after_warmup": round(float(m[keep][0]), 1),
        "rss_mb_end": round(float(m[-1]), 1),
        "rss_mb_peak": round(float(m.max()), 1),
        "growth_after_warmup_mb": round(float(m[-1] - m[keep][0]), 1),
        "slope_after_warmup_mb_per_min": round(slope, 2),
    }


def scrape(port: int) -> dict:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith(
            ("dfstream_queue_depth ", 'dfstream_chunks_total{outcome="verdict"}', "dfstream_consumer_lag{")
        ):
            name, value = line.rsplit(" ", 1)
            key = "lag" if name.startswith("dfstream_consumer_lag") else name.split("{")[0]
            out[key] = out.get(key, 0.0) + float(value)
    return out


class Producer(threading.Thread):
    """Publishes ``rate`` chunks/s round robin over 8 open streams until stopped; remembers what it sent."""

    def __init__(self, bootstrap: str, topic: str, rate: float):
        super().__init__(daemon=True)
        from kafka import KafkaProducer

        self.producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        self.topic, self.rate, self.stop = topic, rate, threading.Event()
        self.sent: set = set()
        rng = np.random.default_rng(0)
        self.payload = (rng.normal(0, 3000, CHUNK_SAMPLES)).astype(">i2").tobytes()

    def run(self) -> None:
        streams = {f"soak-{i}": 0 for i in range(8)}
        next_id, n, started = 8, 0, time.monotonic()
        while not self.stop.is_set():
            for sid in list(streams):
                seq = streams[sid]
                final = seq == CHUNKS_PER_STREAM - 1
                chunk = Chunk(sid, seq, self.payload, "audio/L16;rate=8000", seq * 0.5, final)
                self.producer.send(self.topic, key=sid.encode(), value=chunk.payload, headers=chunk_headers(chunk))
                self.sent.add((sid, seq))
                n += 1
                if final:
                    del streams[sid]
                    streams[f"soak-{next_id}"] = 0
                    next_id += 1
                else:
                    streams[sid] = seq + 1
            ahead = n / self.rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
        self.producer.flush()
        self.producer.close()


def soak_serve(minutes: float, rate: float, tmp: Path, model: Path) -> dict:
    broker = DevBroker(port=0, durable=False, state_dir=tmp / "broker").start()
    try:
        bootstrap, n = broker.bootstrap, names("soak")
        config = tmp / "serve.yaml"
        config.write_text(yaml.safe_dump({"kafka": dict(FAST_GROUP), "serve": {**n, "partitions": 4}}))
        port = free_port()
        log = open(tmp / "serve.log", "w")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dfstream",
                "serve",
                "--bootstrap",
                bootstrap,
                "--config",
                str(config),
                "--model",
                str(model),
                "--metrics-port",
                str(port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
            cwd=ROOT,
        )
        producer = Producer(bootstrap, n["in_topic"], rate)
        samples = []
        try:
            while True:  # the metrics endpoint answers once the worker has started
                try:
                    scrape(port)
                    break
                except OSError:
                    if proc.poll() is not None:
                        raise RuntimeError("serve exited at start-up; see serve.log") from None
                    time.sleep(0.5)
            producer.start()
            started = time.monotonic()
            while time.monotonic() - started < minutes * 60:
                m = scrape(port)
                backlog = len(producer.sent) - sum(committed(bootstrap, n["group"]).values())
                samples.append(
                    (
                        time.monotonic() - started,
                        rss_mb(proc.pid),
                        m.get("dfstream_queue_depth", 0),
                        m.get("dfstream_chunks_total", 0),
                        backlog,
                    )
                )
                time.sleep(1.0)
            producer.stop.set()
            producer.join()
            produced = len(producer.sent)
            drained = time.monotonic()
            while sum(committed(bootstrap, n["group"]).values()) < produced and time.monotonic() - drained < 900:
                time.sleep(2.0)
            drain_s = time.monotonic() - drained
        finally:
            proc.terminate()
            proc.wait(120)
        from kafka_helpers import read_all

        verdicts = {
            (json.loads(r.value)["stream_id"], json.loads(r.value)["seq"]) for r in read_all(bootstrap, n["out_topic"])
        }
        dead = {(r.key.decode(), int(dict(r.headers)["dfs-seq"])) for r in read_all(bootstrap, n["dlq_topic"])}
        t, rss, depth, scored, lag = map(list, zip(*samples))
        seconds = t[-1] - t[0]
        return {
            "minutes": minutes,
            "producer_chunks_per_s": rate,
            "produced": produced,
            "engine_chunks_per_s": round((scored[-1] - scored[0]) / seconds, 1),
            "queue_depth_max": max(depth),
            "queue_bound": 32,
            "backlog_end_of_soak": lag[-1],
            "backlog_growth_per_s": round((lag[-1] - lag[0]) / seconds, 1),
            "drain_seconds_after_producer_stopped": round(drain_s, 1),
            "verdicts": len(verdicts & producer.sent),
            "dead_letters": len(dead),
            "lost": len(producer.sent - verdicts - dead),
            "exit_code_on_sigterm": proc.returncode,
            "memory": memory_verdict(t, rss),
        }
    finally:
        broker.stop()


def call_client(url: str, stop: threading.Event, stats: dict, lock: threading.Lock) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    rng = np.random.default_rng(threading.get_ident() % 2**32)
    frame = (rng.normal(0, 3000, 160)).astype("<i2").tobytes()  # 20 ms at 8 kHz
    while not stop.is_set():
        try:
            with connect(url, max_size=2**20) as ws:
                got = {"verdict": 0, "summary": 0, "error": 0}
                receiver = threading.Thread(target=_receive, args=(ws, got), daemon=True)
                receiver.start()
                for _ in range(1500):  # 30 s of audio, as fast as the server reads it
                    if stop.is_set():
                        break
                    ws.send(frame)
                ws.send(json.dumps({"event": "stop"}))
                receiver.join(120)
                with lock:
                    for k, v in got.items():
                        stats[k] += v
                    stats["calls"] += 1
        except ConnectionClosed as e:
            with lock:
                stats["unexpected_closes"] += 1
                stats["close_codes"].append(e.rcvd.code if e.rcvd else None)


def _receive(ws, got: dict) -> None:
    from websockets.exceptions import ConnectionClosed

    try:
        while True:
            event = json.loads(ws.recv())
            got[event["event"]] = got.get(event["event"], 0) + 1
    except ConnectionClosed:
        pass


def soak_call_hook(minutes: float, calls: int, tmp: Path, model: Path) -> dict:
    port = free_port()
    config = tmp / "hook.yaml"
    config.write_text(yaml.safe_dump({"call_hook": {"vad": False}}))
    log = open(tmp / "hook.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dfstream",
            "call-hook",
            "--port",
            str(port),
            "--config",
            str(config),
            "--model",
            str(model),
        ],
        stdout=log,
        stderr=log,
        cwd=ROOT,
    )
    stats = {"calls": 0, "verdict": 0, "summary": 0, "error": 0, "unexpected_closes": 0, "close_codes": []}
    lock, stop, samples = threading.Lock(), threading.Event(), []
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("call-hook did not start; see hook.log") from None
                time.sleep(0.5)
        url = f"ws://127.0.0.1:{port}/?mode=raw&rate=8000"
        clients = [
            threading.Thread(target=call_client, args=(url, stop, stats, lock), daemon=True) for _ in range(calls)
        ]
        for c in clients:
            c.start()
        started = time.monotonic()
        while time.monotonic() - started < minutes * 60:
            samples.append((time.monotonic() - started, rss_mb(proc.pid)))
            time.sleep(1.0)
        stop.set()
        for c in clients:
            c.join(180)
        alive = proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(60)
    t, rss = map(list, zip(*samples))
    return {
        "minutes": minutes,
        "concurrent_calls": calls,
        "calls_completed": stats["calls"],
        "verdict_events": stats["verdict"],
        "audio_seconds_scored": stats["verdict"] * 0.5,
        "summaries": stats["summary"],
        "error_events": stats["error"],
        "unexpected_closes": stats["unexpected_closes"],
        "close_codes": sorted(set(stats["close_codes"]), key=str),
        "server_alive_at_end": alive,
        "memory": memory_verdict(t, rss),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=3.0, help="each part")
    ap.add_argument("--rate", type=float, default=50.0, help="serve producer, chunks (0.5 s) per second")
    ap.add_argument("--calls", type=int, default=8)
    ap.add_argument("--parts", default="serve,call-hook", help="which to soak, comma-separated")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "soak.json")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="dfstream-soak-"))
    model = save_checkpoint(Detector.from_config(config_from_dict({})), tmp / "model", None)
    serve = hook = None
    if "serve" in parts:
        print("serve ...", file=sys.stderr)
        serve = soak_serve(args.minutes, args.rate, tmp, model)
    if "call-hook" in parts:
        print("call hook ...", file=sys.stderr)
        hook = soak_call_hook(args.minutes, args.calls, tmp, model)
    result = {
        "bench": "soak",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python bench/soak.py " + " ".join(sys.argv[1:]),
        "machine": {"cores": os.cpu_count(), "gpu": None},
        "model": "default architecture, random weights (dfstream-random)",
        "serve": serve,
        "call_hook": hook,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 1 if serve and serve["lost"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
