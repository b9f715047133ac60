"""``dfstream call-hook``: the WebSocket server telephony platforms stream live calls into."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from dfstream.app.cli.common import EPILOG, INDEX_HELP, MODEL_HELP, attributor, load_model
from dfstream.engine.core.errors import ConfigError

log = logging.getLogger(__name__)

NAME = "call-hook"
STYLE = "timed"


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        epilog=EPILOG,
        help="WebSocket server for live call screening",
        description="Serve a WebSocket that telephony platforms stream calls into: the JSON "
        "media-stream protocol (base64 8 kHz mu-law; events connected, start, media, mark, "
        "stop) or, with ?mode=raw&rate=8000|16000, binary 16-bit PCM. Answers a 'verdict' "
        "event (score, label likely-synthetic / likely-genuine / no-speech, detections, "
        "attribution) for every call_hook.hop_seconds of audio and a 'summary' on stop. "
        "Runs every batch shape through the model before listening (a few seconds), so "
        "the first calls do not pay for kernel selection.",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: %(default)s); any non-loopback address requires --token-file",
    )
    p.add_argument("--port", type=int, default=8765, help="port (default: %(default)s)")
    p.add_argument("--config", metavar="YAML", help="config overrides (call_hook section: hop, VAD, limits)")
    p.add_argument(
        "--token-file",
        metavar="F",
        help="file holding the token clients must present (Authorization: Bearer, X-Dfstream-Token or ?token=)",
    )
    p.add_argument(
        "--certfile",
        metavar="F",
        help="PEM certificate chain: serve wss:// (TLS 1.2 or later); "
        "kill -HUP reloads it and the key, open calls go on",
    )
    p.add_argument("--keyfile", metavar="F", help="PEM private key of --certfile")
    p.add_argument(
        "--client-ca",
        metavar="F",
        help="PEM CA certificates: mutual TLS, every client must present a certificate one of them signed",
    )
    p.add_argument(
        "--insecure-plaintext",
        action="store_true",
        help="allow plain ws:// on a non-loopback address (the token and the calls' audio travel in "
        "the clear; said loudly at start). Prefer TLS, or a TLS proxy in front of 127.0.0.1",
    )
    p.add_argument("--model", metavar="DIR", help=MODEL_HELP)
    p.add_argument("--index", metavar="DIR", help=INDEX_HELP)
    return p


def server_tls(args):
    """The listener's TLS from --certfile / --keyfile / --client-ca (None without them)."""
    if args.certfile is None and args.keyfile is None:
        if args.client_ca is not None:
            raise ConfigError("--client-ca needs TLS: give --certfile and --keyfile too")
        return None
    if args.certfile is None or args.keyfile is None:
        raise ConfigError("TLS needs both --certfile and --keyfile")
    from dfstream.streams.tls import ServerTls, TlsFiles

    return ServerTls(TlsFiles(args.certfile, args.keyfile, args.client_ca))


def read_token(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        token = Path(path).read_text().strip()
    except OSError as e:
        raise ConfigError(f"cannot read --token-file {path}: {e.strerror}") from None
    if len(token) < 16:
        raise ConfigError(f"the token in {path} is empty or shorter than 16 characters")
    return token


def reload(tls) -> None:
    """SIGHUP: the certificate, key and client CA again from their files (a bad file keeps the old ones)."""
    try:
        tls.reload()
    except ConfigError as e:
        log.error("certificates not reloaded, the previous ones stay: %s", e)
    else:
        log.info("certificates reloaded from %s", tls.files.certfile)


def run(args) -> int:
    from dfstream.engine.runtime.callscreen import CallScreener, batch_scorer, call_processor
    from dfstream.streams.call_hook import CallHook, check_exposure
    from dfstream.streams.secrets import masked

    token = read_token(args.token_file)
    tls = server_tls(args)
    check_exposure(args.host, token, tls is not None, args.insecure_plaintext)
    loaded = load_model(args.model, args.config, call=True)
    detector, hook_config = loaded.detector, loaded.config.deployment.call_hook
    detector.warn_if_untrained()
    detector.warm_up()  # a call's first verdicts should not pay for first-call kernel selection
    processor = call_processor(
        detector, attributor(detector, args.index, loaded.folder), hook_config.vad, hook_config.vad_threshold
    )
    log.info(
        "config: %s",
        masked(
            {
                "call_hook": hook_config.to_dict(),
                "host": args.host,
                "port": args.port,
                "certfile": args.certfile,
                "client_ca": args.client_ca,
                "token_file": args.token_file,
            }
        ),
    )
    hook = CallHook(
        lambda sid: CallScreener(processor, sid),
        hook_config,
        token,
        batch_scorer(processor),
        tls,
        args.insecure_plaintext,
    )
    print(
        f"{detector.describe()}\nverdict every {hook_config.hop_seconds} s of call audio; "
        f"VAD {'on' if hook_config.vad else 'off'}; token {'required' if token else 'off (loopback only)'}"
    )

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if tls is not None:
            loop.add_signal_handler(signal.SIGHUP, reload, tls)
        await hook.serve(args.host, args.port, stop=stop)

    asyncio.run(serve())
    return 0
