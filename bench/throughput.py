"""Many concurrent streams through the engine, against the way research detectors run, in one run.

Both paths score the same media, chunk by chunk, as ``dfstream serve`` receives it:

* ``--data DIR``: the files of one split of an AV-Deepfake1M-format set (e.g. the
  real-material set of ``make model``, ``.cache/realset/data``), each produced as
  ``dfstream produce`` sends it (a file with video as self-contained Matroska
  segments cut at keyframes, packets copied; audio as raw PCM). ``--streams N``
  streams run at once: the files are dealt to N slots, and each slot plays its
  files one after another, each file a stream of its own.
* otherwise N SYNTHETIC streams (dfstream/app/toyset.py tones, not speech) of
  ``--seconds`` each, every chunk encoded as its own Ogg/Opus 48 kHz segment (a
  live chunk is compressed: decoding and resampling it is real work).

The two paths:

* engine: :class:`dfstream.engine.runtime.scheduler.Scheduler` - decoding (and face cropping) on a
  thread pool, chunks of all streams batched (``scheduler.batch_chunks``), the
  product's defaults unless ``--engine-config`` overrides them (``inference.dtype: auto``:
  bf16 encoders with float32 back-ends where the CPU or GPU computes bf16 natively,
  float32 elsewhere; forward passes of 8 windows; two decode workers), the fused
  feature extractor and WavLM attention (:mod:`dfstream.modalities.audio.conv_frames`,
  :mod:`dfstream.modalities.audio.attention`), feature frames carried from each window
  to the stream's next (:mod:`dfstream.engine.runtime.frame_cache`), the branches of a batch on two
  threads at once (``inference.parallel_branches``; torch's intra-op threads
  divided among them).
* baseline (peer style): one chunk at a time, batch 1, float32, decoded inline
  on the model thread, the ``transformers`` feature extractor as it is,
  per-stream state kept (the same windows, so the same detections), every
  window encoded from scratch, the branches one after another on all cores.

Modes: as fast as possible (default; every chunk available at once, the
producer held back only by the scheduler's ``max_pending``), or ``--realtime``:
a chunk arrives when its last sample would have been heard (slots start
staggered over one chunk). Chunk latency = verdict time - arrival time.

Reports media-seconds per wall-second, chunks/s, p50/p95 chunk latency, peak
host memory (RSS sampled every 20 ms) and device memory, the CPU seconds used and
their share of wall time x cores (``cpu_busy``: near 1, the run is bound by compute), the model stage's
achieved FLOP/s (FLOPs of one window of every branch counted with torch's
FlopCounterMode; for the engine, of the frames it actually computes) and its
fraction of the device's peak, the engine/baseline ratio, and AP@0.5 of each
path's detections against the streams' labels (same detections: the two APs
agree). On CPU it also times one window through the audio branch's frontend and
through the whole branch by precision, feature extractor and batch
(``ms_per_window``).

    python bench/throughput.py [--streams 16] [--data DIR [--split test] | --seconds 12]
                               [--model CKPT_OR_YAML] [--device auto] [--engine-config YAML]
                               [--realtime] [--out bench/results/throughput.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from dfstream.app.toyset import make_toyset
from dfstream.engine.core.config import read_yaml, to_dict
from dfstream.engine.core.types import Chunk, proposals
from dfstream.engine.media.decode import decode_audio
from dfstream.engine.runtime.config import config_from_dict
from dfstream.engine.runtime.detector import Detector
from dfstream.engine.runtime.device import DEFAULT_THREADS
from dfstream.engine.runtime.scheduler import Scheduler
from dfstream.engine.runtime.sections import SchedulerConfig
from dfstream.engine.runtime.stream import StreamProcessor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from replay_speed import machine  # noqa: E402  (same machine record for every benchmark)

ROOT = Path(__file__).resolve().parent.parent
RATE = 48000
# the engine: the product's defaults (configs/default.yaml: inference.dtype auto, forward passes of 8 windows,
# two decode workers); --engine-config overrides them
ENGINE_DEFAULT: dict = {}
# the peer-style baseline: batch 1, float32, the library's feature extractor (decoded inline by run_baseline)
BASELINE = {
    "inference": {
        "dtype": "float32",
        "quantize": "none",
        "batch_size": 1,
        "feature_extractor": "transformers",
        "parallel_branches": False,
    }
}
# Dense bf16 tensor-core peaks (FLOP/s) from the vendors' data sheets, by device-name substring.
GPU_BF16_PEAK = {"H100 PCIe": 756e12, "H100": 989.4e12, "H200": 989.4e12, "A100": 312e12, "L4": 121e12}


def cpu_peak_flops() -> tuple[float | None, str]:
    """fp32 FMA peak estimate: threads x max clock x FLOPs/cycle (AVX-512: 64, AVX2+FMA: 32)."""
    flags = next((line for line in open("/proc/cpuinfo") if line.startswith("flags")), "")
    per_cycle = 64 if "avx512f" in flags else 32 if "fma" in flags else 16
    mhz = next((float(line.split(":")[1]) for line in open("/proc/cpuinfo") if line.startswith("cpu MHz")), None)
    if mhz is None:
        return None, "unknown clock"
    return (
        DEFAULT_THREADS * mhz * 1e6 * per_cycle,
        f"estimate: {DEFAULT_THREADS} threads x {mhz:.0f} MHz x {per_cycle} fp32 FLOP/cycle",
    )


def device_peak(device: torch.device) -> tuple[float | None, str]:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        peak = next((v for k, v in GPU_BF16_PEAK.items() if k in name), None)
        return peak, f"{name} dense bf16 data-sheet peak" if peak else f"{name}: peak unknown"
    return cpu_peak_flops()


def encode_chunk(samples: np.ndarray, rate: int) -> bytes:
    """One self-contained Ogg/Opus segment of mono float32 ``samples``."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=RATE, layout="mono")
        up = av.AudioResampler(format="fltp", layout="mono", rate=RATE)
        frame = av.AudioFrame.from_ndarray(samples[None, :].astype(np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
        for f in up.resample(frame) + up.resample(None):
            out.mux(stream.encode(f))
        out.mux(stream.encode(None))
    return buffer.getvalue()


def toy_streams(n: int, seconds: float, chunk_seconds: float, work: Path) -> tuple[list[list], dict]:
    """``n`` SYNTHETIC streams of ``seconds`` each as slots of ``(chunk, start, seconds)``, Ogg/Opus
    chunks with t0 set, and each stream's forged spans."""
    meta = make_toyset(work / "media", files=n, seed=7, min_seconds=seconds, max_seconds=seconds)
    slots, labels = [], {}
    for i, entry in enumerate(json.loads(meta.read_text())):
        samples, sid = decode_audio(work / "media" / entry["file"]).samples, f"stream-{i:03d}"
        step = round(chunk_seconds * 16000)
        starts = range(0, len(samples), step)
        slots.append(
            [
                (
                    Chunk(
                        sid,
                        k,
                        encode_chunk(samples[s : s + step], 16000),
                        "audio/ogg",
                        s / 16000,
                        final=k == len(starts) - 1,
                    ),
                    s / 16000,
                    len(samples[s : s + step]) / 16000,
                )
                for k, s in enumerate(starts)
            ]
        )
        labels[sid] = entry["fake_segments"]
    return slots, labels


def dataset_streams(
    data: Path, split: str, n: int, chunk_seconds: float, limit: int | None = None
) -> tuple[list[list], dict]:
    """The ``split`` files of an AV-Deepfake1M-format set (the first ``limit``), dealt to ``n`` slots
    in turn, each chunked as ``dfstream produce`` sends it; and each file's forged spans."""
    from dfstream.engine.core.dataset import load_metadata
    from dfstream.streams.produce import media_chunks

    items = [item for item in load_metadata(data / "metadata.json") if item.split == split][:limit]
    if not items:
        raise SystemExit(f"{data}: no files in split {split!r}")
    slots, labels = [[] for _ in range(min(n, len(items)))], {}
    for i, item in enumerate(items):
        slots[i % len(slots)].extend(media_chunks(data / item.file, item.file, chunk_seconds))
        labels[item.file] = [[s.start, s.end] for s in item.segments["fake_segments"]]
    return slots, labels


def schedule(slots, chunk_seconds: float, realtime: bool) -> list[tuple[float, Chunk]]:
    """``(arrival offset in s, chunk)`` in arrival order. In real time slot ``i`` starts ``i / n`` of a
    chunk late and each chunk arrives when the slot has played up to its end; otherwise all at 0,
    round robin over the slots (chunk k of every slot before chunk k + 1 of any)."""
    rows = []
    for i, slot in enumerate(slots):
        played = i / len(slots) * chunk_seconds
        for k, (chunk, _start, seconds) in enumerate(slot):
            played += seconds
            rows.append((played if realtime else 0.0, k, i, chunk))
    rows.sort(key=lambda r: r[:3])
    return [(t, c) for t, _, _, c in rows]


def average_precision_50(verdicts, labels: dict) -> float:
    """AP@0.5 of the detections of every stream's verdicts against its forged spans."""
    from dfstream.app.metrics import average_precision

    found = {sid: [] for sid in labels}
    for verdict in verdicts:
        found[verdict.stream_id].extend(verdict.detections)
    return average_precision(labels, {sid: proposals(ds) for sid, ds in found.items()}, 0.5)


class Usage:
    """What this process used while the block runs: ``peak`` resident set size (MB), sampled every
    20 ms, and ``cpu`` seconds (all its threads, user + system)."""

    def __enter__(self):
        self.peak, self._stop, self._cpu0 = 0.0, threading.Event(), time.process_time()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._stop.is_set():
            with open("/proc/self/statm") as f:
                self.peak = max(self.peak, int(f.read().split()[1]) * page / 2**20)
            self._stop.wait(0.02)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.cpu = time.process_time() - self._cpu0


def _wait_until(t0: float, offset: float) -> float:
    arrival = t0 + offset
    delay = arrival - time.perf_counter()
    if delay > 0:
        time.sleep(delay)
    return arrival


def run_engine(detector, order, scheduler_config: SchedulerConfig) -> tuple[dict, list]:
    processor = StreamProcessor(detector)
    latencies, futures = [], []
    with Usage() as usage:
        t0 = time.perf_counter()
        with Scheduler(processor, scheduler_config) as sched:
            for offset, chunk in order:
                arrival = _wait_until(t0, offset)
                future = sched.submit(chunk, started=arrival)
                future.add_done_callback(lambda f, a=arrival: latencies.append(time.perf_counter() - a))
                futures.append(future)
        wall = time.perf_counter() - t0
    verdicts = [f.result() for f in futures]
    return _summary(
        wall,
        verdicts,
        latencies,
        usage,
        sched.stats.model_seconds,
        {
            "batches": sched.stats.batches,
            "largest_batch": sched.stats.largest_batch,
            "mean_batch": round(sched.stats.chunks / max(1, sched.stats.batches), 2),
        },
    ), verdicts


def peer_processor(detector) -> StreamProcessor:
    """Per-stream state as peers keep it: windows cut from carried audio, every window's feature
    frames computed from scratch (no :mod:`dfstream.engine.runtime.frame_cache`)."""
    return StreamProcessor(detector, reuse_frames=False)


def run_baseline(detector, order) -> tuple[dict, list]:
    processor = peer_processor(detector)
    latencies, verdicts, model = [], [], [0.0]
    score = detector.score

    def timed(*args, **kwargs):
        tic = time.perf_counter()
        try:
            return score(*args, **kwargs)
        finally:
            model[0] += time.perf_counter() - tic

    detector.score = timed
    try:
        with Usage() as usage:
            t0 = time.perf_counter()
            for offset, chunk in order:
                arrival = _wait_until(t0, offset)
                verdicts.append(processor.process(chunk))
                latencies.append(time.perf_counter() - arrival)
            wall = time.perf_counter() - t0
    finally:
        del detector.score
    return _summary(wall, verdicts, latencies, usage, model[0], {}), verdicts


def _summary(wall, verdicts, latencies, usage: Usage, model_seconds, extra) -> dict:
    """``cpu_busy``: the CPU seconds used over the wall time of all the machine's cores (1 = every
    core busy throughout: the run is bound by compute, not by waiting)."""
    media = sum(v.span.duration for v in verdicts)
    lat = np.array(latencies) * 1000
    cores = len(os.sched_getaffinity(0))
    return {
        "wall_s": round(wall, 3),
        "media_s": round(media, 2),
        "media_s_per_s": round(media / wall, 2),
        "chunks_per_s": round(len(verdicts) / wall, 2),
        "latency_ms_p50": round(float(np.percentile(lat, 50)), 1),
        "latency_ms_p95": round(float(np.percentile(lat, 95)), 1),
        "peak_rss_mb": round(usage.peak, 1),
        "cpu_s": round(usage.cpu, 2),
        "cpu_busy": round(usage.cpu / (wall * cores), 3),
        "model_s": round(model_seconds, 3),
        **extra,
    }


def window_flops(detector, branches) -> tuple[int, int]:
    """FLOPs of one analysis window through ``branches`` of a float32 ``detector`` (torch's
    FlopCounterMode): scored from scratch, and with its predecessor's feature frames reused
    (engine/runtime/frame_cache.py)."""
    import copy

    from torch.nn.utils import parametrize
    from torch.utils.flop_counter import FlopCounterMode

    def count(fn, *args) -> int:
        counter = FlopCounterMode(display=False)
        with counter, torch.inference_mode():
            fn(*args)
        return counter.get_total_flops()

    total = carried = 0
    for name in branches:
        original = branch = detector.branches[name]  # float32: window_flops is called on the baseline
        if any(parametrize.is_parametrized(m) for m in original.modules()):
            branch = copy.deepcopy(original)  # weight norm's parametrization does not run under the counter
            for module in branch.modules():
                if parametrize.is_parametrized(module):
                    for param in list(module.parametrizations):
                        parametrize.remove_parametrizations(module, param)
        plan = detector.plans[name]
        empty = branch.empty_input(0)
        x = branch.preprocess(np.zeros((1, plan.length) + empty.shape[1:], empty.dtype)).to(detector.device)
        whole = count(branch, x)
        total += whole
        carried += whole
        if name in detector.cacheable:
            carried += count(branch.frontend, x[:, plan.context - plan.frame :]) - count(branch.frontend, x)
    return total, carried


PROFILES = {
    "float32_transformers": {"dtype": "float32", "feature_extractor": "transformers"},
    "float32": {"dtype": "float32"},
    "bfloat16": {"dtype": "bfloat16"},
    "int8": {"dtype": "float32", "quantize": "int8"},
}


def stage_profile(model: str | None, repeats: int = 3) -> dict:
    """ms per 4 s window of the audio branch's frontend (feature extractor and log-mel) and of the
    whole branch, by precision (``float32_transformers``: the library's feature extractor; the others
    the fused one) and batch.

    16 windows of noise, the best of ``repeats`` timed passes after one warm-up
    pass, under ``torch.inference_mode()``."""
    x = np.random.default_rng(0).normal(0, 0.1, (16, 1)).astype(np.float32)
    profile = {}
    for name, inference in PROFILES.items():
        for batch in (1, 16):
            det = load(model, {"inference": {**inference, "batch_size": batch, "device": "cpu"}})
            windows = np.repeat(x, det.plan.length, axis=1) * np.random.default_rng(1).random(det.plan.length)
            windows = windows.astype(np.float32)
            wav = det.branch.preprocess(windows).to(det.dtype)
            timings = {"frontend": [], "branch": []}
            with torch.inference_mode():
                for i in range(repeats + 1):
                    tic = time.perf_counter()
                    for k in range(0, 16, batch):
                        det.branch.frontend(wav[k : k + batch])
                    mid = time.perf_counter()
                    det.score(windows)
                    if i:
                        timings["frontend"].append((mid - tic) / 16 * 1000)
                        timings["branch"].append((time.perf_counter() - mid) / 16 * 1000)
            profile[f"{name}_batch{batch}"] = {k: round(min(v), 1) for k, v in timings.items()}
    return profile


def use_threads(det) -> int:
    """Set this thread's torch CPU threads (torch's count is per thread; threads started later begin
    with it) to ``det``'s (:attr:`Detector.threads`) before running ``det``; returns the count."""
    torch.set_num_threads(det.threads)
    return torch.get_num_threads()


def load(model: str | None, overrides: dict) -> Detector:
    """A checkpoint folder (with runtime overrides) or a YAML architecture (random weights)."""
    if model and Path(model).is_dir():
        from dfstream.engine.runtime.checkpoint import load_checkpoint

        return load_checkpoint(model, overrides)
    raw = read_yaml(model) if model else {}
    merged = {**raw, **{k: {**raw.get(k, {}), **v} for k, v in overrides.items()}}
    return Detector.from_config(config_from_dict(merged))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--streams", type=int, default=16, help="streams at once (default 16)")
    parser.add_argument(
        "--data", help="AV-Deepfake1M-format set whose split's files are the streams (default: SYNTHETIC toy streams)"
    )
    parser.add_argument("--split", default="test", help="split of --data (default test)")
    parser.add_argument("--files", type=int, help="only the split's first FILES files")
    parser.add_argument("--seconds", type=float, default=12.0, help="toy streams: media seconds per stream")
    parser.add_argument("--chunk-seconds", type=float, default=2.0)
    parser.add_argument(
        "--model",
        help="checkpoint folder or architecture YAML (default: the default config, "
        "random weights; speed does not depend on them)",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--engine-config", help=f"YAML of inference/scheduler overrides for the engine path (default: {ENGINE_DEFAULT})"
    )
    parser.add_argument("--realtime", action="store_true", help="pace every stream in real time")
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="runs of each path, alternated; the median run of each is reported (default 3)",
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the ms_per_window stage profile")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "throughput.json"))
    args = parser.parse_args()

    engine_overrides = read_yaml(args.engine_config) if args.engine_config else ENGINE_DEFAULT
    engine_overrides = {
        **engine_overrides,
        "inference": {**engine_overrides.get("inference", {}), "device": args.device},
    }
    baseline_overrides = {"inference": {**BASELINE["inference"], "device": args.device}}
    engine = load(args.model, {k: v for k, v in engine_overrides.items() if k != "scheduler"})
    scheduler_config = config_from_dict({"scheduler": engine_overrides.get("scheduler", {})}).scheduler
    baseline = load(args.model, baseline_overrides)
    if args.data:
        slots, labels = dataset_streams(Path(args.data), args.split, args.streams, args.chunk_seconds, args.files)
        data = (
            f"{len(labels)} files of the {args.split} split of {args.data} on {len(slots)} concurrent slots, "
            f"produced as `dfstream produce` sends them ({args.chunk_seconds} s chunks)"
        )
    else:
        with tempfile.TemporaryDirectory() as tmp:
            slots, labels = toy_streams(args.streams, args.seconds, args.chunk_seconds, Path(tmp))
        data = (
            f"{args.streams} SYNTHETIC toy streams (dfstream/app/toyset.py) x {args.seconds} s, "
            f"{args.chunk_seconds} s Ogg/Opus 48 kHz chunks"
        )
    order = schedule(slots, args.chunk_seconds, args.realtime)
    for det in (engine, baseline):
        use_threads(det)
        det.warm_up()

    def timed(det, run) -> tuple[dict, list]:
        if det.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        result, verdicts = run()
        # torch's threads per branch: a batch one branch scores alone, and each of branches scoring at once
        result["torch_threads"] = det.threads
        if det.parallel:
            result["torch_threads_parallel"] = det.threads_parallel
        if det.device.type == "cuda":
            result["peak_device_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        return result, verdicts

    runs = {"engine": [], "baseline": []}
    for _ in range(args.repeats):  # alternated: a slow spell of a shared machine hits both paths
        use_threads(engine)
        runs["engine"].append(timed(engine, lambda: run_engine(engine, order, scheduler_config)))
        use_threads(baseline)
        runs["baseline"].append(timed(baseline, lambda: run_baseline(baseline, order)))
    (result_engine, verdicts_engine), (result_baseline, verdicts_baseline) = (
        sorted(runs[k], key=lambda r: r[0]["media_s_per_s"])[(args.repeats - 1) // 2] for k in runs
    )
    for key, result in (("engine", result_engine), ("baseline", result_baseline)):
        result["media_s_per_s_each_repeat"] = [r["media_s_per_s"] for r, _ in runs[key]]

    ran = list(baseline.branches) if args.data else ["audio"]  # toy streams are audio only
    flops, carried = window_flops(baseline, ran)
    seconds = {}
    for v in verdicts_baseline:
        seconds[v.stream_id] = seconds.get(v.stream_id, 0.0) + v.span.duration
    plan = baseline.plan
    rate = baseline.spec.sample_rate
    per_stream = [plan.complete(round(s * rate), final=True) for s in seconds.values()]
    n_windows, first_windows = sum(per_stream), sum(1 for n in per_stream if n)
    peak, peak_note = device_peak(engine.device)
    # the engine computes a stream's first window whole and the rest from carried frames
    engine_flops = flops * first_windows + carried * (n_windows - first_windows)
    for result, total in ((result_engine, engine_flops), (result_baseline, flops * n_windows)):
        achieved = total / result["model_s"] if result["model_s"] else None
        result["model_flops_per_s"] = None if achieved is None else round(achieved / 1e9, 2) * 1e9
        result["fraction_of_peak"] = None if achieved is None or not peak else round(achieved / peak, 4)
    ap_engine = average_precision_50(verdicts_engine, labels)
    ap_baseline = average_precision_50(verdicts_baseline, labels)
    report = {
        "benchmark": "throughput",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "command": " ".join(["python bench/throughput.py", *sys.argv[1:]]),
        "data": data,
        "mode": "realtime" if args.realtime else "as fast as possible",
        "model": engine.describe(),
        "branches": list(engine.branches),
        "branches_with_media": ran,
        "engine_dtype": str(engine.dtype).removeprefix("torch."),
        "engine_config": {
            "inference": to_dict(engine.config.inference),
            "scheduler": to_dict(scheduler_config),
        },
        "baseline_config": "batch 1, float32, transformers' feature extractor, decode inline, one chunk at a time, "
        "every window from scratch, branches one after another",
        "window_gflops": round(flops / 1e9, 3),
        "carried_window_gflops": round(carried / 1e9, 3),
        "windows": n_windows,
        "device_peak_flops": peak,
        "device_peak_note": peak_note,
        "repeats": args.repeats,
        "engine": result_engine,
        "baseline": result_baseline,
        "speedup_media_s_per_s": round(result_engine["media_s_per_s"] / result_baseline["media_s_per_s"], 3),
        "accuracy": {
            "ap50_engine": ap_engine,
            "ap50_baseline": ap_baseline,
            "ap50_difference": None if ap_engine is None or ap_baseline is None else round(ap_engine - ap_baseline, 4),
        },
    }
    if engine.device.type == "cpu" and not args.no_profile:
        report["ms_per_window"] = stage_profile(args.model)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
