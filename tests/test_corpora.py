"""`dfstream corpus import` on tiny fakes of each corpus's official layout, and each corpus's metrics in `eval`.

Every fake holds the corpus's own protocol files, laid out as its download unpacks, and real
audio (FLAC written with PyAV, WAV with ``wave``) of known lengths, so that the metadata written
can be checked entry by entry: files, splits, labels, and spans ending at the files' durations.
"""

from __future__ import annotations

import json
import wave

import av
import numpy as np
import pytest

from dfstream.app import metrics
from dfstream.app.cli import main
from dfstream.app.corpora import IMPORTERS
from dfstream.app.evaluation import evaluate, format_metrics
from dfstream.engine.core.dataset import load_metadata

RATE = 16000


def write_flac(path, samples: int) -> float:
    """A mono 16 kHz FLAC of ``samples`` samples; returns its duration (s)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    signal = (np.sin(np.arange(samples) * 0.05) * 8000).astype(np.int16)[None, :]
    with av.open(str(path), "w", format="flac") as out:
        stream = out.add_stream("flac", rate=RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray(signal, format="s16", layout="mono")
        frame.sample_rate = RATE
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return samples / RATE


def write_wav(path, samples: int) -> float:
    """A mono 16 kHz 16-bit WAV of ``samples`` samples; returns its duration (s)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(np.zeros(samples, np.int16).tobytes())
    return samples / RATE


