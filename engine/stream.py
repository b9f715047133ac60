"""Per-stream state and the one streaming path every entry point uses.

``StreamProcessor.process(chunk)`` decodes a chunk, appends its audio to the
stream's timeline, scores every analysis window the new audio completed, feeds
the localizer, and returns the chunk's :class:`Verdict`. The state kept per
stream id is small and explicit: the audio still needed as context, the next
window index and the localizer (with its open span).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from engine.decode import SAMPLE_RATE, AudioBlock, check_gap, decode_chunk, place
from engine.detector import Detector, FrameScores
from engine.stream_state import dump_state, load_state
from engine.types import Chunk, Span, Trace, Verdict
from fusion.localizer import Localizer


@dataclass
class StreamState:
    """What one stream carries from chunk to chunk (samples are at 16 kHz)."""

    origin: float                      # stream time (s) of sample 0
    localizer: Localizer
    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    audio_start: int = 0               # stream sample index of audio[0]
    received: int = 0                  # samples placed on the timeline so far
    next_window: int = 0

    @property
    def end_time(self) -> float:
        return self.origin + self.received / SAMPLE_RATE


class StreamProcessor:
    """Scores chunks of many streams, keeping each stream's state by id.

    Parameters
    ----------
    detector : Detector
        The model; shared, stateless across streams.
    attributor : callable, optional
        Adds attribution to closed detections (:class:`fusion.attribution.Attributor`);
        without it detections carry ``attribution: []``.
    gate : callable, optional
        Speech gate: given the new audio of each window, ``(B, hop)`` float32,
        returns a boolean ``(B,)``; rejected windows are not scored (their frames
        get probability 0) and verdicts say whether any window held speech.
    """

    def __init__(self, detector: Detector, attributor=None, gate=None):
        self.detector, self.attributor, self.gate = detector, attributor, gate
        self.limits = detector.config.limits
        self.states: dict[str, StreamState] = {}

    def process(self, chunk: Chunk) -> Verdict:
        """Decode, check and score one chunk (raises MediaError for undecodable payloads or a timestamp jump)."""
        started = time.perf_counter()
        block = self.decode(chunk)
        return self.feed(chunk.stream_id, chunk.seq, block, chunk.final, started)

    def decode(self, chunk: Chunk) -> AudioBlock:
        """Decode ``chunk`` within ``limits`` and :meth:`check` it against its stream."""
        block = decode_chunk(chunk, self.limits)
        self.check(chunk.stream_id, block)
        return block

    def check(self, stream_id: str, block: AudioBlock) -> None:
        """MediaError ``timestamp-jump`` if ``block`` starts further past its stream's end than
        ``limits.max_gap_seconds`` (the gap would be filled with that much silence)."""
        state = self.states.get(stream_id)
        if state is not None:
            check_gap(block.t0 - state.end_time, self.limits.max_gap_seconds)

    def feed(self, stream_id: str, seq: int, block: AudioBlock, final: bool = False,
             started: float | None = None) -> Verdict:
        """Score decoded audio ``block`` of ``stream_id``; ``final`` ends the stream."""
        return self.feed_many([(stream_id, seq, block, final)], started)[0]

    def feed_many(self, items: list[tuple], started=None) -> list[Verdict]:
        """Score ``(stream_id, seq, block, final)`` items of any streams in one batch.

        The windows all items complete go through the model together; each
        stream's frames then reach its localizer in item order, so the verdicts
        equal those of feeding the items one by one. ``started`` (a
        ``perf_counter`` time, or one per item) is when the chunks arrived; the
        verdicts' latency counts from it.
        """
        started = time.perf_counter() if started is None else started
        starts = list(started) if isinstance(started, (list, tuple)) else [started] * len(items)
        cuts = [self._cut(stream_id, block, final) for stream_id, _, block, final in items]
        windows = [w for cut in cuts for w in cut[3]]
        scores, passed = self._gated_score(np.stack(windows)) if windows else (None, None)
        verdicts, offset = [], 0
        for (stream_id, seq, block, final), (state, first, keep, cut_windows), start in zip(items, cuts, starts):
            n = len(cut_windows)
            probs, emb = scores.flatten(keep, offset) if n else (np.zeros(0), None)
            speech = None if passed is None or not n else bool(passed[offset:offset + n].any())
            offset += n
            verdicts.append(self._conclude(stream_id, seq, block, final, state, first, probs, emb, speech, start))
        return verdicts

    def _cut(self, stream_id: str, block: AudioBlock, final: bool):
        """Place ``block`` on its stream's timeline and cut the windows it completes."""
        state = self.states.get(stream_id)
        if state is None:
            state = self.states[stream_id] = StreamState(block.t0, self._localizer(block.t0))
        start = round((block.t0 - state.origin) * SAMPLE_RATE)
        samples = place(block.samples, start, state.received, SAMPLE_RATE, self.limits.max_gap_seconds)
        state.audio = np.concatenate([state.audio, samples])
        state.received += len(samples)
        plan = self.detector.plan
        first, last = state.next_window, plan.complete(state.received, final)
        total = state.received if final else None
        windows = [plan.cut(state.audio, state.audio_start, k, total) for k in range(first, last)]
        keep = [plan.kept_frames(k, total) for k in range(first, last)]
        state.next_window = max(first, last)
        drop = plan.keep_from(state.next_window) - state.audio_start
        if drop > 0:
            state.audio, state.audio_start = state.audio[drop:], state.audio_start + drop
        return state, first * plan.hop_frames, keep, windows

    def _conclude(self, stream_id, seq, block, final, state, first_frame, probs, emb, speech, started) -> Verdict:
        """Localize the new frames and build the chunk's verdict."""
        closed = state.localizer.push(probs, emb)
        if final:
            closed += state.localizer.finish(state.end_time)
            self.states.pop(stream_id, None)
        if closed and self.attributor is not None:
            closed = self.attributor(closed)
        score, scored, trace = None, None, None
        if len(probs):
            step = self.detector.spec.frame_step
            scored = Span(state.origin + first_frame * step,
                          min(state.origin + (first_frame + len(probs)) * step, state.end_time))
            trace = Trace(scored.start, step, probs, {"audio": probs})
            if speech is not False:
                score = float(probs.max())
        return Verdict(stream_id, seq, Span(block.t0, block.t0 + block.duration), score, scored,
                       tuple(closed), self.detector.model_id, (time.perf_counter() - started) * 1000, final,
                       speech, trace)

    def export_state(self, stream_id: str, extra: dict | None = None) -> bytes | None:
        """The stream's state as bytes (see :mod:`engine.stream_state`); None if it has none."""
        state = self.states.get(stream_id)
        if state is None:
            return None
        return dump_state(state, self.detector.plan, self.detector.spec.frame_step, extra)

    def import_state(self, stream_id: str, data: bytes) -> dict:
        """Take over a stream from :meth:`export_state` bytes; returns its ``extra``.

        Raises :class:`engine.stream_state.StateError` for bytes of another geometry."""
        state, extra = load_state(data, self.detector.plan, self.detector.spec.frame_step,
                                  self.detector.config.localizer, StreamState)
        self.states[stream_id] = state
        return extra

    def finish(self, stream_id: str) -> list:
        """End a stream that stopped without a final chunk: its still-open span, closed at its end."""
        state = self.states.pop(stream_id, None)
        if state is None:
            return []
        closed = state.localizer.finish(state.end_time)
        return self.attributor(closed) if closed and self.attributor is not None else closed

    def close(self, stream_id: str) -> None:
        """Forget a stream's state (a stream abandoned before its final chunk)."""
        self.states.pop(stream_id, None)

    def _localizer(self, origin: float) -> Localizer:
        return Localizer(self.detector.config.localizer, self.detector.spec.frame_step, origin, "audio")

    def _gated_score(self, windows: np.ndarray):
        """Score the windows the gate passes; the others get zero probabilities and embeddings.

        Returns the scores and the gate's verdict per window (``None`` without a gate)."""
        if self.gate is None:
            return self.detector.score(windows), None
        plan = self.detector.plan
        passed = np.asarray(self.gate(windows[:, plan.context:plan.context + plan.hop]), bool)
        probs = np.zeros((len(windows), plan.hop_frames), np.float32)
        emb = np.zeros((len(windows), plan.hop_frames, self.detector.spec.embedding_dim), np.float32)
        if passed.any():
            scored = self.detector.score(windows[passed])
            probs[passed], emb[passed] = scored.probs, scored.embeddings
        return FrameScores(probs, emb), passed
