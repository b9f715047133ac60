"""Plan, render and write the real-material set (``bench/make_dataset.py`` is its command line).

Every clip is decided by ``(seed, index)`` alone (:func:`plan`), and rendered from
its own random generator, so a set's labels and media are the same for a seed whatever
the number of worker processes; on one machine two builds write byte-identical files.
For that, :func:`dfstream.app.toyvideo.encode_mp4` runs libx264 on one thread with its
macroblock-tree rate control off (with it, the same frames encoded in a long-running
worker came out differently from build to build), and piper's VITS graph, which draws
noise, renders with onnxruntime's seed set.

Splits: 70 % train, 10 % val, 20 % test by clip; speech pools are split by speaker group
(test speakers are never heard in train), face videos by time (train and val use the
first 70 % of each video, test the rest). Test clips take their generators half from the
seen ones and half from the held-out ones, which train and val never use. Kinds, drawn
evenly: ``real``, ``audio_modified``, ``visual_modified``, ``both_modified`` (both
modalities forged over the same stretches, the visual span rounded out to whole frames).
"""

from __future__ import annotations

import json
import multiprocessing
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import numpy as np
from tqdm import tqdm

from dfstream.app.toyset import write_metadata
from dfstream.app.toyvideo import encode_mp4, union_spans
from realset import shortcut, speech, video
from realset.sources import LICENCES, RATE, face_videos, load_audio, load_frames, speech_pools
from realset.vocoders import RESYNTHESIS
from realset.voices import GENERATORS as AUDIO_GENERATORS
from realset.voices import KINDS as AUDIO_KINDS
from realset.voices import available, render_bank

FPS = 25
KINDS = ("real", "audio_modified", "visual_modified", "both_modified")
SEEN_AUDIO = (
    "espeak-ng",
    "espeak-ng-klatt",
    "flite-kal16",
    "flite-slt",
    "flite-awb",
    "festival-kal",
    "griffinlim",
    "lpc-vocoder",
    "pitch-shift",
)
# held out: a neural TTS, an HMM TTS and a vocoder family that training never hears
HELD_OUT_AUDIO = ("piper-joe", "festival-slt-hts", "harmonic-noise")
SEEN_VISUAL = ("mouth-freeze", "mouth-transplant", "mouth-warp", "mouth-reencode")
HELD_OUT_VISUAL = ("mouth-shuffle", "mouth-interp")
TRAIN_SHARE = 0.7  # of each face video's length, for train and val


@dataclass(frozen=True)
class Generators:
    """Generators by modality: seen (train, val and test) and held out (test only)."""

    seen_audio: tuple = SEEN_AUDIO
    held_out_audio: tuple = HELD_OUT_AUDIO
    seen_visual: tuple = SEEN_VISUAL
    held_out_visual: tuple = HELD_OUT_VISUAL

    def check(self, material) -> None:
        unknown = [g for g in self.seen_audio + self.held_out_audio if g not in AUDIO_GENERATORS]
        unknown += [g for g in self.seen_visual + self.held_out_visual if g not in video.GENERATORS]
        if unknown:
            raise ValueError(
                f"unknown generators {unknown}; audio: {', '.join(AUDIO_GENERATORS)}; "
                f"visual: {', '.join(video.GENERATORS)}"
            )
        if set(self.seen_audio) & set(self.held_out_audio) or set(self.seen_visual) & set(self.held_out_visual):
            raise ValueError("a generator cannot be both seen and held out")
        if not self.seen_audio or not self.seen_visual:
            raise ValueError("name at least one seen audio and one seen visual generator")
        missing = sorted(set(self.seen_audio + self.held_out_audio) - set(available(material)))
        if missing:
            raise ValueError(f"speech generators not installed: {', '.join(missing)}; run bench/fetch_material.sh")


@dataclass(frozen=True)
class Clip:
    """Everything that decides one clip (the render is a function of it and the material)."""

    index: int
    split: str
    kind: str
    seconds: float
    pool: str
    face: str
    audio_model: str | None
    visual_model: str | None
    seed: int

    @property
    def name(self) -> str:
        return f"{self.split}/{self.index:05d}.mp4"


