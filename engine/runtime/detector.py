"""The Detector: branches -> fusion -> per-frame probabilities and embeddings.

It owns the torch modules and the window geometry; it holds no per-stream state
(that is :class:`dfstream.engine.runtime.stream.StreamProcessor`'s). ``forward`` is the only code
that touches the device, under ``torch.inference_mode()``.
"""

from __future__ import annotations

import logging
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch

from dfstream.engine.core.branch import Prepared
from dfstream.engine.core.errors import MediaError
from dfstream.engine.media.blocks import MediaRequest, as_media
from dfstream.engine.runtime.config import ModelConfig
from dfstream.engine.runtime.device import intra_op_threads, resolve_device, resolve_dtype, set_threads
from dfstream.engine.runtime.frame_cache import FrameCache
from dfstream.engine.runtime.precision import encoders_in, quantize_int8
from dfstream.engine.runtime.windows import WindowPlan
from dfstream.fusion.fusion import DynamicFusion, single_branch, to_step
from dfstream.modalities import branch_class

UNTRAINED = "UNTRAINED"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameScores:
    """Scores of a batch of windows on the fused time step (``Detector.step``).

    ``probs`` ``(B, F)`` fused forgery probabilities, ``embeddings`` ``(B, F, D)``
    (the branches' embeddings side by side, zeros where a modality is absent),
    ``branches`` maps each branch to its own probabilities ``(B, F)`` (0 where absent).
    """

    probs: np.ndarray
    embeddings: np.ndarray
    branches: dict = field(default_factory=dict)

    def flatten(self, keep: list[int], first: int = 0) -> tuple[np.ndarray, np.ndarray, dict]:
        """Frames of consecutive windows ``first, first+1, ...``, the first ``keep[i]`` of each:
        probabilities ``(F,)``, embeddings ``(F, D)`` and per-branch probabilities ``{name: (F,)}``."""
        rows = list(zip(range(first, first + len(keep)), keep))

        def cat(a):
            return np.concatenate([a[r][:n] for r, n in rows])

        return cat(self.probs), cat(self.embeddings), {k: cat(v) for k, v in self.branches.items()}


