"""Secrets of the deployment (Kafka's SASL password, an SSL key's password): from files or the
environment, never inline in a config file, never in a log.

A config names where a secret is, not what it is: ``sasl_plain_password_file: /run/secrets/kafka``
(the file's contents, a trailing newline dropped) or ``sasl_plain_password_env: KAFKA_PASSWORD``
(an environment variable). :func:`check_inline` refuses a secret written inline, saying how to
fix it; :func:`resolve` reads the secrets when a client is built, so the values never sit in a
config object; :func:`masked` hides any secret-looking value wherever a config is shown.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from dfstream.engine.core.errors import ConfigError

SECRET = re.compile(r"password|secret|token|credential", re.IGNORECASE)
"""Keys whose values are secrets (kafka-python's ``sasl_plain_password``, ``ssl_password``, ...)."""
SOURCES = ("_file", "_env")
"""Suffixes of the keys that say where a secret is."""
MASK = "***"


def is_secret(key: str) -> bool:
    """Whether ``key`` holds a secret value itself (not where one is)."""
    return bool(SECRET.search(key)) and not key.endswith(SOURCES)


def check_inline(settings: dict, where: str) -> None:
    """ConfigError when ``settings`` (a section's mapping, ``where`` its name) holds a secret inline."""
    for key in settings:
        if is_secret(key):
            raise ConfigError(
                f"{where}.{key} is a secret written in the config file; put it in a file readable only by "
                f"the service and name it ({where}.{key}_file: /run/secrets/kafka_password), or in an "
                f"environment variable ({where}.{key}_env: KAFKA_PASSWORD)"
            )


def resolve(settings: dict, where: str) -> dict:
    """``settings`` with each ``KEY_file`` / ``KEY_env`` replaced by ``KEY`` and the secret it points at."""
    out = {}
    for key, value in settings.items():
        base = key.removesuffix("_file").removesuffix("_env")
        if base == key or not SECRET.search(base):  # not where a secret is (ssl_cafile is a plain setting)
            out[key] = value
        elif key.endswith("_file"):
            path = Path(str(value))
            try:
                out[base] = path.read_text().rstrip("\r\n")
            except OSError as e:
                raise ConfigError(f"{where}.{key}: cannot read {path} ({e.strerror})") from None
        else:
            if not os.environ.get(str(value)):
                raise ConfigError(f"{where}.{key}: the environment variable {value} is not set")
            out[base] = os.environ[str(value)]
    return out


def masked(value):
    """``value`` (a config mapping, as dumped) with every secret value replaced by ``***``."""
    if isinstance(value, dict):
        return {k: MASK if is_secret(str(k)) and v is not None else masked(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [masked(v) for v in value]
    return value
