"""Attribution index at scale: build time, memory, queries/s, recall@1 - in one run.

Builds an :class:`dfstream.fusion.attribution.AttributionIndex` of ``--vectors`` random
unit vectors at the default model's span-embedding size (the index type that
size gets: exact below ``FLAT_MAX``), then, unless ``--no-compare``, an HNSW
index of the same vectors with the parameters the engine would use beyond
``FLAT_MAX``, and measures both against exact search on the same queries.
Random unit vectors are the worst case for approximate search (no clusters);
real span embeddings are clustered by generator.

    python bench/attribution.py [--vectors 1000000] [--queries 1000] [--no-compare]

Writes bench/results/attribution.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from replay_speed import machine  # noqa: E402  (same machine record for every benchmark)

from dfstream.engine.core.config import Config  # noqa: E402
from dfstream.fusion import attribution  # noqa: E402
from dfstream.fusion.attribution import AttributionIndex  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def rss_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(index: AttributionIndex, queries: np.ndarray, truth: np.ndarray) -> dict:
    start = time.perf_counter()
    _, ids = index._searcher().search(index._prepare(queries), 1)
    batch = time.perf_counter() - start
    single = []
    for q in queries[:100]:
        t = time.perf_counter()
        index._searcher().search(index._prepare(q[None]), 1)
        single.append(time.perf_counter() - t)
    return {
        "queries_per_s_batched": round(len(queries) / batch, 1),
        "single_query_ms_p50": round(1000 * float(np.median(single)), 3),
        "recall_at_1": float((ids[:, 0] == truth).mean()),
    }


def build(kind: str, dim: int, vectors: np.ndarray, labels: list[str]) -> tuple[AttributionIndex, dict]:
    before = rss_mb()
    start = time.perf_counter()
    index = AttributionIndex(
        dim,
        {"model_id": "bench"},
        index=attribution._hnsw(dim) if kind == "hnsw" else None,
        center=np.zeros(dim, np.float32),
    )
    index.add(vectors, labels)
    return index, {
        "index_type": index.kind,
        "build_s": round(time.perf_counter() - start, 2),
        "memory_mb": round(rss_mb() - before, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--no-compare", action="store_true", help="skip the HNSW comparison (~8 min at 1M on 2 cores)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "attribution.json"))
    args = parser.parse_args()
    dim = Config().audio.backend_dim
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.vectors, dim), dtype=np.float32)
    faiss.normalize_L2(vectors)
    queries = rng.standard_normal((args.queries, dim), dtype=np.float32)
    faiss.normalize_L2(queries)
    labels = [f"g{i % 100}" for i in range(args.vectors)]
    exact = faiss.IndexFlatIP(dim)
    exact.add(vectors)
    truth = exact.search(queries, 1)[1][:, 0]
    del exact
    kind = "flat" if args.vectors <= attribution.FLAT_MAX else "hnsw"
    index, stats = build(kind, dim, vectors, labels)
    result = {
        "benchmark": "attribution",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "vectors": args.vectors,
        "dim": dim,
        "queries": args.queries,
        "data": "random unit vectors (no cluster structure: worst case for approximate search)",
        "flat_max": attribution.FLAT_MAX,
        "engine_index": {**stats, **measure(index, queries, truth)},
    }
    del index
    if not args.no_compare:
        other = "hnsw" if kind == "flat" else "flat"
        index, stats = build(other, dim, vectors, labels)
        result["alternative"] = {
            **stats,
            **measure(index, queries, truth),
            "hnsw": {
                "M": attribution.HNSW_M,
                "efConstruction": attribution.HNSW_EF_CONSTRUCTION,
                "efSearch": attribution.HNSW_EF_SEARCH,
            },
        }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
