"""Training state at each epoch's end, so that an interrupted ``dfstream train`` resumes where it was.

What is saved is everything the next epoch depends on: the model's weights, the best epoch's
weights so far, the optimizer's moments, the generator classifier, the random states (torch's
global one for dropout, the augmenter's, NumPy's batch order) and the history. Resuming from it
replays the remaining epochs exactly as an uninterrupted run would (tested: the same weights bit
for bit on CPU). Tensors go to one safetensors file and the rest to JSON; nothing is pickled.

The state lives in ``<out>/resume/`` while training runs and is removed when the checkpoint is
written. It records the training config and the metadata's checksum: a resume with different
ones is refused, since it would not continue the same run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from dfstream.engine.core.errors import ConfigError

DIR, TENSORS, META = "resume", "state.safetensors", "state.json"


def directory(out: str | Path) -> Path:
    """Where the state of a run writing checkpoint ``out`` lives."""
    return Path(out) / DIR


def fingerprint(config: dict, meta: Path) -> str:
    """What must not change between a run and its resume: the config and the metadata's bytes."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    digest.update(Path(meta).read_bytes())
    return digest.hexdigest()


def save(
    out: str | Path,
    *,
    epoch: int,
    model,
    best_state: dict,
    best: float,
    history: list,
    optimizer,
    classifier,
    augmenter,
    rng: np.random.Generator,
    fingerprint: str,
) -> Path:
    """Write the state after ``epoch`` (from 1) atomically: a new directory, then renamed over the old."""
    target = directory(out)
    tmp = target.with_name(DIR + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors |= {f"best.{k}": v for k, v in best_state.items()}
    if classifier is not None:
        tensors |= {f"classifier.{k}": v for k, v in classifier.state_dict().items()}
    opt = optimizer.state_dict()
    for index, values in opt["state"].items():
        tensors |= {f"optimizer.{index}.{k}": torch.as_tensor(v) for k, v in values.items()}
    tensors["rng.torch"] = torch.get_rng_state()
    if augmenter is not None:
        tensors["rng.augmenter"] = augmenter.get_state()
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp / TENSORS))
    meta = {
        "epoch": epoch,
        "best": best,
        "history": history,
        "param_groups": opt["param_groups"],
        "optimizer_states": sorted(opt["state"]),
        "numpy": rng.bit_generator.state,
        "fingerprint": fingerprint,
    }
    (tmp / META).write_text(json.dumps(meta) + "\n")
    old = target.with_name(DIR + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def load(
    out: str | Path, *, model, optimizer, classifier, augmenter, rng: np.random.Generator, fingerprint: str
) -> tuple[int, float, dict, list]:
    """Restore the state saved by :func:`save` into the given objects.

    Returns ``(epochs done, best selector, best weights, history)``. Raises ConfigError when there
    is no state, or when it was saved by a run with another config or metadata.
    """
    where = directory(out)
    if not (where / META).exists():
        raise ConfigError(f"nothing to resume: {where} holds no training state (a run saves one after each epoch)")
    meta = json.loads((where / META).read_text())
    if meta["fingerprint"] != fingerprint:
        raise ConfigError(
            f"{where} was saved by a run with another config or metadata; resume with the same ones, "
            "or train without --resume (which starts over)"
        )
    tensors = load_file(str(where / TENSORS))

    def part(prefix: str) -> dict:
        return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

    model.load_state_dict(part("model."))
    if classifier is not None:
        classifier.load_state_dict(part("classifier."))
    state = {}
    for index in meta["optimizer_states"]:
        values = part(f"optimizer.{index}.")
        state[int(index)] = values
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    if augmenter is not None:
        augmenter.set_state(tensors["rng.augmenter"])
    rng.bit_generator.state = meta["numpy"]
    return meta["epoch"], meta["best"], part("best."), meta["history"]


def remove(out: str | Path) -> None:
    """Drop the state once the checkpoint is written (the run is complete)."""
    shutil.rmtree(directory(out), ignore_errors=True)
