"""What limits the shipped model: how well do its frozen encoder's states find forged audio?

A linear probe (standardised logistic regression, scikit-learn) on 20 ms frames, fitted on
``--train`` clips of the train split and scored (frame AUC, audio_fake_segments) on ``--test``
clips of the test split of the real-material set; real and audio-forged clips only. Each hidden
state of the checkpoint's audio encoder (layer 0 = the projected convolutional features) is probed,
and, as a reference that needs no learned or random encoder, a 64-band log-mel spectrogram of the
same frames. If the mel spectrogram separates the frames much better than the encoder's states, the
encoder's features (random, frozen) limit the model; if neither does, the task at 20 ms does.

    python bench/feature_probe.py --data .cache/realset/data --model models/default

Writes bench/results/feature_probe.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]

import librosa  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from realset.shortcut import labels  # noqa: E402
from realset.sources import RATE, load_audio  # noqa: E402
from replay_speed import machine  # noqa: E402

from dfstream.engine.runtime.checkpoint import load_checkpoint  # noqa: E402

HOP = 320  # 20 ms


def frames_of(encoder, path: Path, segments) -> tuple[list[np.ndarray], np.ndarray]:
    """Per-layer encoder states and log-mel frames ``(n, dim)`` of one clip, and its frame labels ``(n,)``."""
    audio = load_audio(path)
    with torch.inference_mode():
        states = encoder(torch.from_numpy(audio)[None], output_hidden_states=True).hidden_states
    n = min(states[0].shape[1], len(audio) // HOP)
    mel = librosa.power_to_db(librosa.feature.melspectrogram(y=audio, sr=RATE, n_fft=512, hop_length=HOP, n_mels=64)).T[
        :n
    ]
    return [h[0, :n].float().numpy() for h in states] + [mel], labels(segments, n, HOP)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, metavar="DIR", help="the real-material set (metadata.json)")
    p.add_argument("--model", required=True, metavar="DIR", help="checkpoint whose audio encoder is probed")
    p.add_argument("--train", type=int, default=60, help="train clips to fit on (default: %(default)s)")
    p.add_argument("--test", type=int, default=30, help="test clips to score (default: %(default)s)")
    p.add_argument("--out", default=str(ROOT / "bench/results/feature_probe.json"), metavar="JSON")
    args = p.parse_args(argv)
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    start = time.monotonic()
    detector = load_checkpoint(args.model, {"inference": {"dtype": "float32"}})  # the card's numbers: any CPU
    encoder = detector.branches["audio"].encoder.eval()
    meta = json.loads((Path(args.data) / "metadata.json").read_text())

    def stack(split: str, count: int):
        chosen = [e for e in meta if e["split"] == split and e["modify_type"] != "visual_modified"][:count]
        parts = [frames_of(encoder, Path(args.data) / e["file"], e["audio_fake_segments"]) for e in chosen]
        return [np.concatenate([f[k] for f, _ in parts]) for k in range(len(parts[0][0]))], np.concatenate(
            [y for _, y in parts]
        )

    x_train, y_train = stack("train", args.train)
    x_test, y_test = stack("test", args.test)
    names = [f"encoder layer {k}" for k in range(len(x_train) - 1)] + ["log-mel 64"]
    aucs = {}
    for name, a, b in zip(names, x_train, x_test):
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(a, y_train)
        aucs[name] = round(float(roc_auc_score(y_test, probe.predict_proba(b)[:, 1])), 4)
        print(f"{name}: frame AUC {aucs[name]}")
    result = {
        "command": " ".join(["python", "bench/feature_probe.py", *(argv or sys.argv[1:])]),
        "machine": machine(),
        "model": args.model,
        "model_id": detector.model_id,
        "train_clips": args.train,
        "test_clips": args.test,
        "train_frames": int(len(y_train)),
        "test_frames": int(len(y_test)),
        "forged_share": {"train": round(float(y_train.mean()), 4), "test": round(float(y_test.mean()), 4)},
        "frame_auc": aucs,
        "seconds": round(time.monotonic() - start, 1),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
