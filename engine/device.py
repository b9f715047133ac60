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


def intra_op_threads(threads: int, concurrent: int = 1) -> int:
    """torch's intra-op CPU threads for ``inference.threads``: itself when > 0; for 0, torch's default
    divided among the ``concurrent`` branches that run at once (at least 1). Two OpenMP teams
    of all cores each, on the same cores, wait on each other's preempted threads at every barrier."""
    return threads if threads > 0 else max(1, DEFAULT_THREADS // max(1, concurrent))


def set_threads(threads: int) -> None:
    """Set torch's intra-op CPU threads when ``threads`` > 0 (0 keeps torch's default)."""
    if threads > 0 and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
