"""Call hook: the protocol over real WebSockets on loopback, the Python API, bad input."""

import base64
import json
import time

import numpy as np
import pytest
import soxr
from helpers import burst, tiny_app
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from dfstream.app.toyset import make_toyset, write_wav
from dfstream.app.training import train
from dfstream.engine.core.config import replace
from dfstream.engine.core.errors import ConfigError, MediaError
from dfstream.engine.media.decode import decode_audio
from dfstream.engine.runtime.callscreen import CallScreener, batch_scorer, call_config, call_processor
from dfstream.engine.runtime.checkpoint import load_checkpoint
from dfstream.engine.runtime.detector import Detector
from dfstream.engine.runtime.stream import StreamProcessor
from dfstream.streams.call_hook import BackgroundServer, CallHook, check_exposure
from dfstream.streams.telephony import MULAW_TABLE, mulaw_decode, mulaw_encode

GEOMETRY = {"hop_seconds": 0.5, "context_seconds": 1.5}


def phone(x16: np.ndarray) -> np.ndarray:
    """16 kHz audio through an 8 kHz mu-law line and back."""
    return soxr.resample(mulaw_decode(mulaw_encode(soxr.resample(x16, 16000, 8000))), 8000, 16000).astype(np.float32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained in ~10 s on telephone-band SYNTHETIC toy calls, and a held-out call."""
    root = tmp_path_factory.mktemp("tel")
    meta = make_toyset(root, files=30, seed=11, generators=("toy-whisper", "toy-robot"))
    entries = json.loads(meta.read_text())
    test = next(e for e in entries if e["split"] == "test" and e["audio_model"] == "toy-robot")
    call = decode_audio(root / test["file"]).samples  # held out; it crosses the line once, when sent
    for e in entries:
        write_wav(root / e["file"], phone(decode_audio(root / e["file"]).samples))
    config = replace(tiny_app(inference=GEOMETRY), "train.epochs", 40)
    train(meta, root, root / "ck", config, "SYNTHETIC telephone-band toy calls")
    return load_checkpoint(root / "ck"), call, test["fake_segments"]


def random_processor(vad=False):
    config = tiny_app(inference=GEOMETRY, call_hook={"vad": vad})
    hook = config.deployment.call_hook
    detector = Detector.from_config(call_config(config.model, hook.hop_seconds, hook.context_seconds))
    return config, call_processor(detector, vad=vad)


class Server(BackgroundServer):
    """The call hook as the CLI builds it, on an ephemeral loopback port."""

    def __init__(self, config, processor, token=None):
        self.processor = processor
        super().__init__(
            CallHook(
                lambda sid: CallScreener(processor, sid), config.deployment.call_hook, token, batch_scorer(processor)
            )
        )


@pytest.fixture
def server():
    servers = []

    def start(config=None, processor=None, token=None, vad=False):
        if processor is None:
            config, processor = random_processor(vad)
        servers.append(Server(config, processor, token))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def start_event(sid="MZ1", **fmt):
    return json.dumps(
        {
            "event": "start",
            "sequenceNumber": "1",
            "start": {
                "streamSid": sid,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1, **fmt},
            },
        }
    )


def media_events(x8: np.ndarray):
    for i, start in enumerate(range(0, len(x8), 160)):  # 20 ms frames
        yield json.dumps(
            {
                "event": "media",
                "sequenceNumber": str(i + 2),
                "media": {
                    "timestamp": str(start // 8),
                    "payload": base64.b64encode(mulaw_encode(x8[start : start + 160])).decode(),
                },
            }
        )


def events_until_close(ws, timeout=30):
    out = []
    try:
        while True:
            out.append(json.loads(ws.recv(timeout=timeout)))
    except ConnectionClosed:
        pass
    return out


def test_mulaw_matches_g711():
    assert MULAW_TABLE[0xFF] == 0 and MULAW_TABLE[0x7F] == 0
    assert MULAW_TABLE[0x00] == pytest.approx(-32124 / 32768) and MULAW_TABLE[0x80] == pytest.approx(32124 / 32768)
    x = np.linspace(-0.9, 0.9, 4001, dtype=np.float32)
    err = np.abs(mulaw_decode(mulaw_encode(x)) - x)
    assert err.max() < 0.016 and err[np.abs(x) < 0.01].max() < 0.0005  # log companding: finer near zero


def test_protocol_end_to_end_localizes_a_spliced_span(trained, server):
    detector, call16, segments = trained
    # VAD off: Silero rightly hears the toy forgeries (filtered noise, a quantized buzz) as
    # non-speech and would gate exactly the forged hops; the gate has its own test below.
    config = tiny_app(inference=GEOMETRY, call_hook={"vad": False})
    srv = server(config, call_processor(detector, vad=False))
    x8 = soxr.resample(call16, 16000, 8000).astype(np.float32)
    with connect(srv.url) as ws:
        ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        ws.send(start_event("MZcall"))
        for message in media_events(x8):
            ws.send(message)
        ws.send(json.dumps({"event": "mark", "mark": {"name": "m1"}}))
        ws.send(json.dumps({"event": "stop", "streamSid": "MZcall"}))
        events = events_until_close(ws)
    verdicts = [e for e in events if e["event"] == "verdict"]
    assert [v["seq"] for v in verdicts] == list(range(len(verdicts)))  # in order
    assert len(verdicts) == int(np.ceil(len(x8) / 4000))  # one per 0.5 s hop (+ the final partial)
    assert all(
        v["streamSid"] == "MZcall" and v["label"] in ("likely-synthetic", "likely-genuine", "no-speech")
        for v in verdicts
    )
    assert {"event": "mark", "streamSid": "MZcall", "mark": {"name": "m1"}} in events
    summary = events[-1]
    assert summary["event"] == "summary" and summary["hops"] == len(verdicts)
    ((s, e),) = segments
    best = max(summary["detections"], key=lambda d: min(d["end"], e) - max(d["start"], s))
    iou = (min(best["end"], e) - max(best["start"], s)) / (max(best["end"], e) - min(best["start"], s))
    assert iou > 0.3, (summary["detections"], segments)
    forged_hops = [v for v in verdicts if v["span"][0] >= s and v["span"][1] <= e]
    assert any(v["label"] == "likely-synthetic" for v in forged_hops)
    assert summary["label"] == "likely-synthetic"


def test_python_api(trained):
    detector, call16, segments = trained
    screener = CallScreener(StreamProcessor(detector), "api-call")
    pcm = (np.clip(soxr.resample(call16, 16000, 8000), -1, 1) * 32767).astype("<i2").tobytes()
    verdicts = []
    for i in range(0, len(pcm), 320):  # 20 ms of 8 kHz PCM16
        verdicts += screener.feed(pcm[i : i + 320], 8000)
    verdicts += screener.close()
    assert verdicts[-1].final and [v.seq for v in verdicts] == list(range(len(verdicts)))
    assert all(b.span.start == pytest.approx(a.span.end) for a, b in zip(verdicts, verdicts[1:]))
    spans = [d.span for v in verdicts for d in v.detections]
    ((s, e),) = segments
    assert any(sp.intersection(type(sp)(s, e)) > 0.5 * (e - s) for sp in spans)
    assert screener.close() == [] and screener.processor.states == {}
    with pytest.raises(MediaError, match="closed"):
        screener.feed(b"\0\0", 8000)


def test_api_input_errors():
    config, processor = random_processor()
    screener = CallScreener(processor, "x")
    with pytest.raises(MediaError, match="odd-length"):
        screener.feed(b"\0\0\0", 16000)
    with pytest.raises(MediaError, match="8000 or 16000"):
        screener.feed(b"\0\0", 44100)
    screener.feed(b"\0\0" * 100, 16000)
    with pytest.raises(MediaError, match="changed mid-call"):
        screener.feed(b"\0\0", 8000)


def test_long_call_memory_is_bounded():
    config, processor = random_processor()
    screener = CallScreener(processor, "long")
    hop = np.random.default_rng(0).normal(0, 0.1, 8000).astype(np.float32)
    for _ in range(240):  # two minutes of 16 kHz audio
        screener.feed_samples(hop, 16000)
    state = processor.states["long"]
    audio = state.tracks["audio"]
    assert len(audio.data) <= processor.detector.plan.context + processor.detector.plan.hop
    assert audio.received == 240 * 8000 and len(screener.pending) < screener.hop


def test_vad_gate_costs_no_model_time(monkeypatch):
    config, processor = random_processor(vad=True)
    calls = []
    branch = processor.detector.branches["audio"]
    real = branch.head_forward  # every path through the branch ends here
    monkeypatch.setattr(
        branch, "head_forward", lambda h: calls.append(len(h[0])) or real(h)
    )  # h: (hidden states, log-mel)
    screener = CallScreener(processor, "quiet")
    silent = screener.feed_samples(np.zeros(16000, np.float32), 16000)
    assert [v.speech for v in silent] == [False, False] and calls == []
    assert all(v.score is None for v in silent)
    voiced = decode_audio(make_toyset_file()).samples[:16000]
    spoken = screener.feed_samples(voiced, 16000)
    assert any(v.speech for v in spoken) and sum(calls) >= 1


_TOY_FILE: dict = {}


def make_toyset_file():
    """One toy speech file, made once per session."""
    if "path" not in _TOY_FILE:
        import tempfile
        from pathlib import Path

        root = Path(tempfile.mkdtemp())
        make_toyset(root, files=1, seed=2)
        _TOY_FILE["path"] = next(root.rglob("*.wav"))
    return _TOY_FILE["path"]


def test_raw_mode_at_both_rates(server):
    srv = server()
    for rate in (16000, 8000):
        x = burst(rate, 1.2, 0.2, 1.0, 300)
        pcm = (x * 32767).astype("<i2").tobytes()
        with connect(f"{srv.url}/?mode=raw&rate={rate}&streamSid=raw{rate}") as ws:
            for i in range(0, len(pcm), rate // 25):
                ws.send(pcm[i : i + rate // 25])
            ws.send(json.dumps({"event": "stop"}))
            events = events_until_close(ws)
        assert [e["event"] for e in events] == ["verdict", "verdict", "verdict", "summary"]
        assert events[0]["streamSid"] == f"raw{rate}" and events[-1]["hops"] == 3
    with connect(f"{srv.url}/?mode=raw&rate=44100") as ws:
        events = events_until_close(ws)
    assert events[0]["code"] == "bad-rate"


def test_token_auth(server):
    token = "s3cret-token-0123456789"
    srv = server(token=token)
    for attempt in ({}, {"additional_headers": {"Authorization": "Bearer wrong"}}):
        with pytest.raises(InvalidStatus) as info:
            connect(srv.url, **attempt)
        assert info.value.response.status_code == 401
    for ok in (
        {"additional_headers": {"Authorization": f"Bearer {token}"}},
        {"additional_headers": {"X-Dfstream-Token": token}},
    ):
        with connect(srv.url, **ok) as ws:
            ws.send(start_event())
    with connect(f"{srv.url}/?token={token}") as ws:
        ws.send(start_event())


def test_exposure_needs_a_token():
    with pytest.raises(ConfigError, match="without a token"):
        check_exposure("0.0.0.0", None)
    check_exposure("0.0.0.0", "a-token-of-sixteen", tls=True)  # beyond loopback: TLS too (test_tls.py)
    check_exposure("127.0.0.1", None)
    check_exposure("localhost", None)


def test_bad_input_gets_error_events_and_the_call_goes_on(server):
    srv = server()
    x8 = burst(8000, 0.6, 0.0, 0.6, 300)
    with connect(srv.url) as ws:
        for bad in (
            "{not json",
            json.dumps([1, 2]),
            json.dumps({"event": "dance"}),
            next(media_events(x8)),
        ):  # media before start
            ws.send(bad)
        ws.send(start_event())
        ws.send(json.dumps({"event": "media", "media": {"payload": "***not base64***"}}))
        ws.send(b"\x00\x01")  # binary in JSON mode
        for message in media_events(x8):
            ws.send(message)
        ws.send(json.dumps({"event": "stop"}))
        events = events_until_close(ws)
    codes = [e["code"] for e in events if e["event"] == "error"]
    assert codes == [
        "malformed-json",
        "malformed-event",
        "unknown-event",
        "media-before-start",
        "bad-base64",
        "unexpected-binary",
    ]
    assert [e["event"] for e in events if e["event"] != "error"] == ["verdict", "verdict", "summary"]
    with connect(srv.url) as ws:
        ws.send(start_event(encoding="audio/x-alaw"))
        ws.send(start_event(sid=""))
        assert json.loads(ws.recv(timeout=10))["code"] == "unsupported-format"
        assert json.loads(ws.recv(timeout=10))["code"] == "missing-stream-sid"
    with connect(f"{srv.url}/?mode=raw&rate=16000") as ws:
        ws.send(b"\x00\x01\x02")
        error = json.loads(ws.recv(timeout=10))
        assert error["code"] == "bad-media" and "odd-length" in error["message"]


def test_vanishing_clients_idle_calls_floods_and_limits(server):
    config, processor = random_processor()
    config = replace(replace(config, "call_hook.idle_timeout_seconds", 1.0), "call_hook.max_connections_per_client", 3)
    srv = server(config, processor)
    x8 = burst(8000, 1.0, 0.0, 1.0, 300)
    ws = connect(srv.url)  # vanishes mid-call without 'stop'
    ws.send(start_event("gone"))
    for message in media_events(x8):
        ws.send(message)
    ws.close()
    with connect(srv.url) as idle:  # sends nothing: closed with 4408
        events = events_until_close(idle, timeout=10)
        assert events[-1]["code"] == "idle" and idle.close_code == 4408
    flood = np.tile(x8, 8)  # 8 s of audio, sent as fast as the socket takes it
    with connect(srv.url) as ws:
        ws.send(start_event("flood"))
        for message in media_events(flood):
            ws.send(message)
        ws.send(json.dumps({"event": "stop"}))
        verdicts = [e for e in events_until_close(ws) if e["event"] == "verdict"]
    assert [v["seq"] for v in verdicts] == list(range(16))
    drained(srv)
    held = [connect(srv.url) for _ in range(3)]
    with pytest.raises(InvalidStatus) as info:
        connect(srv.url)
    assert info.value.response.status_code == 503
    for ws in held:
        ws.close()
    with connect(srv.url, max_size=None) as ws:
        ws.send(b"\0" * (config.deployment.call_hook.max_message_bytes + 2))
        events_until_close(ws)
        assert ws.close_code == 1009
    drained(srv)
    assert processor.states == {} and srv.hook.open_total == 0 and srv.hook.open_by_client == {}


def drained(srv, seconds=20):
    """Wait until the server has torn down every call (teardown is asynchronous)."""
    deadline = time.time() + seconds
    while (srv.processor.states or srv.hook.open_total) and time.time() < deadline:
        time.sleep(0.05)


@pytest.mark.slow
def test_a_thousand_connections_opened_and_dropped(server):
    srv = server()
    for i in range(1000):
        ws = connect(srv.url)
        if i % 2:
            ws.send(start_event(f"c{i}"))
        ws.close()
    drained(srv)
    assert srv.processor.states == {} and srv.hook.open_total == 0
    with connect(f"{srv.url}/?mode=raw&rate=16000") as ws:  # still serving
        ws.send(b"\0\0" * 8000)
        assert json.loads(ws.recv(timeout=10))["event"] == "verdict"


def test_call_audio_is_resampled_with_2_ms_of_look_ahead():
    """8 kHz call audio reaches the hops at most 32 samples (2 ms at 16 kHz) behind what was sent,
    and equals an offline resampling of the whole call in its band."""
    config, processor = random_processor()
    screener = CallScreener(processor, "tone")
    t = np.arange(8000 * 3) / 8000
    x = (0.5 * np.sin(2 * np.pi * 1000 * t) + 0.2 * np.sin(2 * np.pi * 3100 * t)).astype(np.float32)
    out = []
    for i in range(0, len(x), 160):  # 20 ms telephony frames
        out += screener.cut(x[i : i + 160], 8000)
        assert 2 * (i + 160) - (len(out) * screener.hop + len(screener.pending)) <= 32
    got = np.concatenate(out + [screener.pending])
    offline = soxr.resample(x, 8000, 16000, quality="VHQ")
    assert np.abs(got[800:-800] - offline[800 : len(got) - 800]).max() < 2e-3
