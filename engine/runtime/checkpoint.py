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
from dfstream.engine.core.errors import CheckpointError, ConfigError, DfstreamError
from dfstream.engine.runtime.config import EXECUTION_KEYS, RUNTIME_SECTIONS, ModelConfig
from dfstream.engine.runtime.detector import Detector, build_model
from dfstream.modalities import BRANCHES

FORMAT = "dfstream.checkpoint/1"
WEIGHTS, META = "model.safetensors", "dfstream.json"


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
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "versions": {
            "dfstream": dfstream.__version__,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        },
        "config": _model_config(detector.config.to_dict()),
        "architecture": {
            name: {"encoder": branch.encoder_config(), "class": type(branch).__name__}
            for name, branch in detector.branches.items()
        },
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
    data = _with_earlier_architecture(_model_config(meta["config"]))
    for section, values in (overrides or {}).items():
        if section not in RUNTIME_SECTIONS:
            raise ConfigError(
                f"config section {section!r} cannot override a checkpoint (only {', '.join(RUNTIME_SECTIONS)})"
            )
        data = {**data, section: {**data.get(section, {}), **values}}  # keys not given keep the checkpoint's
    config = ModelConfig.from_dict(data)
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
    """The model's part of a config dict: without the sections of other owners (the deployment's and
    training's, which checkpoints written before the split still hold) and the :data:`EXECUTION_KEYS`;
    loading ignores both."""
    data = {k: v for k, v in data.items() if k in ModelConfig.keys()}
    if isinstance(data.get("inference"), dict):
        data["inference"] = {k: v for k, v in data["inference"].items() if k not in EXECUTION_KEYS}
    return data


def _with_earlier_architecture(data: dict) -> dict:
    """``data`` (a checkpoint's config) with each key its branch sections lack from their
    ``ADDED_LATER`` set to "as before" (a checkpoint that does not name one was trained without it;
    ``fusion.rule`` is also newer, and its default, ``weighted``, is how earlier ones were trained)."""
    data = dict(data)
    for name, branch in BRANCHES.items():
        section = data.get(name)
        if isinstance(section, dict):
            data[name] = {**branch.config_class.ADDED_LATER, **section}
    return data


def _load_state(model: torch.nn.Module, state: dict, directory: Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or shapes:
        detail = "; ".join(
            filter(
                None,
                [
                    missing and f"missing {len(missing)} tensors (e.g. {missing[0]})",
                    unexpected and f"unexpected {len(unexpected)} tensors (e.g. {unexpected[0]})",
                    shapes and f"shape mismatch {shapes[0]}",
                ],
            )
        )
        raise CheckpointError(f"{directory}: weights do not match the architecture in {META}: {detail}")
    model.load_state_dict(state, strict=True)
