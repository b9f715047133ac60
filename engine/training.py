"""``dfstream train``: fit the heads on AV-Deepfake1M / LAV-DF-format data.

Training cuts every file into exactly the windows inference uses
(:class:`engine.windows.WindowPlan`), so the model never sees a geometry at
training time that it will not see live. Frame ``g`` of a file is labelled
forged when its centre ``(g + 0.5) * 20 ms`` lies in a forged segment. With a
frozen encoder (the default) the encoder's hidden states are computed once and
cached; only the layer weights and the back-end are trained.
"""
from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from engine import metrics
from engine.checkpoint import save_checkpoint
from engine.config import Config, config_to_dict, replace
from engine.dataset import Item, load_metadata
from engine.decode import SAMPLE_RATE, decode_audio
from engine.detector import Detector
from engine.errors import DatasetError, MediaError

VAL_SPLITS = ("val", "validation", "dev")


@dataclass
class Windows:
    """Training windows: audio ``(N, samples)``, targets and mask ``(N, frames)``."""

    audio: np.ndarray
    targets: np.ndarray
    mask: np.ndarray
    seconds: float
    fake_seconds: float


def _windows(items: list[Item], root: Path, detector: Detector, label_key: str, desc: str) -> Windows:
    plan, step = detector.plan, detector.spec.frame_step
    audio, targets, mask, seconds, fake = [], [], [], 0.0, 0.0
    for item in tqdm(items, desc=f"decoding {desc}", unit="file", leave=False, disable=None):
        try:
            samples = decode_audio(root / item.file).samples
        except MediaError as e:
            raise DatasetError(f"{item.file}: {e}") from None
        total = len(samples)
        segments = item.segments[label_key]
        seconds += total / SAMPLE_RATE
        fake += sum(s.duration for s in segments)
        for k in range(plan.complete(total, final=True)):
            audio.append(plan.cut(samples, 0, k, total))
            centres = (k * plan.hop_frames + np.arange(plan.hop_frames) + 0.5) * step
            targets.append(np.array([any(s.contains(t) for s in segments) for t in centres], np.float32))
            m = np.zeros(plan.hop_frames, np.float32)
            m[:plan.kept_frames(k, total)] = 1
            mask.append(m)
    if not audio:
        raise DatasetError(f"no audio in the {desc} files")
    return Windows(np.stack(audio), np.stack(targets), np.stack(mask), seconds, fake)


def _split(items: list[Item], config: Config) -> tuple[list[Item], list[Item]]:
    train = [i for i in items if i.split == "train"]
    val = [i for i in items if i.split in VAL_SPLITS]
    if not train:
        raise DatasetError("metadata has no entries with split 'train'")
    if not val and config.train.val_fraction > 0 and len(train) > 1:
        order = np.random.default_rng(config.train.seed).permutation(len(train))
        n_val = max(1, round(len(train) * config.train.val_fraction))
        val = [train[i] for i in order[:n_val]]
        train = [train[i] for i in order[n_val:]]
    return train, val


class _Trainer:
    """Batches windows through the branch; caches encoder states when the encoder is frozen."""

    def __init__(self, detector: Detector, config: Config):
        self.branch, self.device, self.cfg = detector.branch, detector.device, config.train
        self.plan = detector.plan
        self.frozen = not config.train.finetune_encoder
        if self.frozen:
            self.branch.encoder.requires_grad_(False)
        else:
            self.branch.encoder.freeze_feature_encoder()
        params = [p for p in self.branch.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=self.cfg.learning_rate, weight_decay=self.cfg.weight_decay)
        self.cache: dict[tuple, torch.Tensor] = {}

    def _logits(self, data: Windows, index: np.ndarray, key: tuple) -> torch.Tensor:
        wav = torch.from_numpy(data.audio[index]).to(self.device)
        if self.frozen:
            if key not in self.cache:
                with torch.no_grad():  # not inference_mode: the head's backward saves these
                    self.cache[key] = self.branch.encode(wav)
            logits, _ = self.branch.head_forward(self.cache[key])
        else:
            logits, _ = self.branch(wav)
        lo = self.plan.first_kept
        return logits[:, lo:lo + self.plan.hop_frames]

    def _batches(self, n: int, shuffle: bool, rng) -> list[np.ndarray]:
        # Fixed batch membership keeps the encoder cache valid; shuffle batch order only.
        batches = [np.arange(i, min(n, i + self.cfg.batch_size)) for i in range(0, n, self.cfg.batch_size)]
        if shuffle:
            rng.shuffle(batches)
        return batches

    def epoch(self, data: Windows, pos_weight: torch.Tensor, rng, tag: str) -> float:
        self.branch.train()
        if self.frozen:
            self.branch.encoder.eval()
        total, weight = 0.0, 0.0
        for b in self._batches(len(data.audio), True, rng):
            logits = self._logits(data, b, (tag, int(b[0])))
            target = torch.from_numpy(data.targets[b]).to(self.device)
            mask = torch.from_numpy(data.mask[b]).to(self.device)
            loss = (torch.nn.functional.binary_cross_entropy_with_logits(
                logits, target, pos_weight=pos_weight, reduction="none") * mask).sum() / mask.sum()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            total += float(loss.detach()) * float(mask.sum())
            weight += float(mask.sum())
        return total / max(weight, 1.0)

    @torch.no_grad()
    def evaluate(self, data: Windows, tag: str) -> dict:
        self.branch.eval()
        probs = []
        for b in self._batches(len(data.audio), False, None):
            probs.append(torch.sigmoid(self._logits(data, b, (tag, int(b[0])))).cpu().numpy())
        p, m = np.concatenate(probs), data.mask.astype(bool)
        y, s = data.targets[m], p[m]
        eps = 1e-6
        bce = float(-np.mean(y * np.log(s + eps) + (1 - y) * np.log(1 - s + eps)))
        return {"frame_auc": metrics.auc(y, s), "frame_eer": metrics.eer(y, s), "bce": bce}


