"""Training windows, cut exactly as streaming inference cuts them: held in memory, or streamed.

Every file is cut by the streaming path itself (:class:`dfstream.engine.runtime.stream.StreamProcessor`,
blocks of ``replay.chunk_seconds``), so the model never sees a geometry at training time that it
will not see live. Fused frame ``g`` of a file is labelled forged when its centre
``(g + 0.5) * step`` lies in a forged segment.

Two ways to feed them (``train.data``):

- ``memory`` (:func:`training_windows`): every window of the split decoded once and held, so
  that frozen encoders' states can be computed once and cached (a few hundred clips on a CPU);
- ``stream`` (:class:`WindowStream`): ``DataLoader`` workers decode the files of each epoch in a
  fresh order drawn from the seed, and a shuffle buffer mixes their windows; nothing of the
  whole set is held (a million videos on GPUs). Under ``torchrun`` each process decodes its own
  share of the files.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dfstream.engine.core.dataset import Item
from dfstream.engine.core.errors import DatasetError, MediaError
from dfstream.engine.core.progress import SILENT, Progress, tracked
from dfstream.engine.media.blocks import iter_media, with_final
from dfstream.engine.runtime.detector import Detector
from dfstream.engine.runtime.stream import StreamProcessor


@dataclass
class Windows:
    """Training windows, exactly as streaming inference cuts them.

    ``inputs`` and ``present`` map each branch to its windows ``(N, length, ...)``
    and frame presence ``(N, hop_frames_b)``; ``targets`` ``(N, F)`` label the
    fused frames (``label_key``), ``branch_targets`` each branch's modality
    (``audio_fake_segments`` / ``visual_fake_segments``) on the same frames;
    ``mask`` ``(N, F)`` marks frames inside the file; ``present_frames`` maps each
    branch to its presence on the fused frames ``(N, F)`` (frames where no
    modality is present are left out of the loss).
    """

    inputs: dict
    present: dict
    present_frames: dict
    targets: np.ndarray
    branch_targets: dict
    mask: np.ndarray
    seconds: float
    fake_seconds: float
    generators: np.ndarray | None = None  # (N, F) class of the generator that forged each frame, -1: none


BRANCH_LABELS = {"audio": "audio_fake_segments", "visual": "visual_fake_segments"}
"""The labels each modality's branches learn (a branch's modality: its ``specifications.modality``)."""
# the metadata field naming the generator of each modality's forgeries
GENERATOR_KEYS = {"audio": "audio_model", "visual": "visual_model"}
# The auxiliary generator loss (train.generator_loss): the audio branch's frame embeddings learn which
# generator forged the frames of its modality's segments - what attribution indexes.
GENERATOR_MODALITY = "audio"
GENERATOR_FIELD, GENERATOR_SEGMENTS = GENERATOR_KEYS[GENERATOR_MODALITY], BRANCH_LABELS[GENERATOR_MODALITY]


def generator_classes(items: list[Item]) -> list[str]:
    """The generators (``GENERATOR_FIELD``) of ``items`` that forged ``GENERATOR_SEGMENTS``, sorted."""
    return sorted(
        {str(i.raw[GENERATOR_FIELD]) for i in items if i.raw.get(GENERATOR_FIELD) and i.segments[GENERATOR_SEGMENTS]}
    )


def default_label_key(detector: Detector) -> str:
    """What the fused curve learns: the one branch's own labels, or ``fake_segments`` for several."""
    if len(detector.branches) == 1:
        return BRANCH_LABELS[next(iter(detector.modalities.values()))]
    return "fake_segments"


def _labels(segments, centres: np.ndarray) -> np.ndarray:
    inside = np.zeros(centres.shape, bool)
    for s in segments:
        inside |= (centres >= s.start) & (centres < s.end)
    return inside.astype(np.float32)


