"""Training on several processes (``torchrun``): each takes a share of every batch, gradients summed.

Started by ``torchrun --nproc_per_node N dfstream train ...`` (the environment's ``WORLD_SIZE``,
``RANK``, ``LOCAL_RANK``), ``dfstream train`` joins a process group: gloo on CPUs, NCCL on GPUs
(process ``LOCAL_RANK`` on GPU ``LOCAL_RANK``). Every process cuts the same windows and walks
the same batches; process ``r`` of ``N`` computes windows ``r, r + N, ...`` of each batch, and
the loss of each share is normalised by the whole batch's frame counts (:meth:`Group.sum`), so
that the summed gradients are the one-process gradients up to float rounding. Batch-norm
statistics are each share's own, and their running averages are averaged at each epoch's end,
so every process holds the same model and takes the same decisions (best epoch, early stop);
process 0 alone writes the checkpoint and the training state.

Why not ``DistributedDataParallel``: training calls the branches piecewise (cached encoder
states, then the heads), and the heads are small; one flat all-reduce per step is all that
DDP's buckets would do for them.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Group:
    """This process's place among ``size`` training processes (size 1: alone, no communication)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this process writes files and logs progress."""
        return self.rank == 0

    def share(self, batch):
        """This process's windows of ``batch`` (every ``size``-th from ``rank``)."""
        return batch[self.rank :: self.size]

    def sum(self, value: torch.Tensor) -> torch.Tensor:
        """``value`` summed over the processes (a copy; itself when alone)."""
        if self.size == 1:
            return value
        total = value.detach().clone()
        dist.all_reduce(total)
        return total

    def together(self, batches):
        """``batches`` while every process still has one: processes that stream their own files
        have different numbers of batches, and each step's collectives need all of them, so the
        epoch ends for all when the first runs out (the others' last batches wait for the next
        epoch's order)."""
        if self.size == 1:
            yield from batches
            return
        it = iter(batches)
        while True:
            batch = next(it, None)
            if int(self.sum(torch.tensor(0 if batch is None else 1))) < self.size:
                return
            yield batch

    def sum_gradients(self, params) -> None:
        """Every parameter's gradient summed over the processes, in one flat all-reduce."""
        if self.size == 1:
            return
        params = [p for p in params if p.requires_grad]
        for p in params:  # a process whose share of a batch was empty has no gradients: zeros
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        grads = [p.grad for p in params]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def average_buffers(self, module: torch.nn.Module) -> None:
        """Floating-point buffers (batch-norm running statistics) averaged over the processes."""
        if self.size == 1:
            return
        for buf in module.buffers():
            if buf.is_floating_point():
                dist.all_reduce(buf)
                buf.div_(self.size)


def join(device: str) -> Group:
    """The process group ``torchrun`` set up in the environment, joined (or a one-process Group).

    ``device``: the training device's type (``cpu`` or ``cuda``); it picks the backend.
    """
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return Group()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device == "cuda" else "gloo"
        if device == "cuda":
            torch.cuda.set_device(local)
        dist.init_process_group(backend)
        log.info("training process %d of %d (%s)", rank, size, backend)
    return Group(rank, size, local)


def leave(group: Group) -> None:
    """End the process group (after the last collective)."""
    if group.size > 1 and dist.is_initialized():
        dist.destroy_process_group()