def run_import(capsys, *args) -> tuple[int, str, str]:
    code = main(["corpus", "import", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read(path) -> list[dict]:
    entries = json.loads(path.read_text())
    load_metadata(path)  # and the project's loader takes it
    return entries


def audio_entry(file, split, duration, spoof, attack=None, corpus="asvspoof2019", **extra):
    spans = [[0.0, duration]] if spoof else []
    return {
        "file": file,
        "split": split,
        "modify_type": "audio_modified" if spoof else "real",
        "fake_segments": spans,
        "audio_fake_segments": spans,
        "visual_fake_segments": [],
        "audio_model": attack,
        "visual_model": None,
        "corpus": corpus,
        "key": "spoof" if spoof else "bonafide",
        "duration": duration,
        **extra,
    }


# ---------------------------------------------------------------- ASVspoof 2019


def fake_asvspoof2019(root, track="LA"):
    """LA (or PA) as the 2019 archive unpacks: CM protocols and flac/ per part."""
    base = root / track
    protocols = base / f"ASVspoof2019_{track}_cm_protocols"
    protocols.mkdir(parents=True)
    env = "-" if track == "LA" else "aaa"
    rows = {
        ("train", "train.trn"): [
            ("0079", "T_1138215", "-", "bonafide", 4000),
            ("0079", "T_1271820", "A01", "spoof", 5600),
        ],
        ("dev", "dev.trl"): [("0070", "D_1047731", "A05", "spoof", 3200), ("0070", "D_1105538", "-", "bonafide", 2400)],
        ("eval", "eval.trl"): [("0039", "E_2834763", "A11", "spoof", 4800)],
    }
    for (part, name), lines in rows.items():
        text = ""
        for speaker, utt, attack, key, samples in lines:
            file = f"{track}_{utt}"
            text += f"{track}_{speaker} {file} {env} {attack} {key}\n"
            write_flac(base / f"ASVspoof2019_{track}_{part}" / "flac" / f"{file}.flac", samples)
        (protocols / f"ASVspoof2019.{track}.cm.{name}.txt").write_text(text)


def test_asvspoof2019_la_one_whole_file_span_per_spoofed_file(tmp_path, capsys):
    fake_asvspoof2019(tmp_path / "asv19")  # durations 0.25, 0.35, 0.2, 0.15, 0.3 s
    out = tmp_path / "meta.json"
    code, stdout, _ = run_import(capsys, "asvspoof2019", tmp_path / "asv19", "--out", out)
    assert code == 0
    assert read(out) == [
        audio_entry("LA/ASVspoof2019_LA_train/flac/LA_T_1138215.flac", "train", 0.25, False, speaker="LA_0079"),
        audio_entry("LA/ASVspoof2019_LA_train/flac/LA_T_1271820.flac", "train", 0.35, True, "A01", speaker="LA_0079"),
        audio_entry("LA/ASVspoof2019_LA_dev/flac/LA_D_1047731.flac", "val", 0.2, True, "A05", speaker="LA_0070"),
        audio_entry("LA/ASVspoof2019_LA_dev/flac/LA_D_1105538.flac", "val", 0.15, False, speaker="LA_0070"),
        audio_entry("LA/ASVspoof2019_LA_eval/flac/LA_E_2834763.flac", "test", 0.3, True, "A11", speaker="LA_0039"),
    ]
    assert stdout.splitlines() == [
        f"asvspoof2019: 5 files -> {out}",
        "  split       files  bonafide    spoof",
        "  train           2         1        1",
        "  val             2         1        1",
        "  test            1         0        1",
        "  forged files per attack/generator: A01 1, A05 1, A11 1",
    ]


def test_asvspoof2019_pa_keeps_the_environment(tmp_path, capsys):
    fake_asvspoof2019(tmp_path / "asv19", "PA")
    out = tmp_path / "meta.json"
    # ROOT may also be the PA/ folder itself
    assert run_import(capsys, "asvspoof2019", tmp_path / "asv19" / "PA", "--out", out, "--track", "PA")[0] == 0
    entries = read(out)
    assert [e["file"] for e in entries][:2] == [
        "ASVspoof2019_PA_train/flac/PA_T_1138215.flac",
        "ASVspoof2019_PA_train/flac/PA_T_1271820.flac",
    ]
    assert entries[1] == audio_entry(
        "ASVspoof2019_PA_train/flac/PA_T_1271820.flac", "train", 0.35, True, "A01", speaker="PA_0079", environment="aaa"
    )


def test_a_missing_file_stops_the_import_unless_skipped(tmp_path, capsys):
    fake_asvspoof2019(tmp_path / "asv19")
    (tmp_path / "asv19/LA/ASVspoof2019_LA_dev/flac/LA_D_1047731.flac").unlink()
    out = tmp_path / "meta.json"
    code, _, err = run_import(capsys, "asvspoof2019", tmp_path / "asv19", "--out", out)
    assert code == 2 and not out.exists()
    assert "1 of the 5 files asvspoof2019's protocol lists are missing" in err
    assert "LA/ASVspoof2019_LA_dev/flac/LA_D_1047731.flac" in err and "--skip-missing" in err
    code, stdout, err = run_import(capsys, "asvspoof2019", tmp_path / "asv19", "--out", out, "--skip-missing")
    assert code == 0
    assert [e["file"].rsplit("/", 1)[1] for e in read(out)] == [
        "LA_T_1138215.flac",
        "LA_T_1271820.flac",
        "LA_D_1105538.flac",
        "LA_E_2834763.flac",
    ]
    assert stdout.splitlines()[-1] == "  skipped 1 listed files missing on disk (--skip-missing)"
    assert "skipped 1 listed files missing" in err


def test_import_errors_name_what_is_wrong(tmp_path, capsys):
    code, _, err = run_import(capsys, "asvspoof2020", tmp_path, "--out", tmp_path / "m.json")
    assert code == 2
    assert err.strip() == (
        "dfstream: error: unknown corpus 'asvspoof2020'; valid: "
        "asvspoof2019, asvspoof2021, asvspoof5, avdeepfake1m, inthewild, lavdf, partialspoof"
    )
    fake_asvspoof2019(tmp_path / "asv19")
    protocol = tmp_path / "asv19/LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.eval.trl.txt"
    protocol.write_text("LA_0039 LA_E_2834763 - A11 spooof\n")
    code, _, err = run_import(capsys, "asvspoof2019", tmp_path / "asv19", "--out", tmp_path / "m.json")
    assert code == 2 and f"{protocol}:1: key 'spooof' is neither bonafide nor spoof" in err
    code, _, err = run_import(capsys, "asvspoof2019", tmp_path / "asv19", "--out", tmp_path / "m.json", "--track", "DF")
    assert code == 2 and "asvspoof2019 has no track 'DF'; valid: LA, PA" in err
    code, _, err = run_import(capsys, "inthewild", tmp_path / "nowhere", "--out", tmp_path / "m.json")
    assert code == 2 and "is not a folder" in err


# ---------------------------------------------------------------- ASVspoof 2021


def fake_asvspoof2021(root, track):
    keys = root / "keys" / track / "CM"
    keys.mkdir(parents=True)
    if track == "LA":
        lines = [
            "LA_0009 LA_E_9332881 alaw ita_tx A07 spoof notrim eval",
            "LA_0020 LA_E_7294490 g722 loc_tx bonafide bonafide notrim eval",
            "LA_0010 LA_E_1000003 opus ita_tx A10 spoof notrim progress",
        ]
    else:
        lines = [
            "LA_0023 DF_E_2000011 nocodec asvspoof A14 spoof notrim progress traditional_vocoder - - - -",
            "TEF2 DF_E_2000013 low_m4a vcc2020 Task1-team20 spoof notrim eval neural_vocoder_nonautoregressive "
            "Task1 team20 FF E",
            "LA_0031 DF_E_2000027 mp3m4a asvspoof bonafide bonafide notrim eval bonafide - - - -",
        ]
    (keys / "trial_metadata.txt").write_text("\n".join(lines) + "\n")
    for n, line in enumerate(lines):
        write_flac(root / f"ASVspoof2021_{track}_eval" / "flac" / f"{line.split()[1]}.flac", 1600 * (n + 1))


def test_asvspoof2021_la_and_df_from_the_keys(tmp_path, capsys):
    fake_asvspoof2021(tmp_path / "asv21", "LA")
    out = tmp_path / "la.json"
    assert run_import(capsys, "asvspoof2021", tmp_path / "asv21", "--out", out)[0] == 0
    la = dict(corpus="asvspoof2021", trim="notrim")
    assert read(out) == [
        audio_entry(
            "ASVspoof2021_LA_eval/flac/LA_E_9332881.flac",
            "test",
            0.1,
            True,
            "A07",
            speaker="LA_0009",
            codec="alaw",
            transmission="ita_tx",
            subset="eval",
            **la,
        ),
        audio_entry(
            "ASVspoof2021_LA_eval/flac/LA_E_7294490.flac",
            "test",
            0.2,
            False,
            speaker="LA_0020",
            codec="g722",
            transmission="loc_tx",
            subset="eval",
            **la,
        ),
        audio_entry(
            "ASVspoof2021_LA_eval/flac/LA_E_1000003.flac",
            "test",
            0.3,
            True,
            "A10",
            speaker="LA_0010",
            codec="opus",
            transmission="ita_tx",
            subset="progress",
            **la,
        ),
    ]
    fake_asvspoof2021(tmp_path / "asv21", "DF")
    out = tmp_path / "df.json"
    assert run_import(capsys, "asvspoof2021", tmp_path / "asv21", "--out", out, "--track", "DF")[0] == 0
    entries = read(out)
    assert [(e["file"], e["key"], e["audio_model"], e["subset"], e["vocoder"]) for e in entries] == [
        ("ASVspoof2021_DF_eval/flac/DF_E_2000011.flac", "spoof", "A14", "progress", "traditional_vocoder"),
        (
            "ASVspoof2021_DF_eval/flac/DF_E_2000013.flac",
            "spoof",
            "Task1-team20",
            "eval",
            "neural_vocoder_nonautoregressive",
        ),
        ("ASVspoof2021_DF_eval/flac/DF_E_2000027.flac", "bonafide", None, "eval", "bonafide"),
    ]
    assert [e["fake_segments"] for e in entries] == [[[0.0, 0.1]], [[0.0, 0.2]], []]
    assert entries[1]["compression"] == "low_m4a" and entries[1]["source"] == "vcc2020"

    # eval: the official EER is the eval subset's
    scores = tmp_path / "scores.csv"
    scores.write_text("".join(f"{e['file']};{s}\n" for e, s in zip(read(tmp_path / "la.json"), (0.9, 0.2, 0.1))))
    (tmp_path / "pred.json").write_text("{}")
    result = evaluate(tmp_path / "pred.json", tmp_path / "la.json", scores)
    assert result["corpus"] == {
        "asvspoof2021": {"files": 3, "scored": 2, "eer": 0.0, "eer_all": 0.25, "subset": "eval"}
    }


# ---------------------------------------------------------------- ASVspoof 5

ASV5_EVAL = [  # (file, key, attack, fake score in the eval test)
    ("E_0000000001", "bonafide", "bonafide", 0.1),
    ("E_0000000002", "bonafide", "bonafide", 0.2),
    ("E_0000000003", "bonafide", "bonafide", 0.3),
    ("E_0000000004", "bonafide", "bonafide", 0.6),
    ("E_0000000005", "spoof", "A17", 0.4),
    ("E_0000000006", "spoof", "A18", 0.5),
    ("E_0000000007", "spoof", "A19", 0.7),
    ("E_0000000008", "spoof", "A20", 0.8),
    ("E_0000000009", "spoof", "A21", 0.9),
]


def fake_asvspoof5(root):
    protocols = root / "ASVspoof5_protocols"
    protocols.mkdir(parents=True)
    (protocols / "ASVspoof5.train.tsv").write_text(
        "T_4850 T_0000000000 F - - - AC3 A05 spoof -\nT_4851 T_0000000001 M - - - - bonafide bonafide -\n"
    )
    (protocols / "ASVspoof5.dev.track_1.tsv").write_text("D_0062 D_0000000001 F C05 3 D_0000000009 AC1 A11 spoof -\n")
    (protocols / "ASVspoof5.eval.track_1.tsv").write_text(
        "".join(f"E_0001 {f} M - - - {'-' if k == 'bonafide' else 'AC2'} {a} {k} -\n" for f, k, a, _ in ASV5_EVAL)
    )
    write_flac(root / "flac_T" / "T_0000000000.flac", 3200)
    write_flac(root / "flac_T" / "T_0000000001.flac", 4800)
    write_flac(root / "flac_D" / "D_0000000001.flac", 6400)
    for n, (file, *_) in enumerate(ASV5_EVAL):
        write_flac(root / "flac_E_eval" / f"{file}.flac", 800 * (n + 1))


def test_asvspoof5_and_its_min_dcf_in_eval(tmp_path, capsys):
    fake_asvspoof5(tmp_path / "asv5")
    meta = tmp_path / "meta.json"
    code, stdout, _ = run_import(capsys, "asvspoof5", tmp_path / "asv5", "--out", meta)
    assert code == 0
    entries = read(meta)
    five = dict(corpus="asvspoof5")
    assert entries[:3] == [
        audio_entry(
            "flac_T/T_0000000000.flac",
            "train",
            0.2,
            True,
            "A05",
            speaker="T_4850",
            gender="F",
            attack_tag="AC3",
            **five,
        ),
        audio_entry("flac_T/T_0000000001.flac", "train", 0.3, False, speaker="T_4851", gender="M", **five),
        audio_entry(
            "flac_D/D_0000000001.flac",
            "val",
            0.4,
            True,
            "A11",
            speaker="D_0062",
            gender="F",
            codec="C05",
            codec_q="3",
            attack_tag="AC1",
            **five,
        ),
    ]
    assert [(e["file"], e["split"], e["key"], e["audio_model"], e["fake_segments"]) for e in entries[3:]] == [
        (
            f"flac_E_eval/{f}.flac",
            "test",
            k,
            None if k == "bonafide" else a,
            [[0.0, 800 * (n + 1) / RATE]] if k == "spoof" else [],
        )
        for n, (f, k, a, _) in enumerate(ASV5_EVAL)
    ]
    assert "  test            9         4        5" in stdout.splitlines()

    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps({f"flac_E_eval/{f}.flac": [[s, 0.0, 0.05]] for f, _, _, s in ASV5_EVAL}))
    scores = tmp_path / "scores.csv"
    scores.write_text("".join(f"flac_E_eval/{f}.flac;{s}\n" for f, _, _, s in ASV5_EVAL))
    out = tmp_path / "metrics.json"
    argv = ["eval", "--pred", pred, "--meta", meta, "--scores", scores, "--split", "test", "--out", out]
    assert main(list(map(str, argv))) == 0
    corpus = json.loads(out.read_text())["corpus"]
    # hand-computed in test_min_dcf_and_the_official_eer_by_hand
    assert corpus == {
        "asvspoof5": {"files": 9, "scored": 9, "eer": pytest.approx(0.225), "min_dcf": pytest.approx(0.4)}
    }
    assert "asvspoof5 (9 files, 9 scored): minDCF 0.4000  EER 0.2250" in capsys.readouterr().out


# ---------------------------------------------------------------- In-the-Wild


def test_inthewild_from_meta_csv(tmp_path, capsys):
    folder = tmp_path / "itw" / "release_in_the_wild"
    folder.mkdir(parents=True)
    (folder / "meta.csv").write_text("file,speaker,label\n0.wav,Alec Guinness,spoof\n1.wav,Alec Guinness,bona-fide\n")
    write_wav(folder / "0.wav", 12000)
    write_wav(folder / "1.wav", 20000)
    out = tmp_path / "meta.json"
    code, stdout, _ = run_import(capsys, "inthewild", tmp_path / "itw", "--out", out)
    assert code == 0
    itw = dict(corpus="inthewild", speaker="Alec Guinness")
    assert read(out) == [
        audio_entry("release_in_the_wild/0.wav", "test", 0.75, True, None, **itw),
        audio_entry("release_in_the_wild/1.wav", "test", 1.25, False, None, **itw),
    ]
    assert stdout.splitlines()[-1] == "  forged files per attack/generator: (none named) 1"
    code, _, _ = run_import(capsys, "inthewild", folder, "--out", out)  # ROOT may be the folder itself
    assert code == 0 and [e["file"] for e in read(out)] == ["0.wav", "1.wav"]


# ---------------------------------------------------------------- PartialSpoof


def fake_partialspoof(root):
    """database/ as PartialSpoof's archives unpack: protocols, con_wav/ and con_data/rttm_2cls_0sil per set."""
    db = root / "database"
    protocols = db / "protocols" / "PartialSpoof_LA_cm_protocols"
    protocols.mkdir(parents=True)
    (db / "label2num").mkdir()
    (db / "label2num" / "label2num_2cls_0sil").write_text("spoof 0\nbonafide 1\n")
    sets = {
        "train": [("LA_0079", "CON_T_0000000", "spoof", 16000), ("LA_0079", "LA_T_1138215", "bonafide", 8000)],
        "dev": [("LA_0070", "CON_D_0000000", "spoof", 16000)],
        "eval": [("LA_0039", "CON_E_0000000", "spoof", 16000), ("LA_0039", "LA_E_2834763", "bonafide", 8000)],
    }
    rttm = {
        "train": [
            ("CON_T_0000000", 0.0, 0.2, "bonafide"),
            ("CON_T_0000000", 0.2, 0.1, "spoof"),
            ("CON_T_0000000", 0.3, 0.12, "spoof"),
            ("CON_T_0000000", 0.42, 0.58, "bonafide"),
            ("LA_T_1138215", 0.0, 0.5, "bonafide"),
        ],
        "dev": [("CON_D_0000000", 0.0, 0.5, "spoof"), ("CON_D_0000000", 0.5, 0.5, "bonafide")],
        "eval": [
            ("CON_E_0000000", 0.0, 0.2, "bonafide"),
            ("CON_E_0000000", 0.2, 0.2, "spoof"),
            ("CON_E_0000000", 0.4, 0.3, "bonafide"),
            ("CON_E_0000000", 0.7, 0.3, "spoof"),
            ("LA_E_2834763", 0.0, 0.5, "bonafide"),
        ],
    }
    for part, rows in sets.items():
        text = "".join(f"{spk} {utt} - {'CON' if key == 'spoof' else '-'} {key}\n" for spk, utt, key, _ in rows)
        (protocols / f"PartialSpoof.LA.cm.{part}.trl.txt").write_text(text)
        for _, utt, _, samples in rows:
            write_wav(db / part / "con_wav" / f"{utt}.wav", samples)
        (db / part / "con_data").mkdir()
        (db / part / "con_data" / "rttm_2cls_0sil").write_text(
            "".join(f"SPEAKER {u} 1 {s:7.3f} {d:7.3f} <NA> <NA> {lab} <NA> <NA>\n" for u, s, d, lab in rttm[part])
        )


def test_partialspoof_spans_from_its_rttm_and_its_segment_eer(tmp_path, capsys):
    fake_partialspoof(tmp_path / "ps")
    meta = tmp_path / "meta.json"
    code, _, err = run_import(capsys, "partialspoof", tmp_path / "ps", "--out", meta)
    assert code == 0 and "RTTM labels bonafide 7, spoof 5" in err

    def entry(file, split, duration, spans, speaker):
        e = audio_entry(file, split, duration, bool(spans), "CON" if spans else None, "partialspoof", speaker=speaker)
        return {**e, "fake_segments": spans, "audio_fake_segments": spans}

    assert read(meta) == [
        entry("database/train/con_wav/CON_T_0000000.wav", "train", 1.0, [[0.2, 0.42]], "LA_0079"),  # touching: merged
        entry("database/train/con_wav/LA_T_1138215.wav", "train", 0.5, [], "LA_0079"),
        entry("database/dev/con_wav/CON_D_0000000.wav", "val", 1.0, [[0.0, 0.5]], "LA_0070"),
        entry("database/eval/con_wav/CON_E_0000000.wav", "test", 1.0, [[0.2, 0.4], [0.7, 1.0]], "LA_0039"),
        entry("database/eval/con_wav/LA_E_2834763.wav", "test", 0.5, [], "LA_0039"),
    ]

    # segment EER. At 10 and 20 ms the spoofed file's forged segments (20 ms: 10-19, 35-49) score 0.8, its
    # others 0, the bona fide file's first 0.1 s 0.5: the classes separate. At 640 ms the spoofed file's two
    # segments are both forged (0.2 -> 0, 0.4 -> 1; 0.7 -> 1, 1.0 -> 2 on the grid), 0.8, and the bona fide
    # file's one 0.5: separate too. At 320 ms [0.2, 0.4] rounds away (1 -> 1) and only segment 2 is forged,
    # while all four score 0.8: bona fide 0.8 0.8 0.8 0.5 0, spoof 0.8; ties sort bona fide first, so the
    # DET points are (0,1) (.2,1) (.4,1) (.6,1) (.6,0) ...: least |frr - far| at (.6, 1), EER 0.8
    spoofed, bona_fide = "database/eval/con_wav/CON_E_0000000.wav", "database/eval/con_wav/LA_E_2834763.wav"
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps({spoofed: [[0.8, 0.2, 0.4], [0.8, 0.7, 1.0]], bona_fide: [[0.5, 0.0, 0.1]]}))
    scores = tmp_path / "scores.csv"
    scores.write_text(f"{spoofed};0.8\n{bona_fide};0.5\n")
    result = evaluate(pred, meta, scores, split="test")
    ps = result["corpus"]["partialspoof"]
    assert ps["files"] == 2 and ps["scored"] == 2 and ps["utterance_eer"] == 0.0
    assert [ps["segment_eer"][r] for r in ("0.01", "0.02", "0.64")] == [0.0, 0.0, 0.0]
    assert ps["segment_eer"]["0.32"] == pytest.approx(0.8)
    assert list(ps["segment_eer"]) == ["0.01", "0.02", "0.04", "0.08", "0.16", "0.32", "0.64"]
    # the bona fide file's span now outscores the forged ones. At 20 ms: 50 bona fide segments (25 of each
    # file), 5 of them at 0.9, and 25 forged at 0.8. Passing the 5 gives (.1, 1); each forged segment then
    # lowers far by 1/25: |.1 - far| is least (.02) first at far .12, so the EER is (.1 + .12) / 2
    pred.write_text(json.dumps({spoofed: [[0.8, 0.2, 0.4], [0.8, 0.7, 1.0]], bona_fide: [[0.9, 0.0, 0.1]]}))
    ps = evaluate(pred, meta, scores, split="test")["corpus"]["partialspoof"]
    assert ps["segment_eer"]["0.02"] == pytest.approx(0.11)
    assert "partialspoof (2 files, 2 scored): segment EER @10ms" in format_metrics(
        evaluate(pred, meta, scores, split="test")
    )


