"""Secrets come from files or the environment, never inline, and never show in logs, errors or dumped config."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import yaml
from helpers import TINY

from dfstream.app.config import app_config
from dfstream.engine.core.errors import ConfigError
from dfstream.streams.config import KafkaConfig
from dfstream.streams.kafka_io import _common
from dfstream.streams.secrets import masked, resolve

SECRET = "hunter2-S3cret-value"


def test_an_inline_secret_is_refused_saying_how_to_fix_it():
    with pytest.raises(ConfigError) as e:
        app_config({"kafka": {"client": {"sasl_plain_password": SECRET}}})
    message = str(e.value)
    assert SECRET not in message
    assert "kafka.client.sasl_plain_password_file" in message and "kafka.client.sasl_plain_password_env" in message
    with pytest.raises(ConfigError, match="ssl_password is a secret"):
        app_config({"kafka": {"client": {"ssl_password": SECRET}}})


def test_secrets_are_read_from_files_and_the_environment_when_a_client_is_built(tmp_path, monkeypatch):
    path = tmp_path / "password"
    path.write_text(SECRET + "\n")
    monkeypatch.setenv("DFSTREAM_TEST_SSL_PASSWORD", "another-" + SECRET)
    client = {
        "sasl_plain_password_file": str(path),
        "ssl_password_env": "DFSTREAM_TEST_SSL_PASSWORD",
        "ssl_cafile": "/etc/ca.pem",
        "sasl_plain_username": "svc",
    }
    config = app_config({"kafka": {"client": client}}).deployment.kafka
    assert SECRET not in repr(config) and SECRET not in str(config.to_dict())  # the config holds where, not what
    built = _common(config)
    assert built["sasl_plain_password"] == SECRET and built["ssl_password"] == "another-" + SECRET
    assert built["ssl_cafile"] == "/etc/ca.pem" and "sasl_plain_password_file" not in built
    with pytest.raises(ConfigError, match=f"cannot read {tmp_path / 'nope'}"):
        resolve({"sasl_plain_password_file": str(tmp_path / "nope")}, "kafka.client")
    with pytest.raises(ConfigError, match="DFSTREAM_TEST_UNSET is not set"):
        resolve({"sasl_plain_password_env": "DFSTREAM_TEST_UNSET"}, "kafka.client")


def test_masked_hides_every_secret_value_in_a_dump():
    dump = {
        "kafka": {"client": {"sasl_plain_password": SECRET, "sasl_plain_password_file": "/run/s"}},
        "list": [{"api_token": SECRET}],
        "token_file": "/etc/t",
    }
    shown = masked(dump)
    assert SECRET not in str(shown) and shown["kafka"]["client"]["sasl_plain_password_file"] == "/run/s"
    assert shown["kafka"]["client"]["sasl_plain_password"] == "***" and shown["token_file"] == "/etc/t"
    assert KafkaConfig().to_dict() == masked(KafkaConfig().to_dict())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_shows_no_secret_even_when_it_fails_to_start(tmp_path):
    password = tmp_path / "kafka_password"
    password.write_text(SECRET)
    config = tmp_path / "serve.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                **TINY,
                "kafka": {
                    "client": {
                        "bootstrap_timeout_ms": 1500,
                        "security_protocol": "SASL_PLAINTEXT",
                        "sasl_mechanism": "PLAIN",
                        "sasl_plain_username": "svc",
                        "sasl_plain_password_file": str(password),
                    }
                },
            }
        )
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dfstream",
            "serve",
            "--bootstrap",
            f"127.0.0.1:{_free_port()}",
            "--config",
            str(config),
            "--model",
            "random",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 2 and "cannot reach Kafka" in result.stderr
    assert '"event": "config"' in result.stderr and str(password) in result.stderr  # the dump names the file
    assert SECRET not in result.stderr + result.stdout


def test_call_hook_logs_its_config_without_the_token(tmp_path):
    token = "tok-" + SECRET
    (tmp_path / "token").write_text(token)
    config = tmp_path / "hook.yaml"
    config.write_text(yaml.safe_dump({**TINY, "call_hook": {"vad": False}}))
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dfstream",
            "call-hook",
            "--port",
            str(port),
            "--token-file",
            str(tmp_path / "token"),
            "--config",
            str(config),
            "--model",
            "random",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.3)
        else:
            pytest.fail("the call hook did not start")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert "config: {'call_hook':" in err and str(tmp_path / "token") in err
    assert token not in out + err and SECRET not in out + err


def test_the_metrics_endpoint_binds_to_loopback_unless_told_otherwise():
    from dfstream.app.cli import build_parser

    assert build_parser().parse_args(["serve", "--metrics-port", "9100"]).metrics_host == "127.0.0.1"
