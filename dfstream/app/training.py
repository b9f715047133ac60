"""``dfstream train``: fit the heads (and, if asked, the encoders) on AV-Deepfake1M / LAV-DF-format data.

The windows are those inference cuts (:mod:`dfstream.app.train_data`), held in memory or streamed
(``train.data``). With frozen encoders (the default) and windows in memory, the encoders' outputs
are computed once and cached; only the audio layer weights, the back-ends and the fusion are
trained. The loss is frame-level BCE on the fused curve (and each branch's on its modality).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from pathlib import Path

import numpy as np
import torch

from dfstream.app import lora, metrics, train_state
from dfstream.app.card import write_card
from dfstream.app.config import AppConfig, TrainConfig
from dfstream.app.distributed import Group, join, leave
from dfstream.app.train_data import (
    BRANCH_LABELS,
    GENERATOR_KEYS,
    GENERATOR_MODALITY,
    Windows,
    WindowStream,
    default_label_key,
    generator_classes,
    label_balance,
    loader,
    training_windows,
)
from dfstream.engine.core.config import replace
from dfstream.engine.core.dataset import Item, load_metadata
from dfstream.engine.core.errors import ConfigError, DatasetError
from dfstream.engine.core.progress import SILENT, Progress
from dfstream.engine.runtime.checkpoint import save_checkpoint
from dfstream.engine.runtime.detector import Detector
from dfstream.fusion.fusion import to_step

__all__ = [
    "BRANCH_LABELS",
    "GENERATOR_KEYS",
    "Trainer",
    "default_label_key",
    "generator_classes",
    "train",
    "training_windows",
]

log = logging.getLogger(__name__)

VAL_SPLITS = ("val", "validation", "dev")


def _split(items: list[Item], cfg: TrainConfig) -> tuple[list[Item], list[Item]]:
    train = [i for i in items if i.split == "train"]
    val = [i for i in items if i.split in VAL_SPLITS]
    if not train:
        raise DatasetError("metadata has no entries with split 'train'")
    if not val and cfg.val_fraction > 0 and len(train) > 1:
        order = np.random.default_rng(cfg.seed).permutation(len(train))
        n_val = max(1, round(len(train) * cfg.val_fraction))
        val = [train[i] for i in order[:n_val]]
        train = [train[i] for i in order[n_val:]]
    return train, val


def learning_rates(cfg) -> list[float]:
    """The learning rate of each epoch under ``cfg.lr_schedule`` (``cfg``: :class:`dfstream.app.config.TrainConfig`)."""
    if cfg.lr_schedule == "constant" or cfg.epochs == 1:
        return [cfg.learning_rate] * cfg.epochs
    low = 0.05 * cfg.learning_rate
    return [
        low + (cfg.learning_rate - low) * 0.5 * (1 + math.cos(math.pi * k / (cfg.epochs - 1)))
        for k in range(cfg.epochs)
    ]


class Trainer:
    """Batches windows through the branches and their fusion; caches encoder states when frozen.

    The loss is frame-level BCE on the fused curve; with several branches each
    branch's own curve also learns its modality's labels (on frames where the
    modality is present), so that spans can say which modality carries them.
    """

    def __init__(self, detector: Detector, cfg: TrainConfig, classes: int = 0, group: Group = Group()):
        self.detector, self.device, self.cfg, self.group = detector, detector.device, cfg, group
        self.frozen = not cfg.finetune_encoder
        for branch in detector.branches.values():
            if self.frozen:
                branch.encoder.requires_grad_(False)
            elif cfg.lora_rank:
                branch.encoder.requires_grad_(False)
                lora.add(branch.encoder, cfg.lora_rank)
            elif cfg.finetune_layers:
                branch.encoder.requires_grad_(False)
                for layer in transformer_layers(branch.encoder)[-cfg.finetune_layers :]:
                    layer.requires_grad_(True)
            elif hasattr(branch.encoder, "freeze_feature_encoder"):
                branch.encoder.freeze_feature_encoder()
        self.autocast = autocast_dtype(cfg.precision, self.device)
        self.progress = SILENT
        params = [p for p in detector.model.parameters() if p.requires_grad]
        # train.generator_loss: a linear classifier of the generator over the branch's frame
        # embeddings; it only shapes them in training and is not saved
        self.classifier = None
        # the branch whose embeddings learn the generators: the (first) one of GENERATOR_MODALITY
        self.generator_branch = next((n for n, m in detector.modalities.items() if m == GENERATOR_MODALITY), None)
        if self.cfg.generator_loss > 0 and classes >= 2 and self.generator_branch is not None:
            dim = detector.specs[self.generator_branch].embedding_dim
            self.classifier = torch.nn.Linear(dim, classes).to(self.device)
            params += list(self.classifier.parameters())
        self.params = params
        self.optimizer = torch.optim.AdamW(params, lr=self.cfg.learning_rate, weight_decay=self.cfg.weight_decay)
        self.rates = learning_rates(self.cfg)
        self.cache: dict[tuple, torch.Tensor] = {}
        drawn = self.cfg.augment or self.cfg.degrade > 0
        self.augmenter = torch.Generator().manual_seed(self.cfg.seed) if drawn else None

    def _logits(
        self, data: Windows, index: np.ndarray, key: tuple, augment: bool = False
    ) -> tuple[torch.Tensor, dict, dict, dict]:
        """Fused logits ``(B, F)``, branch logits ``{name: (B, F)}``, presence ``{name: (B, F)}`` and
        branch embeddings ``{name: (B, F, D)}``;
        ``augment``: windows drawn with chance ``train.degrade`` swapped for their branch's
        ``degrade`` copy, then through each branch's ``augment`` when ``train.augment`` is on."""
        det = self.detector
        logits, embs, pres = {}, {}, {}
        for name, branch in det.branches.items():
            x = branch.preprocess(data.inputs[name][index]).to(self.device)
            swap = None
            if augment and self.cfg.degrade > 0 and branch.degrades:
                swap = torch.rand(len(index), generator=self.augmenter) < self.cfg.degrade
                swap = swap if bool(swap.any()) else None
            if self.frozen:
                encoded = self._encoded(branch, key and (name, key), x)
                if swap is not None:
                    degraded = self._encoded(branch, key and (name, key, "degraded"), x, branch.degrade)
                    encoded = _pick(swap, degraded, encoded)
            else:
                encoded = branch.encode(x if swap is None else _pick(swap, (branch.degrade(x),), (x,))[0])
            if augment and self.cfg.augment:
                encoded = branch.augment(encoded, self.augmenter)
            lg, em = branch.head_forward(encoded)
            plan, ratio = det.plans[name], det.ratios[name]
            lo = plan.first_kept
            logits[name] = to_step(lg[:, lo : lo + plan.hop_frames], ratio)
            embs[name] = to_step(em[:, lo : lo + plan.hop_frames], ratio)
            pres[name] = to_step(torch.from_numpy(data.present[name][index]).to(self.device), ratio)
        if det.fusion is not None:
            fused, _ = det.fusion(logits, embs, pres)
        else:  # frames where the one modality is absent are left out of the loss (see _loss)
            (fused,) = logits.values()
        return fused, logits, pres, embs

    def _encoded(self, branch, key: tuple | None, x: torch.Tensor, transform=None):
        """``branch.encode`` of ``x`` (or of ``transform(x)``), computed once per ``key`` and cached
        (``key`` None: streamed windows, computed every time)."""
        if key is None:
            with torch.no_grad():
                return branch.encode(x if transform is None else transform(x))
        if key not in self.cache:
            with torch.no_grad():  # not inference_mode: the head's backward saves these
                self.cache[key] = branch.encode(x if transform is None else transform(x))
        return self.cache[key]

    def _batches(self, n: int, shuffle: bool, rng) -> list[np.ndarray]:
        """Batches of window indices. Training (``shuffle``) batches mix windows of many files: one
        permutation drawn from ``train.seed`` (the same every epoch, so that the encoder cache stays
        valid), in an order shuffled per epoch. Consecutive windows come from one file, so batches of
        them would each show one file's media to the gradient and to BatchNorm's batch statistics.
        Evaluation batches are consecutive."""
        order = np.random.default_rng(self.cfg.seed).permutation(n) if shuffle else np.arange(n)
        batches = [order[i : i + self.cfg.batch_size] for i in range(0, n, self.cfg.batch_size)]
        if shuffle:
            rng.shuffle(batches)
        return batches

    def _loss(
        self, data: Windows, b: np.ndarray, whole: np.ndarray, mine: np.ndarray, fused, logits, pres, embs, pos_weight
    ) -> torch.Tensor:
        """The loss of windows ``mine`` (this process's share of batch ``b``, :mod:`dfstream.app.distributed`),
        each term's sum over ``mine`` divided by its frame count over the whole of ``b`` (``whole``: the
        batch's :func:`loss_frames`): the processes' losses add up to the batch's."""
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        mask = torch.from_numpy(loss_frames(data, mine)).to(self.device)
        target = torch.from_numpy(data.targets[mine]).to(self.device)
        loss = (bce(fused, target, pos_weight=pos_weight, reduction="none") * mask).sum() / float(whole.sum())
        if len(logits) > 1:
            for name, lg in logits.items():
                count = float((whole * data.present_frames[name][b]).sum())
                if count > 0:
                    m = mask * pres[name].float()
                    t = torch.from_numpy(data.branch_targets[name][mine]).to(self.device)
                    loss = loss + (bce(lg, t, pos_weight=pos_weight, reduction="none") * m).sum() / count
        if self.classifier is not None and data.generators is not None:
            gen = self.generator_branch
            count = int(((data.generators[b] >= 0) & (whole > 0) & (data.present_frames[gen][b] > 0)).sum())
            g = torch.from_numpy(data.generators[mine]).to(self.device)
            labelled = (g >= 0) & (mask > 0) & pres[gen].bool()
            if count and labelled.any():
                guess = self.classifier(embs[gen][labelled].float())
                ce = torch.nn.functional.cross_entropy(guess, g[labelled], reduction="sum") / count
                loss = loss + self.cfg.generator_loss * ce
        return loss

    def epoch(self, data: Windows, pos_weight: torch.Tensor, rng, tag: str, number: int) -> float:
        """Train one epoch (``number`` from 1) on windows in memory; returns the mean loss. Under
        ``torchrun`` every process walks the same batches and takes its share of each."""
        batches = self._batches(len(data.mask), True, rng)
        steps = ((data, b, self.group.share(b), (tag, int(b[0]))) for b in batches)
        return self._train(steps, pos_weight, number, len(data.mask), shared=True)

    def epoch_stream(self, batches, pos_weight: torch.Tensor, number: int) -> float:
        """Train one epoch on streamed batches (:class:`~dfstream.app.train_data.WindowStream`);
        returns the mean loss. Under ``torchrun`` each process has its own files' batches; the
        epoch ends for all when one runs out (:meth:`Group.together`)."""
        steps = ((w, np.arange(len(w.mask)), np.arange(len(w.mask)), None) for w in self.group.together(batches))
        return self._train(steps, pos_weight, number, None, shared=False)

    def _train(self, steps, pos_weight: torch.Tensor, number: int, windows: int | None, shared: bool) -> float:
        """The optimizer's walk over ``steps`` of ``(windows, batch, this process's share, cache key)``."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.rates[number - 1]
        self.detector.model.train()
        if self.frozen:
            for branch in self.detector.branches.values():
                branch.encoder.eval()
        total, weight, step = 0.0, 0.0, 0
        self.seen = [0.0, 0.0]  # seconds and forged seconds of the files begun this epoch (streamed)
        self.optimizer.zero_grad()
        task = self.progress.task(f"epoch {number}", windows, "window")
        for step, (data, b, mine, key) in enumerate(steps, 1):
            whole = loss_frames(data, b)
            frames = float(whole.sum())
            if len(mine):  # a share can be empty (the last batch, with fewer windows than processes)
                with self._precision():
                    fused, logits, pres, embs = self._logits(data, mine, key, augment=True)
                    loss = self._loss(data, b, whole, mine, fused, logits, pres, embs, pos_weight)
                (loss / self.cfg.accumulate).backward()
                total += float(loss.detach()) * frames
            weight += frames
            self.seen[0] += data.seconds
            self.seen[1] += data.fake_seconds
            if step % self.cfg.accumulate == 0:
                self._step()
            task.advance(len(b))
        if step % self.cfg.accumulate:  # the last, incomplete group (the same step count in every process)
            self._step()
        task.close()
        self.group.average_buffers(self.detector.model)
        if not shared:
            weight = float(self.group.sum(torch.tensor(weight, dtype=torch.float64)))
            self.seen = self.group.sum(torch.tensor(self.seen, dtype=torch.float64)).tolist()
        return float(self.group.sum(torch.tensor(total, dtype=torch.float64))) / max(weight, 1.0)

    def _step(self) -> None:
        """One optimizer step on the gradients summed since the last (and over the processes)."""
        self.group.sum_gradients(self.params)
        self.optimizer.step()
        self.optimizer.zero_grad()

    def _precision(self):
        """The forward pass's autocast context (``train.precision``); a no-op in float32."""
        return torch.autocast(self.device.type, dtype=self.autocast or torch.float32, enabled=self.autocast is not None)

    @torch.no_grad()
    def evaluate(self, data: Windows, tag: str) -> dict:
        """Frame AUC, EER and BCE of the fused curve on windows in memory (encoder states cached)."""
        return self._evaluate((data, b, (tag, int(b[0]))) for b in self._batches(len(data.mask), False, None))

    @torch.no_grad()
    def evaluate_stream(self, batches) -> dict:
        """:meth:`evaluate` on streamed batches."""
        return self._evaluate((w, np.arange(len(w.mask)), None) for w in batches)

    def _evaluate(self, parts) -> dict:
        self.detector.model.eval()
        ys, ss = [], []
        for data, b, key in parts:
            with self._precision():
                fused = self._logits(data, b, key)[0]
            p = torch.sigmoid(fused.float()).cpu().numpy()
            m = loss_frames(data, b) > 0
            ys.append(data.targets[b][m])
            ss.append(p[m])
        y, s = np.concatenate(ys), np.concatenate(ss)
        eps = 1e-6
        bce = float(-np.mean(y * np.log(s + eps) + (1 - y) * np.log(1 - s + eps)))
        return {"frame_auc": metrics.auc(y, s), "frame_eer": metrics.eer(y, s), "bce": bce}