# ---------------------------------------------------------------- LAV-DF and AV-Deepfake1M


def test_lavdf_is_normalised_to_the_avdeepfake1m_form(tmp_path, capsys):
    root = tmp_path / "lavdf"
    meta = [
        {
            "file": "train/000000.mp4",
            "split": "train",
            "n_fakes": 1,
            "fake_periods": [[1.0, 1.5]],
            "duration": 4.2,
            "modify_audio": True,
            "modify_video": False,
            "original": "train/000007.mp4",
        },
        {
            "file": "dev/000001.mp4",
            "split": "dev",
            "n_fakes": 1,
            "fake_periods": [[0.5, 0.9]],
            "duration": 3.0,
            "modify_audio": True,
            "modify_video": True,
            "original": "dev/000009.mp4",
        },
        {
            "file": "test/000002.mp4",
            "split": "test",
            "n_fakes": 0,
            "fake_periods": [],
            "duration": 2.0,
            "modify_audio": False,
            "modify_video": False,
            "original": None,
        },
    ]
    root.mkdir()
    (root / "metadata.json").write_text(json.dumps(meta))
    for e in meta:
        (root / e["file"]).parent.mkdir(exist_ok=True)
        (root / e["file"]).write_bytes(b"")  # not probed: durations are the corpus's own
    out = tmp_path / "meta.json"
    code, stdout, _ = run_import(capsys, "lavdf", root, "--out", out)
    assert code == 0
    common = {"audio_model": None, "visual_model": None, "corpus": "lavdf"}
    assert read(out) == [
        {
            "file": "train/000000.mp4",
            "split": "train",
            "n_fakes": 1,
            "duration": 4.2,
            "original": "train/000007.mp4",
            "modify_type": "audio_modified",
            "fake_segments": [[1.0, 1.5]],
            "audio_fake_segments": [[1.0, 1.5]],
            "visual_fake_segments": [],
            **common,
        },
        {
            "file": "dev/000001.mp4",
            "split": "val",
            "n_fakes": 1,
            "duration": 3.0,
            "original": "dev/000009.mp4",
            "modify_type": "both_modified",
            "fake_segments": [[0.5, 0.9]],
            "audio_fake_segments": [[0.5, 0.9]],
            "visual_fake_segments": [[0.5, 0.9]],
            **common,
        },
        {
            "file": "test/000002.mp4",
            "split": "test",
            "n_fakes": 0,
            "duration": 2.0,
            "original": None,
            "modify_type": "real",
            "fake_segments": [],
            "audio_fake_segments": [],
            "visual_fake_segments": [],
            **common,
        },
    ]
    assert stdout.splitlines()[-1] == "  forged files per attack/generator: (none named) 2"


