"""The model's config root, :class:`ModelConfig`, which gathers the sections it is made of.

A model's config gathers the sections of the layers below the runtime: each registered branch's
own section (``audio``, ``visual``, ...: :data:`dfstream.modalities.BRANCHES`, found by name, so a
new modality's section needs no edit here), the fusion's (``fusion``, ``localizer``,
``attribution``), the media layer's ``limits`` and the runtime's own. It is what a checkpoint
stores, less the :data:`EXECUTION_KEYS` (how a model runs on a machine, not what it is); the
deployment (Kafka, serve, the call hook, replay) is a root of its own
(:class:`dfstream.streams.config.DeploymentConfig`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from dfstream.engine.core.config import Root, Section, build, check, convert, plain
from dfstream.engine.core.errors import ConfigError, lookup
from dfstream.engine.media.limits import LimitsConfig
from dfstream.engine.runtime.sections import InferenceConfig, SchedulerConfig
from dfstream.fusion.config import AttributionConfig, FusionConfig, LocalizerConfig
from dfstream.modalities import BRANCHES

RUNTIME_SECTIONS = ("inference", "scheduler", "limits", "localizer", "attribution")
"""Sections that may differ from training when a checkpoint is loaded (the rest is architecture)."""
EXECUTION_KEYS = ("device", "threads", "dtype", "quantize", "batch_size", "feature_extractor", "parallel_branches")
"""Keys of ``inference`` that say how a model runs on a machine, not what the model is: a checkpoint
neither stores nor fixes them (they come from the defaults and the overrides), so that, say,
``dtype: auto`` picks bf16 on the machine that computes it natively whatever the training machine was."""


def _default_sections() -> dict:
    return {name: cls.config_class() for name, cls in BRANCHES.items()}


@dataclass(frozen=True)
class ModelConfig(Root):
    """A model: which branches (``branches``: keys of :data:`dfstream.modalities.BRANCHES`), each
    registered branch's section (:meth:`branch`; in YAML a top-level key of its name), the fusion,
    and how it runs (inference, scheduler, limits, localizer, attribution)."""

    branches: tuple[str, ...] = ("audio",)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    localizer: LocalizerConfig = field(default_factory=LocalizerConfig)
    attribution: AttributionConfig = field(default_factory=AttributionConfig)
    sections: dict = field(default_factory=_default_sections)

    def branch(self, name: str) -> Section:
        """The section of branch ``name`` (ConfigError listing the registered branches)."""
        return lookup(self.sections, name, "branch")

    @staticmethod
    def keys() -> tuple[str, ...]:
        """Its top-level keys in a config file: its own sections and every registered branch's."""
        return tuple(f.name for f in dataclasses.fields(ModelConfig) if f.name != "sections") + tuple(BRANCHES)

    @classmethod
    def from_dict(cls, data: dict | None) -> ModelConfig:
        data = dict(data or {})
        unknown = sorted(set(data) - set(cls.keys()))
        if unknown:
            raise ConfigError(f"unknown config key {unknown[0]}; valid keys here: {', '.join(sorted(cls.keys()))}")
        sections = {
            name: convert(branch.config_class, data.pop(name, None) or {}, name) for name, branch in BRANCHES.items()
        }
        return build(cls, data, extra={"sections": sections})

    def to_dict(self) -> dict:
        own = {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "sections"}
        return {**own, **{name: section.to_dict() for name, section in self.sections.items()}}

    def validate(self) -> None:
        check(
            [
                (len(self.branches) > 0, "branches must name at least one branch"),
                (len(set(self.branches)) == len(self.branches), "branches must not repeat a name"),
            ]
        )
        for name in self.branches:
            lookup(BRANCHES, name, "branch")


def config_from_dict(data: dict | None) -> ModelConfig:
    """Validate a nested mapping (as read from YAML) into a :class:`ModelConfig`."""
    return ModelConfig.from_dict(data)
