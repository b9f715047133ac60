"""Reports: the timeline record, the terminal view, and the HTML reports opened in headless Chromium."""
import json

import numpy as np
import pytest
import yaml

from browser import open_report
from engine.cli import main
from engine.decode import AudioBlock
from engine.evaluation import attribution_metrics, evaluate_details, match_attributions
from engine.dataset import load_metadata
from engine.types import Detection, Span, Trace, Verdict
from helpers import TINY, burst, encode
from reports.eval_report import write_eval_report
from reports.terminal import render
from reports.timeline import StreamTimeline


def _verdict(seq, start, end, trace=None, detections=(), score=None):
    return Verdict("s", seq, Span(start, end), score, None, tuple(detections), "m", 1.0, trace=trace)


def test_timeline_keeps_envelope_curves_and_detections_exactly():
    tl = StreamTimeline("s")
    tl.add_audio(AudioBlock((np.arange(320) / 320).astype(np.float32), 1.0))
    times, lo, hi = tl.envelope()
    assert times.tolist() == [1.0, 1.01]
    assert lo.tolist() == [0.0, 0.5] and hi.tolist() == [np.float32(159 / 320), np.float32(319 / 320)]
    d = Detection(Span(1.0, 1.04), 0.9, "audio")
    late = Trace(1.04, 0.02, np.array([0.3, 0.4], np.float32), {"audio": np.array([0.3, 0.4], np.float32)})
    early = Trace(1.0, 0.02, np.array([0.1, 0.9], np.float32), {"audio": np.array([0.1, 0.9], np.float32)})
    tl.add_verdict(_verdict(1, 1.04, 1.08, late, score=0.4))
    tl.add_verdict(_verdict(0, 1.0, 1.04, early, [d], score=0.9))
    curve = tl.curve()
    assert np.allclose(curve.times, [1.0, 1.02, 1.04, 1.06])
    assert curve.fused.tolist() == pytest.approx([0.1, 0.9, 0.3, 0.4])
    assert curve.branches["audio"].tolist() == pytest.approx([0.1, 0.9, 0.3, 0.4])
    assert tl.score == pytest.approx(0.9) and tl.detections == [d] and tl.end == pytest.approx(1.08)
    assert tl.step == 0.02


def test_terminal_view_is_exact():
    tl = StreamTimeline("call.wav")
    tl.add_audio(AudioBlock(np.zeros(4 * 16000, np.float32), 0.0))
    probs = np.array([0.0, 0.5, 1.0, 0.2], np.float32)
    d = Detection(Span(2, 3), 0.95, "audio", ({"generator": "g", "similarity": 0.8},))
    tl.add_verdict(Verdict("call.wav", 0, Span(0, 4), 1.0, Span(0, 4), (d,), "m", 1.0, True, None,
                           Trace(0.0, 1.0, probs, {"audio": probs})))
    text = render(tl, 4, {"fake_segments": [Span(2, 3)]}).splitlines()
    assert text[0] == "call.wav  4.00 s  score 1.000  1 forged span(s)"
    assert text[1] == "P(forged) | ▄█▂|"
    assert text[2] == "detected  |··A·|"
    assert text[3] == "true      |··#·|"
    assert text[5] == "      2.00 -     3.00 s  score 0.950  A audio  ~ g (0.80)"


@pytest.fixture
def tiny_yaml(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


EVIL = "x<img src=y onerror=alert(1)>.wav"


@pytest.fixture
def media(tmp_path):
    root = tmp_path / "media"
    root.mkdir()
    encode(str(root / "a.wav"), "wav", "pcm_s16le", 16000, 1, burst(16000, 2.3, 0.5, 1.5))
    encode(str(root / EVIL), "wav", "pcm_s16le", 16000, 1, burst(16000, 1.2, 0.2, 0.6))
    (root / "broken.wav").write_bytes(b"RIFF" + b"\x00" * 40)
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps([{"file": "a.wav", "split": "test", "modify_type": "audio_modified",
                                 "fake_segments": [[0.5, 1.5]], "audio_fake_segments": [[0.5, 1.5]],
                                 "visual_fake_segments": []}]))
    return root, meta