def file_windows(
    item: Item,
    root: Path,
    detector: Detector,
    cutter: StreamProcessor,
    label_key: str,
    classes: list[str] | None,
    chunk_seconds: float,
) -> Iterator[Windows]:
    """The windows of one file, a :class:`Windows` per decoded block (``seconds``: the file's
    length on its last block, 0 before; ``fake_seconds``: its forged length on its last block)."""
    step, hop = detector.step, detector.hop_frames
    generator = item.raw.get(GENERATOR_FIELD)
    cls = classes.index(str(generator)) if classes and generator and str(generator) in classes else -1
    try:
        blocks = iter_media(root / item.file, chunk_seconds, detector.media, detector.config.limits)
        for block, final in with_final(blocks):
            state, first, keep, windows, pres = cutter.cut(item.file, detector.prepare(block), final)
            centres = state.origin + (first + np.arange(len(keep))[:, None] * hop + np.arange(hop) + 0.5) * step
            generators = None
            if classes is not None:
                inside = _labels(item.segments[GENERATOR_SEGMENTS], centres) > 0
                generators = np.where(inside, cls, -1).astype(np.int64)
            yield Windows(
                {n: windows[n] for n in detector.branches},
                {n: pres[n] for n in detector.branches},
                {n: np.repeat(pres[n], detector.ratios[n], axis=1) for n in detector.branches},
                _labels(item.segments[label_key], centres),
                {n: _labels(item.segments[BRANCH_LABELS[detector.modalities[n]]], centres) for n in detector.branches},
                (np.arange(hop)[None, :] < np.array(keep)[:, None]).astype(np.float32),
                state.end_time - state.origin if final else 0.0,
                sum(s.duration for s in item.segments[label_key]) if final else 0.0,
                generators,
            )
            if final:
                cutter.close(item.file)
    except MediaError as e:
        cutter.close(item.file)
        raise DatasetError(f"{item.file}: {e}") from None


ARRAYS = ("inputs", "present", "present_frames", "targets", "branch_targets", "mask", "generators")
"""The fields of :class:`Windows` that hold per-window arrays (or dicts of them, by branch)."""


def _arrays(parts: list[Windows], combine) -> dict:
    """Every array field of ``parts`` through ``combine(list of that field's arrays)``, by branch in
    the dict fields; a field that is None (no generators) stays None."""
    out = {}
    for name in ARRAYS:
        first = getattr(parts[0], name)
        if first is None:
            out[name] = None
        elif isinstance(first, dict):
            out[name] = {n: combine([getattr(p, name)[n] for p in parts]) for n in first}
        else:
            out[name] = combine([getattr(p, name) for p in parts])
    return out


def concat(parts: list[Windows]) -> Windows:
    """One :class:`Windows` of all ``parts`` (in order)."""
    return Windows(
        **_arrays(parts, np.concatenate),
        seconds=sum(p.seconds for p in parts),
        fake_seconds=sum(p.fake_seconds for p in parts),
    )


def training_windows(
    items: list[Item],
    root: Path,
    detector: Detector,
    label_key: str,
    desc: str,
    classes: list[str] | None = None,
    chunk_seconds: float = 2.0,
    progress: Progress = SILENT,
) -> Windows:
    """Every window of ``items``, in memory (``train.data: memory``).
    With ``classes``, frames inside ``GENERATOR_SEGMENTS`` get their file's generator's index
    in it (``Windows.generators``; -1 elsewhere and for generators not in ``classes``)."""
    cutter = StreamProcessor(detector)
    parts = []
    for item in tracked(progress, items, f"decoding {desc}", "file"):
        parts.extend(file_windows(item, root, detector, cutter, label_key, classes, chunk_seconds))
    if not parts or not sum(len(p.mask) for p in parts):
        raise DatasetError(f"no media in the {desc} files")
    return concat(parts)


