"""Run an op list from :mod:`dfstream.modalities.visual.tflite_import` as a torch module, batched.

Feature maps are kept NCHW (torch's layout); the op list speaks TFLite's NHWC,
so ``pad`` and ``concat`` axes are mapped, and ``reshape`` of a 4-D map first
lays it out NHWC, exactly as the TFLite graph flattens it. TensorFlow's
``same`` padding puts the odd pixel after (bottom/right), computed per input
size; max pooling pads with -inf. The batch size is free: the graph's batch of
1 is replaced by the input's.

Speed without changing a value (outputs identical to the unfused graph on the
BlazeFace weights): kernels are stored channels-last (feed channels-last input,
e.g. an NHWC array permuted), symmetric ``same`` padding is left to ``conv2d``,
a channels-only ``pad`` feeding an ``add`` is folded into it, and an ``add`` or a
``relu`` whose input has no other reader writes into it (:func:`_fuse`).
"""

from __future__ import annotations

import math
import re

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

_NHWC_TO_NCHW = {0: 0, 1: 2, 2: 3, 3: 1, -1: 1, -2: 3, -3: 2}


class GraphNet(nn.Module):
    """The graph ``ops`` with weights ``tensors`` (name -> float array), from ``inputs[0]`` to ``outputs``.

    ``forward(x)``: ``x`` float ``(B, C, H, W)`` -> a tuple of the output tensors, in ``outputs`` order.
    """

    def __init__(self, ops: list[dict], tensors: dict[str, np.ndarray], inputs: list[str], outputs: list[str]):
        super().__init__()
        if len(inputs) != 1:
            raise ValueError(f"graph must have one input, has {len(inputs)}")
        self.ops, self.input, self.outputs = _fuse(ops, list(outputs)), inputs[0], list(outputs)
        self._keys = {}
        for name, value in tensors.items():
            key = re.sub(r"\W", "_", name)
            while key in self._buffers:
                key += "_"
            self._keys[name] = key
            tensor = torch.as_tensor(np.asarray(value, np.float32)).clone()
            if tensor.dim() == 4:  # kernels channels-last, as the inputs: ~2x faster on CPU, same values
                tensor = tensor.contiguous(memory_format=torch.channels_last)
            self.register_buffer(key, tensor)

    def weight(self, name: str) -> torch.Tensor:
        return self._buffers[self._keys[name]]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        values = {self.input: x}
        for op in self.ops:
            args = [values[name] for name in op["inputs"]]
            values[op["output"]] = _act(self._run(op, args), op.get("activation"))
        return tuple(values[name] for name in self.outputs)

    def _run(self, op: dict, args: list[torch.Tensor]) -> torch.Tensor:
        kind = op["op"]
        if kind == "conv":
            weight = self.weight(op["weight"])
            x, padding = args[0], 0
            if op["padding"] == "same":
                (h0, h1), (w0, w1) = _same_pads(x.shape[2:], weight.shape[2:], op["stride"])
                if h0 == h1 and w0 == w1:
                    padding = (h0, w0)  # symmetric: conv2d pads itself
                else:
                    x = F.pad(x, (w0, w1, h0, h1))
            return F.conv2d(
                x, weight, self.weight(op["bias"]), stride=op["stride"], padding=padding, groups=op["groups"]
            )
        if kind == "max_pool":
            x = args[0]
            if op["padding"] == "same":
                x = _same_pad(x, op["kernel"], op["stride"], -math.inf)
            return F.max_pool2d(x, op["kernel"], op["stride"])
        if kind == "add":
            if op.get("inplace") and args[1].shape == args[0].shape:
                return args[1].add_(args[0])  # b + a is a + b, bit for bit
            return args[0] + args[1]
        if kind == "add_padded":  # add(pad(a, channels after), b) without building the padded copy
            out = args[1] if op.get("inplace") else args[1].clone()
            out[:, : args[0].shape[1]] += args[0]
            return out
        if kind == "relu":
            return torch.relu_(args[0]) if op.get("inplace") else torch.relu(args[0])
        if kind == "pad":
            (h0, h1), (w0, w1), (c0, c1) = op["nhwc"]
            return F.pad(args[0], (w0, w1, h0, h1, c0, c1))
        if kind == "reshape":
            x = args[0]
            if x.dim() == 4:
                x = x.permute(0, 2, 3, 1)
            return x.reshape(x.shape[0], *op["shape"])
        if kind == "concat":
            axis = op["axis"]
            if args[0].dim() == 4:
                axis = _NHWC_TO_NCHW[axis]
            return torch.cat(args, dim=axis)
        raise ValueError(f"unknown op {kind!r}")


def _act(x: torch.Tensor, activation: str | None) -> torch.Tensor:
    if activation is None:
        return x
    if activation == "relu":
        return torch.relu(x)
    raise ValueError(f"unknown activation {activation!r}")


def _same_pads(sizes, kernel, stride) -> list[tuple[int, int]]:
    """TensorFlow ``same`` padding per spatial axis as (before, after): output size
    ceil(in / stride), the odd pixel after."""
    pads = []
    for size, k, s in zip(sizes, kernel, stride):
        total = max((math.ceil(int(size) / s) - 1) * s + int(k) - int(size), 0)
        pads.append((total // 2, total - total // 2))
    return pads


def _same_pad(x: torch.Tensor, kernel, stride, value: float) -> torch.Tensor:
    """NCHW ``x`` padded as TensorFlow's ``same`` (:func:`_same_pads`) with ``value``."""
    (h0, h1), (w0, w1) = _same_pads(x.shape[2:], kernel, stride)
    if not any((h0, h1, w0, w1)):
        return x
    return F.pad(x, (w0, w1, h0, h1), value=value)


def _fuse(ops: list[dict], outputs: list[str]) -> list[dict]:
    """The same computation with fewer copies: an ``add`` of a channels-only ``pad`` (BlazeBlock's
    shortcut) becomes ``add_padded`` when the pad has no other consumer; an ``add`` adds into its
    second input, and a ``relu`` runs in place, when nothing else reads that input."""
    uses: dict[str, int] = {}
    for op in ops:
        for name in op["inputs"]:
            uses[name] = uses.get(name, 0) + 1
    for name in outputs:
        uses[name] = uses.get(name, 0) + 1
    made = {op["output"]: op for op in ops}
    fused, dropped = [], set()
    for op in ops:
        op = dict(op)
        if op["op"] == "add" and op.get("activation") is None:
            pad = made.get(op["inputs"][0])
            if (
                pad is not None
                and pad["op"] == "pad"
                and uses[pad["output"]] == 1
                and pad["nhwc"][:2] == [[0, 0], [0, 0]]
                and pad["nhwc"][2][0] == 0
            ):
                op.update(op="add_padded", inputs=[pad["inputs"][0], op["inputs"][1]])
                dropped.add(pad["output"])
            other = op["inputs"][1]
            op["inplace"] = (
                uses[other] == 1
                and other != op["inputs"][0]  # a convolution's own output only
                and made.get(other, {}).get("op") == "conv"
            )
        elif op["op"] == "relu" and uses[op["inputs"][0]] == 1 and op["inputs"][0] in made:
            op["inplace"] = True
        fused.append(op)
    return [op for op in fused if op["output"] not in dropped]
