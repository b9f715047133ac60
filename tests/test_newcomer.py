"""What a new user meets first: the shipped model by default, found without a checkout, on mixed real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from media_corpus import CASES, write_corpus

from dfstream.app.cli import build_parser, main
from dfstream.engine.core.model_store import RANDOM, model_index, resolve_model, shipped_model

ROOT = Path(__file__).resolve().parent.parent


def test_replay_without_model_runs_the_shipped_model_on_a_folder_of_mixed_media(tmp_path, capsys):
    """`dfstream replay FOLDER`: MP4, MOV, MKV, WebM, MPEG-TS, Ogg, M4A, MP3, FLAC, WAV with unequal and
    late tracks, negative starts, VFR, rotation, audio only and video only: exit 0, verdicts for every
    file from the shipped model, and a report that says truthfully what it shows of faces."""
    folder = tmp_path / "mixed"
    cases = write_corpus(folder)
    out = tmp_path / "out"
    assert main(["replay", str(folder), "--out", str(out), "--quiet", "--report", str(out / "report.html")]) == 0
    captured = capsys.readouterr()
    shipped = json.loads((shipped_model() / "dfstream.json").read_text())
    assert "UNTRAINED" not in captured.err and f"model {shipped['model_id']}: trained on" in captured.out
    records = [json.loads(line) for line in (out / "verdicts.jsonl").read_text().splitlines()]
    assert not [r for r in records if "error" in r]
    assert {r["stream_id"] for r in records} == set(cases) and {r["model"] for r in records} == {shipped["model_id"]}
    finals = {r["stream_id"] for r in records if r["final"]}
    assert finals == set(cases)
    predictions = json.loads((out / "predictions.json").read_text())
    assert set(predictions) == set(cases)
    report = (out / "report.html").read_text()
    assert "this model has no visual branch" not in report
    audio_only = [c.name for c in CASES if c.video is None]
    for name in audio_only:  # each stream's section says it has no video
        section = report.split(f"<h2>{name}</h2>")[1].split("</section>")[0]
        assert "Face crops: none: this stream has no video." in section


def test_the_shipped_model_is_the_default_and_random_weights_only_by_name():
    shipped = shipped_model()
    assert resolve_model(None) == shipped == resolve_model("default")
    assert resolve_model(RANDOM) is None and resolve_model("ckpt/x") == Path("ckpt/x")
    assert (shipped / "model.safetensors").is_file() and model_index(shipped) == shipped / "index"
    assert model_index(None) is None
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name in ("replay", "inspect", "serve", "call-hook"):
        text = commands[name].format_help()
        assert "shipped with dfstream" in text and "'random'" in text and "UNTRAINED" in text, name


def test_the_wheel_carries_the_shipped_model_and_it_loads_without_a_checkout(tmp_path):
    """A built wheel holds the model as package data; unpacked away from the source tree, the package
    finds it there (no source checkout, no editable install)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("dfstream-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        assert {
            "dfstream/models/default/model.safetensors",
            "dfstream/models/default/dfstream.json",
            "dfstream/models/default/index/index.faiss",
        } <= names
        z.extractall(site)
    code = (
        "from dfstream.engine.core.model_store import shipped_model; "
        "from dfstream.engine.runtime.checkpoint import read_metadata; "
        "p = shipped_model(); print(p); print(read_metadata(p)['model_id'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(site)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    folder, model_id = result.stdout.split()
    assert Path(folder) == site / "dfstream" / "models" / "default"
    assert model_id == json.loads((shipped_model() / "dfstream.json").read_text())["model_id"]


@pytest.mark.parametrize(
    "module",
    [
        "dfstream.streams.replay",
        "dfstream.streams.serve",
        "dfstream.streams.call_hook",
        "dfstream.streams.topic_replay",
        "dfstream.engine.runtime.scheduler",
        "dfstream.engine.media.blocks",
        "dfstream.reports.timeline",
    ],
)
def test_transport_and_media_modules_import_no_torch(module):
    """streams/replay.py says it imports no torch: it is true (the processor is handed in)."""
    result = subprocess.run(
        [sys.executable, "-c", f"import sys, {module}; print('torch' in sys.modules)"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "False"
