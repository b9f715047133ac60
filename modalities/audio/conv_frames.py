"""The speech encoder's convolutional feature extractor, computed as matrix products over time-major frames.

``transformers`` runs the WavLM / wav2vec2 feature extractor as seven ``Conv1d``
layers in (batch, channels, time) layout, and its per-frame ``LayerNorm``
transposes to (batch, time, channels) and back around every layer. On a CPU
the first layer (one input channel, kernel 10, stride 5) is a poor fit for
oneDNN's convolution, and the layout changes around the norms cost copies:
measured on this project's 2-core CPU, the module took 107 ms (float32) and
61 ms (bf16) of a 4 s window's 135 / 86 ms through the whole audio branch.

:func:`conv_frames` computes the same function with the same weights in
(time, channels) layout, one window at a time through all seven layers, and
normalises over the last axis where it already lies. A layer of kernel ``k`` and
stride ``s`` is ``ceil(k / s)`` matrix products, each over a strided view of the
input and no copy: taps ``g .. g+s-1`` of output frame ``t`` are ``s`` consecutive
input frames, so they lie in memory as one row of ``s x channels`` values that
starts ``s x channels`` after the previous frame's (:func:`_conv`). The result
equals the module's within float rounding (float32: within 1e-5 on unit-scale
features; tested).

Measured on this project's 2-core CPU, one thread, bf16, the 2 s of new audio of
4 windows, per window (timed four times each, alternated): 13.6 to 14.3 ms with
one ``unfold`` copy of each layer's ``(frames, in x kernel)`` matrix into a single
product (that copy was 17 % of the whole audio branch in a torch profile), 7.7 to
8.2 ms as it is now. On the way: stacking the windows after every layer (a copy of
each layer's output) was about 5 % of the branch, reshaping the kernel per window
and copying the first group's product before adding the second's a few more.

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

    ``extractor`` is a ``transformers`` WavLM / wav2vec2 feature encoder (``.conv_layers``).
    Each window goes through all layers alone (its strided views do not fold into one matrix
    with the other windows'), so only the last layer's frames are stacked."""
    layers = [(layer, _taps(layer.conv)) for layer in extractor.conv_layers]  # once per call, not per window
    return torch.stack([_window_frames(layers, window[:, None]) for window in wav])


def _taps(conv: nn.Conv1d) -> torch.Tensor:
    """``conv``'s kernel as ``(kernel x in, out)``, row ``tap x in + channel``."""
    out_channels, in_channels, kernel = conv.weight.shape
    return conv.weight.permute(2, 1, 0).reshape(kernel * in_channels, out_channels)


def _window_frames(layers: list, x: torch.Tensor) -> torch.Tensor:
    """One window's samples ``(T, 1)`` through every (layer, taps) -> ``(frames, channels)``."""
    for layer, taps in layers:
        y = _conv(x, layer.conv, taps)
        norm = getattr(layer, "layer_norm", None)
        if isinstance(norm, nn.LayerNorm):
            y = F.layer_norm(y, norm.normalized_shape, norm.weight, norm.bias, norm.eps)
        elif isinstance(norm, nn.GroupNorm):  # one group per channel: each channel over the window's time
            y = F.group_norm(y.t()[None], norm.num_groups, norm.weight, norm.bias, norm.eps)[0].t()
        x = layer.activation(y)
    return x


def _conv(x: torch.Tensor, conv: nn.Conv1d, taps: torch.Tensor) -> torch.Tensor:
    """``conv`` (no padding, no dilation; its kernel as :func:`_taps`) on one window's time-major
    frames ``x`` ``(T, in)`` -> ``(frames, out)``.

    The kernel's taps in groups of ``stride``: group ``g`` (taps ``g .. g+s-1``) of output frame
    ``t`` reads input frames ``s*t + g .. s*t + g + s - 1``, a contiguous row of ``s x in`` values
    ``s x in`` after the previous frame's; so the group's input matrix is a strided view
    (row stride ``s x in``), its product with those taps' weights one GEMM, and the later groups'
    products add up in place."""
    _, in_channels, kernel = conv.weight.shape
    stride = conv.stride[0]
    x = x.contiguous()
    frames = (x.shape[0] - kernel) // stride + 1
    y = conv.bias
    for g in range(0, kernel, stride):
        width = min(stride, kernel - g) * in_channels
        rows = x[g:].as_strided((frames, width), (stride * in_channels, 1))
        part = taps[g * in_channels : g * in_channels + width]
        if g == 0:
            y = rows @ part if y is None else torch.addmm(y, rows, part)
        else:  # into the first group's product, which is this call's own: no copy of it (under
            # autocast that product is bf16 and the in-place call is not autocast: same dtypes given)
            y.addmm_(rows.to(y.dtype), part.to(y.dtype))
    return y
