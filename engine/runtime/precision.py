"""Numeric precision of inference: weight dtype, dynamic int8 quantization.

The encoders from ``transformers`` read their attention projections' weights
directly (``q_proj.weight``), so int8 applies to the other linear layers only:
feed-forward, feature projection and the back-end. Dynamic quantization is a
CPU path (PyTorch's quantized kernels are CPU kernels).
"""

from __future__ import annotations

import warnings

import torch
from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

from dfstream.engine.core.errors import ConfigError


def encoders_in(model: torch.nn.ModuleDict, branches, dtype: torch.dtype) -> None:
    """Convert only the branches' encoders of a float32 ``model`` to ``dtype``; everything trained
    (back-ends, spectral and mouth paths, fusion) stays float32, and each of a branch's other modules casts its
    floating inputs to float32 (a forward pre-hook), so the encoders' outputs reach them in full
    precision from there on. The encoders are most of the FLOPs; the small trained parts decide
    where a span starts and ends, and in bf16 their rounding moved the localizer's boundaries."""
    for name in branches:
        branch = model[name]
        branch.encoder.to(dtype)
        for child_name, child in branch.named_children():
            if child_name != "encoder":
                child.register_forward_pre_hook(_float_inputs)


def _float_inputs(module, args):
    return tuple(a.float() if torch.is_tensor(a) and a.is_floating_point() else a for a in args)


def int8_layers(model: torch.nn.Module) -> list[str]:
    """Qualified names of the linear layers int8 quantization converts (not attention projections)."""
    return [
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and "attention" not in name
    ]


def quantize_int8(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``model`` (float32, eval) with :func:`int8_layers` dynamically quantized to int8, in place
    (a copy would deep-copy the visual branch's face detector, whose lock cannot be copied)."""
    if device.type != "cpu":
        raise ConfigError(
            f"inference.quantize: int8 is a CPU path, but inference runs on {device}; "
            "use inference.dtype: bfloat16 on GPUs"
        )
    spec = {name: default_dynamic_qconfig for name in int8_layers(model)}
    with warnings.catch_warnings():  # torch.ao's deprecation notices, once per layer
        warnings.simplefilter("ignore", (DeprecationWarning, UserWarning))
        return quantize_dynamic(model, spec, dtype=torch.qint8, inplace=True)
