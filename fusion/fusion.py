"""Audio-visual fusion: both branches on one time step, combined per step.

Each branch's frames are repeated onto the finest branch step (audio: 20 ms;
video at 5 fps: each frame covers 10 steps). :class:`DynamicFusion` then
combines the present modalities by one of two rules (``fusion.rule``):

``weighted`` (default): every present modality gets a weight per step from its own
evidence (a small gate over the branch's embedding and logit), softmax over
the modalities present, and the fused logit is the weighted sum of the branch
logits. This follows the dynamic weighting of AVT2-DWF (Wang et al., 2024,
"AVT2-DWF: Improving Deepfake Detection with Audio-Visual Fusion and Dynamic
Weighting Strategies"), reduced to per-step scalar weights.

``any``: a step is forged when any present modality is, each branch
being an independent witness (noisy-OR): ``p = 1 - prod_m (1 - p_m)``, computed
in logit space (``S = sum_m softplus(l_m)``, fused logit ``log(expm1(S))``).
It matches the labels (``fake_segments`` is the union of the audio and the
visual forged spans) and the branches' own training targets (each branch
learns its modality's spans), and a real modality cannot hide a forged one.
No parameters. Measured on the shipped recipe it did worse, not better (README,
"Face detectors and fusion rules"): a visual branch that is present in most
frames but weak adds its false alarms to every step.

Under either rule an absent modality (no audio track, no face in the frame)
takes no part, so the fusion still works when one is missing and equals the
other branch exactly then.

A span's ``modality`` is read from the branch probabilities inside it
(:func:`span_modality`), not from the weights: the weights say which branch
the fusion trusted, the probabilities which branch saw a forgery.
"""

from __future__ import annotations

import torch
from torch import nn

from dfstream.fusion.config import FUSION_RULES

ABSENT_LOGIT = -30.0
"""Fused logit of a step where no modality is present (probability ~1e-13)."""


class DynamicFusion(nn.Module):
    """Per-step weights over modalities and the fused logit.

    Parameters
    ----------
    dims : dict
        Branch name -> embedding size, in the order the branches run.
    hidden : int
        Width of each modality's gate (``weighted`` only).
    rule : str
        ``weighted`` (gated average) or ``any`` (noisy-OR); see the module docstring.
    """

    def __init__(self, dims: dict[str, int], hidden: int = 32, rule: str = "weighted"):
        super().__init__()
        if rule not in FUSION_RULES:
            raise ValueError(f"fusion rule must be one of {FUSION_RULES}, got {rule!r}")
        self.names, self.rule = tuple(dims), rule
        self.gates = (
            nn.ModuleDict(
                {
                    name: nn.Sequential(nn.LayerNorm(d + 1), nn.Linear(d + 1, hidden), nn.GELU(), nn.Linear(hidden, 1))
                    for name, d in dims.items()
                }
            )
            if rule == "weighted"
            else None
        )

    def forward(self, logits: dict, embeddings: dict, present: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Fuse branch outputs already on the common step.

        Parameters
        ----------
        logits : dict
            Branch -> logits ``(B, F)``.
        embeddings : dict
            Branch -> embeddings ``(B, F, D_b)``.
        present : dict
            Branch -> bool ``(B, F)``: whether the modality exists at that step.

        Returns
        -------
        fused : Tensor, shape (B, F)
            Fused logits (:data:`ABSENT_LOGIT` where nothing is present).
        weights : Tensor, shape (B, F, M)
            Weight of each branch, in ``self.names`` order (0 where absent); under
            ``any``, each branch's share of ``S`` (of the evidence of forgery).
        """
        mask = torch.stack([present[n] for n in self.names], dim=-1)
        if self.rule == "any":
            return self._any(torch.stack([logits[n] for n in self.names], dim=-1), mask)
        scores = torch.stack(
            [
                self.gates[n](torch.cat([embeddings[n], logits[n].unsqueeze(-1)], dim=-1)).squeeze(-1)
                for n in self.names
            ],
            dim=-1,
        )
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
        weights = torch.nan_to_num(weights, nan=0.0)  # steps where nothing is present
        stacked = torch.stack([logits[n] for n in self.names], dim=-1)
        fused = (weights * stacked).sum(-1)
        return torch.where(mask.any(-1), fused, torch.full_like(fused, ABSENT_LOGIT)), weights

    @staticmethod
    def _any(stacked: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Noisy-OR of the present branches' logits ``(B, F, M)``, in float32 (bf16 loses expm1's
        small values); the fused logit in the input's dtype and each branch's share of ``S``."""
        evidence = torch.nn.functional.softplus(stacked.float()) * mask  # -log(1 - p_m), 0 where absent
        total = evidence.sum(-1)
        # log(expm1(S)) = S + log(1 - exp(-S)); S -> 0 gives log(S): far below any onset
        fused = total + torch.log(-torch.expm1(-total.clamp_min(1e-30)))
        fused = torch.where(mask.any(-1), fused, torch.full_like(fused, ABSENT_LOGIT))
        weights = evidence / total.clamp_min(1e-30).unsqueeze(-1)
        return fused.to(stacked.dtype), weights.to(stacked.dtype)


def single_branch(logits: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """The fused logits of a one-branch model: its own where present, :data:`ABSENT_LOGIT` elsewhere."""
    return torch.where(present, logits, torch.full_like(logits, ABSENT_LOGIT))


def to_step(x: torch.Tensor, ratio: int) -> torch.Tensor:
    """Repeat each frame of ``x`` ``(B, F, ...)`` ``ratio`` times along dim 1 (onto a finer step)."""
    return x if ratio == 1 else x.repeat_interleave(ratio, dim=1)


def span_modality(means: dict[str, float], modalities: dict[str, str], threshold: float) -> str:
    """``audio``, ``visual`` or ``audio-visual`` from each branch's mean probability in a span.

    Every branch at or above ``threshold`` carries the evidence; when none does (the fused curve
    crossed the onset on weaker evidence from several), the one with the highest mean does. The
    span's modality is that of the branches carrying it (``modalities``: branch -> ``audio`` or
    ``visual``): ``audio-visual`` when they are of both. A one-branch model's spans get its modality.
    """
    carrying = sorted(n for n, m in means.items() if m >= threshold) or [max(sorted(means), key=lambda n: means[n])]
    kinds = {modalities[n] for n in carrying}
    return "audio-visual" if len(kinds) > 1 else kinds.pop()
