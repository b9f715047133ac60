"""Checkpoints: ``model.safetensors`` + ``dfstream.json``. Never pickle.

``dfstream.json`` holds the format version, library versions, the config the
model was built with, each encoder's exact ``transformers`` config, the branch
specifications, the training summary and a SHA-256 of the weights. Loading
checks all of it and fails with a :class:`CheckpointError` that says what is
wrong: a missing file, a corrupt weights file, a checksum or architecture
mismatch.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import safetensors.torch
import torch
import transformers

import dfstream
from dfstream.engine.core.artifacts import read_sidecar_json, sha256_file
from dfstream.engine.core.config import config_from_dict, config_to_dict
from dfstream.engine.runtime.detector import Detector, build_model
from dfstream.engine.core.errors import CheckpointError, ConfigError, DfstreamError

FORMAT = "dfstream.checkpoint/1"
RUNTIME_SECTIONS = ("inference", "scheduler", "limits", "localizer", "attribution", "replay", "call_hook")
"""Config sections that may differ from training when a checkpoint is loaded."""
EXECUTION_KEYS = ("device", "threads", "dtype", "quantize", "batch_size", "feature_extractor", "parallel_branches")
"""Keys of ``inference`` that say how a model runs on a machine, not what the model is: a checkpoint
neither stores nor fixes them (they come from the defaults and the overrides), so that, say,
``dtype: auto`` picks bf16 on the machine that computes it natively whatever the training machine was."""
DEPLOYMENT_SECTIONS = ("kafka", "serve")
"""Config sections of the deployment, never stored in a checkpoint (they may hold credentials)."""
WEIGHTS, META = "model.safetensors", "dfstream.json"
LATER_ARCHITECTURE = {("audio", "mel_bands"): 0, ("visual", "mouth_channels"): 0}
"""Architecture keys added after checkpoints of this format were first written, with the value that
means "as before" (the learned paths off): a checkpoint whose config does not name one was trained
without it. (``fusion.rule`` is also newer; its default, ``weighted``, is how earlier ones were trained.)"""


def save_checkpoint(detector: Detector, out: str | Path, training: dict | None) -> Path:
    """Write ``detector``'s weights and metadata into directory ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in detector.model.state_dict().items()}
    safetensors.torch.save_file(state, str(out / WEIGHTS), metadata={"format": FORMAT})
    checksum = sha256_file(out / WEIGHTS)
    meta = {
        "format": FORMAT,
        "model_id": f"dfstream-{'-'.join(detector.config.branches)}-{checksum[:12]}",
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": {"dfstream": dfstream.__version__, "torch": torch.__version__,
                     "transformers": transformers.__version__},
        "config": _model_config(config_to_dict(detector.config)),
        "architecture": {name: {"encoder": branch.encoder_config(), "class": type(branch).__name__}
                         for name, branch in detector.branches.items()},
        "specifications": {name: branch.specifications.to_dict() for name, branch in detector.branches.items()},
        "training": training,
        "weights_sha256": checksum,
    }
    (out / META).write_text(json.dumps(meta, indent=2) + "\n")
    return out


def read_metadata(directory: str | Path) -> dict:
    """``dfstream.json`` of a checkpoint directory, checked for format."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint directory not found: {directory}")
    return read_sidecar_json(directory / META, FORMAT, "dfstream checkpoint", "checkpoint", CheckpointError)


def load_checkpoint(directory: str | Path, overrides: dict | None = None) -> Detector:
    """Load a :class:`Detector` from a checkpoint directory.

    Parameters
    ----------
    directory : str or Path
        Holds ``model.safetensors`` and ``dfstream.json``.
    overrides : dict, optional
        Config sections that may differ from training (``inference``,
        ``localizer``, ``attribution``, ``replay``, ``call_hook``), merged key by
        key into the checkpoint's; architecture sections always come from the
        checkpoint.
    """
    directory = Path(directory)
    meta = read_metadata(directory)
    weights = directory / WEIGHTS
    if not weights.exists():
        raise CheckpointError(f"{directory}: {WEIGHTS} is missing")
    if sha256_file(weights) != meta.get("weights_sha256"):
        raise CheckpointError(f"{weights}: checksum does not match {META}; the file is corrupt or was replaced")
    data = _model_config(_with_earlier_architecture(meta["config"]))
    for section, values in (overrides or {}).items():
        if section not in RUNTIME_SECTIONS:
            raise ConfigError(f"config section {section!r} cannot override a checkpoint "
                              f"(only {', '.join(RUNTIME_SECTIONS)})")
        data = {**data, section: {**data.get(section, {}), **values}}  # keys not given keep the checkpoint's
    config = config_from_dict(data)
    saved = {name: arch["encoder"] for name, arch in meta["architecture"].items()}
    try:
        model = build_model(config, saved)
    except DfstreamError:
        raise
    except (ValueError, TypeError, KeyError) as e:
        raise CheckpointError(f"{directory}: cannot rebuild the architecture in {META}: {e}") from None
    try:
        state = safetensors.torch.load_file(str(weights))
    except Exception as e:  # safetensors raises its own SafetensorError for corrupt headers
        raise CheckpointError(f"{weights} is not a readable safetensors file: {e}") from None
    _load_state(model, state, directory)
    return Detector(config, model, meta["model_id"], meta.get("training"), meta["weights_sha256"])


def _model_config(data: dict) -> dict:
    """A config dict without the deployment sections and the :data:`EXECUTION_KEYS` (which checkpoints
    written before this rule still hold, and which loading ignores)."""
    data = {k: v for k, v in data.items() if k not in DEPLOYMENT_SECTIONS}
    if isinstance(data.get("inference"), dict):
        data["inference"] = {k: v for k, v in data["inference"].items() if k not in EXECUTION_KEYS}
    return data


def _with_earlier_architecture(data: dict) -> dict:
    """``data`` (a checkpoint's config) with each :data:`LATER_ARCHITECTURE` key it lacks set to "as before"."""
    data = dict(data)
    for (section, key), before in LATER_ARCHITECTURE.items():
        if isinstance(data.get(section), dict) and key not in data[section]:
            data[section] = {**data[section], key: before}
    return data


def _load_state(model: torch.nn.Module, state: dict, directory: Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
              for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        detail = "; ".join(filter(None, [
            missing and f"missing {len(missing)} tensors (e.g. {missing[0]})",
            unexpected and f"unexpected {len(unexpected)} tensors (e.g. {unexpected[0]})",
            shapes and f"shape mismatch {shapes[0]}"]))
        raise CheckpointError(f"{directory}: weights do not match the architecture in {META}: {detail}")
    model.load_state_dict(state, strict=True)