class Detector:
    """Runs the configured branches and their fusion over batches of windows.

    Every branch cuts its own input (16 kHz samples, sampled video frames) into
    windows on the same grid of stream time (``inference.hop_seconds``,
    ``context_seconds``); window ``k`` of every branch covers the same seconds.
    The branches' frames are fused onto the finest branch step (:attr:`step`).

    Parameters
    ----------
    config : ModelConfig
        Validated configuration.
    model : torch.nn.ModuleDict
        Branch modules keyed by branch name, and ``fusion`` when there are several.
    model_id : str
        Identifies the weights in every verdict.
    training : dict or None
        The checkpoint's training summary; ``None`` means untrained (random) weights.
    weights_sha256 : str or None
        Checksum of the checkpoint's weights (ties attribution indexes to a model).
    """

    def __init__(
        self,
        config: ModelConfig,
        model: torch.nn.ModuleDict,
        model_id: str,
        training: dict | None,
        weights_sha256: str | None = None,
    ):
        self.config, self.model, self.training = config, model, training
        self.weights_sha256 = weights_sha256
        self.model_id = model_id if training else f"{model_id}/{UNTRAINED}"
        self.parallel = config.inference.parallel_branches and len(config.branches) > 1
        self.reserved_cores = 0  # cores others compute on meanwhile: a Scheduler's decode pool (share_cores)
        set_threads(self.threads)
        self.device = resolve_device(config.inference.device)
        self.dtype, why = resolve_dtype(config.inference.dtype, self.device, config.inference.quantize)
        log.info("inference on %s in %s", self.device, why)
        self.model.to(self.device, torch.float32).eval()
        if self.dtype != torch.float32:  # the encoders in bf16; what was trained on top stays float32
            encoders_in(self.model, config.branches, self.dtype)
        if config.inference.quantize == "int8":
            self.model = quantize_int8(self.model, self.device)
        self.branches = {name: self.model[name] for name in config.branches}
        for branch in self.branches.values():
            branch.configure_inference(config.inference.feature_extractor)
        self.media = MediaRequest()  # what the branches read of decoded media
        for branch in self.branches.values():
            self.media = self.media.merge(branch.media())
        self.fusion = self.model["fusion"] if "fusion" in self.model else None
        self.specs = {name: b.specifications for name, b in self.branches.items()}
        self.modalities = {name: spec.modality for name, spec in self.specs.items()}
        self.plans = {
            name: WindowPlan.build(config.inference, s.sample_rate, s.frame_samples, s.receptive_samples)
            for name, s in self.specs.items()
        }
        self.step = min(s.frame_step for s in self.specs.values())
        self.ratios = {name: round(s.frame_step / self.step) for name, s in self.specs.items()}
        self.hop_frames = round(config.inference.hop_seconds / self.step)
        self.embedding_dim = sum(s.embedding_dim for s in self.specs.values())
        # branches whose feature-extractor frames a stream's next window can reuse (engine/runtime/frame_cache.py)
        self.cacheable = tuple(
            name
            for name, b in self.branches.items()
            if b.cacheable and self.plans[name].context >= self.plans[name].frame
        )
        # several branches run at once, each on its own thread, when inference.parallel_branches
        self._pool = (
            ThreadPoolExecutor(len(self.branches), thread_name_prefix="dfstream-branch") if self.parallel else None
        )
        if self._pool is not None:  # its threads end with the detector
            weakref.finalize(self, self._pool.shutdown, wait=False)
        first = config.branches[0]  # the primary branch: the one raw arrays passed to score() are for
        self.branch, self.spec, self.plan = self.branches[first], self.specs[first], self.plans[first]

    @classmethod
    def from_config(cls, config: ModelConfig, seed: int = 0) -> Detector:
        """A randomly initialised detector (tests, training from scratch); ``seed`` draws the fusion's
        weights (``train.seed`` in training)."""
        return cls(config, build_model(config, seed=seed), "dfstream-random", None)

    @property
    def threads(self) -> int:
        """torch's CPU threads for a batch that one branch scores alone
        (:func:`dfstream.engine.runtime.device.intra_op_threads`)."""
        return intra_op_threads(self.config.inference.threads, 1, self.reserved_cores)

    @property
    def threads_parallel(self) -> int:
        """torch's CPU threads for each of several branches scoring a batch at once."""
        return intra_op_threads(self.config.inference.threads, len(self.branches), self.reserved_cores)

    def share_cores(self, cores: int) -> None:
        """Leave ``cores`` to work that runs beside the model (a scheduler's decode workers): with
        ``inference.threads: 0`` the branches divide the rest. Measured on this project's 2-core CPU,
        a model thread with both cores while two decode workers ran was slower than one with one core."""
        self.reserved_cores = max(0, int(cores))

    @property
    def trained(self) -> bool:
        return self.training is not None

    def describe(self) -> str:
        """One line saying what this model is and what it was trained on."""
        if not self.trained:
            return (
                f"model {self.model_id}: UNTRAINED random weights (--model random) - its scores mean "
                "nothing; leave --model out for the shipped model, or train one with `dfstream train`"
            )
        data = self.training.get("data", {})
        return (
            f"model {self.model_id}: trained on {data.get('description', 'unknown data')} "
            f"({data.get('files', '?')} files, {data.get('seconds', 0):.0f} s)"
        )

    def warn_if_untrained(self) -> None:
        """A loud warning (logged) when the weights are random."""
        if not self.trained:
            bar = "!" * 78
            log.warning("%s\nWARNING: %s\n%s", bar, self.describe(), bar)

    def prepare(self, block) -> Prepared:
        """CPU work before scoring, safe off the model thread: each branch's input from decoded
        media (a MediaBlock or AudioBlock; the visual branch crops faces here). A Prepared block
        passes as it is. MediaError ``no-media`` when no branch reads any of the block's media."""
        if isinstance(block, Prepared):
            return block
        block = as_media(block)
        inputs = {name: x for name, branch in self.branches.items() if (x := branch.prepare(block)) is not None}
        if not inputs:
            raise MediaError(f"no media this model reads: its branches are {', '.join(self.branches)}", "no-media")
        return Prepared(inputs)

    def score(
        self, windows, present: dict | None = None, keys: list | None = None, caches: dict | None = None
    ) -> FrameScores:
        """Score a batch of windows.

        Parameters
        ----------
        windows : dict or ndarray
            Branch name -> its windows (audio float32 ``(B, plan.length)``, video
            uint8 ``(B, plan.length, S, S, 3)``); a bare array is the primary branch's.
        present : dict, optional
            Branch name -> bool ``(B, plan.hop_frames)``: which scored frames hold
            real media of that modality; default all. A branch absent from
            ``windows`` is absent everywhere.
        keys : list, optional
            ``(stream id, window index)`` of each row, rows of a stream in window order; with
            ``caches`` (branch name -> :class:`dfstream.engine.runtime.frame_cache.FrameCache`, for branches in
            :attr:`cacheable`) a window reuses its stream's previous window's feature frames.

        Returns the frames each window scores on the fused step, batched by ``inference.batch_size``.
        """
        if not isinstance(windows, dict):
            windows = {self.config.branches[0]: windows}
        n = len(next(iter(windows.values())))
        present = {
            name: (present or {}).get(name, np.ones((n, self.plans[name].hop_frames), bool))
            if name in windows
            else np.zeros((n, self.plans[name].hop_frames), bool)
            for name in self.branches
        }
        size = self.config.inference.batch_size
        parts = [
            self._forward(
                {k: v[i : i + size] for k, v in windows.items()},
                {k: v[i : i + size] for k, v in present.items()},
                None if keys is None else keys[i : i + size],
                caches,
            )
            for i in range(0, n, size)
        ]
        return FrameScores(
            np.concatenate([p.probs for p in parts]),
            np.concatenate([p.embeddings for p in parts]),
            {k: np.concatenate([p.branches[k] for p in parts]) for k in self.branches},
        )

    def score_stream(self, samples: np.ndarray) -> FrameScores:
        """Every frame of a whole audio stream (primary branch), ``samples`` float32 16 kHz:
        probs ``(F,)``, embeddings ``(F, D)``. The same windows as chunked streaming
        (see :mod:`dfstream.engine.runtime.windows`)."""
        total, plan = len(samples), self.plan
        ks = range(plan.complete(total, final=True))
        if not ks:
            return FrameScores(np.zeros(0, np.float32), np.zeros((0, self.embedding_dim), np.float32))
        scores = self.score(np.stack([plan.cut(samples, 0, k, total) for k in ks]))
        return FrameScores(*scores.flatten([plan.kept_frames(k, total) for k in ks]))

    def warm_up(self, batches: int = 2) -> None:
        """Run empty windows through the model before the first real ones: a full batch
        ``batches`` times, then every smaller batch once, and (for :attr:`cacheable` branches)
        every batch with carried feature frames too. First calls of each input shape pay for
        allocations and kernel selection (oneDNN primitives for bf16 on CPUs, the CUDA context);
        a live stream's first windows should not."""
        size = self.config.inference.batch_size
        empty = {name: branch.empty_input(0) for name, branch in self.branches.items()}

        def run(n: int, keys=None, caches=None) -> None:
            windows = {
                name: np.zeros((n, plan.length) + empty[name].shape[1:], empty[name].dtype)
                for name, plan in self.plans.items()
            }
            present = {name: np.ones((n, plan.hop_frames), bool) for name, plan in self.plans.items()}
            self._forward(windows, present, keys, caches)

        for _ in range(batches):
            run(size)
        for n in range(1, size + 1):
            if not self.cacheable:
                run(n)
                continue
            caches = {name: FrameCache() for name in self.cacheable}
            for k in (1, 2):  # window 1 with nothing carried (from scratch); window 2 reuses its frames
                run(n, [(f"warm-up-{i}", k) for i in range(n)], caches)

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda":  # page-locked host memory: the copy below runs asynchronously
            x = x.pin_memory()
        return x.to(self.device, self.dtype, non_blocking=True)

    def _forward(
        self, windows: dict, present: dict, keys: list | None = None, caches: dict | None = None
    ) -> FrameScores:
        with torch.inference_mode():
            busy = [name for name in self.branches if np.asarray(present[name]).any()]
            if self._pool is not None and len(busy) > 1:  # the branches' parts on the pool's threads
                outs = self._parts_forward(windows, present, keys, caches)
            else:  # one branch has media (e.g. audio-only streams of an audio-visual model): it gets every thread
                outs = {
                    name: self._branch_forward(name, windows, present, keys, caches, self.threads)
                    for name in self.branches
                }
            logits = {n: o[0] for n, o in outs.items()}
            embs = {n: o[1] for n, o in outs.items()}
            pres = {n: o[2] for n, o in outs.items()}
            if self.fusion is not None:
                fused, _ = self.fusion(logits, embs, pres)
            else:
                (name,) = self.branches
                fused = single_branch(logits[name], pres[name])
            anywhere = torch.stack(list(pres.values())).any(0)
            probs = torch.where(anywhere, torch.sigmoid(fused.float()), 0.0).cpu().numpy()
            branch_probs = {n: (torch.sigmoid(logits[n].float()) * pres[n]).cpu().numpy() for n in self.branches}
            emb = torch.cat([embs[n].float() * pres[n].unsqueeze(-1) for n in self.branches], dim=-1).cpu().numpy()
        return FrameScores(probs, emb, branch_probs)

    def _parts_forward(self, windows: dict, present: dict, keys, caches) -> dict:
        """Every branch's outputs for a batch, each branch's rows cut into as many parts as the pool has
        threads (:func:`row_parts`: a stream's windows in one part, in order), all parts of all branches
        queued on the pool at once, each on ``threads_parallel`` threads. A thread that is done with
        its part of a cheap branch takes a part of a costly one, so no core idles while work is queued:
        one branch per thread left the visual thread idle half of each batch in float32 on two cores
        (audio 540 ms, visual 290 ms per 8 windows). Rows are independent (batch norm at inference
        uses its running statistics), so the parts give each row what the whole batch would, up to
        float rounding."""
        n = len(next(iter(present.values())))
        parts = row_parts(keys, n, len(self.branches))  # the pool has a thread per branch
        futures = {name: [] for name in self.branches}
        for rows in parts:  # the first part of every branch first: costly and cheap interleave
            sub_windows = {k: v[rows] for k, v in windows.items()}
            sub_present = {k: np.asarray(v)[rows] for k, v in present.items()}
            sub_keys = None if keys is None else [keys[r] for r in rows]
            for name in self.branches:
                futures[name].append(
                    self._pool.submit(
                        self._branch_forward, name, sub_windows, sub_present, sub_keys, caches, self.threads_parallel
                    )
                )
        back = torch.from_numpy(np.argsort(np.concatenate(parts))).to(self.device)
        return {name: tuple(torch.cat(o)[back] for o in zip(*(f.result() for f in fs))) for name, fs in futures.items()}

    def _branch_forward(self, name: str, windows: dict, present: dict, keys, caches, threads: int):
        """One branch's logits, embeddings and presence on the fused step for a batch of windows, its
        torch ops on ``threads`` CPU threads (torch's count is per calling thread)."""
        branch, plan, ratio = self.branches[name], self.plans[name], self.ratios[name]
        set_threads(threads)
        with torch.inference_mode():
            lo, hop = plan.first_kept, plan.hop_frames
            mask = torch.from_numpy(np.asarray(present[name], bool)).to(self.device)
            rows = np.flatnonzero(np.asarray(present[name]).any(axis=1))
            b = len(mask)
            lg = torch.zeros((b, hop), device=self.device)  # the back-ends' output: float32
            em = torch.zeros((b, hop, self.specs[name].embedding_dim), device=self.device)
            cache = (caches or {}).get(name) if keys is not None else None
            if cache is not None and branch.carry_unscored:  # unscored windows carry their frames on too
                frames = cache.features(
                    branch,
                    plan,
                    self._to_device(branch.preprocess(windows[name])),
                    keys,
                    np.asarray(present[name]).any(axis=1),
                )
            elif cache is not None and len(rows):  # an unscored window ends its stream's chain
                frames = cache.features(
                    branch, plan, self._to_device(branch.preprocess(windows[name][rows])), [keys[r] for r in rows]
                )
            if len(rows):
                if cache is not None:
                    out_l, out_e = branch.forward_features(frames)
                else:
                    out_l, out_e = branch(self._to_device(branch.preprocess(windows[name][rows])))
                index = torch.from_numpy(rows).to(self.device)
                lg[index], em[index] = out_l[:, lo : lo + hop].float(), out_e[:, lo : lo + hop].float()
            return to_step(lg, ratio), to_step(em, ratio), to_step(mask, ratio)


