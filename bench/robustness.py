"""Robustness to re-encoding: how a trained checkpoint degrades when the test split is re-encoded.

Media rarely reaches a detector as it was recorded: a platform re-encodes the
audio to a low-bitrate codec and the picture at a high CRF or a smaller size, a
phone line band-limits the voice and sends it as 8 kHz G.711 mu-law. This
benchmark re-encodes every file of one split of an AV-Deepfake1M-format
dataset in each of these ways (with PyAV, never the ffmpeg CLI) and runs the
product's own pipeline on each copy - ``dfstream replay`` then ``dfstream
eval`` - so the numbers are what a user of the checkpoint would measure.

Conditions (``--conditions``; all by default; ``clean`` always runs, it is the
reference every drop is measured from):

* ``clean``: the files as they are (hard links where possible, else copies).
* ``mp3-32k``, ``aac-32k``, ``opus-16k``: the audio in MP3 at 32 kbit/s, AAC at
  32 kbit/s, Opus at 16 kbit/s.
* ``telephone``: the audio band-passed to the telephone band (300-3400 Hz,
  zero-phase 4th-order Butterworth), mixed to mono, resampled to 8 kHz and
  stored as G.711 mu-law (``pcm_mulaw``) at 8 kHz; the engine resamples to
  16 kHz itself.
* ``noise-20db``: additive white Gaussian noise at 20 dB SNR (noise power from
  the mean power of the whole file), seeded by ``--seed`` and the file name;
  stored as 16-bit PCM at the input's rate.
* ``h264-crf40``: the video re-encoded H.264 at CRF 40.
* ``downscale-half``: the video at half width and height (rounded down to even),
  H.264 at CRF 23.

Timing is kept exactly, so that the labels still apply: every audio and video
frame keeps its presentation time, and the containers used skip the encoder's
delay (MP4 edit lists, Matroska, Ogg pre-skip). MP3 goes into MP4, not a raw
``.mp3``, whose first sample FFmpeg places at the encoder delay (69 ms at
16 kHz; the engine now starts an .mp3 at 0, earlier engines did not). A lossy
copy may decode up to one codec frame past the original's end (encoder padding
FFmpeg's decoder keeps): that moves no label. Each copy is
checked after it is written: decoded the way the engine decodes it, its
duration, start time and alignment (cross-correlation lag) against the
original are recorded, and a copy more than 50 ms off is reported. (An input
whose audio starts after 0 s - none in this dataset format - keeps that start
only where the container can hold it; the check reports the ones that do not.)

Audio conditions copy the video stream of an audio-visual file as it is; video
conditions copy its audio when MP4 takes the codec, else re-encode it AAC
128 kbit/s. The video conditions skip files without video, and are skipped
(with a note) when the split has none.

Layout of ``--work``: ``<condition>/<file>`` (the copies, named like the
metadata's ``file`` with the condition's suffix), ``<condition>/metadata.json``
(the split's entries, pointing at those names), ``results/<condition>/`` (replay
outputs, ``metrics.json``, the two commands' logs). It is kept after the run.

    python bench/robustness.py --meta DATA/metadata.json --root DATA --model MODEL [--index INDEX] \\
        [--conditions clean,mp3-32k,...] [--limit N] [--markdown card.md]

Writes bench/results/robustness.json: per condition AP@0.5, AP@0.75, detection
AUC (attribution top-1 with --index), their drop from clean, files, seconds and
the timing check; the command line and the machine.

This file is the command line and the runner; the parts are in ``bench/robust/``:
``conditions`` (the conditions), ``reencode`` (the PyAV re-encoders), ``timing``
(each copy's timing check) and ``tables`` (the text and Markdown tables).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from replay_speed import machine  # noqa: E402  (same machine record for every benchmark)
from robust.conditions import CONDITIONS, Condition, parse_conditions  # noqa: E402
from robust.reencode import copy_name, degrade, stream_format  # noqa: E402
from robust.tables import markdown_table, text_table  # noqa: E402
from robust.timing import TOLERANCE_S, timing, timing_summary  # noqa: E402

from dfstream.engine.core.dataset import load_metadata  # noqa: E402
from dfstream.engine.media.video import has_video  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MARKER = ".robustness"  # marks a condition folder this benchmark wrote (and may clear on a rerun)


# ----------------------------------------------------------------------------- the pipeline


def dfstream(*args: str, log: Path) -> subprocess.CompletedProcess:
    """Run the CLI of this Python environment (``python -m dfstream.app.cli``), its output saved to ``log``."""
    command = [sys.executable, "-m", "dfstream", *args]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    log.write_text(f"$ {shlex.join(command)}\n(exit {proc.returncode})\n{proc.stdout}{proc.stderr}")
    return proc


def prepare_folder(folder: Path) -> None:
    """Create ``folder``; one a previous run of this benchmark wrote is cleared, any other must be empty."""
    if folder.exists():
        if (folder / MARKER).exists():
            shutil.rmtree(folder)
        elif any(folder.iterdir()):
            raise SystemExit(f"{folder} exists and was not written by this benchmark; pass another --work")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("written by bench/robustness.py; cleared when it runs again\n")


def run_condition(cond: Condition, items: list, root: Path, work: Path, args) -> dict:
    """Re-encode the split as ``cond``, replay and evaluate it; the condition's row of the result."""
    tic = time.perf_counter()
    folder, results = work / cond.name, work / "results" / cond.name
    for f in (folder, results):
        prepare_folder(f)
    entries, checks, skipped, formats = [], {}, [], {}
    for item in items:
        src = root / item.file
        video = has_video(src)
        if cond.kind == "video" and not video:
            skipped.append(item.file)
            continue
        name = copy_name(cond, item.file, video)
        degrade(cond, src, folder / name, [args.seed, zlib.crc32(item.file.encode())])
        if cond.kind != "clean":
            checks[item.file] = timing(src, folder / name)
            formats.setdefault("audio-visual" if video else "audio-only", stream_format(folder / name))
        entries.append({**item.raw, "file": name})
    row = {"description": cond.description, "files": len(entries)}
    if skipped:
        row["skipped_files"] = {"count": len(skipped), "reason": "no video stream"}
    if not entries:
        row["skipped"] = "no file of the split has a video stream"
        return row
    names = [e["file"] for e in entries]
    if len(set(names)) != len(names):
        raise SystemExit(f"{cond.name}: two files of the split map to the same copy name")
    meta = folder / "metadata.json"
    meta.write_text(json.dumps(entries, indent=1) + "\n")
    if formats:
        row["output_format"] = formats  # read back from the first copy of each kind
    if checks:
        row["timing_check"] = timing_summary(checks)
        (results / "timing.json").write_text(json.dumps(checks, indent=1) + "\n")
    encoded = time.perf_counter()

    replay = ["replay", str(folder), "--root", str(folder), "--model", args.model, "--out", str(results), "--quiet"]
    if args.config:
        replay += ["--config", args.config]
    if args.index:
        replay += ["--index", args.index]
    proc = dfstream(*replay, log=results / "replay.log")
    failed = re.search(r"(\d+) file\(s\), (\d+) failed", proc.stdout + proc.stderr)
    row["replay_failed_files"] = int(failed.group(2)) if failed else None
    if not (results / "predictions.json").exists():
        raise SystemExit(f"{cond.name}: dfstream replay wrote no predictions (see {results / 'replay.log'})")
    replayed = time.perf_counter()

    evaluate = [
        "eval",
        "--pred",
        str(results / "predictions.json"),
        "--scores",
        str(results / "scores.csv"),
        "--meta",
        str(meta),
        "--split",
        args.split,
        "--out",
        str(results / "metrics.json"),
    ]
    if args.index:
        evaluate += ["--verdicts", str(results / "verdicts.jsonl"), "--index", args.index]
    proc = dfstream(*evaluate, log=results / "eval.log")
    if proc.returncode != 0:
        raise SystemExit(f"{cond.name}: dfstream eval failed (see {results / 'eval.log'})")
    metrics = json.loads((results / "metrics.json").read_text())
    ap = metrics.get("localization", {}).get("ap", {})
    row.update(
        {
            "ap@0.5": ap.get("0.5"),
            "ap@0.75": ap.get("0.75"),
            "auc": (metrics.get("detection") or {}).get("auc"),
            "files_without_prediction": metrics.get("files_without_prediction"),
        }
    )
    if metrics.get("files_without_prediction"):
        print(
            f"  warning: {metrics['files_without_prediction']} file(s) have no prediction "
            f"(see {results / 'replay.log'})",
            file=sys.stderr,
        )
    if args.index:
        row["attribution_top1"] = (metrics.get("attribution") or {}).get("top1_accuracy")
    done = time.perf_counter()
    row["seconds"] = {
        "encode": round(encoded - tic, 2),
        "replay": round(replayed - encoded, 2),
        "eval": round(done - replayed, 2),
        "total": round(done - tic, 2),
    }
    row["metrics"] = str(results / "metrics.json")
    return row


