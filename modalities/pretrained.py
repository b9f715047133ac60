"""Load a ``transformers`` encoder from a local model directory, never from a hub."""

from __future__ import annotations

from pathlib import Path

from dfstream.engine.core.errors import ConfigError


def load_local(model_cls, directory: str, setting: str, expected: str, **kwargs):
    """``model_cls.from_pretrained(directory, local_files_only=True, **kwargs)``, with a
    :class:`ConfigError` naming ``setting`` (the config key) when the directory is not a model
    directory of the ``expected`` kind or its weights do not load."""
    path = Path(directory)
    if not (path / "config.json").exists():
        raise ConfigError(
            f"{setting}={path} has no config.json; point it at a local copy of a {expected} model directory"
        )
    try:
        return model_cls.from_pretrained(path, local_files_only=True, **kwargs)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot load {expected} weights from {path}: {e}") from None
