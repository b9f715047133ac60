"""``dfstream fetch-encoders``: the pretrained encoders a config names, into the Hugging Face cache."""

from __future__ import annotations

import argparse
import logging

from dfstream.app.cli.common import EPILOG

NAME = "fetch-encoders"
STYLE = "plain"
log = logging.getLogger(__name__)


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        epilog=EPILOG,
        help="download the pretrained encoders a config names (ahead of time)",
        description="Download every encoder the config names by hub id (audio.encoder.pretrained, "
        "visual.encoder.pretrained: 'org/name' or 'org/name@revision') into the Hugging Face cache "
        "(HF_HOME, HF_HUB_CACHE): its config and safetensors weights, never a pickle. Run it on a "
        "machine with internet; train, replay, serve and call-hook only ever read that cache, so copy "
        "it (or point HF_HOME at it) where they run. With HF_HUB_OFFLINE=1 it only checks what the "
        "cache holds. Local directories are checked, not fetched.",
    )
    p.add_argument(
        "--config",
        metavar="YAML",
        action="append",
        required=True,
        help="config file naming the encoders; repeat it to layer files, later over earlier",
    )
    return p


def pretrained_names(config) -> dict[str, str]:
    """``{config key: name}`` of every pretrained encoder of the model's branches (``config``: AppConfig)."""
    names = {}
    for branch in config.model.branches:
        encoder = getattr(config.model.branch(branch), "encoder", None)
        if getattr(encoder, "pretrained", None):
            names[f"{branch}.encoder.pretrained"] = encoder.pretrained
    return names


def run(args) -> int:
    from dfstream.app.config import load_config
    from dfstream.engine.core.errors import ConfigError
    from dfstream.modalities.pretrained import fetch, hub_id

    names = pretrained_names(load_config(args.config))
    if not names:
        print("the config names no pretrained encoder (audio.encoder.pretrained, visual.encoder.pretrained)")
        return 0
    for key, name in names.items():
        where = "local directory" if hub_id(name) is None else "hub"
        log.info("%s = %s (%s) ...", key, name, where)
        try:
            path = fetch(name)
        except Exception as e:  # network, authentication, offline mode without it cached: say which and why
            raise ConfigError(f"{key}={name}: cannot fetch it: {type(e).__name__}: {e}") from None
        if not (path / "config.json").exists() or not any(path.glob("*.safetensors")):
            raise ConfigError(f"{key}={name}: {path} has no config.json and safetensors weights")
        print(f"{key}: {name} -> {path}")
    return 0