def loss_frames(data: Windows, index: np.ndarray) -> np.ndarray:
    """Which fused frames of windows ``index`` the loss and the metrics count, float ``(B, F)``: inside
    the file, and some modality present there."""
    return data.mask[index] * np.any([v[index] for v in data.present_frames.values()], axis=0)


def transformer_layers(encoder: torch.nn.Module) -> torch.nn.ModuleList:
    """An encoder's transformer layers, first to last (WavLM and wav2vec2: ``encoder.layers``; ViT:
    ``encoder.layer``), for ``train.finetune_layers``."""
    stack = getattr(encoder, "encoder", None)
    layers = getattr(stack, "layers", None) or getattr(stack, "layer", None)
    if layers is None:
        raise ConfigError(f"train.finetune_layers: {type(encoder).__name__} has no transformer layers to pick")
    return layers


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype ``train.precision`` asks for on ``device`` (None: float32, no autocast)."""
    if precision == "bf16" or (
        precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False)
    ):
        return torch.bfloat16
    return None


def _pick(swap: torch.Tensor, chosen: tuple, kept: tuple) -> tuple:
    """Per window (first axis), ``chosen`` where ``swap`` (bool ``(B,)``) else ``kept``; ``None`` entries pass."""
    return tuple(
        None if a is None else torch.where(swap.to(a.device).view(-1, *[1] * (a.dim() - 1)), a, b)
        for a, b in zip(chosen, kept)
    )


class MemoryFeed:
    """``train.data: memory``: every window of train and val decoded once and held
    (:func:`~dfstream.app.train_data.training_windows`); frozen encoders' states are cached."""

    def __init__(self, train_items, val_items, root, detector, label_key, classes, chunk_seconds, cfg, group, progress):
        self.train = training_windows(train_items, root, detector, label_key, "train", classes, chunk_seconds, progress)
        self.val = (
            training_windows(val_items, root, detector, label_key, "val", None, chunk_seconds, progress)
            if val_items
            else None
        )
        positives = float((self.train.targets * self.train.mask).sum())
        negatives = float(self.train.mask.sum()) - positives
        self.pos_weight = min(10.0, max(1.0, negatives / max(positives, 1.0)))
        self.seconds, self.fake_seconds = self.train.seconds, self.train.fake_seconds

    def epoch(self, trainer: Trainer, pos_weight: torch.Tensor, rng, number: int) -> float:
        return trainer.epoch(self.train, pos_weight, rng, "train", number)

    def validate(self, trainer: Trainer) -> dict:
        return trainer.evaluate(self.val, "val") if self.val else {}

    def describe(self) -> str:
        return "in memory, frozen encoder states cached"