def test_avdeepfake1m_merges_its_splits_and_reports_its_metrics(tmp_path, capsys):
    root = tmp_path / "av1m"
    train = [
        {
            "file": "lrs3/a/00001/real.mp4",
            "split": "train",
            "modify_type": "real",
            "audio_model": "",
            "fake_segments": [],
            "audio_fake_segments": [],
            "visual_fake_segments": [],
            "video_frames": 100,
        },
        {
            "file": "lrs3/a/00001/fake_video_fake_audio.mp4",
            "split": "train",
            "modify_type": "both_modified",
            "audio_model": "yourtts",
            "fake_segments": [[1.0, 1.4]],
            "audio_fake_segments": [[1.0, 1.4]],
            "visual_fake_segments": [[1.0, 1.4]],
            "video_frames": 100,
        },
    ]
    val = [
        {
            "file": "lrs3/b/00002/real_video_fake_audio.mp4",
            "split": "val",
            "modify_type": "audio_modified",
            "audio_model": "vits",
            "fake_segments": [[0.4, 0.8]],
            "video_frames": 75,
        },
    ]
    root.mkdir()
    (root / "train_metadata.json").write_text(json.dumps(train))
    (root / "val_metadata.json").write_text(json.dumps(val))
    (root / "test_files.txt").write_text("lrs3/c/00003/x.mp4\nlrs3/c/00004/y.mp4\n")
    for split, entries in (("train", train), ("val", val)):
        for e in entries:
            (root / split / e["file"]).parent.mkdir(parents=True, exist_ok=True)
            (root / split / e["file"]).write_bytes(b"")
    meta = tmp_path / "meta.json"
    code, stdout, err = run_import(capsys, "avdeepfake1m", root, "--out", meta)
    assert code == 0 and "lists 2 unlabelled test files: not imported" in err
    entries = read(meta)
    assert entries == [
        {**train[0], "file": "train/lrs3/a/00001/real.mp4", "visual_model": None, "corpus": "avdeepfake1m"},
        {
            **train[1],
            "file": "train/lrs3/a/00001/fake_video_fake_audio.mp4",
            "visual_model": None,
            "corpus": "avdeepfake1m",
        },
        {
            **val[0],
            "file": "val/lrs3/b/00002/real_video_fake_audio.mp4",
            "audio_fake_segments": [[0.4, 0.8]],
            "visual_fake_segments": [],
            "visual_model": None,
            "corpus": "avdeepfake1m",
        },
    ]
    assert "  forged files per attack/generator: vits 1, yourtts 1" in stdout.splitlines()

    pred = tmp_path / "pred.json"
    pred.write_text(
        json.dumps({e["file"]: [[0.9, *e["fake_segments"][0]]] if e["fake_segments"] else [] for e in entries})
    )
    scores = tmp_path / "scores.csv"
    scores.write_text("".join(f"{e['file']};{0.9 if e['fake_segments'] else 0.1}\n" for e in entries))
    result = evaluate(pred, meta, scores)
    av1m = result["corpus"]["avdeepfake1m"]
    assert av1m["files"] == 3 and av1m["scored"] == 3 and av1m["auc"] == 1.0
    assert av1m["localization"] == result["localization"]
    assert av1m["localization"]["ar"]["50"] == 1.0


