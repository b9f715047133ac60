"""WavLM's self-attention for inference through ``torch``'s ``scaled_dot_product_attention``.

``transformers``' WavLM attention calls ``F.multi_head_attention_forward`` with
``need_weights=True``: it lays the states out time-major, materializes the
attention probabilities of every head in the input's dtype, and averages them
over heads for a caller that reads none of them. :func:`sdpa_attention` computes
the same thing (projections, the gated relative position bias as an additive
mask, softmax, output projection) with one fused kernel and no weights returned.
The result equals the library's within float rounding (``tests/test_attention.py``:
1e-5 in float32); in bfloat16 the fused kernel accumulates in float32, so it is
no less precise. :func:`use_sdpa` binds it to a model's WavLM attention modules;
a module in training mode, or given a padding mask, still runs the library's path.

Measured (bfloat16, one thread, 8 windows of 200 frames through the shipped
checkpoint's 4-layer encoder and back-end): 10.4-11.3 -> 9.0-9.6 ms per window.
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F
from transformers.models.wavlm.modeling_wavlm import WavLMAttention


def sdpa_attention(
    self: WavLMAttention, hidden_states: torch.Tensor, attention_mask, gated_position_bias: torch.Tensor
) -> tuple[torch.Tensor, None]:
    """``WavLMAttention.torch_multi_head_self_attention`` with a fused kernel: states
    ``(B, T, E)`` and the gated bias ``(B * heads, T, T)`` -> output ``(B, T, E)``, no weights."""
    if self.training or attention_mask is not None:
        return WavLMAttention.torch_multi_head_self_attention(self, hidden_states, attention_mask, gated_position_bias)
    b, t, e = hidden_states.shape
    heads = self.num_heads

    def project(layer: torch.nn.Linear) -> torch.Tensor:
        return layer(hidden_states).view(b, t, heads, -1).transpose(1, 2)

    out = F.scaled_dot_product_attention(
        project(self.q_proj),
        project(self.k_proj),
        project(self.v_proj),
        attn_mask=gated_position_bias.view(b, heads, t, t),
    )
    return self.out_proj(out.transpose(1, 2).reshape(b, t, e)), None


def use_sdpa(model: torch.nn.Module) -> int:
    """Bind :func:`sdpa_attention` to every WavLM attention module of ``model``; returns how many."""
    n = 0
    for module in model.modules():
        if isinstance(module, WavLMAttention):
            module.torch_multi_head_self_attention = types.MethodType(sdpa_attention, module)
            n += 1
    return n