class StreamFeed:
    """``train.data: stream``: each epoch's files decoded by ``train.workers`` DataLoader processes
    (:class:`~dfstream.app.train_data.WindowStream`); nothing of the set is held. The positive
    weight comes from the labels' share of the files' lengths (:func:`~dfstream.app.train_data.label_balance`)."""

    def __init__(self, train_items, val_items, root, detector, label_key, classes, chunk_seconds, cfg, group, progress):
        common = (root, detector, label_key)
        self.cfg = cfg
        self.train = WindowStream(
            train_items, *common, classes, chunk_seconds, cfg.seed, group.rank, group.size, True, cfg.shuffle_buffer
        )
        self.val = WindowStream(val_items, *common, None, chunk_seconds, shuffle=False) if val_items else None
        share = label_balance(train_items, root, label_key, seed=cfg.seed)
        self.pos_weight = min(10.0, max(1.0, (1 - share) / share)) if share > 0 else 10.0
        self.seconds = self.fake_seconds = 0.0

    def epoch(self, trainer: Trainer, pos_weight: torch.Tensor, rng, number: int) -> float:
        self.train.epoch = number
        loss = trainer.epoch_stream(loader(self.train, self.cfg.batch_size, self.cfg.workers), pos_weight, number)
        self.seconds, self.fake_seconds = trainer.seen  # the files an epoch covered
        return loss

    def validate(self, trainer: Trainer) -> dict:
        return trainer.evaluate_stream(loader(self.val, self.cfg.batch_size, self.cfg.workers)) if self.val else {}

    def describe(self) -> str:
        return f"streamed by {self.cfg.workers} decoding workers, shuffle buffer {self.cfg.shuffle_buffer}"