def test_the_registry_and_help_name_every_corpus(capsys):
    assert list(IMPORTERS) == [
        "avdeepfake1m",
        "lavdf",
        "asvspoof2019",
        "asvspoof2021",
        "asvspoof5",
        "partialspoof",
        "inthewild",
    ]
    with pytest.raises(SystemExit):
        main(["corpus", "--help"])
    text = capsys.readouterr().out
    flat = " ".join(text.split())
    for name, corpus in IMPORTERS.items():
        assert f"\n  {name}" in text
        assert f"ROOT holds {corpus.layout}. eval reports {corpus.metric}." in flat


# ---------------------------------------------------------------- the metrics


def brute_force_eer(y, s):
    """EER by sweeping every threshold: bona fide scores (negated fake scores) at or below it are
    rejected, spoof scores above it accepted; the threshold where the two rates are closest."""
    bona, spoof = -s[y == 0], -s[y == 1]
    thresholds = np.concatenate([[-np.inf], np.sort(np.concatenate([bona, spoof]))])
    frr = np.array([(bona <= t).mean() for t in thresholds])
    far = np.array([(spoof > t).mean() for t in thresholds])
    i = np.argmin(np.abs(frr - far))
    return (frr[i] + far[i]) / 2


def test_the_official_eer_against_a_threshold_sweep():
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(4, 80))
        y = rng.integers(0, 2, n)
        if y.min() == y.max():
            continue
        s = rng.normal(size=n) + y * rng.uniform(0, 2)
        assert metrics.asvspoof_eer(y, s) == pytest.approx(brute_force_eer(y, s), abs=1e-12)
        # the project's interpolated EER differs from the organisers' by less than one step of the curve
        assert abs(metrics.eer(y, s) - metrics.asvspoof_eer(y, s)) <= 1 / min((y == 0).sum(), (y == 1).sum())
    assert metrics.asvspoof_eer([0, 0], [0.1, 0.2]) is None and metrics.min_dcf([1], [0.3]) is None


