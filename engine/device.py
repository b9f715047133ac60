"""Device selection: GPU when present and asked for, CPU otherwise."""
from __future__ import annotations

import torch

from engine.errors import ConfigError


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