def train(
    meta: str | Path,
    root: str | Path,
    out: str | Path,
    config: AppConfig,
    description: str | None = None,
    label_key: str | None = None,
    progress: Progress = SILENT,
    resume: bool = False,
) -> dict:
    """Train a detector (``config.model``, as ``config.train`` says) on the metadata's train split and
    save the best epoch to ``out``; files are cut as replay cuts them (``replay.chunk_seconds``).

    ``label_key`` is what the fused curve learns (default :func:`default_label_key`). The training
    state is saved in ``out`` every ``train.checkpoint_every`` epochs; ``resume`` continues from it
    (:mod:`dfstream.app.train_state`). Under ``torchrun`` the processes share each batch
    (:mod:`dfstream.app.distributed`). Returns the training summary written into the checkpoint.
    Each epoch's losses are logged (``dfstream.app.training``); ``progress`` counts files decoded and epochs.
    """
    meta, root, out, cfg = Path(meta), Path(root), Path(out), config.train
    items = load_metadata(meta)
    train_items, val_items = _split(items, cfg)
    torch.manual_seed(cfg.seed)
    # gradients in float32 and unquantized, whatever inference uses
    model = replace(replace(config.model, "inference.quantize", "none"), "inference.dtype", "float32")
    detector = Detector.from_config(model, seed=cfg.seed)
    group = join(detector.device.type)
    progress = progress if group.main else SILENT
    label_key = label_key or default_label_key(detector)
    chunk_seconds = config.deployment.replay.chunk_seconds
    classes = generator_classes(train_items) if cfg.generator_loss > 0 else None
    feed_class = StreamFeed if cfg.data == "stream" else MemoryFeed
    feed = feed_class(train_items, val_items, root, detector, label_key, classes, chunk_seconds, cfg, group, progress)
    pos_weight = torch.tensor(feed.pos_weight, device=detector.device)
    trainer = Trainer(detector, cfg, len(classes or ()), group)
    trainer.progress = progress
    rng = np.random.default_rng(cfg.seed)
    history, best, best_state, interrupted, done = [], None, None, False, 0
    run = {"model": model.to_dict(), "train": cfg.to_dict(), "labels": label_key, "chunk_seconds": chunk_seconds}
    fingerprint = train_state.fingerprint(run, meta)
    state = {"model": detector.model, "optimizer": trainer.optimizer, "classifier": trainer.classifier}
    state |= {"augmenter": trainer.augmenter, "rng": rng}
    if resume:
        done, best, best_state, history = train_state.load(out, fingerprint=fingerprint, **state)
        log.info("resuming %s after epoch %d of %d", out, done, cfg.epochs)
    task = progress.task("training", cfg.epochs, "epoch")
    task.advance(done)
    stopped = None
    try:
        for epoch in range(done + 1, cfg.epochs + 1):
            loss = feed.epoch(trainer, pos_weight, rng, epoch)
            val = feed.validate(trainer)
            history.append(
                {
                    "epoch": epoch,
                    "train_loss": round(loss, 5),
                    "learning_rate": round(trainer.rates[epoch - 1], 7),
                    **{k: None if v is None else round(v, 5) for k, v in val.items()},
                }
            )
            selector = -(val.get("bce") if val else loss)
            if best is None or selector > best:
                best, best_state = selector, {k: v.detach().clone() for k, v in detector.model.state_dict().items()}
                history[-1]["best"] = True
            task.advance()
            log.info(
                "epoch %d: train loss %.4f%s",
                epoch,
                loss,
                f", val frame AUC {val['frame_auc']:.4f}, val BCE {val['bce']:.4f}"
                if val and val["frame_auc"] is not None
                else "",
            )
            since = epoch - next(h["epoch"] for h in reversed(history) if h.get("best"))
            if cfg.patience and since >= cfg.patience:
                stopped = f"stopped early after epoch {epoch}: no better validation for {since} epochs"
                log.info("%s (train.patience %d)", stopped, cfg.patience)
                break
            if group.main and epoch < cfg.epochs and epoch % cfg.checkpoint_every == 0:
                train_state.save(
                    out,
                    epoch=epoch,
                    best_state=best_state,
                    best=best,
                    history=history,
                    fingerprint=fingerprint,
                    **state,
                )
    except KeyboardInterrupt:
        if best_state is None:
            log.warning("training interrupted before the first epoch ended: nothing saved")
            raise
        interrupted = True
    finally:
        task.close()
    detector.model.load_state_dict(best_state)
    lora.merge(detector.model)  # adapters folded into the weights: an ordinary checkpoint
    best_epoch = next(h for h in reversed(history) if h.get("best"))
    summary = {
        "data": {
            "meta": meta.name,
            "description": description or f"the dataset described by {meta.name}",
            "labels": label_key,
            "files": len(train_items),
            "val_files": len(val_items),
            "seconds": round(feed.seconds, 2),
            "fake_seconds": round(feed.fake_seconds, 2),
        },
        "method": {
            "encoder": "frozen" if trainer.frozen else "fine-tuned",
            "objective": f"frame-level BCE on {detector.step * 1000:g} ms frames"
            + (" (fused; plus each branch on its modality's labels)" if len(detector.branches) > 1 else ""),
            **cfg.to_dict(),
            **({"generator_classes": classes} if trainer.classifier is not None else {}),
            **({"processes": group.size} if group.size > 1 else {}),
            "data_feed": feed.describe(),
        },
        "best_epoch": best_epoch,
        "history": history,
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    if stopped:
        summary["stopped_early"] = stopped
    if interrupted:
        summary["interrupted"] = f"stopped by the user after epoch {len(history)} of {cfg.epochs}"
    if group.main:
        save_checkpoint(detector, out, summary)
        write_card(out)
        if not interrupted:
            train_state.remove(out)
    leave(group)
    if interrupted:
        log.warning("training interrupted after epoch %d: saved the best epoch so far to %s", len(history), out)
        raise KeyboardInterrupt
    return summary