def test_replay_report_loads_in_chromium(media, tmp_path, tiny_yaml, capsys):
    root, meta = media
    report = tmp_path / "report.html"
    code = main(["replay", str(root), "--out", str(tmp_path / "out"), "--config", str(tiny_yaml), "--quiet",
                 "--chunk-seconds", "1", "--report", str(report), "--meta", str(meta)])
    assert code == 1  # broken.wav failed; the others are reported
    assert f"wrote {report}" in capsys.readouterr().out
    page = open_report(report, tmp_path / "report.png")
    assert page["errors"] == [] and page["requests"] == []
    assert page["scripts"] == 0  # the file name with markup in it was escaped
    assert page["sections"] == ["summary", "s0", "s1", "s2"]
    assert page["headings"][0] == "Summary" and sorted(page["headings"][1:]) == sorted(["a.wav", EVIL, "broken.wav"])
    assert page["headings"][1] == "broken.wav"  # failed streams first
    assert sorted(page["links"]) == ["#s0", "#s1", "#s2"] + ["#summary"] * 3  # down to each, and back
    # one timeline per decoded file, drawn 12 x 4.6 in at 100 dpi, all decoded by the browser
    assert [(i["alt"], i["width"], i["height"], i["complete"]) for i in page["images"]] == [
        (f"timeline of {name}", 1200, 460, True) for name in page["headings"][2:]]
    text = report.read_text()
    assert "1 true span(s)" in text and "UNTRAINED model" in text and "not a readable media file" in text
    assert text.count("true span(s)") == 1  # only a.wav is in the metadata
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_eval_report_loads_in_chromium(tmp_path):
    meta = [{"file": f"f{i}", "split": "test", "modify_type": "audio_modified" if i % 2 else "real",
             "audio_model": ["A", "B"][i % 4 // 2] if i % 2 else None,
             "fake_segments": [[1.0, 2.0]] if i % 2 else [], "audio_fake_segments": [[1.0, 2.0]] if i % 2 else [],
             "visual_fake_segments": []} for i in range(8)]
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    preds = {f"f{i}": [[0.9 if i % 2 else 0.3, 1.0 + 0.1 * i, 2.0]] for i in range(8)}
    (tmp_path / "pred.json").write_text(json.dumps(preds))
    (tmp_path / "scores.csv").write_text("".join(f"f{i};{0.2 + 0.1 * i}\n" for i in range(8)))
    result, details = evaluate_details(tmp_path / "pred.json", tmp_path / "meta.json", tmp_path / "scores.csv")
    assert details["detection"]["y"] == [0, 1, 0, 1, 0, 1, 0, 1]
    detections = {f"f{i}": [Detection(Span(1.0, 2.0), 0.9, "audio",
                                      ({"generator": ["A", "unknown", "B", "B"][i // 2], "similarity": 0.5},))]
                  for i in range(8)}
    matches, missed = match_attributions(load_metadata(tmp_path / "meta.json"), detections, "fake_segments",
                                         "audio_model")
    assert [(m["generator"], m["predicted"]) for m in matches] == [("A", "A"), ("B", "unknown"), ("A", "B"),
                                                                  ("B", "B")]
    result["attribution"] = attribution_metrics(matches, missed, {"A", "B"})
    details["attribution"] = matches
    report = write_eval_report(tmp_path / "eval.html", result, details, "dfstream eval --pred pred.json")
    page = open_report(report, tmp_path / "eval.png")
    assert page["errors"] == [] and page["requests"] == [] and page["scripts"] == 0
    assert page["sections"] == ["metrics", "curves", "attribution"]
    assert [i["alt"] for i in page["images"]] == ["AP vs IoU", "ROC curve", "DET curve", "attribution confusion matrix"]
    assert all(i["complete"] and i["width"] > 300 and i["height"] > 300 for i in page["images"])
    assert result["attribution"]["top1_accuracy"] == 0.5 and "0.5000" in report.read_text()  # 2 of 4 right


def test_interrupted_replay_keeps_completed_files_and_reports_them(media, tmp_path, tiny_yaml, monkeypatch, capsys):
    from streams.results import ResultWriter
    root, _ = media
    (root / "broken.wav").unlink()
    original = ResultWriter.verdict

    def verdict(self, v):  # Ctrl-C reaches the main thread while it writes EVIL's first verdict
        if v.stream_id == EVIL:
            raise KeyboardInterrupt
        return original(self, v)
    monkeypatch.setattr(ResultWriter, "verdict", verdict)
    out, report = tmp_path / "out", tmp_path / "report.html"
    assert main(["replay", str(root), "--out", str(out), "--config", str(tiny_yaml), "--quiet",
                 "--report", str(report)]) == 130
    assert set(json.loads((out / "predictions.json").read_text())) == {"a.wav"}
    assert (out / "scores.csv").read_text().startswith("a.wav;")
    text = report.read_text()
    assert "interrupted before the end of the file" in text and "a.wav" in text
    assert "interrupted" in capsys.readouterr().err


def test_inspect_prints_a_timeline(media, tmp_path, tiny_yaml, capsys):
    root, meta = media
    assert main(["inspect", str(root / "a.wav"), "--config", str(tiny_yaml), "--width", "40",
                 "--meta", str(meta), "--root", str(root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("a.wav  2.30 s  score ")
    row = next(line for line in lines if line.startswith("P(forged) |"))
    assert len(row) == len("P(forged) |") + 40 + 1
    truth = next(line for line in lines if line.startswith("true      |"))
    assert truth[11:-1] == "".join("#" if 0.5 <= (i + 0.5) * 2.3 / 40 < 1.5 else "·" for i in range(40))
    assert main(["inspect", str(root / "broken.wav"), "--config", str(tiny_yaml)]) == 1
    assert "error: " in capsys.readouterr().out
