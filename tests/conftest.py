"""Shared fixtures: a test clip, and the Kafka-protocol broker for tests marked ``kafka``.

``DFSTREAM_KAFKA_BOOTSTRAP=host:port`` points them at an external cluster (for
example one from ``bin/dev-broker start``); otherwise the session starts its own
memory-mode development broker on a free loopback port and stops it at the end.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

EXTERNAL_BOOTSTRAP = "DFSTREAM_KAFKA_BOOTSTRAP"


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    """A 7.37 s stereo 44.1 kHz FLAC-in-Matroska of noise bursts with PTS starting at 3 s."""
    from helpers import encode

    rng = np.random.default_rng(1)
    rate = 44100
    t = np.arange(int(7.37 * rate)) / rate
    signal = (
        rng.normal(0, 0.2, len(t)) * (np.sin(2 * np.pi * 0.7 * t) > 0) + 0.3 * np.sin(2 * np.pi * 220 * t)
    ).astype(np.float32)
    path = tmp_path_factory.mktemp("clip") / "clip.mkv"
    encode(str(path), "matroska", "flac", rate, 2, signal, start=3.0)
    return path


def _dev_broker(state_dir, durable: bool):
    """A started :class:`~dfstream.streams.dev_broker.DevBroker`, or a skip when its binaries are missing."""
    from dfstream.streams.dev_broker import BrokerError, DevBroker, find_tansu, find_weed

    try:
        find_tansu()
        if durable:
            find_weed()
    except BrokerError as exc:
        pytest.skip(str(exc))
    return DevBroker(port=0, durable=durable, state_dir=state_dir).start()


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory):
    """``bootstrap_servers`` of the test broker: the external one, or a memory-mode dev broker."""
    external = os.environ.get(EXTERNAL_BOOTSTRAP)
    if external:
        yield external
        return
    broker = _dev_broker(tmp_path_factory.mktemp("dev-broker"), durable=False)
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture
def durable_broker(tmp_path):
    """A started durable (SeaweedFS S3) :class:`~dfstream.streams.dev_broker.DevBroker`, stopped afterwards.

    The test may call ``restart_broker()`` on it. Skipped against an external cluster.
    """
    if os.environ.get(EXTERNAL_BOOTSTRAP):
        pytest.skip(f"{EXTERNAL_BOOTSTRAP} is set: durable-broker tests need the local dev broker")
    broker = _dev_broker(tmp_path / "dev-broker", durable=True)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(autouse=True)
def _torch_threads():
    """Each test starts with torch's default CPU threads: a Detector sets the process's count
    (``inference.threads``; two-branch models divide the cores), and that must not leak into later tests."""
    import torch

    from dfstream.engine.runtime.device import DEFAULT_THREADS

    torch.set_num_threads(DEFAULT_THREADS)
    yield


@pytest.fixture(autouse=True)
def _float32_by_default(monkeypatch):
    """``inference.dtype: auto`` resolves as on a CPU without native bf16 (float32), whatever this machine
    is: tests compare scores exactly and must not change with the CPU CI draws. The choice itself is tested
    with explicit flags (test_precision.py); subprocesses get float32 from the tiny configs (helpers.TINY)."""
    import dfstream.engine.runtime.device

    monkeypatch.setattr(dfstream.engine.runtime.device, "cpu_flags", lambda *args: frozenset())
