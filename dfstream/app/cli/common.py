"""What several commands share: the config file, the model (``--model``) and its attribution index."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from dfstream.app.config import AppConfig, app_config
from dfstream.engine.core.config import read_yaml, replace
from dfstream.engine.core.errors import ConfigError

EPILOG = "Configuration keys and defaults: configs/default.yaml. Output schema: README.md."
MODEL_HELP = (
    "the model: a checkpoint folder (model.safetensors + dfstream.json); 'default' (the same as "
    "leaving it out): the model shipped with dfstream (dfstream.models/default, read its MODEL_CARD.md: "
    "trained on SYNTHETIC manipulations of real recordings); 'random': UNTRAINED random weights "
    "(tests only; said in every verdict)"
)
INDEX_HELP = (
    "attribution index (from `dfstream index build`); default: attribution.index from the config, else "
    "the model's own MODEL/index when it has one"
)


@dataclasses.dataclass(frozen=True)
class Loaded:
    """A command's model and settings: the detector, the whole config (its ``model`` the detector's),
    and the checkpoint folder (None for random weights)."""

    detector: object
    config: AppConfig
    folder: Path | None


def load_model(model: str | None, config_path: str | None, call: bool = False) -> Loaded:
    """The detector of ``--model`` (the shipped model by default, random weights by name, said loudly)
    with ``--config`` applied.

    With a checkpoint, ``--config`` may set the runtime sections
    (:data:`~dfstream.engine.runtime.config.RUNTIME_SECTIONS`) and the deployment's; its
    architecture comes from the checkpoint. ``call`` gives the model the call hook's geometry
    (``call_hook.hop_seconds`` and ``context_seconds`` as the inference hop and context)."""
    from dfstream.engine.core.model_store import resolve_model
    from dfstream.engine.runtime.config import RUNTIME_SECTIONS, ModelConfig

    raw = read_yaml(config_path) if config_path else {}
    config = app_config(raw)
    model_config = config.model
    if call:
        from dfstream.engine.runtime.callscreen import call_config

        hook = config.deployment.call_hook
        model_config = call_config(model_config, hook.hop_seconds, hook.context_seconds)
        raw = {**raw, "inference": model_config.inference.to_dict()}
    folder = resolve_model(model)
    if folder is not None:
        from dfstream.engine.runtime.checkpoint import load_checkpoint

        overrides = {k: v for k, v in raw.items() if k in RUNTIME_SECTIONS}
        fixed = sorted(set(raw) & set(ModelConfig.keys()) - set(RUNTIME_SECTIONS))
        if fixed:
            raise ConfigError(
                f"--config sets {', '.join(fixed)}, which a checkpoint fixes; "
                f"with a checkpoint only {', '.join(RUNTIME_SECTIONS)} of the model may be set "
                "(--model random builds untrained weights from the config's architecture)"
            )
        detector = load_checkpoint(folder, overrides)
    else:
        from dfstream.engine.runtime.detector import Detector

        detector = Detector.from_config(model_config)
    return Loaded(detector, dataclasses.replace(config, model=detector.config), folder)


def with_chunk_seconds(config: AppConfig, seconds: float | None) -> AppConfig:
    """``config`` with ``--chunk-seconds`` as ``replay.chunk_seconds`` (when given)."""
    return config if seconds is None else replace(config, "replay.chunk_seconds", seconds)


def attributor(detector, index_dir: str | None, model_dir: Path | None = None):
    """The attributor for ``--index``, else ``attribution.index``, else the model's own index (None when
    there is none)."""
    from dfstream.engine.core.model_store import model_index

    cfg = detector.config.attribution
    index_dir = index_dir or cfg.index or model_index(model_dir)
    if index_dir is None:
        return None
    from dfstream.fusion.attribution import AttributionIndex, Attributor, check_model

    index = AttributionIndex.load(index_dir)
    check_model(index, detector.model_id, detector.weights_sha256, detector.embedding_dim)
    threshold = cfg.threshold if cfg.threshold is not None else index.meta["threshold"]["value"]
    return Attributor(index, threshold, cfg.top_k, cfg.neighbours)


def kafka_config(config: AppConfig, bootstrap: str | None):
    """``kafka`` with ``--bootstrap`` applied."""
    kafka = config.deployment.kafka
    return kafka if bootstrap is None else dataclasses.replace(kafka, bootstrap_servers=bootstrap)
