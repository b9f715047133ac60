"""``dfstream call-hook``: a WebSocket server telephony platforms stream calls into.

Two modes on one port:

* media-stream protocol (default): JSON events (see :mod:`dfstream.streams.telephony`),
  base64 mu-law at 8 kHz; the server answers ``verdict`` events per hop, and a
  ``summary`` on ``stop``.
* raw (``?mode=raw&rate=8000|16000``): binary frames of 16-bit little-endian
  PCM; the same ``verdict`` events; a text ``{"event": "stop"}`` (or closing the
  socket) ends the call.

Protocol errors are answered with an ``error`` event and the call goes on;
an idle call is closed with code 4408. When a token is configured, the
handshake needs it (``Authorization: Bearer T``, ``X-Dfstream-Token: T`` or
``?token=T``) or is refused with HTTP 401; connection limits refuse with 503.
Decoding, resampling and cutting hops run on the event loop; model work runs
on one worker thread, which takes every hop queued by any call when it frees
up and scores them as one batch (``score_batch``), so calls share the model
fairly, a busy server runs larger, cheaper batches, and each call's verdicts
arrive in order. A client sending faster than real time is slowed by its own
socket (its next message is read only after its hop is scored). This module
imports no torch: it is handed a factory of screeners and a batch scorer.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from dfstream.engine.core.errors import ConfigError, DfstreamError
from dfstream.engine.media.decode import pcm16_samples
from dfstream.streams import telephony
from dfstream.streams.config import CallHookConfig
from dfstream.streams.tls import ServerTls

log = logging.getLogger(__name__)
IDLE_CLOSE = 4408


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: str | None, tls: bool = False, insecure_plaintext: bool = False) -> None:
    """Refuse to listen beyond loopback without a token, or without TLS (the token and the callers'
    audio would cross the network readable by anyone on the path) unless ``insecure_plaintext``,
    which is then said loudly."""
    if is_loopback(host):
        return
    if not token:
        raise ConfigError(
            f"refusing to listen on {host} without a token: anyone who reaches it could "
            "stream to it. Pass --token-file, or listen on 127.0.0.1"
        )
    if not tls and not insecure_plaintext:
        raise ConfigError(
            f"refusing to listen on {host} without TLS: the token and the calls' audio would cross the "
            "network in the clear. Pass --certfile and --keyfile (wss://), put a TLS proxy in front and "
            "listen on 127.0.0.1, or accept the risk with --insecure-plaintext"
        )
    if not tls:
        bar = "!" * 78
        log.warning(
            "%s\nINSECURE: listening on %s in plain ws:// (--insecure-plaintext): the token and every call's "
            "audio cross the network readable by anyone on the path\n%s",
            bar,
            host,
            bar,
        )


class CallHook:
    """Connection handling; ``make_screener(stream_id)`` returns a CallScreener-like object.

    Parameters
    ----------
    make_screener : callable
        ``stream_id -> screener`` with ``cut(samples, rate) -> hops`` (called on
        the event loop: cheap), and ``score(hops)``, ``close()`` and ``abandon()``
        (called on the model thread).
    cfg : CallHookConfig
    token : str, optional
        Required from clients when set.
    score_batch : callable, optional
        ``[(screener, hops), ...] -> [verdicts, ...]`` on the model thread, e.g.
        :func:`dfstream.engine.runtime.callscreen.batch_scorer`; default: each screener's ``score``
        in turn.
    tls : ServerTls, optional
        Serve ``wss://`` with its certificate (mutual TLS when it has a client CA); its
        :meth:`~dfstream.streams.tls.ServerTls.reload` takes effect for the next handshakes.
    insecure_plaintext : bool
        Allow plain ``ws://`` beyond loopback (said loudly at start).
    """

    def __init__(
        self,
        make_screener: Callable,
        cfg: CallHookConfig,
        token: str | None = None,
        score_batch: Callable | None = None,
        tls: ServerTls | None = None,
        insecure_plaintext: bool = False,
    ):
        self.make_screener, self.cfg, self.token = make_screener, cfg, token
        self.tls, self.insecure_plaintext = tls, insecure_plaintext
        self.port: int | None = None
        self.score_batch = score_batch or (lambda requests: [s.score(h) for s, h in requests])
        self.queue: asyncio.Queue | None = None
        self.model_thread = ThreadPoolExecutor(1, thread_name_prefix="dfstream-model")
        self.open_total = 0
        self.open_by_client: dict[str, int] = {}

    # -- handshake ---------------------------------------------------------
    def _authorized(self, request) -> bool:
        if not self.token:
            return True
        header = request.headers.get("Authorization", "")
        offered = [
            header[7:] if header.startswith("Bearer ") else "",
            request.headers.get("X-Dfstream-Token", ""),
            parse_qs(urlsplit(request.path).query).get("token", [""])[0],
        ]
        return any(o and hmac.compare_digest(o.encode(), self.token.encode()) for o in offered)

    def process_request(self, connection, request):
        if not self._authorized(request):
            return connection.respond(HTTPStatus.UNAUTHORIZED, "missing or wrong token\n")
        client = connection.remote_address[0] if connection.remote_address else "?"
        if self.open_total >= self.cfg.max_connections:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "too many calls\n")
        if self.open_by_client.get(client, 0) >= self.cfg.max_connections_per_client:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "too many calls from this client\n")
        return None

    # -- a call --------------------------------------------------------------
    async def handler(self, ws) -> None:
        client = ws.remote_address[0] if ws.remote_address else "?"
        self.open_total += 1
        self.open_by_client[client] = self.open_by_client.get(client, 0) + 1
        call = _Call(self, ws)
        try:
            await call.run()
        except ConnectionClosed:
            pass
        finally:
            await call.abandon()
            self.open_total -= 1
            self.open_by_client[client] -= 1
            if not self.open_by_client[client]:
                del self.open_by_client[client]

    def url(self, host: str) -> str:
        """Where clients connect: ``wss://`` with TLS, ``ws://`` without."""
        return f"{'wss' if self.tls is not None else 'ws'}://{host}:{self.port}"

    async def run_model(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.model_thread, fn, *args)

    async def score(self, screener, hops) -> list:
        """Verdicts for a call's completed hops, scored in the next batch."""
        future = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((screener, hops, future))
        return await future

    async def _batcher(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                results = await self.run_model(self.score_batch, [(s, h) for s, h, _ in batch])
            except Exception as e:  # noqa: BLE001 - handed to every waiting call, which reports it
                for *_, future in batch:
                    future.set_exception(e)
            else:
                for (*_, future), verdicts in zip(batch, results):
                    future.set_result(verdicts)

    async def serve(
        self, host: str, port: int, ready: asyncio.Event | None = None, stop: asyncio.Event | None = None
    ) -> None:
        """Serve until ``stop`` is set (or forever)."""
        check_exposure(host, self.token, self.tls is not None, self.insecure_plaintext)
        self.queue = asyncio.Queue()
        batcher = asyncio.create_task(self._batcher())
        async with serve(
            self.handler,
            host,
            port,
            process_request=self.process_request,
            max_size=self.cfg.max_message_bytes,
            max_queue=16,
            ssl=self.tls.context if self.tls is not None else None,
        ) as server:
            self.port = server.sockets[0].getsockname()[1] if server.sockets else port
            log.info("call hook listening on %s", self.url(host))
            if ready is not None:
                ready.set()
            await (stop.wait() if stop is not None else asyncio.Future())
        batcher.cancel()
        self.model_thread.shutdown(wait=True)


class BackgroundServer:
    """A :class:`CallHook` on ``host`` (an ephemeral port by default) in a thread with its own
    event loop, for embedding, tests and benchmarks; ``url`` once started, ``close()`` to stop."""

    def __init__(self, hook: CallHook, host: str = "127.0.0.1", port: int = 0, timeout: float = 60):
        self.hook, self.host, self.port = hook, host, port
        self._ready = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self.thread.start()
        if not self._ready.wait(timeout):
            raise DfstreamError(f"the call hook did not start within {timeout} s")
        self.url = hook.url(host)

    async def _main(self) -> None:
        self.loop, self.stop, ready = asyncio.get_running_loop(), asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(self.hook.serve(self.host, self.port, ready, self.stop))
        await ready.wait()
        self._ready.set()
        await task

    def close(self, timeout: float = 30) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(timeout)


class _Call:
    """One connection: protocol state and its screener."""

    def __init__(self, hook: CallHook, ws):
        self.hook, self.ws = hook, ws
        query = parse_qs(urlsplit(ws.request.path).query)
        self.raw = query.get("mode", [""])[0] == "raw"
        self.sid = query.get("streamSid", [None])[0]
        self.rate = query.get("rate", ["8000"])[0]
        self.screener = None
        self.verdicts = 0
        self.detections: list[dict] = []
        self.max_score = None
        self.labels: dict[str, int] = {}

    async def send(self, event: dict) -> None:
        await self.ws.send(json.dumps(event))

    async def error(self, code: str, message: str) -> None:
        await self.send(telephony.error_event(code, message, self.sid))

    async def run(self) -> None:
        if self.raw:
            if self.rate not in ("8000", "16000"):
                await self.error("bad-rate", f"rate={self.rate}: raw mode takes rate=8000 or rate=16000")
                await self.ws.close(1008, "bad rate")
                return
            self.rate = int(self.rate)
            self.sid = self.sid or f"raw-{uuid.uuid4().hex[:12]}"
            await self._start()
        while True:
            try:
                message = await asyncio.wait_for(self.ws.recv(), self.hook.cfg.idle_timeout_seconds)
            except TimeoutError:
                await self.error("idle", f"no message for {self.hook.cfg.idle_timeout_seconds} s")
                await self.ws.close(IDLE_CLOSE, "idle timeout")
                return
            try:
                if await self._message(message):
                    return
            except DfstreamError as e:
                await self.error(getattr(e, "code", "bad-media"), str(e))

    async def _start(self) -> None:
        self.screener = await self.hook.run_model(self.hook.make_screener, self.sid)

    async def _message(self, message) -> bool:
        """Handle one message; True when the call ended."""
        if isinstance(message, bytes):
            if not self.raw:
                raise telephony.ProtocolError("unexpected-binary", "binary frames are for ?mode=raw")
            return await self._audio(pcm16_samples(message), self.rate)
        event = telephony.parse_event(message)
        kind = event["event"]
        if kind == "start":
            if self.screener is not None:
                raise telephony.ProtocolError("duplicate-start", "this call has started already")
            telephony.check_format(event)
            self.sid = telephony.stream_sid(event)
            await self._start()
        elif kind == "media":
            if self.screener is None:
                raise telephony.ProtocolError("media-before-start", "send 'start' before 'media'")
            return await self._audio(telephony.media_audio(event), 8000)
        elif kind == "mark":
            await self.send({"event": "mark", "streamSid": self.sid, "mark": event.get("mark")})
        elif kind == "stop":
            await self._finish()
            return True
        return False

    async def _audio(self, samples, rate) -> bool:
        hops = self.screener.cut(samples, rate)  # cheap: on the event loop
        if hops:
            for verdict in await self.hook.score(self.screener, hops):
                await self._verdict(verdict)
        return False

    async def _verdict(self, verdict) -> None:
        event = telephony.verdict_event(self.sid, verdict, self.hook.cfg.synthetic_threshold)
        self.verdicts += 1
        self.labels[event["label"]] = self.labels.get(event["label"], 0) + 1
        if verdict.score is not None:
            self.max_score = max(self.max_score or 0.0, verdict.score)
        room = self.hook.cfg.max_summary_detections - len(self.detections)
        self.detections += event["detections"][: max(0, room)]
        await self.send(event)

    async def _finish(self) -> None:
        if self.screener is not None:
            for verdict in await self.hook.run_model(self.screener.close):
                await self._verdict(verdict)
        synthetic = self.labels.get("likely-synthetic", 0) > 0 or bool(self.detections)
        await self.send(
            {
                "event": "summary",
                "streamSid": self.sid,
                "hops": self.verdicts,
                "score": self.max_score,
                "labels": self.labels,
                "label": "likely-synthetic"
                if synthetic
                else ("likely-genuine" if self.labels.get("likely-genuine") else "no-speech"),
                "detections": self.detections,
            }
        )
        self.screener = None
        await self.ws.close(1000, "call ended")

    async def abandon(self) -> None:
        """The connection is gone: drop the call's state (no-op after a clean stop)."""
        if self.screener is not None:
            screener, self.screener = self.screener, None
            await self.hook.run_model(screener.abandon)
