"""Device and precision selection: GPU when present and asked for, CPU otherwise; bf16 where native."""

from __future__ import annotations

from pathlib import Path

import torch

from dfstream.engine.core.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto`` -> ``cuda`` if available else ``cpu``; an explicit CUDA request without a GPU fails."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"inference.device={name} but torch sees no CUDA device; use 'auto' or 'cpu'")
    return torch.device(name)


DEFAULT_THREADS = torch.get_num_threads()  # torch's own choice (physical cores), before anyone changes it


def intra_op_threads(threads: int, concurrent: int = 1, reserved: int = 0) -> int:
    """torch's intra-op CPU threads for ``inference.threads``: itself when > 0; for 0, torch's default
    less ``reserved`` (cores other work takes meanwhile), divided among the ``concurrent`` branches
    that run at once; at least 1. An OpenMP team waits at every barrier for its slowest thread, and a
    thread preempted by other work on its core holds up the whole team."""
    return threads if threads > 0 else max(1, (DEFAULT_THREADS - max(0, reserved)) // max(1, concurrent))


def set_threads(threads: int) -> None:
    """Set torch's intra-op CPU threads when ``threads`` > 0 (0 keeps torch's default). The count is the
    calling thread's (an OpenMP setting per thread); threads that start later begin with it."""
    if threads > 0 and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")
"""CPU flags (as Linux's /proc/cpuinfo lists them) of bf16 matrix products in hardware: x86's
AVX-512-BF16 and AMX-BF16, Arm's BF16 extension. Without one, oneDNN emulates bf16 with float32
arithmetic and conversions, and bf16 encoders ran ten times slower than float32 (AVX2-only EPYC)."""


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags (``flags`` on x86, ``Features`` on Arm); empty where there is no cpuinfo."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def resolve_dtype(
    name: str, device: torch.device, quantize: str = "none", flags: frozenset[str] | None = None
) -> tuple[torch.dtype, str]:
    """``inference.dtype`` -> (torch dtype, why), the why a line for the start-up log.

    ``auto`` is bfloat16 where the hardware computes it natively (a CUDA device with bf16, a CPU
    with one of :data:`NATIVE_BF16_FLAGS`) and float32 elsewhere, or under int8 quantization
    (which works on float32 weights). ``flags`` defaults to :func:`cpu_flags`.
    """
    if name != "auto":
        return getattr(torch, name), f"{name} (inference.dtype: {name})"
    if quantize != "none":
        return torch.float32, f"float32 (inference.dtype: auto; {quantize} quantization works on float32 weights)"
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported(including_emulation=False):
            return (
                torch.bfloat16,
                f"bfloat16 (inference.dtype: auto; {torch.cuda.get_device_name(device)} computes bf16 natively)",
            )
        return torch.float32, "float32 (inference.dtype: auto; this GPU has no native bf16)"
    native = sorted(set(cpu_flags() if flags is None else flags) & set(NATIVE_BF16_FLAGS))
    if native:
        return torch.bfloat16, f"bfloat16 (inference.dtype: auto; the CPU computes bf16 natively: {', '.join(native)})"
    return torch.float32, (
        "float32 (inference.dtype: auto; the CPU has no native bf16 - no avx512_bf16, amx_bf16 "
        "or bf16 flag - and emulated bf16 is several times slower)"
    )
