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


def set_threads(threads: int) -> None:
    """Set torch's intra-op CPU threads when ``threads`` > 0 (0 keeps torch's default)."""
    if threads > 0 and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
