"""The Detector: branches -> (fusion) -> per-frame probabilities and embeddings.

It owns the torch modules and the window geometry; it holds no per-stream state
(that is :class:`engine.stream.StreamProcessor`'s). ``forward`` is the only code
that touches the device, under ``torch.inference_mode()``.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import torch

from engine.config import Config
from engine.device import resolve_device, set_threads
from engine.precision import quantize_int8
from engine.windows import WindowPlan
from modalities import branch_class

UNTRAINED = "untrained"


@dataclass(frozen=True)
class FrameScores:
    """Scores of a batch of windows: ``probs`` ``(B, F)`` and ``embeddings`` ``(B, F, D)``."""

    probs: np.ndarray
    embeddings: np.ndarray

    def flatten(self, keep: list[int], first: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Frames of consecutive windows ``first, first+1, ...``, the first ``keep[i]`` of each:
        probabilities ``(F,)`` and embeddings ``(F, D)``."""
        rows = range(first, first + len(keep))
        return (np.concatenate([self.probs[r][:n] for r, n in zip(rows, keep)]),
                np.concatenate([self.embeddings[r][:n] for r, n in zip(rows, keep)]))


class Detector:
    """Runs the configured branches over batches of equal-length windows.

    Parameters
    ----------
    config : Config
        Validated configuration.
    model : torch.nn.ModuleDict
        Branch modules keyed by branch name.
    model_id : str
        Identifies the weights in every verdict.
    training : dict or None
        The checkpoint's training summary; ``None`` means untrained (random) weights.
    weights_sha256 : str or None
        Checksum of the checkpoint's weights (ties attribution indexes to a model).
    """

    def __init__(self, config: Config, model: torch.nn.ModuleDict, model_id: str, training: dict | None,
                 weights_sha256: str | None = None):
        self.config, self.model, self.training = config, model, training
        self.weights_sha256 = weights_sha256
        self.model_id = model_id if training else f"{model_id}/{UNTRAINED}"
        set_threads(config.inference.threads)
        self.device = resolve_device(config.inference.device)
        self.dtype = getattr(torch, config.inference.dtype)
        self.model.to(self.device, self.dtype).eval()
        if config.inference.quantize == "int8":
            self.model = quantize_int8(self.model, self.device)
        self.branch = self.model["audio"]
        spec = self.branch.specifications
        self.spec = spec
        self.plan = WindowPlan.build(config.inference, spec.sample_rate, spec.frame_samples, spec.receptive_samples)

    @classmethod
    def from_config(cls, config: Config) -> Detector:
        """A randomly initialised detector (tests, training from scratch)."""
        return cls(config, build_model(config), "dfstream-random", None)

    @property
    def trained(self) -> bool:
        return self.training is not None

    def describe(self) -> str:
        """One line saying what this model is and what it was trained on."""
        if not self.trained:
            return (f"model {self.model_id}: UNTRAINED random weights - its scores mean nothing; "
                    "train one with `dfstream train` or pass --model")
        data = self.training.get("data", {})
        return (f"model {self.model_id}: trained on {data.get('description', 'unknown data')} "
                f"({data.get('files', '?')} files, {data.get('seconds', 0):.0f} s)")

    def warn_if_untrained(self) -> None:
        """Print a loud warning on stderr when the weights are random."""
        if not self.trained:
            bar = "!" * 78
            print(f"{bar}\nWARNING: {self.describe()}\n{bar}", file=sys.stderr)

    def score(self, windows: np.ndarray) -> FrameScores:
        """Score windows, shape ``(B, plan.length)`` float32 at 16 kHz.

        Returns the frames each window scores (``plan.hop_frames`` of them,
        starting after its context), batched by ``inference.batch_size``.
        """
        size = self.config.inference.batch_size
        parts = [self._forward(windows[i:i + size]) for i in range(0, len(windows), size)]
        lo, hi = self.plan.first_kept, self.plan.first_kept + self.plan.hop_frames
        probs = np.concatenate([p[:, lo:hi] for p, _ in parts])
        embeddings = np.concatenate([e[:, lo:hi] for _, e in parts])
        return FrameScores(probs, embeddings)

    def score_stream(self, samples: np.ndarray) -> FrameScores:
        """Every frame of a whole stream, ``samples`` float32 16 kHz: probs ``(F,)``, embeddings ``(F, D)``.

        The same windows as chunked streaming (see :mod:`engine.windows`).
        """
        total, plan = len(samples), self.plan
        ks = range(plan.complete(total, final=True))
        if not ks:
            return FrameScores(np.zeros(0, np.float32), np.zeros((0, self.spec.embedding_dim), np.float32))
        scores = self.score(np.stack([plan.cut(samples, 0, k, total) for k in ks]))
        return FrameScores(*scores.flatten([plan.kept_frames(k, total) for k in ks]))

    def warm_up(self, batches: int = 2) -> None:
        """Run a full batch of silence ``batches`` times (first-call allocations, kernel selection, CUDA context)."""
        silence = np.zeros((self.config.inference.batch_size, self.plan.length), np.float32)
        for _ in range(batches):
            self._forward(silence)

    def _forward(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        wav = self.branch.preprocess(windows)
        if self.device.type == "cuda":  # page-locked host memory: the copy below runs asynchronously
            wav = wav.pin_memory()
        with torch.inference_mode():
            logits, emb = self.branch(wav.to(self.device, self.dtype, non_blocking=True))
        return self.branch.postprocess(logits, emb)


def build_model(config: Config, saved: dict | None = None) -> torch.nn.ModuleDict:
    """Branch modules for ``config.branches``; ``saved`` maps branch -> exact encoder config."""
    saved = saved or {}
    return torch.nn.ModuleDict({
        name: branch_class(name)(getattr(config, name), saved.get(name)) for name in config.branches})
