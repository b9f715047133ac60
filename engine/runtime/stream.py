"""Per-stream state and the one streaming path every entry point uses.

``StreamProcessor.process(chunk)`` decodes a chunk, places each of its tracks
(audio samples, sampled video frames) on the stream's timeline, scores every
analysis window the new media completed, feeds the localizer, and returns the
chunk's :class:`Verdict`. The state kept per stream id is small and explicit:
per branch the input still needed as context and which of it is real media,
the next window index and the localizer (with its open span).

Every configured branch has a track in every stream. Media a block lacks (an
audio file under an audio-visual model, a chunk without video) is filled in as
*absent*: the branch is not run on windows with nothing present, and the
fusion gives an absent modality no weight.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from dfstream.engine.core.branch import Prepared
from dfstream.engine.core.types import Chunk, Span, Trace, Verdict
from dfstream.engine.media.blocks import decode_media
from dfstream.engine.media.decode import check_gap, place
from dfstream.engine.runtime.detector import Detector
from dfstream.engine.runtime.device import set_threads
from dfstream.engine.runtime.frame_cache import FrameCache
from dfstream.engine.runtime.stream_state import dump_state, load_state
from dfstream.fusion.localizer import Localizer


@dataclass
class Track:
    """One branch's input on a stream's timeline, in the branch's units (samples, frames).

    ``data`` ``(n, ...)`` holds units ``start .. start+n-1`` of the stream;
    ``present`` ``(n,)`` says which of them are real media; ``rate`` is units per
    second.
    """

    data: np.ndarray
    present: np.ndarray
    rate: float
    start: int = 0
    received: int = 0

    @property
    def seconds(self) -> float:
        """Stream seconds placed so far, from the stream's origin."""
        return self.received / self.rate


@dataclass
class StreamState:
    """What one stream carries from chunk to chunk."""

    origin: float  # stream time (s) of unit 0 of every track
    localizer: Localizer
    tracks: dict = field(default_factory=dict)
    next_window: int = 0

    @property
    def end_time(self) -> float:
        """Stream time (s) the latest track has reached."""
        return self.origin + max((t.seconds for t in self.tracks.values()), default=0.0)


