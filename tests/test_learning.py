"""The default architecture learns the synthetic toy task end to end (slow)."""

import json

import pytest

from dfstream.app.cli import main


@pytest.mark.slow
def test_default_model_learns_toy_task(tmp_path, capsys):
    data = tmp_path / "toy"
    main(["toyset", "--out", str(data), "--files", "96", "--seed", "3"])
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
                "--data-description",
                "SYNTHETIC toy",
            ]
        )
        == 0
    )
    out = tmp_path / "out"
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
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "eval",
                "--pred",
                str(out / "predictions.json"),
                "--scores",
                str(out / "scores.csv"),
                "--meta",
                str(data / "metadata.json"),
                "--split",
                "test",
                "--out",
                str(out / "m.json"),
            ]
        )
        == 0
    )
    metrics = json.loads((out / "m.json").read_text())
    card = json.loads((tmp_path / "ck" / "dfstream.json").read_text())["training"]
    assert card["best_epoch"]["frame_auc"] > 0.9
    # 14 test files of the synthetic toy set: coarse bounds that a random model does not reach
    # (measured with seed 3: detection AUC 0.96, AP@0.5 0.44, AR@5 0.36)
    assert metrics["detection"]["auc"] >= 0.8
    assert metrics["localization"]["ap"]["0.5"] >= 0.25
    assert metrics["localization"]["ar"]["5"] >= 0.25
