"""The call hook over TLS: wss:// end to end, plain clients refused, mutual TLS, certificates reloaded mid-call."""

from __future__ import annotations

import json
import logging
import ssl

import pytest
from certs import CA
from helpers import burst, tiny_app
from test_call_hook import GEOMETRY, events_until_close, media_events, start_event
from websockets.exceptions import ConnectionClosed, InvalidMessage
from websockets.sync.client import connect

from dfstream.engine.core.errors import ConfigError
from dfstream.engine.runtime.callscreen import CallScreener, batch_scorer, call_config, call_processor
from dfstream.engine.runtime.detector import Detector
from dfstream.streams.call_hook import BackgroundServer, CallHook, check_exposure
from dfstream.streams.tls import ServerTls, TlsFiles


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pki")
    ca = CA(folder)
    return ca, ca.issue("server"), ca.issue("caller", client=True), CA(folder / "other").issue("stranger", client=True)


@pytest.fixture
def hook_server():
    servers = []

    def start(tls: ServerTls) -> BackgroundServer:
        config = tiny_app(inference=GEOMETRY, call_hook={"vad": False})
        hook = config.deployment.call_hook
        detector = Detector.from_config(call_config(config.model, hook.hop_seconds, hook.context_seconds))
        processor = call_processor(detector, vad=False)
        server = BackgroundServer(
            CallHook(lambda sid: CallScreener(processor, sid), hook, None, batch_scorer(processor), tls)
        )
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.close()


def client_context(ca: CA, cert=None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca.pem))
    if cert is not None:
        context.load_cert_chain(str(cert.certfile), str(cert.keyfile))
    return context


def call(ws, seconds: float = 1.0, sid: str = "MZtls") -> list[dict]:
    x8 = burst(8000, seconds, 0.2, 0.8)
    ws.send(start_event(sid))
    for message in media_events(x8):
        ws.send(message)
    ws.send(json.dumps({"event": "stop", "streamSid": sid}))
    return events_until_close(ws)


def served_serial(ws) -> int:
    """The serial number of the certificate the server presented on this connection."""
    from cryptography import x509

    der = ws.socket.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der).serial_number


def test_a_call_over_wss_works_end_to_end(pki, hook_server):
    ca, server_cert, *_ = pki
    server = hook_server(ServerTls(TlsFiles(str(server_cert.certfile), str(server_cert.keyfile))))
    assert server.url.startswith("wss://127.0.0.1:")
    with connect(server.url, ssl=client_context(ca)) as ws:
        assert served_serial(ws) == server_cert.serial
        events = call(ws)
    verdicts = [e for e in events if e["event"] == "verdict"]
    assert len(verdicts) == 2 and events[-1]["event"] == "summary" and events[-1]["hops"] == 2


def test_a_plain_client_is_refused_on_a_tls_port(pki, hook_server):
    _, server_cert, *_ = pki
    server = hook_server(ServerTls(TlsFiles(str(server_cert.certfile), str(server_cert.keyfile))))
    plain = server.url.replace("wss://", "ws://")
    with pytest.raises((InvalidMessage, ConnectionError, EOFError, OSError)):
        with connect(plain, open_timeout=10) as ws:
            call(ws)


def test_mutual_tls_refuses_a_client_without_a_certificate_the_ca_signed(pki, hook_server):
    ca, server_cert, caller, stranger = pki
    tls = ServerTls(TlsFiles(str(server_cert.certfile), str(server_cert.keyfile), str(ca.pem)))
    assert tls.mutual
    server = hook_server(tls)
    for cert in (None, stranger):  # no certificate; one from another CA (TLS 1.3: refused after the handshake)
        with pytest.raises((ssl.SSLError, InvalidMessage, ConnectionClosed, EOFError, OSError)):
            with connect(server.url, ssl=client_context(ca, cert), open_timeout=10) as ws:
                call(ws)
    with connect(server.url, ssl=client_context(ca, caller)) as ws:
        events = call(ws)
    assert events[-1]["event"] == "summary"


def test_a_certificate_reloaded_mid_call_keeps_the_call(pki, hook_server):
    ca = pki[0]
    server_cert = ca.issue("server")  # its files are renewed in place below
    tls = ServerTls(TlsFiles(str(server_cert.certfile), str(server_cert.keyfile)))
    server = hook_server(tls)
    renewed = ca.issue("server")
    x8 = burst(8000, 2.0, 0.2, 1.8)
    messages = list(media_events(x8))
    with connect(server.url, ssl=client_context(ca)) as ws:
        met = served_serial(ws)
        ws.send(start_event("MZlong"))
        for message in messages[: len(messages) // 2]:
            ws.send(message)
        first = json.loads(ws.recv(timeout=30))  # the first hop's verdict, before the renewal
        # the operator renews the certificate in place and sends SIGHUP (the CLI calls reload)
        renewed.certfile.replace(server_cert.certfile)
        renewed.keyfile.replace(server_cert.keyfile)
        tls.reload()
        for message in messages[len(messages) // 2 :]:
            ws.send(message)
        ws.send(json.dumps({"event": "stop", "streamSid": "MZlong"}))
        rest = events_until_close(ws)
    assert met == server_cert.serial  # the call went on, on the session it had negotiated
    assert first["event"] == "verdict" and rest[-1]["event"] == "summary" and rest[-1]["hops"] == 4
    with connect(server.url, ssl=client_context(ca)) as ws:  # new connections meet the renewed one
        assert served_serial(ws) == renewed.serial


def test_tls_files_that_do_not_work_are_refused_clearly(pki, tmp_path):
    ca, server_cert, *_ = pki
    with pytest.raises(ConfigError, match="--keyfile .*: no such file"):
        ServerTls(TlsFiles(str(server_cert.certfile), str(tmp_path / "missing.key")))
    other = ca.issue("other")
    with pytest.raises(ConfigError, match="must be PEM and match the key"):
        ServerTls(TlsFiles(str(server_cert.certfile), str(other.keyfile)))


def test_beyond_loopback_needs_a_token_and_tls_or_says_it_loudly(caplog):
    check_exposure("127.0.0.1", None)  # loopback: as before
    with pytest.raises(ConfigError, match="without a token"):
        check_exposure("0.0.0.0", None, tls=True)
    with pytest.raises(ConfigError, match="without TLS.*--insecure-plaintext"):
        check_exposure("0.0.0.0", "t" * 16)
    check_exposure("0.0.0.0", "t" * 16, tls=True)
    with caplog.at_level(logging.WARNING, logger="dfstream"):
        check_exposure("0.0.0.0", "t" * 16, insecure_plaintext=True)
    assert any("INSECURE" in r.getMessage() and "ws://" in r.getMessage() for r in caplog.records)


def test_the_cli_refuses_plaintext_beyond_loopback(tmp_path, capsys):
    from dfstream.app.cli import main

    token = tmp_path / "token"
    token.write_text("x" * 32)
    code = main(["call-hook", "--host", "0.0.0.0", "--token-file", str(token), "--model", "random"])
    assert code == 2 and "without TLS" in capsys.readouterr().err
    assert main(["call-hook", "--client-ca", str(token), "--model", "random"]) == 2
    assert "--client-ca needs TLS" in capsys.readouterr().err