class WindowStream(torch.utils.data.IterableDataset):
    """One epoch's windows of ``items``, decoded by the ``DataLoader``'s workers (``train.data: stream``).

    The files are put in an order drawn from ``(seed, epoch)``; process ``rank`` of ``size``
    (``torchrun``) takes every ``size``-th of them and each worker every ``workers``-th of those.
    A worker's windows pass through a shuffle buffer of ``buffer`` windows (drawn from the seed,
    the epoch, the rank and the worker) and come out one at a time; :func:`collate` batches them.
    ``shuffle`` False (validation): the files in order, no buffer.
    """

    def __init__(
        self, items, root, detector, label_key, classes, chunk_seconds, seed=0, rank=0, size=1, shuffle=True, buffer=256
    ):
        super().__init__()
        self.items, self.root, self.detector = list(items), Path(root), detector
        self.label_key, self.classes, self.chunk_seconds = label_key, classes, chunk_seconds
        self.seed, self.rank, self.size, self.shuffle, self.buffer = seed, rank, size, shuffle, buffer
        self.epoch = 0

    def files(self, worker: int = 0, workers: int = 1) -> list[Item]:
        """The files this process's worker ``worker`` of ``workers`` decodes this epoch."""
        order = np.arange(len(self.items))
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.items))
        mine = order[self.rank :: self.size][worker::workers]
        return [self.items[i] for i in mine]

    def __iter__(self) -> Iterator[Windows]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        cutter = StreamProcessor(self.detector)
        rng = np.random.default_rng([self.seed, self.epoch, self.rank, worker])
        pool: list[Windows] = []
        for item in self.files(worker, workers):
            for part in file_windows(
                item, self.root, self.detector, cutter, self.label_key, self.classes, self.chunk_seconds
            ):
                for i in range(len(part.mask)):
                    one = _row(part, i)
                    if not self.shuffle:
                        yield one
                        continue
                    pool.append(one)
                    if len(pool) >= self.buffer:
                        yield pool.pop(int(rng.integers(len(pool))))
        rng.shuffle(pool)
        yield from pool


def _row(part: Windows, i: int) -> Windows:
    """Window ``i`` of ``part`` as a one-window :class:`Windows` (its file's seconds on its first row)."""
    first = i == 0
    return Windows(
        **_arrays([part], lambda arrays: arrays[0][i : i + 1]),
        seconds=part.seconds if first else 0.0,
        fake_seconds=part.fake_seconds if first else 0.0,
    )


def label_balance(items: list[Item], root: Path, label_key: str, sample: int = 2000, seed: int = 0) -> float:
    """The share of forged time in ``items`` (``label_key`` spans over the files' lengths), from up to
    ``sample`` of them drawn from ``seed``: streamed training weighs its positives by it before
    any window is decoded. A file's length is the metadata's ``duration`` where it has one, else
    its container's (header only)."""
    from dfstream.engine.media.decode import open_media

    order = np.random.default_rng(seed).permutation(len(items))[:sample]
    total = fake = 0.0
    for i in order:
        item = items[i]
        length = item.raw.get("duration")
        if length is None:
            try:
                with open_media(root / item.file) as container:
                    length = (container.duration or 0) / 1_000_000
            except MediaError as e:
                raise DatasetError(f"{item.file}: {e}") from None
        total += float(length)
        fake += sum(min(s.end, float(length)) - s.start for s in item.segments[label_key] if s.start < float(length))
    if total <= 0:
        raise DatasetError("the training files' lengths are unknown (no 'duration' and none in the containers)")
    return fake / total


def loader(stream: WindowStream, batch_size: int, workers: int) -> torch.utils.data.DataLoader:
    """Batches of ``stream`` as :class:`Windows`, decoded by ``workers`` worker processes (0: here)."""
    return torch.utils.data.DataLoader(
        stream,
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=concat,
        worker_init_fn=_one_thread,
        persistent_workers=False,
    )


def _one_thread(_worker: int) -> None:
    """Decoding workers use one torch thread each: the training process uses the cores."""
    torch.set_num_threads(1)
