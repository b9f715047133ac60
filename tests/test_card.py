"""Every trained checkpoint gets a model card: what it is, its data as described, how it was trained,
and the results dfstream eval measured on it."""

import json

from helpers import tiny_app

from dfstream.app.cli import main
from dfstream.app.toyset import make_toyset
from dfstream.app.training import train
from dfstream.engine.core.config import replace


def test_train_writes_a_card_and_card_adds_the_evaluations(tmp_path, capsys):
    meta = make_toyset(tmp_path / "d", files=4, seed=2, min_seconds=1.0, max_seconds=1.2)
    train(meta, tmp_path / "d", tmp_path / "ck", replace(tiny_app(), "train.epochs", 2), "SYNTHETIC toy tones")
    text = (tmp_path / "ck" / "MODEL_CARD.md").read_text()
    model_id = json.loads((tmp_path / "ck" / "dfstream.json").read_text())["model_id"]
    assert text.startswith(f"# Model card: {model_id}\n")
    assert "**Trained on: SYNTHETIC toy tones.**" in text
    assert "- Audio encoder: built from its config, random init; frozen." in text
    assert "2 of 2 epochs run, batch 16 x 1" in text and "Not evaluated yet" in text
    metrics = {
        "labels": "fake_segments",
        "files": 12,
        "localization": {"ap": {"0.5": 0.5, "0.75": 0.25}, "ar": {"10": 0.75}},
        "detection": {"auc": 0.875, "eer": 0.125},
        "corpus": {"asvspoof2019": {"eer": 0.0312, "files": 12}},
        "command": "dfstream eval --pred p.json --meta m.json --split test --out metrics.json",
    }
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    assert main(["card", str(tmp_path / "ck"), "--eval", str(tmp_path / "metrics.json")]) == 0
    text = (tmp_path / "ck" / "MODEL_CARD.md").read_text()
    assert "Not evaluated yet" not in text
    assert "### dfstream eval --pred p.json --meta m.json --split test --out metrics.json\n" in text
    assert "- files: 12 (fake_segments); AP@0.5 0.5000, AP@0.75 0.2500, AR@10 0.7500; AUC 0.8750, EER 0.1250" in text
    assert "- asvspoof2019: eer 0.0312, files 12" in text
    assert main(["card", str(tmp_path / "ck"), "--eval", str(tmp_path / "absent.json")]) == 2
    assert "cannot read the evaluation" in capsys.readouterr().err
