"""Low-rank adapters (LoRA) on an encoder's attention projections, for fine-tuning a large encoder
cheaply (``train.lora_rank``), merged into its weights before the checkpoint is written.

Each query and value projection ``W`` (WavLM and wav2vec2: ``q_proj``, ``v_proj``; ViT: ``query``,
``value``) becomes ``W + (alpha / r) B A`` with ``A`` (r x in) and ``B`` (out x r) learned and ``W``
frozen; ``B`` starts at zero, so training starts from the pretrained encoder itself (Hu et al.
2021). The adapted weight is exposed as the module's ``weight``, because WavLM's attention reads
its projections' weights directly rather than calling them. :func:`merge` folds ``B A`` into ``W``
and restores plain ``nn.Linear`` layers: the saved checkpoint is an ordinary one, loaded by replay,
serve and the call hook unchanged.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

TARGETS = ("q_proj", "v_proj", "query", "value")
"""Names of the linear layers adapted: the attention's query and value projections."""


class LoRALinear(nn.Module):
    """``base`` (frozen) plus a learned rank-``rank`` update scaled by ``alpha / rank``."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        super().__init__()
        self.base = base.requires_grad_(False)
        self.scale = alpha / rank
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features, device=base.weight.device))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank, device=base.weight.device))

    @property
    def weight(self) -> torch.Tensor:
        """The adapted weight ``W + scale * B A`` ``(out, in)``."""
        return self.base.weight + self.scale * (self.lora_b @ self.lora_a)

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)

    def merged(self) -> nn.Linear:
        """A plain ``nn.Linear`` with the adapted weight."""
        out = nn.Linear(self.base.in_features, self.base.out_features, self.base.bias is not None)
        out = out.to(self.base.weight.device, self.base.weight.dtype)
        with torch.no_grad():
            out.weight.copy_(self.weight)
            if self.base.bias is not None:
                out.bias.copy_(self.base.bias)
        return out


def _replace(module: nn.Module, build) -> int:
    count = 0
    for name, child in list(module.named_children()):
        new = build(name, child)
        if new is not None:
            setattr(module, name, new)
            count += 1
        else:
            count += _replace(child, build)
    return count


def add(encoder: nn.Module, rank: int, alpha: float | None = None) -> int:
    """Adapt every :data:`TARGETS` linear layer of ``encoder`` in place (the rest stays as it is);
    returns how many. ``alpha`` defaults to ``2 * rank``."""
    alpha = 2.0 * rank if alpha is None else alpha

    def build(name, child):
        return LoRALinear(child, rank, alpha) if name in TARGETS and isinstance(child, nn.Linear) else None

    return _replace(encoder, build)


def merge(model: nn.Module) -> int:
    """Fold every adapter of ``model`` into its weight, leaving plain linear layers; returns how many."""
    return _replace(model, lambda name, child: child.merged() if isinstance(child, LoRALinear) else None)
