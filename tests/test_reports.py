"""Reports: the timeline record, the terminal view, and the HTML reports opened in headless Chromium."""

import json

import numpy as np
import pytest
import yaml
from browser import open_report
from helpers import TINY, burst, encode

from dfstream.app.cli import main
from dfstream.app.evaluation import attribution_metrics, evaluate_details, match_attributions
from dfstream.engine.core.dataset import load_metadata
from dfstream.engine.core.types import Detection, Span, Trace, Verdict
from dfstream.engine.media.decode import AudioBlock
from dfstream.reports.eval_report import write_eval_report
from dfstream.reports.terminal import render
from dfstream.reports.timeline import StreamTimeline


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
    tl.add_verdict(
        Verdict(
            "call.wav",
            0,
            Span(0, 4),
            1.0,
            Span(0, 4),
            (d,),
            "m",
            1.0,
            True,
            None,
            Trace(0.0, 1.0, probs, {"audio": probs}),
        )
    )
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
    meta.write_text(
        json.dumps(
            [
                {
                    "file": "a.wav",
                    "split": "test",
                    "modify_type": "audio_modified",
                    "fake_segments": [[0.5, 1.5]],
                    "audio_fake_segments": [[0.5, 1.5]],
                    "visual_fake_segments": [],
                }
            ]
        )
    )
    return root, meta


