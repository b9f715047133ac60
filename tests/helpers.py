"""Test media made with PyAV, and tiny models."""

from __future__ import annotations

import io
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from dfstream.app.config import app_config
from dfstream.engine.core.branch import BranchInput, Prepared
from dfstream.engine.core.config import replace
from dfstream.engine.media.blocks import MediaRequest, VideoSampling
from dfstream.engine.media.decode import AudioBlock, decode_audio
from dfstream.engine.runtime.config import config_from_dict
from dfstream.engine.runtime.detector import Detector

TINY = {
    "audio": {
        "encoder": {"hidden_size": 32, "num_layers": 2, "num_heads": 2, "intermediate_size": 64, "conv_dim": 32},
        "mel_bands": 16,
        "mel_channels": 8,
        "backend_dim": 16,
        "backend_layers": 1,
    },
    "inference": {"hop_seconds": 0.5, "context_seconds": 0.5, "batch_size": 4, "dtype": "float32"},
}


TINY_VISUAL = {
    "encoder": {
        "image_size": 32,
        "patch_size": 8,
        "hidden_size": 32,
        "num_layers": 1,
        "num_heads": 2,
        "intermediate_size": 64,
    },
    "mouth_channels": 8,
    "backend_dim": 16,
    "fps": 10.0,
}


TINY_AV_MEDIA = MediaRequest(audio=True, video=VideoSampling(TINY_VISUAL["fps"], 320))
"""What the tiny audio-visual model's branches read (``Detector.media``)."""


def tiny_av_config(**sections):
    """A tiny audio+visual model (10 fps, 32 px crops)."""
    return tiny_config(branches=("audio", "visual"), visual=TINY_VISUAL, **sections)


# Windows scored in one batch and the same windows scored one at a time round differently in the last
# float32 place (~1e-7): verdicts of batched paths equal the sequential ones within this (README, "Batching").
SCORE_TOLERANCE = 1e-5


def _close(a, b, tol: float, where: str = "verdict") -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), (where, sorted(a), sorted(b))
        for k in a:
            _close(a[k], b[k], tol, f"{where}.{k}")
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        assert len(a) == len(b), (where, a, b)
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, tol, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert abs(a - b) <= tol, (where, a, b)
    else:
        assert a == b, (where, a, b)


def assert_same_verdict(got, expected, tol: float = SCORE_TOLERANCE) -> None:
    """Two verdicts (objects or their dicts) agree apart from ``latency_ms``, numbers within ``tol``.

    Times are frame-quantized, so a frame decided differently (0.02 s) still fails.
    """
    a, b = (v if isinstance(v, dict) else v.to_dict() for v in (got, expected))
    _close({k: v for k, v in a.items() if k != "latency_ms"}, {k: v for k, v in b.items() if k != "latency_ms"}, tol)


def _tiny(sections: dict) -> dict:
    data = {k: dict(v) for k, v in TINY.items()}
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return data


def tiny_config(**sections):
    """A tiny model's config (:class:`ModelConfig`), ``sections`` merged over :data:`TINY`."""
    return config_from_dict(_tiny(sections))


def tiny_app(**sections):
    """The whole config of a tiny model (:class:`AppConfig`: also ``train``, ``call_hook``, ...)."""
    return app_config(_tiny(sections))


def tiny_av_app(**sections):
    """:func:`tiny_app` of the tiny audio+visual model."""
    return tiny_app(branches=("audio", "visual"), visual=TINY_VISUAL, **sections)


