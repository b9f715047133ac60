"""Which model a command runs: the shipped one unless told otherwise.

``--model`` takes a checkpoint folder, ``default`` (the same as leaving it out:
the model shipped inside the installed package, ``dfstream.models/default``,
trained by ``make model``) or ``random`` (untrained random weights, for tests
and smoke runs only; every verdict's ``model`` field then says ``UNTRAINED``).
The shipped model is package data, so it is found without a source checkout.
Imports no torch.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from dfstream.engine.core.errors import CheckpointError

DEFAULT = "default"
RANDOM = "random"
INDEX = "index"
"""The attribution index a checkpoint folder may carry (``MODEL/index``), used when no other is named."""


def shipped_model() -> Path:
    """The folder of the model shipped with the package (CheckpointError when it is not installed)."""
    folder = Path(str(resources.files("dfstream.models") / DEFAULT))
    if not (folder / "dfstream.json").is_file():
        raise CheckpointError(
            f"the shipped model is not installed at {folder} (a wheel built without its package "
            "data?): pass --model DIR, or --model random for untrained weights"
        )
    return folder


def resolve_model(name: str | None) -> Path | None:
    """A ``--model`` argument -> the checkpoint folder to load, or None for random weights.

    None and ``default`` name the shipped model, ``random`` untrained weights; anything
    else is a checkpoint folder (a folder literally named ``random`` is ``./random``).
    """
    if name is None or name == DEFAULT:
        return shipped_model()
    if name == RANDOM:
        return None
    return Path(name)


def model_index(model: Path | None) -> Path | None:
    """The attribution index inside checkpoint folder ``model`` (``MODEL/index``), when it has one."""
    if model is None:
        return None
    index = Path(model) / INDEX
    return index if (index / "dfstream.index.json").is_file() else None
