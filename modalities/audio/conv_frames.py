"""The speech encoder's convolutional feature extractor, computed as matrix products over time-major frames.

``transformers`` runs the WavLM / wav2vec2 feature extractor as seven ``Conv1d``
layers in (batch, channels, time) layout, and its per-frame ``LayerNorm``
transposes to (batch, time, channels) and back around every layer. On a CPU
the first layer (one input channel, kernel 10, stride 5) is a poor fit for
oneDNN's convolution, and the layout changes around the norms cost copies:
measured on this project's 2-core CPU, the module took 107 ms (float32) and
61 ms (bf16) of a 4 s window's 135 / 86 ms through the whole audio branch.

:func:`conv_frames` computes the same function with the same weights in
(batch, time, channels) layout: each layer gathers its kernel's frames with
``Tensor.unfold`` (a strided view, copied once into a ``(frames, in x kernel)``
matrix), multiplies by the reshaped kernel (one GEMM), and normalises over the
last axis where it already lies. The result equals the module's within float
rounding (float32: within 1e-5 on unit-scale features; tested). Measured as
above: 58 ms float32, 22 ms bf16 per window (this VM's timings vary between runs;
other runs gave float32 77.7 -> 59.3 ms, see bench/results/throughput.json).

All three layer kinds of the library are covered: per-frame ``LayerNorm``
(``feat_extract_norm="layer"``), per-channel ``GroupNorm`` over time on the
first layer (``"group"``), and no norm.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_frames(extractor: nn.Module, wav: torch.Tensor) -> torch.Tensor:
    """The feature extractor's output for waveforms ``(B, samples)``, as ``(B, frames, channels)``.

    ``extractor`` is a ``transformers`` WavLM / wav2vec2 feature encoder (``.conv_layers``)."""
    x = wav[:, :, None]
    for layer in extractor.conv_layers:
        conv = layer.conv
        out_channels, in_channels, kernel = conv.weight.shape
        cols = x.unfold(1, kernel, conv.stride[0])  # (B, frames, in, kernel), a view
        rows = cols.reshape(-1, in_channels * kernel)  # the one copy: (B x frames, in x kernel)
        weight = conv.weight.reshape(out_channels, -1).t()
        y = rows @ weight if conv.bias is None else torch.addmm(conv.bias, rows, weight)
        y = y.view(*cols.shape[:2], out_channels)
        norm = getattr(layer, "layer_norm", None)
        if isinstance(norm, nn.LayerNorm):
            y = F.layer_norm(y, norm.normalized_shape, norm.weight, norm.bias, norm.eps)
        elif isinstance(norm, nn.GroupNorm):  # one group per channel: each channel over the window's time
            y = F.group_norm(y.transpose(1, 2), norm.num_groups, norm.weight, norm.bias, norm.eps).transpose(1, 2)
        x = layer.activation(y)
    return x