def _split(i: int, n: int) -> str:
    r = (i * 7919 % n) / n  # spread the splits over the index range
    return "train" if r < 0.7 else "val" if r < 0.8 else "test"


def plan(
    n: int, seed: int, pools: list, faces: list[str], gens: Generators, seconds: tuple[float, float] = (4.0, 7.0)
) -> list[Clip]:
    """The ``n`` clips of a set; speech groups go to splits by ``seed`` (about 20 % test, 10 % val)."""
    groups = sorted({p.group for p in pools})
    order = [groups[i] for i in np.random.default_rng([seed, 1]).permutation(len(groups))]
    n_test, n_val = max(1, round(0.2 * len(groups))), max(1, round(0.1 * len(groups)))
    group_split = {g: "test" if k < n_test else "val" if k < n_test + n_val else "train" for k, g in enumerate(order)}
    by_split = {s: [p.name for p in pools if group_split[p.group] == s] for s in ("train", "val", "test")}
    for s, names in by_split.items():
        if not names:  # too few groups to hold any out: share the train pools
            by_split[s] = [p.name for p in pools]
    clips = []
    for i in range(n):
        rng = np.random.default_rng([seed, 2, i])
        split = _split(i, n)
        kind = KINDS[int(rng.integers(len(KINDS)))]
        held = split == "test" and rng.random() < 0.5
        audio_pool = gens.held_out_audio if held and gens.held_out_audio else gens.seen_audio
        visual_pool = gens.held_out_visual if held and gens.held_out_visual else gens.seen_visual
        clips.append(
            Clip(
                i,
                split,
                kind,
                round(float(rng.uniform(*seconds)), 2),
                by_split[split][int(rng.integers(len(by_split[split])))],
                faces[int(rng.integers(len(faces)))],
                audio_pool[int(rng.integers(len(audio_pool)))] if kind in ("audio_modified", "both_modified") else None,
                visual_pool[int(rng.integers(len(visual_pool)))]
                if kind in ("visual_modified", "both_modified")
                else None,
                seed,
            )
        )
    return clips


class Material:
    """Loaded material a worker renders from: speech pools (audio loaded on first use), face videos
    at 25 fps with their face boxes, and the speech banks."""

    def __init__(self, folder, banks: dict):
        self.pools = {p.name: p for p in speech_pools(folder)}
        self.faces = {}
        for name, path in face_videos(folder).items():
            frames = load_frames(path, FPS)
            self.faces[name] = (frames, video.face_boxes(frames))
        self.banks = banks
        self._audio: dict = {}

    def audio(self, path) -> np.ndarray:
        """The recording at ``path``; empty (so unused) when FFmpeg cannot decode it (a few klettres files)."""
        if path not in self._audio:
            try:
                self._audio[path] = load_audio(path)
            except av.error.FFmpegError:
                self._audio[path] = np.zeros(0, np.float32)
        return self._audio[path]

    def face_range(self, name: str, split: str) -> tuple[int, int]:
        n = len(self.faces[name][0])
        cut = int(TRAIN_SHARE * n)
        return (0, cut) if split != "test" else (cut, n)


def _visual_ranges(frames: int, count: int, rng) -> list[tuple[int, int]]:
    """Up to ``count`` frame ranges [j0, j1) of 0.6-1.6 s, 0.3 s apart, clear of the clip's first and last 2 frames."""
    chosen = []
    for _ in range(40 * count):
        length = int(rng.uniform(0.6, 1.6) * FPS)
        if len(chosen) == count or frames - length - 4 < 1:
            break
        j0 = int(rng.integers(2, frames - length - 2))
        if all(j0 > e + 0.3 * FPS or j0 + length < s - 0.3 * FPS for s, e in chosen):
            chosen.append((j0, j0 + length))
    return sorted(chosen)


def _frames_of(material: Material, face: str, split: str, count: int, rng):
    lo, hi = material.face_range(face, split)
    frames, boxes = material.faces[face]
    index = lo + video.pingpong(int(rng.integers(hi - lo)), count, hi - lo)
    framing = video.Framing.draw(frames.shape[2], frames.shape[1], rng)
    return video.render(frames, boxes, index, framing)