class StreamProcessor:
    """Scores chunks of many streams, keeping each stream's state by id.

    Parameters
    ----------
    detector : Detector
        The model; shared, stateless across streams.
    attributor : callable, optional
        Adds attribution to closed detections (:class:`dfstream.fusion.attribution.Attributor`);
        without it detections carry ``attribution: []``.
    gate : callable, optional
        Speech gate: given the new audio of each window, ``(B, hop)`` float32,
        returns a boolean ``(B,)``; rejected windows' audio counts as absent (not
        scored) and verdicts say whether any window held speech.
    reuse_frames : bool
        Carry each stream's feature-extractor frames to its next window
        (:mod:`dfstream.engine.runtime.frame_cache`, for the detector's ``cacheable`` branches); False
        encodes every window from scratch, as peer detectors do.
    keep_media : bool
        Hand each verdict its chunk's prepared media (``Verdict.media``: the audio and
        face crops the branches saw), for reports; off, verdicts hold no media.
    gate_branch : str, optional
        The branch whose windows ``gate`` judges (the call hook's: the audio branch).
    """

    def __init__(
        self,
        detector: Detector,
        attributor=None,
        gate=None,
        reuse_frames: bool = True,
        keep_media: bool = False,
        gate_branch: str | None = None,
    ):
        self.detector, self.attributor, self.gate = detector, attributor, gate
        self.keep_media, self.gate_branch = keep_media, gate_branch
        if gate is not None and gate_branch not in detector.branches:
            raise ValueError(f"the gate judges branch {gate_branch!r}, which this model does not have")
        self.limits = detector.config.limits
        self.states: dict[str, StreamState] = {}
        self.rates = {name: spec.sample_rate for name, spec in detector.specs.items()}  # units per second
        self.frames = {name: FrameCache() for name in detector.cacheable if reuse_frames}  # not in stream states

    def share_cores(self, cores: int) -> None:
        """Leave ``cores`` to work beside the model (a scheduler's decode workers, see
        :meth:`dfstream.engine.runtime.detector.Detector.share_cores`)."""
        self.detector.share_cores(cores)

    @staticmethod
    def init_worker() -> None:
        """Set up a thread that runs :meth:`load` / :meth:`prepare` beside others: its torch ops (the
        face detector) on one thread, for the workers are the parallelism."""
        set_threads(1)

    def process(self, chunk: Chunk) -> Verdict:
        """Decode, check and score one chunk (raises MediaError for undecodable payloads or a timestamp jump)."""
        started = time.perf_counter()
        block = self.decode(chunk)
        return self.feed(chunk.stream_id, chunk.seq, block, chunk.final, started)

    def decode(self, chunk: Chunk) -> Prepared:
        """:meth:`load` ``chunk`` and :meth:`check` it against its stream."""
        block = self.load(chunk)
        self.check(chunk.stream_id, block)
        return block

    def load(self, chunk: Chunk) -> Prepared:
        """Decode ``chunk`` within ``limits`` and prepare it for the branches (CPU work that
        needs no stream state, so it may run on any thread)."""
        return self.prepare(decode_media(chunk, self.detector.media, self.limits))

    def prepare(self, block) -> Prepared:
        """Decoded media made ready for the branches (face crops; CPU work, any thread)."""
        return self.detector.prepare(block)

    def admit(self, stream_id: str, block) -> Prepared:
        """:meth:`prepare` decoded media and :meth:`check` it."""
        block = self.prepare(block)
        self.check(stream_id, block)
        return block

    def check(self, stream_id: str, block) -> None:
        """MediaError ``timestamp-jump`` if a track of ``block`` starts further past where its stream's
        track ends (or, in a stream's first block, past the block's earliest track) than
        ``limits.max_gap_seconds``: the gap would be filled with that much silence or absence.
        Checked before :meth:`feed` changes any state."""
        state, block = self.states.get(stream_id), self.detector.prepare(block)
        for name, given in block.inputs.items():
            expected = block.t0 if state is None else state.origin + state.tracks[name].seconds
            check_gap(given.t0 - expected, self.limits.max_gap_seconds)

    def feed(self, stream_id: str, seq: int, block, final: bool = False, started: float | None = None) -> Verdict:
        """Score decoded ``block`` (MediaBlock, or an AudioBlock) of ``stream_id``; ``final`` ends the stream."""
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
        items = [(sid, seq, self.detector.prepare(block), final) for sid, seq, block, final in items]
        cuts = [self.cut(stream_id, block, final) for stream_id, _, block, final in items]
        n_windows = sum(len(cut[2]) for cut in cuts)
        scores, passed = None, None
        if n_windows:
            windows = {
                name: np.concatenate([cut[3][name] for cut in cuts if len(cut[2])]) for name in self.detector.branches
            }
            present = {
                name: np.concatenate([cut[4][name] for cut in cuts if len(cut[2])]) for name in self.detector.branches
            }
            hop = self.detector.hop_frames
            keys = [(item[0], cut[1] // hop + j) for item, cut in zip(items, cuts) for j in range(len(cut[2]))]
            scores, passed = self._gated_score(windows, present, keys)
        verdicts, offset = [], 0
        for (stream_id, seq, block, final), (state, first, keep, _, _), start in zip(items, cuts, starts):
            n = len(keep)
            probs, emb, branches = scores.flatten(keep, offset) if n else (np.zeros(0), None, {})
            speech = None if passed is None or not n else bool(passed[offset : offset + n].any())
            offset += n
            verdicts.append(
                self._conclude(stream_id, seq, block, final, state, first, probs, emb, branches, speech, start)
            )
        return verdicts

    def _new_state(self, t0: float) -> StreamState:
        """A stream whose first media starts at ``t0``. With a branch whose units sit on a grid of stream
        time (sampled video frames, at ``g / fps`` s) the origin is the grid point at or before ``t0``,
        so that they fall on whole track slots."""
        origin = t0
        grids = [spec.sample_rate for spec in self.detector.specs.values() if spec.grid]
        if grids:
            rate = min(grids)
            origin = math.floor(t0 * rate + 1e-6) / rate
        tracks = {
            name: Track(branch.empty_input(0), np.zeros(0, bool), self.rates[name])
            for name, branch in self.detector.branches.items()
        }
        loc = Localizer(self.detector.config.localizer, self.detector.step, origin, self.detector.modalities)
        return StreamState(origin, loc, tracks)

    def cut(self, stream_id: str, block: Prepared, final: bool):
        """Place prepared ``block`` on its stream's timeline and cut the windows it completes
        (what :meth:`feed_many` scores; training cuts its windows with it too).

        Returns ``(state, first fused frame, kept fused frames per window,
        windows {branch: (W, length, ...)}, present {branch: (W, hop_frames)})``.
        """
        state = self.states.get(stream_id)
        if state is None:
            state = self.states[stream_id] = self._new_state(block.t0)
        det, limits = self.detector, self.limits
        for name, track in state.tracks.items():
            rate, given = track.rate, block.inputs.get(name)
            if given is not None:
                units, present = given.units, given.present
                start = round((given.t0 - state.origin) * rate)
                # a gap inside audio is silence (present); before the first media, nothing is
                fill = det.specs[name].gaps_present and track.received > 0
                units = place(units, start, track.received, rate, limits.max_gap_seconds)
                present = place(present, start, track.received, rate, limits.max_gap_seconds, fill=fill)
            else:  # absent here: fill up to the block's end so that the other tracks' windows complete
                missing = max(0, round((block.end - state.origin) * rate) - track.received)
                units = np.zeros((missing,) + track.data.shape[1:], track.data.dtype)
                present = np.zeros(missing, bool)
            track.data = np.concatenate([track.data, units])
            track.present = np.concatenate([track.present, present])
            track.received += len(units)
        plans = det.plans
        counts = [plans[n].complete(t.received, final) for n, t in state.tracks.items()]
        first, last = state.next_window, max(counts) if final else min(counts)
        ks = range(first, last)
        windows, present, kept = {}, {}, np.zeros(len(ks), int)
        for name, track in state.tracks.items():
            plan, total = plans[name], track.received if final else None
            shape = (0, plan.length) + track.data.shape[1:]
            windows[name] = (
                np.stack([plan.cut(track.data, track.start, k, total) for k in ks])
                if ks
                else np.zeros(shape, track.data.dtype)
            )
            frames = [plan.kept_frames(k, total) for k in ks]
            present[name] = np.array(
                [
                    self._frame_presence(plan, plan.cut(track.present, track.start, k, total), n)
                    for k, n in zip(ks, frames)
                ],
                bool,
            ).reshape(len(ks), plan.hop_frames)
            kept = np.maximum(kept, np.array(frames, int) * det.ratios[name])
        keep = [int(min(det.hop_frames, n)) for n in kept]
        state.next_window = max(first, last)
        for name, track in state.tracks.items():
            drop = plans[name].keep_from(state.next_window) - track.start
            if drop > 0:
                track.data, track.present, track.start = track.data[drop:], track.present[drop:], track.start + drop
        return state, first * det.hop_frames, keep, windows, present

    @staticmethod
    def _frame_presence(plan, present: np.ndarray, kept: int) -> np.ndarray:
        """Which of a window's ``hop_frames`` scored frames hold any present unit (and are kept)."""
        lo = plan.context
        frames = present[lo : lo + plan.hop].reshape(plan.hop_frames, plan.frame).any(axis=1)
        frames[kept:] = False
        return frames

    def _conclude(
        self, stream_id, seq, block, final, state, first_frame, probs, emb, branches, speech, started
    ) -> Verdict:
        """Localize the new frames and build the chunk's verdict."""
        closed = state.localizer.push(probs, emb, branches)
        if final:
            closed += state.localizer.finish(state.end_time)
            self._forget(stream_id)
        if closed and self.attributor is not None:
            closed = self.attributor(closed)
        score, scored, trace = None, None, None
        if len(probs):
            step = self.detector.step
            scored = Span(
                state.origin + first_frame * step, min(state.origin + (first_frame + len(probs)) * step, state.end_time)
            )
            trace = Trace(scored.start, step, probs, dict(branches), emb)
            if speech is not False:
                score = float(probs.max())
        dropped = block.dropped
        return Verdict(
            stream_id,
            seq,
            Span(block.t0, block.end),
            score,
            scored,
            tuple(closed),
            self.detector.model_id,
            (time.perf_counter() - started) * 1000,
            final,
            speech,
            trace,
            dropped,
            block if self.keep_media else None,
        )

    def export_state(self, stream_id: str, extra: dict | None = None) -> bytes | None:
        """The stream's state as bytes (see :mod:`dfstream.engine.runtime.stream_state`); None if it has none."""
        state = self.states.get(stream_id)
        if state is None:
            return None
        return dump_state(state, self.detector, extra)

    def import_state(self, stream_id: str, data: bytes) -> dict:
        """Take over a stream from :meth:`export_state` bytes; returns its ``extra``.

        Raises :class:`dfstream.engine.runtime.stream_state.StateError` for bytes of another geometry."""
        state, extra = load_state(data, self.detector, StreamState, Track)
        self._forget(stream_id)
        self.states[stream_id] = state
        return extra

    def finish(self, stream_id: str) -> list:
        """End a stream that stopped without a final chunk: its still-open span, closed at its end."""
        state = self.states.get(stream_id)
        self._forget(stream_id)
        if state is None:
            return []
        closed = state.localizer.finish(state.end_time)
        return self.attributor(closed) if closed and self.attributor is not None else closed

    def close(self, stream_id: str) -> None:
        """Forget a stream's state (a stream abandoned before its final chunk)."""
        self._forget(stream_id)

    def _forget(self, stream_id: str) -> None:
        self.states.pop(stream_id, None)
        for cache in self.frames.values():
            cache.drop(stream_id)

    def _gated_score(self, windows: dict, present: dict, keys: list):
        """Score the windows (``keys``: ``(stream id, window index)`` per row); the gate (if any)
        marks the audio of windows without speech absent.

        Returns the scores and the gate's verdict per window (``None`` without a gate)."""
        name = self.gate_branch
        if self.gate is None or name not in windows:
            return self.detector.score(windows, present, keys, self.frames), None
        plan = self.detector.plans[name]
        passed = np.asarray(self.gate(windows[name][:, plan.context : plan.context + plan.hop]), bool)
        present = {**present, name: present[name] & passed[:, None]}
        return self.detector.score(windows, present, keys, self.frames), passed