def add_drops(rows: dict) -> None:
    """``drop``: clean minus the condition, for AP@0.5 and AUC (positive: worse than clean)."""
    clean = rows["clean"]
    for row in rows.values():
        if "skipped" in row:
            continue
        row["drop"] = {
            k: (round(clean[k] - row[k], 4) if clean.get(k) is not None and row.get(k) is not None else None)
            for k in ("ap@0.5", "auc")
        }
        if row["files"] != clean["files"]:
            row["drop"]["note"] = f"over {row['files']} files with video, clean over {clean['files']}"


# ----------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] + " Re-encodes every file of a split per condition (PyAV), runs "
        "`dfstream replay` and `dfstream eval` on each, and reports AP@0.5, AP@0.75 and AUC against clean.",
        epilog="Conditions: " + "; ".join(f"{c.name}: {c.description}" for c in CONDITIONS.values()),
    )
    parser.add_argument(
        "--meta",
        required=True,
        help="AV-Deepfake1M-format metadata JSON (list of entries with file, split, fake_segments, ...)",
    )
    parser.add_argument("--root", required=True, help="folder the metadata's 'file' entries are relative to")
    parser.add_argument("--model", required=True, help="checkpoint folder (model.safetensors + dfstream.json)")
    parser.add_argument("--config", help="config overrides for the replays (make model: configs/float32.yaml)")
    parser.add_argument("--index", help="attribution index folder: attribution top-1 is measured too")
    parser.add_argument(
        "--split", default="test", help="metadata split to re-encode and evaluate (default: %(default)s)"
    )
    parser.add_argument(
        "--conditions",
        default="all",
        help=f"comma list of {', '.join(CONDITIONS)}, or all (default); clean always runs: it is the reference",
    )
    parser.add_argument(
        "--work",
        help="folder for the copies and the replay outputs, kept after the run "
        "(default: a new temporary folder under .cache/robustness)",
    )
    parser.add_argument(
        "--out",
        default=str(ROOT / "bench" / "results" / "robustness.json"),
        help="result JSON (default: bench/results/robustness.json)",
    )
    parser.add_argument("--markdown", help="also write the table as Markdown here (for a model card)")
    parser.add_argument("--limit", type=int, help="only the first N files of the split (smoke tests)")
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the added noise, mixed with each file's name (default: %(default)s)",
    )
    args = parser.parse_args()
    conditions = parse_conditions(args.conditions)
    root = Path(args.root)
    items = [i for i in load_metadata(args.meta) if i.split == args.split][: args.limit]
    if not items:
        raise SystemExit(f"no metadata entries of split {args.split!r} in {args.meta}")
    if args.work:
        work = Path(args.work)
    else:
        (ROOT / ".cache" / "robustness").mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="run-", dir=ROOT / ".cache" / "robustness"))
    checkpoint = json.loads((Path(args.model) / "dfstream.json").read_text())
    with_video = sum(has_video(root / i.file) for i in items)
    result = {
        "benchmark": "robustness",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "model": {
            "path": args.model,
            "model_id": checkpoint.get("model_id"),
            "branches": checkpoint.get("config", {}).get("branches"),
        },
        "index": args.index,
        "meta": args.meta,
        "root": args.root,
        "split": args.split,
        "limit": args.limit,
        "files": len(items),
        "files_with_video": with_video,
        "work": str(work),
        "seed": args.seed,
        "metric_keys": "AP from metrics.json localization.ap['0.5'|'0.75'] (fake_segments), AUC from "
        "detection.auc; drop = clean - condition",
        "conditions": {},
    }
    for cond in conditions:
        print(f"{cond.name}: {cond.description} ...", file=sys.stderr, flush=True)
        row = run_condition(cond, items, root, work, args)
        result["conditions"][cond.name] = row
        off = row.get("timing_check", {}).get("files_off")
        if off:
            print(
                f"  warning: {len(off)} file(s) more than {TOLERANCE_S * 1000:.0f} ms off in time: "
                f"{', '.join(off[:5])}",
                file=sys.stderr,
            )
    add_drops(result["conditions"])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(markdown_table(result))
    print(text_table(result["conditions"]))
    print(f"wrote {args.out}" + (f" and {args.markdown}" if args.markdown else "") + f"; copies and outputs in {work}")


if __name__ == "__main__":
    main()