def test_replay_report_loads_in_chromium(media, tmp_path, tiny_yaml, capsys):
    root, meta = media
    report = tmp_path / "report.html"
    code = main(
        [
            "replay",
            str(root),
            "--out",
            str(tmp_path / "out"),
            "--model",
            "random",
            "--config",
            str(tiny_yaml),
            "--quiet",
            "--chunk-seconds",
            "1",
            "--report",
            str(report),
            "--meta",
            str(meta),
        ]
    )
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
        (f"timeline of {name}", 1200, 460, True) for name in page["headings"][2:]
    ]
    text = report.read_text()
    assert "1 true span(s)" in text and "UNTRAINED model" in text and "not a readable media file" in text
    assert text.count("true span(s)") == 1  # only a.wav is in the metadata
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_eval_report_loads_in_chromium(tmp_path):
    meta = [
        {
            "file": f"f{i}",
            "split": "test",
            "modify_type": "audio_modified" if i % 2 else "real",
            "audio_model": ["A", "B"][i % 4 // 2] if i % 2 else None,
            "fake_segments": [[1.0, 2.0]] if i % 2 else [],
            "audio_fake_segments": [[1.0, 2.0]] if i % 2 else [],
            "visual_fake_segments": [],
        }
        for i in range(8)
    ]
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    preds = {f"f{i}": [[0.9 if i % 2 else 0.3, 1.0 + 0.1 * i, 2.0]] for i in range(8)}
    (tmp_path / "pred.json").write_text(json.dumps(preds))
    (tmp_path / "scores.csv").write_text("".join(f"f{i};{0.2 + 0.1 * i}\n" for i in range(8)))
    result, details = evaluate_details(tmp_path / "pred.json", tmp_path / "meta.json", tmp_path / "scores.csv")
    assert details["detection"]["y"] == [0, 1, 0, 1, 0, 1, 0, 1]
    detections = {
        f"f{i}": [
            Detection(
                Span(1.0, 2.0), 0.9, "audio", ({"generator": ["A", "unknown", "B", "B"][i // 2], "similarity": 0.5},)
            )
        ]
        for i in range(8)
    }
    matches, missed = match_attributions(
        load_metadata(tmp_path / "meta.json"), detections, "fake_segments", "audio_model"
    )
    assert [(m["generator"], m["predicted"]) for m in matches] == [("A", "A"), ("B", "unknown"), ("A", "B"), ("B", "B")]
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
    from dfstream.streams.results import ResultWriter

    root, _ = media
    (root / "broken.wav").unlink()
    original = ResultWriter.verdict

    def verdict(self, v):  # Ctrl-C reaches the main thread while it writes EVIL's first verdict
        if v.stream_id == EVIL:
            raise KeyboardInterrupt
        return original(self, v)

    monkeypatch.setattr(ResultWriter, "verdict", verdict)
    out, report = tmp_path / "out", tmp_path / "report.html"
    assert (
        main(
            [
                "replay",
                str(root),
                "--out",
                str(out),
                "--model",
                "random",
                "--config",
                str(tiny_yaml),
                "--quiet",
                "--report",
                str(report),
            ]
        )
        == 130
    )
    assert set(json.loads((out / "predictions.json").read_text())) == {"a.wav"}
    assert (out / "scores.csv").read_text().startswith("a.wav;")
    text = report.read_text()
    assert "interrupted before the end of the file" in text and "a.wav" in text
    assert "interrupted" in capsys.readouterr().err


def test_inspect_prints_a_timeline(media, tmp_path, tiny_yaml, capsys):
    root, meta = media
    assert (
        main(
            [
                "inspect",
                str(root / "a.wav"),
                "--model",
                "random",
                "--config",
                str(tiny_yaml),
                "--width",
                "40",
                "--meta",
                str(meta),
                "--root",
                str(root),
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("a.wav  2.30 s  score ")
    row = next(line for line in lines if line.startswith("P(forged) |"))
    assert len(row) == len("P(forged) |") + 40 + 1
    truth = next(line for line in lines if line.startswith("true      |"))
    assert truth[11:-1] == "".join("#" if 0.5 <= (i + 0.5) * 2.3 / 40 < 1.5 else "·" for i in range(40))
    assert main(["inspect", str(root / "broken.wav"), "--model", "random", "--config", str(tiny_yaml)]) == 1
    assert "error: " in capsys.readouterr().out


def _strip_sizes(section: str) -> list[tuple[int, int]]:
    """(width, height) of each face-crop strip in a report section."""
    import base64
    import io

    from matplotlib.image import imread

    sizes = []
    for part in section.split('<img src="data:image/png;base64,')[1:]:
        data, alt = part.split('" alt="', 1)
        if alt.startswith("face crops of the"):
            image = imread(io.BytesIO(base64.b64decode(data)), format="png")
            sizes.append((image.shape[1], image.shape[0]))
    return sizes


@pytest.mark.parametrize("crop", ["frame", "face"])
def test_replay_report_shows_the_face_crops_around_visual_spans_or_says_why_not(tmp_path, crop, capsys):
    """An audio-visual model whose every frame is forged (onset near 0): the video's section shows a strip
    of the crops the visual branch saw around its audio-visual span (whole frames here), or says that no
    face was found (a flat gray picture, cropped to faces); an audio file says it has no video."""
    from helpers import TINY_VISUAL

    root = tmp_path / "media"
    root.mkdir()
    encode(str(root / "av.mp4"), "mp4", "aac", 16000, 1, burst(16000, 3.0, 0.5, 2.5), video=True)
    encode(str(root / "a.wav"), "wav", "pcm_s16le", 16000, 1, burst(16000, 2.0, 0.5, 1.5))
    cfg = tmp_path / "av.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                **TINY,
                "branches": ["audio", "visual"],
                "visual": {**TINY_VISUAL, "crop": crop},
                "localizer": {"onset": 0.02, "offset": 0.01, "modality_threshold": 0.01},
            }
        )
    )
    report = tmp_path / "report.html"
    assert (
        main(
            [
                "replay",
                str(root),
                "--out",
                str(tmp_path / "out"),
                "--model",
                "random",
                "--config",
                str(cfg),
                "--quiet",
                "--report",
                str(report),
            ]
        )
        == 0
    )
    capsys.readouterr()
    text = report.read_text()
    assert "this model has no visual branch" not in text
    wav = text.split("<h2>a.wav</h2>")[1].split("</section>")[0]
    assert "Face crops: none: this stream has no video." in wav
    video = text.split("<h2>av.mp4</h2>")[1].split("</section>")[0]
    if crop == "frame":  # 4 thumbnails a second of the 3 s (10 fps), 32 px crops, each outlined (inside the span)
        assert "audio-visual span 0.00-3.01 s" in video
        assert _strip_sizes(video) == [(12 * (32 + 4 + 4) - 4, 32 + 4)]
        assert "frames at 0.0, 0.3, 0.5, 0.8, 1.0, 1.3, 1.5, 1.8, 2.0, 2.3, 2.5, 2.8 s" in video
    else:  # no face: the visual branch saw nothing, the span is the audio's
        assert "Face crops: none: no face was found in this stream's video." in video
        assert _strip_sizes(video) == []


def test_an_audio_model_says_it_has_no_visual_branch(media, tmp_path, tiny_yaml, capsys):
    root, _ = media
    report = tmp_path / "report.html"
    main(
        [
            "replay",
            str(root / "a.wav"),
            "--out",
            str(tmp_path / "out"),
            "--model",
            "random",
            "--config",
            str(tiny_yaml),
            "--quiet",
            "--report",
            str(report),
        ]
    )
    capsys.readouterr()
    assert "Face crops: not available: this model has no visual branch." in report.read_text()


def test_thumbnails_are_taken_four_a_second_and_only_those_near_visual_spans_outlive_the_stream():
    from helpers import crops, prepared

    from dfstream.reports.timeline import THUMB_SIDE

    images = np.arange(20, dtype=np.uint8)[:, None, None, None] * np.ones((1, 96, 96, 3), np.uint8)
    faces = np.ones(20, bool)
    faces[5:10] = False  # 1.0 - 1.8 s: no face
    tl = StreamTimeline("s")
    tl.add(Verdict("s", 0, Span(0, 4), None, None, (), "m", 1.0, media=prepared(video=crops(images, faces, 0.0, 5.0))))
    assert [round(t.time, 6) for t in tl.thumbnails] == [0.0, 0.4, 0.6, 0.8, 2.0, 2.4, 2.6, 2.8, 3.0, 3.4, 3.6, 3.8]
    assert {t.image.shape for t in tl.thumbnails} == {(THUMB_SIDE, THUMB_SIDE, 3)}
    assert [int(t.image[0, 0, 0]) for t in tl.thumbnails] == [0, 2, 3, 4, 10, 12, 13, 14, 15, 17, 18, 19]
    visual = Detection(Span(2.5, 2.9), 0.9, "visual")
    tl.add(Verdict("s", 1, Span(4, 4), None, None, (visual, Detection(Span(0, 1), 0.9, "audio")), "m", 1.0, True))
    assert [round(t.time, 6) for t in tl.thumbnails] == [2.0, 2.4, 2.6, 2.8, 3.0]  # within 0.5 s of the visual span