def row_parts(keys: list | None, n: int, parts: int) -> list[np.ndarray]:
    """Rows ``0..n-1`` of a batch in up to ``parts`` groups of about equal size, each in row order; with
    ``keys`` (``(stream id, window index)`` per row) a stream's rows stay in one group, for its
    windows chain their carried frames in order (:mod:`dfstream.engine.runtime.frame_cache`)."""
    if keys is None:
        return [g for g in np.array_split(np.arange(n), min(parts, n)) if len(g)]
    streams: dict = {}
    for row, (stream, _) in enumerate(keys):
        streams.setdefault(stream, []).append(row)
    loads = [[] for _ in range(min(parts, len(streams)))]
    for rows in sorted(streams.values(), key=len, reverse=True):  # largest first, onto the lightest group
        min(loads, key=len).extend(rows)
    return [np.array(sorted(g)) for g in loads if g]


def build_model(config: ModelConfig, saved: dict | None = None, seed: int = 0) -> torch.nn.ModuleDict:
    """Branch modules for ``config.branches`` and, with more than one, their fusion (its weights
    drawn from ``seed``); ``saved`` maps branch -> exact encoder config."""
    saved = saved or {}
    modules = {name: branch_class(name)(config.branch(name), saved.get(name)) for name in config.branches}
    if len(modules) > 1:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            modules["fusion"] = DynamicFusion(
                {n: m.specifications.embedding_dim for n, m in modules.items()},
                config.fusion.hidden,
                config.fusion.rule,
            )
    return torch.nn.ModuleDict(modules)
