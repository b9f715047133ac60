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

from engine.errors import ConfigError


def int8_layers(model: torch.nn.Module) -> list[str]:
    """Qualified names of the linear layers int8 quantization converts (not attention projections)."""
    return [name for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and "attention" not in name]


def quantize_int8(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``model`` (float32, eval) with :func:`int8_layers` dynamically quantized to int8, in place
    (a copy would deep-copy the visual branch's face detector, whose lock cannot be copied)."""
    if device.type != "cpu":
        raise ConfigError(f"inference.quantize: int8 is a CPU path, but inference runs on {device}; "
                          "use inference.dtype: bfloat16 on GPUs")
    spec = {name: default_dynamic_qconfig for name in int8_layers(model)}
    with warnings.catch_warnings():  # torch.ao's deprecation notices, once per layer
        warnings.simplefilter("ignore", (DeprecationWarning, UserWarning))
        return quantize_dynamic(model, spec, dtype=torch.qint8, inplace=True)
