"""The runtime's own config sections, ``inference`` and ``scheduler`` (no torch: the scheduler, which
transports use, reads its section from here)."""

from __future__ import annotations

from dataclasses import dataclass

from dfstream.engine.core.config import Section, check


@dataclass(frozen=True)
class InferenceConfig(Section):
    """Sliding-window inference on a grid of stream time.

    Each window scores ``hop_seconds`` of new audio and sees ``context_seconds``
    of earlier audio; both must be multiples of the branch's frame step (20 ms).
    ``dtype`` ``bfloat16`` converts the encoders' weights for inference (about twice
    as fast on CPUs with native bf16, ten times slower where bf16 is emulated; what was
    trained on top of them - back-ends, spectral and mouth paths, fusion - stays float32,
    :func:`dfstream.engine.runtime.precision.encoders_in`; training always runs in float32); ``auto`` (the
    default) is bfloat16 where the hardware computes it natively and float32 elsewhere
    (:func:`dfstream.engine.runtime.device.resolve_dtype`).
    ``quantize`` ``int8`` applies dynamic int8 quantization to the branches'
    feed-forward linear layers (CPU only; attention projections stay float
    because the encoders read their weights directly). ``feature_extractor``
    ``fused`` runs the speech encoder's convolutional feature extractor as matrix
    products over time-major frames (:mod:`dfstream.modalities.audio.conv_frames`; the same
    result within float rounding; on this project's CPU 1.3-2x faster in float32,
    about 3x in bf16), and at inference (:class:`dfstream.engine.runtime.detector.Detector`) WavLM's
    attention through torch's fused kernel (:mod:`dfstream.modalities.audio.attention`);
    ``transformers`` runs the library's modules as they are (the reference, and
    what peers run).
    ``parallel_branches`` runs the branches of a batch at once, each on its own
    thread, until they meet at the fusion (same results: each branch computes what
    it computes alone). ``threads`` is torch's intra-op CPU thread count; 0 (the
    default) is torch's default, less one per decode worker where a scheduler
    decodes beside the model (``scheduler.decode_workers``), divided among the
    branches while several run at once; at least 1
    (:func:`dfstream.engine.runtime.device.intra_op_threads`). A batch in which one branch has
    media (audio-only streams of an audio-visual model) gives it all of them.
    """

    hop_seconds: float = 2.0
    context_seconds: float = 2.0
    batch_size: int = 8
    device: str = "auto"
    threads: int = 0
    dtype: str = "auto"
    quantize: str = "none"
    feature_extractor: str = "fused"
    parallel_branches: bool = True

    def validate(self) -> None:
        check(
            [
                (self.hop_seconds > 0, "inference.hop_seconds must be > 0"),
                (self.context_seconds >= 0, "inference.context_seconds must be >= 0"),
                (self.batch_size >= 1, "inference.batch_size must be >= 1"),
                (
                    self.dtype in ("auto", "float32", "bfloat16"),
                    "inference.dtype must be 'auto', 'float32' or 'bfloat16'",
                ),
                (self.quantize in ("none", "int8"), "inference.quantize must be 'none' or 'int8'"),
                (
                    self.feature_extractor in ("fused", "transformers"),
                    "inference.feature_extractor must be 'fused' or 'transformers'",
                ),
                (
                    self.quantize == "none" or self.dtype in ("auto", "float32"),
                    "inference.quantize: int8 works on float32 weights; set inference.dtype: float32 or auto",
                ),
                (
                    self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"),
                    "inference.device must be 'auto', 'cpu', 'cuda' or 'cuda:N'",
                ),
                (self.threads >= 0, "inference.threads must be >= 0 (0: torch's default)"),
            ]
        )


@dataclass(frozen=True)
class SchedulerConfig(Section):
    """Batching across streams (:mod:`dfstream.engine.runtime.scheduler`).

    A batch holds at most ``batch_chunks`` decoded chunks of any streams; the
    model thread waits at most ``max_wait_ms`` after the first is ready for
    more. ``decode_workers`` threads decode chunks off the model thread. At most
    ``max_pending`` chunks wait unresolved; submitting more blocks.
    """

    batch_chunks: int = 16
    max_wait_ms: float = 10.0
    decode_workers: int = 2
    max_pending: int = 256

    def validate(self) -> None:
        check(
            [
                (
                    self.batch_chunks >= 1 and self.decode_workers >= 1 and self.max_pending >= 1,
                    "scheduler.batch_chunks, decode_workers and max_pending must be >= 1",
                ),
                (self.max_wait_ms >= 0, "scheduler.max_wait_ms must be >= 0"),
            ]
        )
