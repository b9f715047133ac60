"""Turn per-frame forgery probabilities into forged spans, as a stream.

Hysteresis: a span opens at the first frame whose probability is >= ``onset``
and is active until a frame falls below ``offset``. Spans separated by a gap of
at most ``merge_gap`` seconds are merged (the gap frames join the span); spans
shorter than ``min_duration`` are dropped. A span's score is the mean
probability over its frames; its embedding the mean of its frame embeddings.

The localizer is fed frames in order, in pieces of any size: the spans it
returns do not depend on how the frames were cut, so a span crossing chunk
boundaries is reported once, when it closes (or at :meth:`finish`).
Each span's ``modality`` comes from the per-branch probabilities averaged
over the span's frames (:func:`dfstream.fusion.fusion.span_modality`).
"""

from __future__ import annotations

import math

import numpy as np

from dfstream.engine.core.types import Detection, Span
from dfstream.fusion.config import LocalizerConfig
from dfstream.fusion.fusion import span_modality


class Localizer:
    """Streaming hysteresis localizer for one track of one stream.

    Parameters
    ----------
    params : LocalizerConfig
        onset, offset (probabilities), min_duration, merge_gap (seconds).
    frame_step : float
        Seconds per frame.
    origin : float
        Stream time (seconds) of frame 0.
    modalities : dict
        Branch name -> its modality (``audio`` or ``visual``), for the branches whose probabilities
        come with the frames; a span's modality is read from them.
    """

    def __init__(
        self, params: LocalizerConfig, frame_step: float, origin: float, modalities: dict[str, str] | None = None
    ):
        self.modalities = dict(modalities or {"audio": "audio"})
        self.p, self.step, self.origin, self.branches = params, frame_step, origin, tuple(self.modalities)
        self.merge_frames = math.floor(params.merge_gap / frame_step + 1e-9)
        self.start: int | None = None  # first frame of the open span
        self.gap_start: int | None = None  # first frame of the current below-offset run
        self.prob_sum = 0.0  # sums over frames [start, now)
        self.emb_sum = None
        self.branch_sums = {b: 0.0 for b in self.branches}
        self.at_gap = (0.0, None, dict(self.branch_sums))  # the sums as they were at gap_start
        self.next_frame = 0

    def push(
        self, probs: np.ndarray, embeddings: np.ndarray | None = None, branches: dict | None = None
    ) -> list[Detection]:
        """Feed the next frames.

        Parameters
        ----------
        probs : ndarray, shape (n,)
            Forgery probabilities of frames ``next_frame .. next_frame+n-1``.
        embeddings : ndarray, shape (n, D), optional
            Their embeddings.
        branches : dict, optional
            Branch -> its probabilities ``(n,)`` of the same frames (default: the
            fused ones, for a one-branch model).

        Returns
        -------
        list of Detection
            Spans that closed within these frames.
        """
        closed = []
        probs = np.asarray(probs, dtype=np.float64)
        per_branch = {b: np.asarray((branches or {}).get(b, probs), dtype=np.float64) for b in self.branches}
        for i, prob in enumerate(probs):
            frame = self.next_frame + i
            emb = None if embeddings is None else embeddings[i]
            if self.start is None:
                if prob >= self.p.onset:
                    self.start, self.prob_sum, self.emb_sum = frame, 0.0, None
                    self.branch_sums = {b: 0.0 for b in self.branches}
                else:
                    continue
            elif self.gap_start is None:
                if prob < self.p.offset:
                    self.gap_start, self.at_gap = frame, (self.prob_sum, self.emb_sum, dict(self.branch_sums))
            elif prob >= self.p.onset:
                self.gap_start = None
            if self.gap_start is not None and frame - self.gap_start + 1 > self.merge_frames:
                closed += self._close(self.gap_start, *self.at_gap)
                continue
            self.prob_sum += prob
            for b, values in per_branch.items():
                self.branch_sums[b] += values[i]
            if emb is not None:
                self.emb_sum = emb.astype(np.float64) if self.emb_sum is None else self.emb_sum + emb
        self.next_frame += len(probs)
        return closed

    def finish(self, end_time: float | None = None) -> list[Detection]:
        """End of stream: close an open span (clipped to ``end_time`` seconds if given)."""
        if self.start is None:
            return []
        if self.gap_start is not None:
            return self._close(self.gap_start, *self.at_gap, end_time=end_time)
        return self._close(self.next_frame, self.prob_sum, self.emb_sum, self.branch_sums, end_time=end_time)

    def _close(
        self, end: int, prob_sum: float, emb_sum, branch_sums: dict, end_time: float | None = None
    ) -> list[Detection]:
        start, self.start, self.gap_start = self.start, None, None
        n = end - start
        t_start = self.origin + start * self.step
        t_end = self.origin + end * self.step
        if end_time is not None:
            t_end = max(t_start, min(t_end, end_time))
        if n <= 0 or t_end - t_start < self.p.min_duration - 1e-9:
            return []
        embedding = None if emb_sum is None else (emb_sum / n).astype(np.float32)
        modality = span_modality({b: v / n for b, v in branch_sums.items()}, self.modalities, self.p.modality_threshold)
        return [Detection(Span(t_start, t_end), prob_sum / n, modality, (), embedding)]