def render(material: Material, clip: Clip, out: Path) -> dict:
    """Write ``clip`` under ``out``; return its metadata entry (plus ``features`` for the shortcut check)."""
    rng = np.random.default_rng([clip.seed, 3, clip.index])
    pool = material.pools[clip.pool]
    picks = rng.choice(len(pool.files), size=min(16, len(pool.files)), replace=False)
    audio = speech.compose([material.audio(pool.files[k]) for k in picks], clip.seconds, rng)
    audio_spans, words = [], []
    if clip.audio_model:
        for a, b in speech.choose_spans(audio, int(rng.integers(1, 4)), rng):
            words += speech.splice(audio, a, b, clip.audio_model, material.banks.get(clip.audio_model), rng)
            audio_spans.append([round(a / RATE, 3), round(b / RATE, 3)])
    audio = speech.noise_bed(audio, rng)
    count = round(clip.seconds * FPS)
    frames, boxes = _frames_of(material, clip.face, clip.split, count, rng)
    visual_spans = []
    if clip.visual_model:
        if clip.audio_model:
            ranges = [(int(np.floor(s * FPS)), int(np.ceil(e * FPS))) for s, e in audio_spans]
        else:
            ranges = _visual_ranges(count, int(rng.integers(1, 3)), rng)
        for j0, j1 in ranges:
            donor = None
            if clip.visual_model == "mouth-transplant":
                others = sorted(set(material.faces) - {clip.face})
                donor = _frames_of(material, others[int(rng.integers(len(others)))], clip.split, j1 - j0, rng)
            video.manipulate(frames, boxes, j0, j1, clip.visual_model, rng, donor)
            visual_spans.append([round(j0 / FPS, 3), round(j1 / FPS, 3)])
    (out / clip.split).mkdir(parents=True, exist_ok=True)
    encode_mp4(out / clip.name, frames, audio, FPS)
    kind = {
        (False, False): "real",
        (True, False): "audio_modified",
        (False, True): "visual_modified",
        (True, True): "both_modified",
    }[(bool(audio_spans), bool(visual_spans))]
    return {
        "file": clip.name,
        "original": None,
        "split": clip.split,
        "modify_type": kind,
        "audio_model": clip.audio_model if audio_spans else None,
        "visual_model": clip.visual_model if visual_spans else None,
        "fake_segments": union_spans(audio_spans + visual_spans),
        "audio_fake_segments": audio_spans,
        "visual_fake_segments": visual_spans,
        "video_frames": count,
        "audio_frames": len(audio),
        "speech_pool": clip.pool,
        "face_video": clip.face,
        "replaced_words": words,
        "features": shortcut.features(audio),
    }


def vocabulary(pools) -> list[str]:
    """English words the synthesizers speak: ktuberling's English object names and the LibriVox
    transcript's words (3+ letters) among ``pools`` (:func:`speech_pools`), sorted."""
    words = set()
    for pool in pools:
        if pool.name == "ktuberling/en":
            words |= {p.stem.split("_")[-1] for p in pool.files}
        if pool.name == "librivox":
            text = (Path(pool.files[0]).parent / "transcription").read_text(errors="ignore")
            words |= set(re.findall(r"\b[a-z]{3,}\b", re.sub(r"\([^)]*\)|<[^>]*>", " ", text.lower())))
    return sorted(w for w in words if re.fullmatch(r"[a-z]+", w))


_WORKER: dict = {}  # what forked workers inherit: loaded once in the parent


def _render(clip: Clip) -> dict:
    return render(_WORKER["material"], clip, _WORKER["out"])


