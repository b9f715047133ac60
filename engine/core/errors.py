"""One exception hierarchy, rooted at :class:`DfstreamError`.

Entry points catch ``DfstreamError`` and print its message without a traceback:
every subclass is a user-facing error whose message says what to fix.
"""


class DfstreamError(Exception):
    """Root of every error dfstream raises on purpose."""


class ConfigError(DfstreamError):
    """A configuration file or value is invalid."""


class MediaError(DfstreamError):
    """Media that cannot be decoded: missing, empty, truncated, not media, no audio or video.

    ``reason`` is a short code for machines (dead-letter headers, metrics):
    ``empty``, ``truncated``, ``not-media``, ``unsupported-codec``, ``no-audio``,
    ``no-video``, ``corrupt``, ``bad-pcm`` or ``undecodable``; or a breach of
    ``limits`` (:class:`dfstream.engine.media.limits.LimitsConfig`): ``too-long``,
    ``decode-timeout``, ``timestamp-jump``, ``too-many-channels``, ``bad-rate``,
    ``too-many-frames``, ``frame-too-large``.
    """

    def __init__(self, message: str, reason: str = "undecodable"):
        super().__init__(message)
        self.reason = reason


class CheckpointError(DfstreamError):
    """A checkpoint is missing a file, is corrupt, or does not match the architecture."""


class DatasetError(DfstreamError):
    """Dataset metadata is malformed or refers to missing files."""


class BrokerError(DfstreamError):
    """A Kafka broker cannot be reached or refused a request, or the development broker cannot be started."""


class RegistryError(ConfigError):
    """An unknown key was looked up in one of the explicit registries."""


def lookup(registry: dict, key: str, what: str):
    """Return ``registry[key]`` or raise a :class:`RegistryError` listing the valid keys."""
    try:
        return registry[key]
    except KeyError:
        valid = ", ".join(sorted(registry))
        raise RegistryError(f"unknown {what} {key!r}; valid: {valid}") from None
