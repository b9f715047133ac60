"""The application's config: the model's and the deployment's roots and the ``train`` section, read
from one YAML file (``configs/default.yaml`` spells out every key).

The file keeps one flat list of sections; :class:`AppConfig` sorts them to their owners: the
model's (:class:`dfstream.engine.runtime.config.ModelConfig`: the branches and their sections,
fusion, inference, ...), the deployment's (:class:`dfstream.streams.config.DeploymentConfig`:
replay, call_hook, kafka, serve) and ``train``. A checkpoint stores the model's alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from dfstream.engine.core.config import Root, Section, build, check, read_yaml
from dfstream.engine.core.errors import ConfigError
from dfstream.engine.runtime.config import ModelConfig
from dfstream.streams.config import DeploymentConfig

PRECISIONS = ("float32", "bf16", "auto")


@dataclass(frozen=True)
class TrainConfig(Section):
    """``dfstream train``. ``val_fraction`` is used when metadata has no val split.
    ``lr_schedule`` ``cosine`` lowers the learning rate along a half cosine, epoch by
    epoch, to 5 % of ``learning_rate`` in the last epoch; ``constant`` keeps it.
    ``augment``: each training window's inputs pass through its branch's ``augment``
    (branches that have one; the visual branch flips, shifts and re-lights the mouth
    regions, one draw per window), drawn from ``seed``; validation never is.
    ``degrade``: the chance that a training window's inputs are replaced, epoch by epoch,
    by its branch's ``degrade`` copy (branches that have one; audio: through a telephone
    line, :mod:`dfstream.modalities.audio.channel`), encoded once and cached beside the clean
    inputs; drawn from ``seed``; validation never is. 0 turns it off.
    ``generator_loss``: the weight of an auxiliary loss in training: a linear classifier
    learns from the audio branch's frame embeddings which generator (the metadata's
    ``audio_model``, among train's) forged each frame of ``audio_fake_segments``, so the
    embeddings that attribution indexes separate generators. The classifier is not
    saved. 0 turns it off (and needs fewer than two generators in train to do nothing).
    ``accumulate``: the optimizer steps once every this many batches, on their summed gradients
    (a batch of ``batch_size * accumulate`` windows where memory holds ``batch_size``).
    ``patience``: stop when validation BCE has not improved for this many epochs (0: never stop early).
    ``finetune_layers``: with ``finetune_encoder``, only the last this many transformer layers of
    each encoder learn (0: every layer but the convolutional feature extractor).
    ``lora_rank``: with ``finetune_encoder``, the encoders stay frozen and low-rank adapters of this
    rank on their attention's query and value projections learn instead (:mod:`dfstream.app.lora`;
    merged into the weights when saved); 0: no adapters.
    ``precision``: ``float32``; ``bf16``, the forward passes under bf16 autocast (weights, gradients
    and the optimizer stay float32); ``auto``, bf16 on a CUDA device that computes it natively and
    float32 elsewhere (CPU training stays float32, so that ``make model`` reproduces on any CPU).
    ``data``: ``memory`` holds every window and, with frozen encoders, caches their states
    (fast for a few hundred clips); ``stream`` decodes each epoch's files in ``workers``
    ``DataLoader`` processes in an order drawn from the seed, their windows mixed in a buffer of
    ``shuffle_buffer``, nothing of the whole set held and nothing cached (a corpus of any size).
    ``checkpoint_every``: save the training state (``<out>/resume/``, :mod:`dfstream.app.train_state`)
    after every this many epochs, so that ``dfstream train --resume`` continues an interrupted run."""

    epochs: int = 8
    batch_size: int = 16
    learning_rate: float = 0.002
    lr_schedule: str = "cosine"
    weight_decay: float = 0.01
    finetune_encoder: bool = False
    val_fraction: float = 0.2
    seed: int = 0
    augment: bool = False
    degrade: float = 0.0
    generator_loss: float = 0.0
    finetune_layers: int = 0
    lora_rank: int = 0
    precision: str = "float32"
    accumulate: int = 1
    data: str = "memory"
    workers: int = 2
    shuffle_buffer: int = 256
    patience: int = 0
    checkpoint_every: int = 1

    def validate(self) -> None:
        check(
            [
                (0 <= self.val_fraction < 1, "train.val_fraction must be in [0, 1)"),
                (0 <= self.degrade <= 1, "train.degrade must be in [0, 1]"),
                (self.generator_loss >= 0, "train.generator_loss must be >= 0"),
                (self.epochs >= 1, "train.epochs must be >= 1"),
                (self.accumulate >= 1, "train.accumulate must be >= 1"),
                (self.data in ("memory", "stream"), "train.data must be 'memory' or 'stream'"),
                (
                    self.workers >= 0 and self.shuffle_buffer >= 1,
                    "train.workers must be >= 0, train.shuffle_buffer >= 1",
                ),
                (self.finetune_layers >= 0, "train.finetune_layers must be >= 0 (0: every layer)"),
                (self.lora_rank >= 0, "train.lora_rank must be >= 0 (0: no adapters)"),
                (
                    not (self.lora_rank and self.finetune_layers),
                    "train.lora_rank and train.finetune_layers are two ways to fine-tune: set one",
                ),
                (self.precision in PRECISIONS, f"train.precision must be one of {', '.join(PRECISIONS)}"),
                (self.patience >= 0, "train.patience must be >= 0 (0: no early stopping)"),
                (self.checkpoint_every >= 1, "train.checkpoint_every must be >= 1"),
                (self.lr_schedule in ("cosine", "constant"), "train.lr_schedule must be 'cosine' or 'constant'"),
            ]
        )


DEPLOYMENT_SECTIONS = tuple(f.name for f in fields(DeploymentConfig))
"""Top-level keys of the deployment (never stored in a checkpoint)."""


@dataclass(frozen=True)
class AppConfig(Root):
    """Everything one config file sets: the model, the deployment and training."""

    model: ModelConfig = field(default_factory=ModelConfig)
    deployment: DeploymentConfig = field(default_factory=DeploymentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @classmethod
    def from_dict(cls, data: dict | None) -> AppConfig:
        data = dict(data or {})
        valid = set(ModelConfig.keys()) | set(DEPLOYMENT_SECTIONS) | {"train"}
        unknown = sorted(set(data) - valid)
        if unknown:
            raise ConfigError(f"unknown config key {unknown[0]}; valid keys here: {', '.join(sorted(valid))}")
        model = ModelConfig.from_dict({k: v for k, v in data.items() if k in ModelConfig.keys()})
        deployment = DeploymentConfig.from_dict({k: v for k, v in data.items() if k in DEPLOYMENT_SECTIONS})
        return cls(model, deployment, build(TrainConfig, data.get("train") or {}, "train."))

    def to_dict(self) -> dict:
        return {**self.model.to_dict(), **self.deployment.to_dict(), "train": self.train.to_dict()}


def app_config(data: dict | None) -> AppConfig:
    """Validate a nested mapping (as read from YAML) into an :class:`AppConfig`."""
    return AppConfig.from_dict(data)


def load_config(path: str | Path | list | tuple | None = None) -> AppConfig:
    """Defaults overridden by the YAML file at ``path`` (if given); by several files in turn when
    ``path`` is a list, a later file's keys over an earlier one's, section by section."""
    paths = [] if path is None else list(path) if isinstance(path, (list, tuple)) else [path]
    data: dict = {}
    for p in paths:
        data = _merged(data, read_yaml(p))
    return app_config(data or None)


def _merged(base: dict, over: dict) -> dict:
    """``base`` with ``over``'s keys set, mappings merged key by key (lists and values replaced)."""
    out = dict(base)
    for key, value in over.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