def test_min_dcf_and_the_official_eer_by_hand():
    # bona fide fake scores 0.1 0.2 0.3 0.6, spoof 0.4 0.5 0.7 0.8 0.9. Sorted by bona fide score (-s):
    # -0.9 s, -0.8 s, -0.7 s, -0.6 b, -0.5 s, -0.4 s, -0.3 b, -0.2 b, -0.1 b. The DET points (frr, far):
    # (0,1) (0,.8) (0,.6) (0,.4) (.25,.4) (.25,.2) (.25,0) (.5,0) (.75,0) (1,0).
    # DCF = 1 * .95 * frr + 10 * .05 * far, normalised by min(.95, .5) = .5: 1.9 frr + far,
    # least at (0, .4): 0.4. |frr - far| least at (.25, .2): EER 0.225 (interpolated: 0.25).
    y = [0, 0, 0, 0, 1, 1, 1, 1, 1]
    s = [0.1, 0.2, 0.3, 0.6, 0.4, 0.5, 0.7, 0.8, 0.9]
    assert metrics.min_dcf(y, s) == pytest.approx(0.4)
    assert metrics.min_dcf(y, s, **metrics.ASVSPOOF5_DCF) == pytest.approx(0.4)
    assert metrics.asvspoof_eer(y, s) == pytest.approx(0.225)
    assert metrics.eer(y, s) == pytest.approx(0.25)
    assert metrics.min_dcf([0, 1], [0.9, 0.1]) == pytest.approx(1.0)  # nothing beats a fixed decision
    assert metrics.min_dcf([0, 1], [0.1, 0.9]) == 0.0


