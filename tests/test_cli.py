"""The dfstream command as a user runs it: replay, eval, train, toyset, --help."""

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml
from helpers import TINY, burst, encode, tiny_config, video_only

from dfstream.app.cli import main
from dfstream.engine.runtime.checkpoint import save_checkpoint
from dfstream.engine.runtime.detector import Detector


@pytest.fixture
def tiny_yaml(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


@pytest.fixture
def media(tmp_path):
    root = tmp_path / "media"
    (root / "sub").mkdir(parents=True)
    encode(str(root / "a.wav"), "wav", "pcm_s16le", 16000, 1, burst(16000, 2.3, 0.5, 1.5))
    encode(str(root / "sub" / "b.ogg"), "ogg", "libopus", 48000, 2, burst(48000, 1.1, 0.2, 0.6))
    encode(str(root / "tiny.wav"), "wav", "pcm_s16le", 16000, 1, np.zeros(100, np.float32))
    (root / "notes.txt").write_text("not media, and not a media suffix: skipped in folders")
    return root


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_replay_folder_with_an_untrained_model_warns(media, tmp_path, tiny_yaml, capsys):
    out = tmp_path / "out"
    assert (
        main(
            [
                "replay",
                str(media),
                "--out",
                str(out),
                "--model",
                "random",
                "--config",
                str(tiny_yaml),
                "--quiet",
                "--chunk-seconds",
                "1",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "WARNING" in captured.err and "UNTRAINED" in captured.err
    records = read_jsonl(out / "verdicts.jsonl")
    assert {r["stream_id"] for r in records} == {"a.wav", "sub/b.ogg", "tiny.wav"}
    a = [r for r in records if r["stream_id"] == "a.wav"]
    assert [r["seq"] for r in a] == [0, 1, 2] and a[-1]["final"] and a[-1]["span"] == [2.0, 2.3]
    assert all(r["schema"] == "dfstream.verdict/1" and r["model"].endswith("/UNTRAINED") for r in records)
    predictions = json.loads((out / "predictions.json").read_text())
    assert set(predictions) == {"a.wav", "sub/b.ogg", "tiny.wav"}
    for rows in predictions.values():
        assert [r[0] for r in rows] == sorted((r[0] for r in rows), reverse=True)
    scores = dict(line.split(";") for line in (out / "scores.csv").read_text().splitlines())
    assert set(scores) == set(predictions) and all(0 <= float(s) <= 1 for s in scores.values())
    assert "a.wav: 2.30 s" in captured.out and "3 file(s), 0 failed" in captured.out


def test_replay_reports_bad_files_and_goes_on(media, tmp_path, tiny_yaml, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.wav").write_bytes(b"")
    (bad / "junk.mp3").write_text("no media here " * 50)
    video_only(bad / "noaudio.mp4")
    wav = (media / "a.wav").read_bytes()
    (bad / "cut.wav").write_bytes(wav[: len(wav) // 2])
    out = tmp_path / "out"
    code = main(
        [
            "replay",
            str(media / "a.wav"),
            str(bad),
            str(tmp_path / "missing.flac"),
            "--out",
            str(out),
            "--model",
            "random",
            "--config",
            str(tiny_yaml),
            "--quiet",
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = {r["stream_id"]: r["error"] for r in read_jsonl(out / "verdicts.jsonl") if "error" in r}
    assert set(errors) == {"empty.wav", "junk.mp3", "noaudio.mp4", "cut.wav", f"{tmp_path}/missing.flac"}
    assert "empty" in errors["empty.wav"] and "no audio stream" in errors["noaudio.mp4"]
    assert "truncated" in errors["cut.wav"] and "no such file" in errors[f"{tmp_path}/missing.flac"]
    for name in errors:
        assert f"{name}: " in err
    assert set(json.loads((out / "predictions.json").read_text())) == {f"{media}/a.wav"}


def test_replay_glob_root_and_a_trained_checkpoint(media, tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    save_checkpoint(Detector.from_config(tiny_config()), ckpt, {"data": {"description": "unit-test noise"}})
    out = tmp_path / "out"
    assert (
        main(["replay", f"{media}/**/*.ogg", "--root", str(media), "--model", str(ckpt), "--out", str(out), "--quiet"])
        == 0
    )
    captured = capsys.readouterr()
    assert "WARNING" not in captured.err and "trained on unit-test noise" in captured.out
    assert list(json.loads((out / "predictions.json").read_text())) == ["sub/b.ogg"]


def test_replay_user_errors_exit_2_without_traceback(tmp_path, capsys):
    assert main(["replay", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "no media files found" in capsys.readouterr().err
    cfg = tmp_path / "c.yaml"
    cfg.write_text("localizer: {onset: 2}\n")
    (tmp_path / "x.wav").write_bytes(b"RIFF")
    assert main(["replay", str(tmp_path / "x.wav"), "--config", str(cfg)]) == 2
    assert "localizer needs" in capsys.readouterr().err
    assert main(["replay", str(tmp_path / "x.wav"), "--model", str(tmp_path / "nope")]) == 2
    assert "checkpoint directory not found" in capsys.readouterr().err


def test_replay_stops_cleanly_when_results_cannot_be_written(media, tmp_path, tiny_yaml):
    """A full disk (here: a file size limit, RLIMIT_FSIZE) ends the run with a clear error, whole lines only."""
    import os
    import resource
    import signal

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (1500, 1500))

    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dfstream",
            "replay",
            str(media),
            "--out",
            str(out),
            "--model",
            "random",
            "--config",
            str(tiny_yaml),
            "--quiet",
            "--chunk-seconds",
            "0.5",
        ],
        capture_output=True,
        text=True,
        preexec_fn=limit_file_size,
        timeout=300,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    held = int(result.stderr.split("It holds the first ")[1].split()[0])
    lines = (out / "verdicts.jsonl").read_text().splitlines()
    assert 0 < held == len(lines) and all(json.loads(x)["schema"] == "dfstream.verdict/1" for x in lines)
    assert "File too large" in result.stderr and "not finished" in result.stdout
    predictions = json.loads((out / "predictions.json").read_text())  # the files completed before it
    finished = {r["stream_id"] for r in map(json.loads, lines) if r["final"]}
    assert set(predictions) == finished


def test_serve_with_an_unreachable_broker_exits_2_with_a_clear_message(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "serve.yaml"
    config.write_text(yaml.safe_dump({**TINY, "kafka": {"client": {"bootstrap_timeout_ms": 1500}}}))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dfstream",
            "serve",
            "--bootstrap",
            f"127.0.0.1:{port}",
            "--config",
            str(config),
            "--model",
            "random",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"dfstream: error: cannot reach Kafka at 127.0.0.1:{port}" in result.stderr


def test_eval_command(tmp_path, capsys):
    meta = [
        {"file": "a", "fake_segments": [[0, 10]], "modify_type": "audio_modified"},
        {"file": "r", "fake_segments": [], "modify_type": "real"},
    ]
    (tmp_path / "m.json").write_text(json.dumps(meta))
    (tmp_path / "p.json").write_text(json.dumps({"a": [[0.5, 20, 30], [0.5, 0, 10]]}))
    (tmp_path / "s.csv").write_text("a;0.8\nr;0.1\n")
    assert (
        main(
            [
                "eval",
                "--pred",
                str(tmp_path / "p.json"),
                "--meta",
                str(tmp_path / "m.json"),
                "--scores",
                str(tmp_path / "s.csv"),
                "--out",
                str(tmp_path / "metrics.json"),
            ]
        )
        == 0
    )
    result = json.loads((tmp_path / "metrics.json").read_text())
    assert result["localization"]["ap"]["0.5"] == 0.5 and result["detection"]["auc"] == 1.0
    assert "1 without predictions" in capsys.readouterr().out
    (tmp_path / "s.csv").write_text("a,0.8\n")
    assert (
        main(
            [
                "eval",
                "--pred",
                str(tmp_path / "p.json"),
                "--meta",
                str(tmp_path / "m.json"),
                "--scores",
                str(tmp_path / "s.csv"),
            ]
        )
        == 2
    )
    assert "expected 'file;score'" in capsys.readouterr().err
    assert main(["eval", "--pred", str(tmp_path / "none.json"), "--meta", str(tmp_path / "m.json")]) == 2
    assert "predictions file not found" in capsys.readouterr().err
    (tmp_path / "p.json").write_text('{"a": [[0.5, 1]]}')
    assert main(["eval", "--pred", str(tmp_path / "p.json"), "--meta", str(tmp_path / "m.json")]) == 2
    assert "must be a list of [score, start, end]" in capsys.readouterr().err


def test_train_toyset_and_replay(tmp_path, tiny_yaml, capsys):
    data = tmp_path / "toy"
    assert main(["toyset", "--out", str(data), "--files", "6"]) == 0
    meta = json.loads((data / "metadata.json").read_text())
    assert len(meta) == 6 and {m["split"] for m in meta} == {"train", "val", "test"}
    assert all((data / m["file"]).exists() for m in meta)
    assert (
        main(
            [
                "train",
                "--meta",
                str(data / "metadata.json"),
                "--root",
                str(data),
                "--out",
                str(tmp_path / "ck"),
                "--config",
                str(tiny_yaml),
                "--epochs",
                "2",
                "--data-description",
                "SYNTHETIC toy",
            ]
        )
        == 0
    )
    card = json.loads((tmp_path / "ck" / "dfstream.json").read_text())["training"]
    assert card["data"]["description"] == "SYNTHETIC toy" and card["data"]["files"] == 4
    assert len(card["history"]) == 2 and card["method"]["encoder"] == "frozen"
    assert card["best_epoch"]["epoch"] in (1, 2)
    assert (
        main(
            [
                "replay",
                str(data / "test"),
                "--root",
                str(data),
                "--model",
                str(tmp_path / "ck"),
                "--out",
                str(tmp_path / "out"),
                "--quiet",
            ]
        )
        == 0
    )
    assert "trained on SYNTHETIC toy (4 files" in capsys.readouterr().out


def test_train_rejects_bad_metadata(tmp_path, capsys):
    (tmp_path / "m.json").write_text(json.dumps([{"file": "x.wav", "fake_segments": [], "split": "test"}]))
    assert (
        main(["train", "--meta", str(tmp_path / "m.json"), "--root", str(tmp_path), "--out", str(tmp_path / "c")]) == 2
    )
    assert "no entries with split 'train'" in capsys.readouterr().err
    (tmp_path / "m.json").write_text(json.dumps([{"name": "x.wav"}]))
    assert (
        main(["train", "--meta", str(tmp_path / "m.json"), "--root", str(tmp_path), "--out", str(tmp_path / "c")]) == 2
    )
    assert "has no 'file'" in capsys.readouterr().err


@pytest.mark.parametrize("command", [[], ["replay"], ["train"], ["eval"], ["toyset"]])
def test_help_explains(command):
    result = subprocess.run(
        [sys.executable, "-m", "dfstream", *command, "--help"], capture_output=True, text=True, check=True
    )
    assert "usage: dfstream" in result.stdout and len(result.stdout) > 300
