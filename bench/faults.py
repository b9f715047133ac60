"""Faults injected into real runs, and an exact account of every segment.

    python bench/faults.py [--streams 12] [--seconds 10] [--out bench/results/faults.json]

Each scenario runs the real thing: ``dfstream serve`` processes against the
development broker (Tansu; durable mode for the broker restart), or the
``dfstream`` command. For the Kafka scenarios every produced (stream id, seq)
is looked up afterwards in the verdict and dead-letter topics: *lost* = produced
and found in neither (must be 0); *duplicates* = extra verdict records for a
(stream id, seq), which the README allows only after a worker dies between a
verdict and its state.

* ``worker_sigkill``: two workers share the streams; one is SIGKILLed mid-stream.
* ``broker_restart``: the broker (durable) stops and starts mid-stream.
* ``broker_unreachable_at_start``: serve against a port nobody listens on.
* ``replay_disk_full``: replay with a file size limit (RLIMIT_FSIZE) standing
  in for a full disk.
The call hook's vanishing client is covered by
``tests/test_call_hook.py::test_vanishing_clients_idle_calls_floods_and_limits``.
An unavailable output topic cannot be staged against the development broker:
Tansu creates a missing topic on its first produce (measured); a broker that is
away while verdicts are produced is ``broker_restart``.

The model is the default architecture with random weights, scoring every 0.5 s
(what is measured is bookkeeping, not accuracy).
Writes JSON with, per scenario, what the user sees and the accounting.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # broker and record helpers shared with the integration tests

from helpers import burst, encode  # noqa: E402
from kafka_helpers import FAST_GROUP, free_port, names, read_all, send, serve_process  # noqa: E402

from dfstream.engine.core.config import config_from_dict  # noqa: E402
from dfstream.engine.runtime.checkpoint import save_checkpoint  # noqa: E402
from dfstream.engine.runtime.detector import Detector  # noqa: E402
from dfstream.streams.dev_broker import DevBroker  # noqa: E402
from dfstream.streams.replay import file_chunks  # noqa: E402

CHUNK = 0.5


def streams_chunks(clip: Path, n: int) -> dict[str, list]:
    return {f"fault-{i}": list(file_chunks(clip, f"fault-{i}", CHUNK)) for i in range(n)}


def account(bootstrap: str, n: dict, produced: set) -> dict:
    """Produced (stream, seq) against what the verdict and dead-letter topics hold."""
    verdicts = collections.Counter()
    for r in read_all(bootstrap, n["out_topic"]):
        v = json.loads(r.value)
        verdicts[(v["stream_id"], v["seq"])] += 1
    dead = {(r.key.decode(), int(dict(r.headers).get("dfs-seq", b"-1"))) for r in read_all(bootstrap, n["dlq_topic"])}
    lost = produced - set(verdicts) - dead
    return {
        "produced": len(produced),
        "verdicts": len(set(verdicts) & produced),
        "dead_letters": len(dead),
        "lost": len(lost),
        "duplicates": sum(c - 1 for c in verdicts.values()),
        "lost_examples": sorted(lost)[:5],
    }


def wait_accounted(bootstrap, n, produced, timeout) -> tuple[dict, float]:
    started = time.monotonic()
    while True:
        result = account(bootstrap, n, produced)
        if result["lost"] == 0 or time.monotonic() - started > timeout:
            return result, round(time.monotonic() - started, 1)
        time.sleep(1.0)


def worker_config(tmp: Path, n: dict, **serve) -> Path:
    path = tmp / f"serve-{n['group']}.yaml"
    path.write_text(
        yaml.safe_dump({"kafka": dict(FAST_GROUP), "serve": {**n, "partitions": 4, "batch_chunks": 2, **serve}})
    )
    return path


def stop_all(procs) -> list:
    codes = []
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        codes.append(p.returncode)
    return codes


def assigned(log: Path) -> bool:
    return any('"assigned"' in line and '"partitions": []' not in line for line in log.read_text().splitlines())


def until(predicate, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.5)
    return False


def worker_sigkill(bootstrap, model, clip, tmp, streams) -> dict:
    n = names("faults-kill")
    config = worker_config(tmp, n)
    chunks = streams_chunks(clip, streams)
    produced = {(c.stream_id, c.seq) for cs in chunks.values() for c in cs}
    length = max(len(cs) for cs in chunks.values())
    send(bootstrap, n["in_topic"], [cs[0] for cs in chunks.values()])
    logs = [tmp / "kill-a.log", tmp / "kill-b.log"]
    procs = [serve_process(bootstrap, config, model, log) for log in logs]
    try:
        until(lambda: all(assigned(x) for x in logs), 120)
        for k in range(1, length):
            send(bootstrap, n["in_topic"], [cs[k] for cs in chunks.values() if k < len(cs)])
            if k == length // 2:
                time.sleep(1.0)
                procs[0].send_signal(signal.SIGKILL)
                killed_at = time.monotonic()
            time.sleep(0.1)
        result, waited = wait_accounted(bootstrap, n, produced, 120)
    finally:
        codes = stop_all(procs)
    return {
        **result,
        "seconds_to_account_after_last_send": waited,
        "seconds_from_kill_to_account": round(time.monotonic() - killed_at, 1),
        "user_sees": f"worker A exit {codes[0]} (SIGKILL); B took its partitions over, exit {codes[1]} on SIGTERM",
    }


def broker_restart(model, clip, tmp, streams) -> dict:
    broker = DevBroker(port=0, durable=True, state_dir=tmp / "durable").start()
    try:
        bootstrap = broker.bootstrap
        n = names("faults-restart")
        config = worker_config(tmp, n)
        chunks = streams_chunks(clip, streams)
        produced = {(c.stream_id, c.seq) for cs in chunks.values() for c in cs}
        send(bootstrap, n["in_topic"], [cs[0] for cs in chunks.values()])
        log = tmp / "restart.log"
        proc = serve_process(bootstrap, config, model, log)
        try:
            until(lambda: assigned(log), 120)
            until(lambda: account(bootstrap, n, {(s, 0) for s in chunks})["lost"] == 0, 60)
            send(bootstrap, n["in_topic"], [c for cs in chunks.values() for c in cs[1:]])
            tic = time.monotonic()
            broker.restart_broker()  # while the worker is scoring and producing the queued chunks
            restart_s = time.monotonic() - tic
            result, waited = wait_accounted(bootstrap, n, produced, 180)
        finally:
            code = stop_all([proc])[0]
        errors = sum('"broker-error"' in line or '"produce-retry"' in line for line in log.read_text().splitlines())
        return {
            **result,
            "broker_restart_seconds": round(restart_s, 1),
            "seconds_to_account_after_restart": waited,
            "user_sees": f"{errors} broker-error/produce-retry log lines, then normal service; exit {code} on SIGTERM",
        }
    finally:
        broker.stop()


def broker_unreachable_at_start(model, tmp) -> dict:
    tic = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "dfstream", "serve", "--bootstrap", f"127.0.0.1:{free_port()}", "--model", str(model)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    last = [line for line in result.stderr.splitlines() if line.startswith("dfstream:")]
    return {
        "exit_code": result.returncode,
        "seconds": round(time.monotonic() - tic, 1),
        "user_sees": last[-1] if last else result.stderr[-300:],
        "traceback": "Traceback" in result.stderr,
    }


def replay_disk_full(model, tmp) -> dict:
    media = tmp / "disk-full-media"
    media.mkdir()
    for i in range(4):
        encode(str(media / f"f{i}.wav"), "wav", "pcm_s16le", 16000, 1, burst(16000, 3.0, 0.5, 1.5))

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4000, 4000))

    out = tmp / "disk-full-out"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dfstream",
            "replay",
            str(media),
            "--model",
            str(model),
            "--out",
            str(out),
            "--quiet",
            "--chunk-seconds",
            "0.5",
        ],
        capture_output=True,
        text=True,
        preexec_fn=limit,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    lines = (out / "verdicts.jsonl").read_text().splitlines()
    whole = all(json.loads(x) for x in lines)
    finished = sorted({json.loads(x)["stream_id"] for x in lines if json.loads(x).get("final")})
    predictions = sorted(json.loads((out / "predictions.json").read_text()))
    last = [line for line in result.stderr.splitlines() if line.startswith("dfstream:")]
    return {
        "exit_code": result.returncode,
        "records_written": len(lines),
        "every_line_whole": whole,
        "files_finished": finished,
        "predictions_cover": predictions,
        "user_sees": last[-1] if last else result.stderr[-300:],
        "traceback": "Traceback" in result.stderr,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=int, default=12)
    ap.add_argument("--seconds", type=float, default=10.0, help="media per stream")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "faults.json")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dfstream-faults-"))
    # the default architecture (random weights) scoring every 0.5 s: busy enough that faults land mid-work
    model = save_checkpoint(
        Detector.from_config(config_from_dict({"inference": {"hop_seconds": 0.5, "context_seconds": 1.5}})),
        tmp / "model",
        None,
    )
    clip = tmp / "clip.wav"
    rng = np.random.default_rng(0)
    encode(
        str(clip),
        "wav",
        "pcm_s16le",
        16000,
        1,
        (rng.normal(0, 0.1, int(args.seconds * 16000)) + burst(16000, args.seconds, 1.0, 3.0)).astype(np.float32),
    )
    scenarios = {}
    broker = DevBroker(port=0, durable=False, state_dir=tmp / "memory").start()
    try:
        print("worker_sigkill ...", file=sys.stderr)
        scenarios["worker_sigkill"] = worker_sigkill(broker.bootstrap, model, clip, tmp, args.streams)
    finally:
        broker.stop()
    for name, run in [
        ("broker_restart", lambda: broker_restart(model, clip, tmp, args.streams)),
        ("broker_unreachable_at_start", lambda: broker_unreachable_at_start(model, tmp)),
        ("replay_disk_full", lambda: replay_disk_full(model, tmp)),
    ]:
        print(f"{name} ...", file=sys.stderr)
        scenarios[name] = run()
    lost = sum(s.get("lost", 0) for s in scenarios.values())
    survived = {  # what each fault must leave behind
        "worker_sigkill": scenarios["worker_sigkill"]["lost"] == 0,
        "broker_restart": scenarios["broker_restart"]["lost"] == 0,
        "broker_unreachable_at_start": scenarios["broker_unreachable_at_start"]["exit_code"] == 2
        and not scenarios["broker_unreachable_at_start"]["traceback"],
        "replay_disk_full": scenarios["replay_disk_full"]["exit_code"] == 2
        and scenarios["replay_disk_full"]["every_line_whole"]
        and not scenarios["replay_disk_full"]["traceback"]
        and scenarios["replay_disk_full"]["predictions_cover"] == scenarios["replay_disk_full"]["files_finished"],
    }
    result = {
        "bench": "faults",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python bench/faults.py " + " ".join(sys.argv[1:]),
        "machine": {"cores": os.cpu_count(), "gpu": None},
        "streams": args.streams,
        "seconds_per_stream": args.seconds,
        "chunk_seconds": CHUNK,
        "faults_tried": len(survived),
        "faults_survived": sum(survived.values()),
        "survived": survived,
        "segments_lost_total": lost,
        "scenarios": scenarios,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if all(survived.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