def test_segment_labels_scores_and_eer_by_hand():
    # 2.0 s at 0.5 s: forged [0.5, 1.0] is segment 1; PartialSpoof rounds span ends to the grid
    assert metrics.segment_labels([[0.5, 1.0]], 2.0, 0.5).tolist() == [False, True, False, False]
    assert metrics.segment_labels([[0.3, 0.8]], 1.2, 0.5).tolist() == [False, True, False]
    assert metrics.segment_labels([[0.26, 0.74]], 1.2, 0.5).tolist() == [False, False, False]  # both ends round to 0.5
    assert metrics.segment_count(1.01, 0.5) == 3 and metrics.segment_count(1.0, 0.5) == 2
    proposals = [[0.9, 0.5, 1.0], [0.6, 0.2, 0.4], [0.3, 1.6, 2.0]]
    # a segment takes the best span overlapping it; a span ending where a segment starts does not count
    assert metrics.segment_scores(proposals, 2.0, 0.5).tolist() == [0.6, 0.9, 0.0, 0.3]
    labels = {"a": [[0.5, 1.0]], "b": []}
    durations = {"a": 2.0, "b": 1.0}
    predictions = {"a": proposals, "b": [[0.95, 0.0, 0.3]]}
    # segments: a 0.6 b, 0.9 s, 0 b, 0.3 b; b 0.95 b, 0 b. Bona fide scores -0.95 -0.6 -0.3 0 0 and
    # spoof -0.9: (frr, far) (0,1) (.2,1) (.2,0) ...: EER (.2 + 0) / 2
    assert metrics.segment_eer(labels, durations, predictions, 0.5) == pytest.approx(0.1)
    # all scores 0: as the official code sorts ties (bona fide first), the least |frr - far| is at (1, 1)
    assert metrics.segment_eer(labels, durations, {}, 0.5) == 1.0
