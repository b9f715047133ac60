"""The house: one import name, the layers' contracts (import-linter), and a modality added without a runtime edit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY, tiny_config

from dfstream.engine.core.config import to_dict
from dfstream.engine.media.decode import AudioBlock
from dfstream.engine.runtime.checkpoint import load_checkpoint, save_checkpoint
from dfstream.engine.runtime.detector import Detector
from dfstream.engine.runtime.stream import StreamProcessor
from dfstream.modalities import BRANCHES

ROOT = Path(__file__).resolve().parent.parent
CHECK = [sys.executable, str(ROOT / "bin" / "check-imports")]


def test_the_import_contracts_hold():
    result = subprocess.run(CHECK, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Contracts: 4 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    "module,imports,contract",
    [
        ("dfstream/engine/core/probe.py", "from dfstream.streams import replay", "Layers"),
        ("dfstream/streams/probe.py", "from dfstream.reports import timeline", "Layers"),
        ("dfstream/fusion/probe.py", "import dfstream.modalities.base", "Layers"),
        ("dfstream/engine/media/probe.py", "import torch", "torch and transformers only"),
        ("dfstream/engine/runtime/probe.py", "import kafka", "Kafka and WebSockets only"),
    ],
)
def test_a_forbidden_import_breaks_a_contract(tmp_path, module, imports, contract):
    probe = tmp_path / "probe.py"
    probe.write_text(f'"""A module that breaks the rules."""\n{imports}\n')
    result = subprocess.run([*CHECK, "--add", f"{module}={probe}"], capture_output=True, text=True, timeout=300)
    assert result.returncode != 0, result.stdout[-3000:]
    broken = result.stdout.split("Broken contracts")[1]
    assert contract in broken and module.removesuffix(".py").replace("/", ".") in broken, broken[-3000:]


def test_one_import_name_outside_the_source_tree(tmp_path):
    """Installed, dfstream adds `dfstream` to the import namespace and no generic name."""
    code = "import dfstream, dfstream.engine.core.types; print(dfstream.__version__); import engine"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert result.stdout.strip() == "0.1.0"
    assert "ModuleNotFoundError: No module named 'engine'" in result.stderr
    for name in ("modalities", "fusion", "streams", "reports"):
        result = subprocess.run(
            [sys.executable, "-c", f"import {name}"], cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert f"No module named '{name}'" in result.stderr


@pytest.fixture
def loudness(monkeypatch):
    """The test modality, registered as a new one is: one entry in the registry."""
    from loudness.branch import LoudnessBranch

    monkeypatch.setitem(BRANCHES, "loudness", LoudnessBranch)
    return LoudnessBranch


def test_a_new_modality_is_a_folder_and_one_registration(loudness, tmp_path):
    config = tiny_config(branches=("audio", "loudness"), loudness={"dim": 3})
    assert config.branch("loudness").dim == 3 and to_dict(config)["loudness"] == {"dim": 3, "floor": -80.0}
    detector = Detector.from_config(config)
    assert detector.modalities == {"audio": "audio", "loudness": "audio"} and detector.fusion is not None
    rng = np.random.default_rng(0)
    audio = np.concatenate([rng.normal(0, 0.01, 16000), rng.normal(0, 0.5, 16000)]).astype(np.float32)
    processor = StreamProcessor(detector)
    verdicts = [processor.feed("s", k, AudioBlock(audio[k * 8000 : (k + 1) * 8000], k * 0.5), k == 3) for k in range(4)]
    curves = {name for v in verdicts if v.trace is not None for name in v.trace.branches}
    assert curves == {"audio", "loudness"}
    energy = np.concatenate([v.trace.branches["loudness"] for v in verdicts if v.trace is not None])
    quiet, loud = energy[:45], energy[55:]  # its curve follows the loudness of the audio it was given
    assert len(energy) == 100 and abs(quiet.mean() - loud.mean()) > 10 * max(quiet.std(), loud.std())
    assert all(d.modality == "audio" for v in verdicts for d in v.detections)  # both branches hear audio
    # it travels in checkpoints like the others: its section, its specifications, its weights
    save_checkpoint(detector, tmp_path / "ck", {"data": {"description": "none"}})
    meta = json.loads((tmp_path / "ck" / "dfstream.json").read_text())
    assert meta["config"]["loudness"]["dim"] == 3 and meta["specifications"]["loudness"]["modality"] == "audio"
    loaded = load_checkpoint(tmp_path / "ck", {"inference": {"dtype": "float32"}})
    again = StreamProcessor(loaded).feed("s", 0, AudioBlock(audio[:8000], 0.0))
    assert np.array_equal(again.trace.branches["loudness"], verdicts[0].trace.branches["loudness"])


def test_an_unregistered_modality_is_refused_with_the_valid_ones():
    from dfstream.engine.core.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown config key loudness"):
        tiny_config(loudness={"dim": 3})
    with pytest.raises(ConfigError, match="unknown branch 'loudness'; valid: audio, visual"):
        tiny_config(branches=("audio", "loudness"))
    assert "loudness" not in TINY
