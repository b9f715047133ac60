"""Load a ``transformers`` encoder named by a local directory or by a hub id, never reaching a hub.

``pretrained`` is a local model directory, or a Hugging Face hub id (``microsoft/wavlm-base-plus``,
``facebook/wav2vec2-xls-r-300m@<revision>``) looked up in the Hugging Face cache (``HF_HOME``,
``HF_HUB_CACHE``). Loading is always ``local_files_only``: a run never downloads, whatever
``HF_HUB_OFFLINE`` says, so a serving worker starts the same with or without internet.
``dfstream fetch-encoders`` fills the cache ahead of time (:func:`fetch`), on a machine that can
reach the hub. A checkpoint trained from such an encoder holds its weights and exact config, so it
loads without the cache.
"""

from __future__ import annotations

from pathlib import Path

from dfstream.engine.core.errors import ConfigError

WEIGHT_FILES = ("config.json", "*.safetensors", "preprocessor_config.json", "README.md", "LICENSE*")
"""What :func:`fetch` downloads of a model repository: its config and safetensors weights, never a
pickle (``pytorch_model.bin``); a repository without safetensors weights is refused when loaded."""


def hub_id(name: str) -> tuple[str, str | None] | None:
    """``(repo id, revision)`` when ``name`` names a hub model rather than a local directory, else None.

    A name that is an existing directory, or reads like a path (``/``, ``./``, ``../``, ``~``), is local.
    """
    if Path(name).expanduser().is_dir() or name.startswith(("/", "./", "../", "~")):
        return None
    repo, _, revision = name.partition("@")
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo)
    except HFValidationError:
        return None
    return repo, revision or None


def resolve(name: str, setting: str, expected: str) -> Path:
    """The local directory holding ``name``'s files: itself, or its snapshot in the Hugging Face cache.

    Raises ConfigError naming ``setting`` (the config key) and saying how to fetch a model that
    is not there.
    """
    hub = hub_id(name)
    if hub is None:
        path = Path(name).expanduser()
        if not (path / "config.json").exists():
            raise ConfigError(
                f"{setting}={name} has no config.json; point it at a local copy of a {expected} model "
                "directory, or at a hub id fetched with `dfstream fetch-encoders`"
            )
        return path
    from huggingface_hub.constants import HF_HUB_CACHE

    try:
        return _snapshot(*hub, local_files_only=True)
    except Exception:  # huggingface_hub raises LocalEntryNotFoundError (and others by version) when not cached
        raise ConfigError(
            f"{setting}={name}: not in the Hugging Face cache ({HF_HUB_CACHE}); dfstream never downloads "
            "at run time. Fetch it ahead of time on a machine with internet: "
            "`dfstream fetch-encoders --config FILE` (or set HF_HOME to a cache that holds it)"
        ) from None


def load_pretrained(model_cls, name: str, setting: str, expected: str, **kwargs):
    """``model_cls.from_pretrained`` of a local directory or a cached hub model (:func:`resolve`),
    safetensors weights only, with a ConfigError naming ``setting`` when they do not load."""
    path = resolve(name, setting, expected)
    if not any(path.glob("*.safetensors")):
        raise ConfigError(f"{setting}={name}: {path} holds no safetensors weights (dfstream loads no pickles)")
    from safetensors import SafetensorError

    try:
        return model_cls.from_pretrained(path, local_files_only=True, use_safetensors=True, **kwargs)
    except (OSError, ValueError, SafetensorError) as e:
        raise ConfigError(f"cannot load {expected} weights from {path}: {e}") from None


def fetch(name: str) -> Path:
    """Download hub model ``name`` (``repo[@revision]``) into the Hugging Face cache: its config
    and safetensors weights (:data:`WEIGHT_FILES`). Returns the snapshot directory; a local
    directory is returned as it is. Honours ``HF_HUB_OFFLINE`` (then only what is cached)."""
    hub = hub_id(name)
    return Path(name).expanduser() if hub is None else _snapshot(*hub, local_files_only=False)


def _snapshot(repo: str, revision: str | None, local_files_only: bool) -> Path:
    """The snapshot directory of ``repo`` at ``revision`` holding :data:`WEIGHT_FILES`: from the
    cache only, or downloaded where missing."""
    from huggingface_hub import snapshot_download

    return Path(
        snapshot_download(repo, revision=revision, allow_patterns=list(WEIGHT_FILES), local_files_only=local_files_only)
    )