def burst(rate: int, seconds: float, on: float, off: float, freq: float = 440.0) -> np.ndarray:
    """Silence with a sine burst between ``on`` and ``off`` seconds (float32, amplitude 0.5)."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t) * ((t >= on) & (t < off))).astype(np.float32)


def encode(
    target,
    fmt: str,
    codec: str,
    rate: int,
    channels: int,
    signal: np.ndarray,
    start: float = 0.0,
    video: bool = False,
    vcodec: str = "libx264",
) -> None:
    """Encode mono ``signal`` (duplicated to ``channels``) into ``target`` (path or file object); with
    ``video``, also 64x64 frames at 10 fps in ``vcodec``, each a flat gray that steps 10 levels a frame."""
    layout = "mono" if channels == 1 else "stereo"
    with av.open(target, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        vstream = None
        if video:
            vstream = out.add_stream(vcodec, rate=10)
            vstream.width, vstream.height, vstream.pix_fmt = 64, 64, "yuv420p"
        size = stream.codec_context.frame_size or 1024
        data = np.tile(signal, (channels, 1))
        offset = round(start * rate)
        for i in range(0, data.shape[1], size):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(data[:, i : i + size]), format="fltp", layout=layout
            )
            frame.sample_rate, frame.pts, frame.time_base = rate, offset + i, Fraction(1, rate)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        if vstream is not None:
            for i in range(int(len(signal) / rate * 10)):
                img = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 10 % 255, np.uint8), format="rgb24")
                img.pts = i
                out.mux(vstream.encode(img))
            out.mux(vstream.encode(None))


def encode_bytes(fmt, codec, rate, channels, signal, start=0.0, video: bool = False, vcodec="libx264") -> bytes:
    buf = io.BytesIO()
    encode(buf, fmt, codec, rate, channels, signal, start, video, vcodec)
    return buf.getvalue()


def video_only(path) -> None:
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = 64, 64, "yuv420p"
        for i in range(10):
            img = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
            img.pts = i
            out.mux(v.encode(img))
        out.mux(v.encode(None))


def onset(samples: np.ndarray, rate: int = 16000, level: float = 0.1) -> float:
    """Seconds at which the 5 ms RMS envelope first exceeds ``level``."""
    hop = rate // 200
    frames = samples[: len(samples) // hop * hop].reshape(-1, hop)
    rms = np.sqrt((frames**2).mean(axis=1))
    return float(np.flatnonzero(rms > level)[0] * hop / rate)


def busy_detector(clip):
    """Tiny random model with thresholds at its own median, so that spans abound. Its weights are
    drawn from a fixed seed: with thresholds this close to the scores, a batch of several windows and
    a batch of one, equal within float rounding, can put a boundary one frame apart for some draws
    (seen for some draws), and the draw must not depend on which tests ran before."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        det = Detector.from_config(tiny_config())
    audio = decode_audio(clip).samples
    total = len(audio)
    windows = np.stack([det.plan.cut(audio, 0, k, total) for k in range(det.plan.complete(total, True))])
    median = float(np.median(det.score(windows).probs))
    config = replace(replace(det.config, "localizer.onset", median), "localizer.offset", median - 1e-4)
    config = replace(replace(config, "localizer.min_duration", 0.04), "localizer.merge_gap", 0.02)
    return Detector(config, det.model, det.model_id, None)


def crops(images: np.ndarray, faces: np.ndarray, t0: float, fps: float, dropped: int = 0) -> BranchInput:
    """A visual branch's input as its ``prepare`` makes it: crops ``(N, S, S, 3)``, faces ``(N,)``."""
    return BranchInput(images, np.asarray(faces, bool), t0, fps, "visual", dropped)


def prepared(audio: AudioBlock | None = None, video: BranchInput | None = None) -> Prepared:
    """A block ready for the branches ``audio`` and ``visual`` (either may be missing)."""
    inputs = {}
    if audio is not None:
        inputs["audio"] = BranchInput(audio.samples, np.ones(len(audio.samples), bool), audio.t0, 16000, "audio")
    if video is not None:
        inputs["visual"] = video
    return Prepared(inputs)


def hub_cache(cache: Path, repo_id: str, model, revision: str = "0" * 40) -> Path:
    """Save ``model`` (a ``transformers`` model) into ``cache`` in the Hugging Face hub cache's
    layout (``models--org--name/refs/main`` naming ``snapshots/<revision>/``), as a download would
    leave it; returns the snapshot directory."""
    repo = Path(cache) / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / revision
    model.save_pretrained(snapshot, safe_serialization=True)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    return snapshot


TORCHRUN_2 = (sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "dfstream")
"""The dfstream command under torchrun, two processes on this machine (gloo on CPUs)."""