def train(meta: str | Path, root: str | Path, out: str | Path, config: Config,
          description: str | None = None, label_key: str = "audio_fake_segments") -> dict:
    """Train a detector on the metadata's train split and save the best epoch to ``out``.

    Returns the training summary written into the checkpoint.
    """
    meta, root = Path(meta), Path(root)
    items = load_metadata(meta)
    train_items, val_items = _split(items, config)
    torch.manual_seed(config.train.seed)
    # gradients in float32 and unquantized, whatever inference uses
    config = replace(replace(config, "inference.quantize", "none"), "inference.dtype", "float32")
    detector = Detector.from_config(config)
    train_data = _windows(train_items, root, detector, label_key, "train")
    val_data = _windows(val_items, root, detector, label_key, "val") if val_items else None
    positives = float((train_data.targets * train_data.mask).sum())
    negatives = float(train_data.mask.sum()) - positives
    pos_weight = torch.tensor(min(10.0, max(1.0, negatives / max(positives, 1.0))), device=detector.device)
    trainer = _Trainer(detector, config)
    rng = np.random.default_rng(config.train.seed)
    history, best, best_state, interrupted = [], None, None, False
    bar = tqdm(range(1, config.train.epochs + 1), desc="training", unit="epoch", disable=None)
    try:
        for epoch in bar:
            loss = trainer.epoch(train_data, pos_weight, rng, "train")
            val = trainer.evaluate(val_data, "val") if val_data else {}
            history.append({"epoch": epoch, "train_loss": round(loss, 5),
                            **{k: None if v is None else round(v, 5) for k, v in val.items()}})
            selector = -(val.get("bce") if val else loss)
            if best is None or selector > best:
                best, best_state = selector, {k: v.detach().clone() for k, v in detector.model.state_dict().items()}
                history[-1]["best"] = True
            bar.set_postfix(loss=f"{loss:.4f}", val_auc=val.get("frame_auc"))
            print(f"epoch {epoch}: train loss {loss:.4f}" + (
                f", val frame AUC {val['frame_auc']:.4f}, val BCE {val['bce']:.4f}"
                if val and val["frame_auc"] is not None else ""), file=sys.stderr)
    except KeyboardInterrupt:
        bar.close()
        if best_state is None:
            print("training interrupted before the first epoch ended: nothing saved", file=sys.stderr)
            raise
        interrupted = True
    detector.model.load_state_dict(best_state)
    best_epoch = next(h for h in reversed(history) if h.get("best"))
    summary = {
        "data": {"meta": meta.name, "description": description or f"the dataset described by {meta.name}",
                 "labels": label_key, "files": len(train_items), "val_files": len(val_items),
                 "seconds": round(train_data.seconds, 2), "fake_seconds": round(train_data.fake_seconds, 2)},
        "method": {"encoder": "frozen" if trainer.frozen else "fine-tuned",
                   "objective": "frame-level BCE on 20 ms frames", **config_to_dict(config.train)},
        "best_epoch": best_epoch,
        "history": history,
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if interrupted:
        summary["interrupted"] = f"stopped by the user after epoch {len(history)} of {config.train.epochs}"
    save_checkpoint(detector, out, summary)
    if interrupted:
        print(f"training interrupted after epoch {len(history)}: saved the best epoch so far to {out}",
              file=sys.stderr)
        raise KeyboardInterrupt
    return summary
