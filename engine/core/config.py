"""Config machinery: typed, frozen sections built from YAML mappings and validated once.

Each layer owns the sections of what it does (the media layer ``limits``, a
branch its own section, the fusion ``fusion``, ``localizer`` and ``attribution``,
the runtime ``inference`` and ``scheduler``, the transports ``replay``,
``call_hook``, ``kafka`` and ``serve``, the application ``train``) and declares
them as :class:`Section` dataclasses; the roots that gather them
(:class:`dfstream.engine.runtime.config.ModelConfig`,
:class:`dfstream.streams.config.DeploymentConfig`,
:class:`dfstream.app.config.AppConfig`) live with the layer that sees them all.
This module holds only the mechanism: building a section from a mapping (unknown
keys and wrong types are rejected with the key, the expected type and the valid
keys), each section's own rules, reading YAML, and writing sections back to plain
mappings.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path

import yaml

from dfstream.engine.core.errors import ConfigError


@dataclass(frozen=True)
class Section:
    """A config section: a frozen dataclass whose fields are its keys, defaults included."""

    ADDED_LATER: typing.ClassVar[dict] = {}
    """Keys added after checkpoints that store this section were first written, with the value that
    means "as before": a stored section that does not name one was made without it."""

    def validate(self) -> None:
        """Cross-field rules that types cannot express; raise ConfigError saying how to fix it."""

    def to_dict(self) -> dict:
        """Plain nested mapping (tuples as lists), as YAML would hold it."""
        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


class Root(Section):
    """A config that gathers sections (a model's, a deployment's, the application's)."""

    @classmethod
    def from_dict(cls, data: dict | None):
        """Validate a nested mapping (as read from YAML) into this root."""
        return build(cls, data or {})


def check(rules: list[tuple[bool, str]]) -> None:
    """ConfigError with the message of the first rule that does not hold."""
    for ok, message in rules:
        if not ok:
            raise ConfigError(message)


def plain(value):
    """``value`` as YAML would hold it: sections as mappings, tuples as lists."""
    if isinstance(value, Section):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: plain(x) for k, x in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(x) for x in value]
    return value


def convert(tp, value, key: str):
    """Convert a YAML value to the annotated type ``tp`` or raise ConfigError."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping of {[f.name for f in dataclasses.fields(tp)]}")
        return build(tp, value, key + ".")
    if origin is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else convert(args[0], value, key)
    if tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping")
        return dict(value)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list")
        return tuple(convert(typing.get_args(tp)[0], v, key) for v in value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (
        tp is bool
        and not isinstance(value, bool)
        or not isinstance(value, tp)
        or (tp is int and isinstance(value, bool))
    ):
        raise ConfigError(f"{key} must be {tp.__name__}, got {value!r}")
    return value


def build(cls, data: dict, prefix: str = "", extra: dict | None = None):
    """Dataclass ``cls`` from a mapping, defaults for missing keys, then its :meth:`Section.validate`.

    ``extra`` holds values for fields that the caller built itself (not read from ``data``)."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)} - set(extra or {})
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown config key {prefix}{unknown[0]}; valid keys here: {', '.join(sorted(names))}")
    values = {name: convert(hints[name], data[name], prefix + name) for name in names if name in data}
    section = cls(**values, **(extra or {}))
    if isinstance(section, Section):
        section.validate()
    return section


def read_yaml(path: str | Path) -> dict:
    """The mapping in a YAML config file (empty file: empty mapping)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at top level")
    return data or {}


def to_dict(cfg: Section) -> dict:
    """``cfg`` as a plain nested mapping (a root's sections at top level, as in a YAML file)."""
    return cfg.to_dict()


def replace(cfg: Root, path: str, value) -> Root:
    """``cfg`` (a root) with the dotted key ``path`` set to ``value``, validated again."""
    data = cfg.to_dict()
    node = data
    *parents, last = path.split(".")
    for p in parents:
        if not isinstance(node.get(p), dict):
            raise ConfigError(f"{type(cfg).__name__} has no config section {path.rsplit('.', 1)[0]!r}")
        node = node[p]
    node[last] = value
    return type(cfg).from_dict(data)
