"""``CallScreener``: screen one live call, a verdict per hop of new audio.

Call audio (16-bit PCM at 8 or 16 kHz, or decoded mu-law) is resampled to
16 kHz with a streaming resampler kept per call (FFmpeg's swresample through
PyAV: it holds back 2 ms of audio, where soxr's HQ stream holds back 66 ms,
which every verdict would wait for; flat to 0.2 % up to 3.4 kHz), cut into hops of
``call_hook.hop_seconds`` and fed to the shared streaming path
(:class:`dfstream.engine.runtime.stream.StreamProcessor`) as the stream ``stream_id``; memory
per call is bounded by the context the windows need, however long the call.
"""

from __future__ import annotations

import av
import numpy as np

from dfstream.engine.core.config import replace
from dfstream.engine.core.errors import MediaError
from dfstream.engine.core.types import Verdict
from dfstream.engine.media.decode import SAMPLE_RATE, AudioBlock, pcm16_samples
from dfstream.engine.runtime.config import ModelConfig
from dfstream.engine.runtime.stream import StreamProcessor

RATES = (8000, 16000)


def call_config(config: ModelConfig, hop_seconds: float, context_seconds: float) -> ModelConfig:
    """``config`` with a call's hop and context (``call_hook.hop_seconds``, ``context_seconds``) as the
    inference geometry: a verdict every hop, each window seeing hop + context."""
    config = replace(config, "inference.hop_seconds", hop_seconds)
    return replace(config, "inference.context_seconds", context_seconds)


def call_processor(detector, attributor=None, vad: bool = True, vad_threshold: float = 0.5) -> StreamProcessor:
    """A processor for calls: ``detector`` (built with :func:`call_config`'s geometry) and, with ``vad``, the
    Silero speech gate on its audio branch (hops it hears no speech in are not scored)."""
    gate, audio = None, None
    if vad:
        from dfstream.engine.runtime.vad import SileroGate

        gate = SileroGate(vad_threshold)
        audio = next((n for n, m in detector.modalities.items() if m == "audio"), None)
        if audio is None:
            raise MediaError("a call carries audio, and this model has no audio branch", "no-audio")
    return StreamProcessor(detector, attributor, gate, gate_branch=audio)


class CallScreener:
    """Feed a call's audio as it arrives; get a :class:`Verdict` for every completed hop.

    Parameters
    ----------
    processor : StreamProcessor
        Shared by the calls of a server (:func:`call_processor`).
    stream_id : str
        The call's id in verdicts.
    """

    def __init__(self, processor: StreamProcessor, stream_id: str = "call"):
        self.processor = processor
        self.stream_id = stream_id
        self.hop = self.processor.detector.plan.hop
        self.rate: int | None = None
        self.resampler = None
        self.pending = np.zeros(0, np.float32)
        self.t0, self.seq, self.closed = 0.0, 0, False

    def feed(self, pcm: bytes, sample_rate: int) -> list[Verdict]:
        """16-bit little-endian mono PCM at ``sample_rate`` (8000 or 16000 Hz)."""
        return self.score(self.cut(pcm16_samples(pcm), sample_rate))

    def feed_samples(self, samples: np.ndarray, sample_rate: int) -> list[Verdict]:
        """Float32 mono samples in [-1, 1] at ``sample_rate``."""
        return self.score(self.cut(samples, sample_rate))

    def cut(self, samples: np.ndarray, sample_rate: int) -> list[np.ndarray]:
        """Cheap half of :meth:`feed_samples`: resample and return the hops completed (16 kHz).

        A server calls this on its event loop and sends only completed hops to
        the model thread (:meth:`score`)."""
        if self.closed:
            raise MediaError("this call is closed")
        if sample_rate not in RATES:
            raise MediaError(f"sample rate {sample_rate} Hz is not supported; use 8000 or 16000")
        if self.rate is None:
            self.rate = sample_rate
            if sample_rate != SAMPLE_RATE:
                self.resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        elif sample_rate != self.rate:
            raise MediaError(f"sample rate changed mid-call ({self.rate} -> {sample_rate} Hz)")
        if self.resampler is not None:
            samples = _resample(self.resampler, np.asarray(samples, np.float32), sample_rate)
        self.pending = np.concatenate([self.pending, samples.astype(np.float32, copy=False)])
        hops = []
        while len(self.pending) >= self.hop:
            hops.append(self.pending[: self.hop])
            self.pending = self.pending[self.hop :]
        return hops

    def score(self, hops: list[np.ndarray]) -> list[Verdict]:
        """Model half: a verdict for each hop from :meth:`cut`, in order."""
        return self.processor.feed_many(self.items(hops))

    def items(self, hops: list[np.ndarray], final: bool = False) -> list[tuple]:
        """``StreamProcessor.feed_many`` items for ``hops`` (advances the call's clock)."""
        out = []
        for i, hop in enumerate(hops):
            out.append((self.stream_id, self.seq, AudioBlock(hop, self.t0), final and i == len(hops) - 1))
            self.seq += 1
            self.t0 += len(hop) / SAMPLE_RATE
        return out

    def close(self) -> list[Verdict]:
        """End the call: score what is left and return the final verdict."""
        if self.closed:
            return []
        if self.resampler is not None:
            self.pending = np.concatenate([self.pending, _resample(self.resampler, None, self.rate)])
        verdicts = self.processor.feed_many(self.items([self.pending], final=True))
        self.closed, self.pending = True, np.zeros(0, np.float32)
        return verdicts

    def abandon(self) -> None:
        """Drop the call's state without a final verdict (the client vanished)."""
        self.closed = True
        self.processor.close(self.stream_id)


def _resample(resampler: av.AudioResampler, samples: np.ndarray | None, rate: int) -> np.ndarray:
    """16 kHz float32 out of a call's streaming resampler for ``samples`` at ``rate`` (None: flush)."""
    frame = None
    if samples is not None:
        if not len(samples):
            return np.zeros(0, np.float32)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples)[None], format="flt", layout="mono")
        frame.sample_rate = rate
    out = [f.to_ndarray()[0] for f in resampler.resample(frame)]
    return np.concatenate(out).astype(np.float32, copy=False) if out else np.zeros(0, np.float32)


def batch_scorer(processor: StreamProcessor):
    """Score many calls' hops in one batch: ``[(screener, hops), ...] -> [verdicts, ...]``.

    For screeners that share ``processor`` (a server's calls); the windows of
    every call go through the model together.
    """

    def score(requests: list[tuple]) -> list[list[Verdict]]:
        items = [screener.items(hops) for screener, hops in requests]
        verdicts = processor.feed_many([item for group in items for item in group])
        out, start = [], 0
        for group in items:
            out.append(verdicts[start : start + len(group)])
            start += len(group)
        return out

    return score
