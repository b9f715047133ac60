"""bench/train_speed.py: a config's training speed on a toy set, its encoders swapped for sized ones."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import train_speed  # noqa: E402


def test_the_production_config_trains_at_tiny_size_and_reports_its_speed(tmp_path):
    out = tmp_path / "speed.json"
    argv = ["--config", str(ROOT / "configs/production-audio.yaml"), "--batch-size", "4", "--workers", "1"]
    argv += ["--device", "cpu", "--sizes", "tiny", "--files", "8", "--epochs", "1", "--out", str(out)]
    assert train_speed.main(argv) == 0
    result = json.loads(out.read_text())
    assert result["sizes"] == "tiny" and result["epochs"] == 1 and result["device"] == "cpu"
    assert result["method"] == {
        "encoder": "fine-tuned",
        "precision": "auto",
        "data": "stream",
        "batch_size": 4,
        "accumulate": 1,
        "workers": 1,
    }
    assert result["train_clips_per_s"] > 0 and result["peak_memory_mb"] > 0 and result["machine"]["cores"] >= 1


def test_base_sizes_are_the_production_encoders_shapes():
    from dfstream.app.config import load_config

    both = load_config([ROOT / "configs/production-audio.yaml", ROOT / "configs/production-av.yaml"])
    base = train_speed.sized(both, "base")
    audio, visual = base.model.branch("audio").encoder, base.model.branch("visual").encoder
    assert audio.pretrained is None and (audio.hidden_size, audio.num_layers, audio.conv_dim) == (768, 12, 512)
    assert visual.pretrained is None and (visual.hidden_size, visual.num_layers, visual.image_size) == (768, 12, 224)
