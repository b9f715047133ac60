"""Fuzz the decode path for longer than CI does, and keep what it finds.

    python bench/fuzz.py [--cases 5000] [--seed 0] [--hang-seconds 20] [--out bench/results/fuzz.json]

Mutates seed chunks of every container (``tests/fuzzing.py``: set, cut, insert
and repeat bytes) and decodes and scores each (a tiny random model) in a
child process with ``limits`` set as in the CI fuzz test. A *finding* is any
case that does not end in a verdict with finite numbers from a block within
the limits, or in a MediaError: another exception, a broken promise, a
child that dies (a crash in FFmpeg) or one that takes longer than
``--hang-seconds`` (it is killed). Each finding's input is written to
``tests/fuzz_regressions/<sha256 prefix>.bin``, which the test suite replays.
Writes JSON: cases tried, outcomes by reason, findings, slowest case, peak RSS
of the decoding process.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import hashlib
import json
import multiprocessing as mp
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the corpus and the promise live with the tests

from fuzzing import REGRESSIONS, SEEDS, mutate, outcome, seed  # noqa: E402


def _child(conn) -> None:
    """Decode payloads sent over ``conn``; answer ``(outcome, seconds, peak RSS kB)`` or ``("finding", text)``."""
    while True:
        payload = conn.recv()
        if payload is None:
            return
        tic = time.perf_counter()
        try:
            result = ("ok", outcome(payload))
        except BaseException as e:  # noqa: BLE001 - anything but MediaError is what we are looking for
            result = ("finding", f"{type(e).__name__}: {e}"[:500])
        conn.send((*result, time.perf_counter() - tic, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


class Decoder:
    """A child process that decodes; restarted after it dies or hangs."""

    def __init__(self):
        self.start()

    def start(self) -> None:
        self.conn, child = mp.Pipe()
        self.proc = mp.get_context("fork").Process(target=_child, args=(child,), daemon=True)
        self.proc.start()

    def run(self, payload: bytes, limit: float):
        self.conn.send(payload)
        if not self.conn.poll(limit):
            self.proc.kill()
            self.proc.join()
            self.start()
            return ("finding", f"hang: no answer within {limit:g} s", limit, 0)
        try:
            return self.conn.recv()
        except EOFError:
            code = self.proc.exitcode
            self.proc.join()
            self.start()
            return ("finding", f"crash: the decoding process died (exit {code})", 0.0, 0)

    def close(self) -> None:
        self.conn.send(None)
        self.proc.join(5)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hang-seconds", type=float, default=20.0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "fuzz.json")
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    seeds = [seed(i) for i in range(len(SEEDS))]
    decoder = Decoder()
    outcomes, per_container = collections.Counter(), collections.defaultdict(collections.Counter)
    findings, slowest, peak_kb = [], (0.0, None), 0
    started = time.perf_counter()
    for case in range(args.cases):
        container = int(rng.integers(len(SEEDS)))
        edits = [
            (int(rng.integers(4)), int(rng.integers(1 << 20)), int(rng.integers(256)))
            for _ in range(int(rng.integers(1, 9)))
        ]
        payload = mutate(seeds[container], edits)
        kind, what, seconds, rss = decoder.run(payload, args.hang_seconds)
        peak_kb = max(peak_kb, rss)
        fmt, codec, _, _, *video = SEEDS[container]
        name = "/".join([fmt, *video, codec])
        if seconds > slowest[0]:
            slowest = (seconds, name)
        label = what if kind == "ok" else "FINDING"
        outcomes[label] += 1
        per_container[name][label] += 1
        if kind == "finding":
            digest = hashlib.sha256(payload).hexdigest()[:16]
            REGRESSIONS.mkdir(exist_ok=True)
            (REGRESSIONS / f"{digest}.bin").write_bytes(payload)
            findings.append(
                {"case": case, "container": name, "error": what, "input": f"tests/fuzz_regressions/{digest}.bin"}
            )
            print(f"finding in case {case} ({name}): {what}", file=sys.stderr)
        if (case + 1) % 500 == 0:
            print(f"{case + 1}/{args.cases} cases, {len(findings)} findings", file=sys.stderr)
    decoder.close()
    result = {
        "bench": "fuzz",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python bench/fuzz.py " + " ".join(sys.argv[1:]),
        "machine": {"cores": os.cpu_count(), "gpu": None, "python": platform.python_version()},
        "cases": args.cases,
        "seed": args.seed,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "outcomes": dict(outcomes.most_common()),
        "per_container": {k: dict(v.most_common()) for k, v in sorted(per_container.items())},
        "findings": findings,
        "slowest_case": {"seconds": round(slowest[0], 4), "container": slowest[1]},
        "peak_rss_mb_decoder": round(peak_kb / 1024, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("cases", "wall_seconds", "outcomes", "slowest_case")}, indent=2))
    return 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