def build(
    out,
    clips: int,
    seed: int,
    material,
    gens: Generators = Generators(),
    workers: int = 2,
    bank=None,
    seconds: tuple[float, float] = (4.0, 7.0),
) -> dict:
    """Write the set under ``out`` (clips, ``metadata.json``, ``README.md``, ``shortcut.json``,
    ``generators.json``); return the summary written into the README."""
    out, material = Path(out), Path(material)
    gens.check(material)
    bank = Path(bank) if bank else material / "bank"
    pools = speech_pools(material)
    words = vocabulary(pools)
    synthesizers = [g for g in gens.seen_audio + gens.held_out_audio if g not in RESYNTHESIS]
    if synthesizers and not words:
        raise ValueError(f"no English vocabulary under {material} (ktuberling/en, librivox)")
    banks = {g: render_bank(g, words, bank, material) for g in tqdm(synthesizers, desc="speech banks", disable=None)}
    planned = plan(clips, seed, pools, sorted(face_videos(material)), gens, seconds)
    out.mkdir(parents=True, exist_ok=True)
    _WORKER.update(material=Material(material, banks), out=out)
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            entries = list(
                tqdm(pool.imap(_render, planned), total=len(planned), desc="clips", unit="clip", disable=None)
            )
    finally:
        _WORKER.clear()
    check = shortcut.check(entries)
    for e in entries:
        del e["features"]
    summary = _summary(entries, gens, check, seed, pools, len(words))
    (out / "shortcut.json").write_text(json.dumps(check, indent=1) + "\n")
    (out / "generators.json").write_text(json.dumps(asdict(gens), indent=1) + "\n")
    write_metadata(out, entries, _readme(summary))
    return summary


def _summary(entries, gens: Generators, check: dict, seed: int, pools, words: int) -> dict:
    splits = {}
    for s in ("train", "val", "test"):
        chosen = [e for e in entries if e["split"] == s]
        splits[s] = {
            "clips": len(chosen),
            "seconds": round(sum(e["audio_frames"] for e in chosen) / RATE, 1),
            **{k: sum(e["modify_type"] == k for e in chosen) for k in KINDS},
            "speech_pools": sorted({e["speech_pool"] for e in chosen}),
        }
    return {
        "seed": seed,
        "generators": asdict(gens),
        "splits": splits,
        "shortcut_check": check,
        "speech_pools": len(pools),
        "vocabulary": words,
    }


def _readme(summary: dict) -> str:
    g = summary["generators"]
    rows = "\n".join(
        f"| {s} | {v['clips']} | {v['seconds']} | {v['real']} | {v['audio_modified']} | "
        f"{v['visual_modified']} | {v['both_modified']} |"
        for s, v in summary["splits"].items()
    )
    kinds = "\n".join(f"- `{k}`: {v}" for k, v in AUDIO_KINDS.items())
    check = summary["shortcut_check"]
    return f"""# dfstream real-material set (SYNTHETIC manipulations of real recordings)

Built by `bench/make_dataset.py` (seed {summary["seed"]}). Real speech and real face video from
package registries; every forgery made here by speech synthesizers and mouth-region edits whose
boundaries are known exactly. It is small, and NOT a natural talking-face corpus: **the audio and
the video of a clip come from different recordings** (real speech of one speaker pool over a real
face video), so lips never match the words, in real and forged clips alike.

| split | clips | seconds | real | audio_modified | visual_modified | both_modified |
|---|---|---|---|---|---|---|
{rows}

- Audio generators seen in train: {", ".join(g["seen_audio"])}; held out (test only): {", ".join(g["held_out_audio"]) or "none"}.
- Visual generators seen in train: {", ".join(g["seen_visual"])}; held out (test only): {", ".join(g["held_out_visual"]) or "none"}.
- Speech pools (speaker groups, split so that test speakers are unseen): {summary["speech_pools"]}; synthesizer vocabulary: {summary["vocabulary"]} English words.
- Test speech pools: {", ".join(summary["splits"]["test"]["speech_pools"])}.

Speech generators:
{kinds}

Visual generators: see `bench/realset/video.py` (freeze, shuffle, transplant from another face, warp,
local re-encoding, frame interpolation; feathered ellipse over mouth and chin, faded over 3 frames).

## Shortcut check
A logistic regression on 40 ms loudness/silence features alone (`bench/realset/shortcut.py`), fitted on
train and scored on test: frame AUC {check.get("frame_auc")}, clip AUC {check.get("clip_auc")}
(0.5 is chance).

## Licences of the material
{LICENCES}
Metadata: AV-Deepfake1M format (`metadata.json`), plus `speech_pool`, `face_video` and `replaced_words`.
"""
