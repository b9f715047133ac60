"""Attribution: which known generator a forged span most resembles, or "unknown".

An :class:`AttributionIndex` holds span embeddings of labelled forged spans,
centred on the mean of the spans it was built from and L2-normalised, in a
FAISS inner-product index (inner product of unit vectors = cosine similarity),
and a generator label per vector. Centring matters: a detector's embeddings
share a large common component (every forged span looks "forged"), which
otherwise crowds all cosine similarities near 1.

Index type by size: exact search (``IndexFlatIP``) up to ``FLAT_MAX`` = 2M
vectors (1 GB at 128 dimensions), an HNSW graph (``IndexHNSWFlat``, M=32)
beyond, which needs no training (so ``index add`` keeps working). The switch is
that high because attribution queries are rare (one per closed span) and exact
search stays usable: on 1M random 128-d unit vectors on 2 CPU cores
(``bench/results/attribution.json``), exact search built in 3.4 s in 501 MB
and answered 418 queries/s batched (68 ms for a single query) with recall 1,
while HNSW took 298 s and 760 MB to build and reached recall@1 of only 0.15
(1127 queries/s, efSearch 128). Random vectors are HNSW's worst case; real
span embeddings cluster by generator. Crossing
``FLAT_MAX`` on ``add`` rebuilds the flat index as HNSW. When faiss
reports GPUs, exact indexes are searched on them (identical results); HNSW has
no GPU implementation and stays on the CPU.

Decision rule: k-nearest-neighbour voting, not per-generator prototypes. A
generator's outputs are multi-modal (voices, languages, settings), and a mean
vector blurs those clusters into one point that may match none of them; the
neighbours keep them. Each generator among the ``neighbours`` nearest scores
the sum of its neighbours' similarities (a similarity-weighted vote); matches
are reported in vote order with the cosine similarity of that generator's
nearest example. Open set: when the nearest example of any generator is less
similar than the threshold, the span is attributed to ``unknown``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import faiss
import numpy as np
import safetensors.numpy

from dfstream.engine.core.artifacts import read_sidecar_json, sha256_file
from dfstream.engine.core.errors import DfstreamError
from dfstream.engine.core.types import Detection

FORMAT = "dfstream.index/1"
FLAT_MAX = 2_000_000
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 40, 128
INDEX_FILE, LABELS_FILE, SIDECAR = "index.faiss", "labels.safetensors", "dfstream.index.json"
UNKNOWN = "unknown"


class AttributionError(DfstreamError):
    """An attribution index is missing, corrupt, or built with another model."""


def normalised(x: np.ndarray) -> np.ndarray:
    """Float32 copy of ``x`` ``(n, D)`` with unit rows (zero rows stay zero)."""
    x = np.array(x, dtype=np.float32, copy=True).reshape(len(x), -1)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def _hnsw(dim: int) -> faiss.Index:
    index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.hnsw.efSearch = HNSW_EF_SEARCH
    return index


class AttributionIndex:
    """Unit-norm span embeddings with generator labels, searchable by cosine similarity.

    Parameters
    ----------
    dim : int
        Embedding size.
    meta : dict
        Sidecar fields: ``model_id``, ``model_sha256``, ``threshold`` ... (see :meth:`save`).
    """

    def __init__(
        self,
        dim: int,
        meta: dict,
        index: faiss.Index | None = None,
        labels: np.ndarray | None = None,
        generators: list[str] | None = None,
        center: np.ndarray | None = None,
    ):
        self.dim, self.meta = dim, dict(meta)
        self.center = center  # (D,), set from the first spans added
        self.index = index if index is not None else faiss.IndexFlatIP(dim)
        self.labels = labels if labels is not None else np.zeros(0, np.int64)
        self.generators = list(generators or [])
        self._search_index = None

    @property
    def kind(self) -> str:
        return "hnsw" if isinstance(self.index, faiss.IndexHNSWFlat) else "flat"

    def __len__(self) -> int:
        return self.index.ntotal

    def counts(self) -> dict[str, int]:
        """Vectors per generator."""
        ids, n = np.unique(self.labels, return_counts=True)
        return {self.generators[i]: int(c) for i, c in zip(ids, n)}

    def add(self, embeddings: np.ndarray, generators: list[str]) -> None:
        """Add span embeddings ``(n, D)`` labelled by generator name.

        The first call fixes the centre (the mean of its embeddings)."""
        embeddings = np.asarray(embeddings, np.float32).reshape(len(embeddings), -1)
        if embeddings.shape[1] != self.dim:
            raise AttributionError(f"embeddings have dimension {embeddings.shape[1]}, the index {self.dim}")
        if self.center is None:
            self.center = embeddings.mean(axis=0)
        x = self._prepare(embeddings)
        if len(x) != len(generators):
            raise AttributionError(f"{len(x)} embeddings but {len(generators)} generator labels")
        for name in generators:
            if name not in self.generators:
                self.generators.append(name)
        ids = np.array([self.generators.index(g) for g in generators], np.int64)
        if self.kind == "flat" and len(self) + len(x) > FLAT_MAX:
            old = self.index.reconstruct_n(0, len(self)) if len(self) else np.zeros((0, self.dim), np.float32)
            self.index = _hnsw(self.dim)
            if len(old):
                self.index.add(old)
        self.index.add(x)
        self.labels = np.concatenate([self.labels, ids])
        self._search_index = None

    def _prepare(self, embeddings: np.ndarray) -> np.ndarray:
        """Centre and L2-normalise ``(n, D)`` embeddings."""
        return normalised(np.asarray(embeddings, np.float32).reshape(len(embeddings), -1) - self.center)

    def _searcher(self) -> faiss.Index:
        if self._search_index is None:
            self._search_index = self.index
            if self.kind == "flat" and faiss.get_num_gpus() > 0:
                self._search_index = faiss.index_cpu_to_all_gpus(self.index)
        return self._search_index

    def search(self, embeddings: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Cosine similarities ``(m, k)`` and generator ids ``(m, k)`` (-1 where fewer exist)."""
        if len(self) == 0:
            raise AttributionError("the attribution index is empty")
        sims, idx = self._searcher().search(self._prepare(embeddings), min(k, len(self)))
        return sims, np.where(idx >= 0, self.labels[np.maximum(idx, 0)], -1)

    def attribute(
        self, embeddings: np.ndarray, threshold: float, top_k: int = 3, neighbours: int = 10
    ) -> list[tuple[dict, ...]]:
        """Matches per embedding: ``({"generator", "similarity"}, ...)`` in vote order, at
        most ``top_k``; or ``({"generator": "unknown", "similarity": best},)`` below ``threshold``."""
        sims, ids = self.search(embeddings, neighbours)
        out = []
        for row_sims, row_ids in zip(sims, ids):
            votes: dict[int, float] = {}
            nearest: dict[int, float] = {}
            for s, g in zip(row_sims, row_ids):
                if g < 0:
                    continue
                votes[g] = votes.get(g, 0.0) + float(s)
                nearest[g] = max(nearest.get(g, -1.0), float(s))
            best = max(nearest.values())
            if best < threshold:
                out.append(({"generator": UNKNOWN, "similarity": round(best, 6)},))
                continue
            ranked = sorted(votes, key=lambda g: (-votes[g], -nearest[g]))[:top_k]
            out.append(tuple({"generator": self.generators[g], "similarity": round(nearest[g], 6)} for g in ranked))
        return out

    def save(self, directory: str | Path) -> dict:
        """Write ``index.faiss``, ``labels.safetensors`` and the ``dfstream.index.json`` sidecar."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(directory / INDEX_FILE))
        safetensors.numpy.save_file(
            {"labels": self.labels, "center": self.center.astype(np.float32)}, str(directory / LABELS_FILE)
        )
        sidecar = {
            **self.meta,
            "format": FORMAT,
            "dim": self.dim,
            "metric": "cosine (inner product of unit vectors)",
            "index_type": self.kind,
            "vectors": len(self),
            "generators": self.generators,
            "counts": self.counts(),
            "updated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "sha256": {name: sha256_file(directory / name) for name in (INDEX_FILE, LABELS_FILE)},
        }
        sidecar.setdefault("created", sidecar["updated"])
        (directory / SIDECAR).write_text(json.dumps(sidecar, indent=2) + "\n")
        self.meta = {k: v for k, v in sidecar.items() if k not in ("sha256",)}
        return sidecar

    @classmethod
    def load(cls, directory: str | Path) -> AttributionIndex:
        """Read an index directory, verifying format and checksums."""
        directory = Path(directory)
        sidecar = read_sidecar(directory)
        for name, digest in sidecar["sha256"].items():
            path = directory / name
            if not path.exists():
                raise AttributionError(f"{directory}: {name} is missing")
            if sha256_file(path) != digest:
                raise AttributionError(f"{path} is corrupt or truncated (checksum differs from {SIDECAR})")
        try:
            index = faiss.read_index(str(directory / INDEX_FILE))
            tensors = safetensors.numpy.load_file(str(directory / LABELS_FILE))
            labels, center = tensors["labels"], tensors["center"]
        except Exception as e:  # faiss raises RuntimeError, safetensors its own error type
            raise AttributionError(f"{directory}: cannot read the index: {e}") from None
        if index.d != sidecar["dim"] or index.ntotal != len(labels) or center.shape != (index.d,):
            raise AttributionError(
                f"{directory}: index holds {index.ntotal} vectors of dimension {index.d}, "
                f"labels {len(labels)}, sidecar says dimension {sidecar['dim']}"
            )
        if isinstance(index, faiss.IndexHNSWFlat):
            index.hnsw.efSearch = HNSW_EF_SEARCH
        meta = {k: v for k, v in sidecar.items() if k != "sha256"}
        return cls(sidecar["dim"], meta, index, labels.astype(np.int64), sidecar["generators"], center)


def read_sidecar(directory: str | Path) -> dict:
    """The ``dfstream.index.json`` of an index directory."""
    return read_sidecar_json(Path(directory) / SIDECAR, FORMAT, "dfstream attribution index", "index", AttributionError)


def check_model(index: AttributionIndex, model_id: str, model_sha256: str | None, dim: int) -> None:
    """Fail unless ``index`` was built with the model identified by ``model_id`` / ``model_sha256``."""
    if index.dim != dim:
        raise AttributionError(f"the index holds {index.dim}-dimensional embeddings, the model makes {dim}")
    if model_sha256 is None or index.meta.get("model_sha256") != model_sha256:
        raise AttributionError(
            f"the index was built with model {index.meta.get('model_id')}, not "
            f"{model_id}; rebuild it with `dfstream index build --model ...`"
        )


@dataclasses.dataclass(frozen=True)
class Attributor:
    """Adds attribution to detections; shared by every stream of a process."""

    index: AttributionIndex
    threshold: float
    top_k: int = 3
    neighbours: int = 10

    def __call__(self, detections: list[Detection]) -> list[Detection]:
        with_embedding = [d for d in detections if d.embedding is not None]
        if not with_embedding:
            return detections
        matches = iter(
            self.index.attribute(
                np.stack([d.embedding for d in with_embedding]), self.threshold, self.top_k, self.neighbours
            )
        )
        return [dataclasses.replace(d, attribution=next(matches)) if d.embedding is not None else d for d in detections]
