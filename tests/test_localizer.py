"""Localizer decoding on hand-made score curves (exact), and chunk invariance."""

import numpy as np
import pytest

from dfstream.fusion.config import LocalizerConfig
from dfstream.fusion.localizer import Localizer

STEP = 0.1  # seconds per frame in these curves: frame i spans [i/10, (i+1)/10)


def spans(probs, origin=0.0, end_time=None, pieces=None, **params):
    loc = Localizer(
        LocalizerConfig(**{"onset": 0.5, "offset": 0.3, "min_duration": 0.0, "merge_gap": 0.0, **params}),
        STEP,
        origin,
        {"audio": "audio"},
    )
    probs = np.asarray(probs, float)
    found = []
    for part in np.split(probs, pieces or []):
        found += loc.push(part)
    found += loc.finish(end_time)
    return [(round(d.span.start, 6), round(d.span.end, 6), round(d.score, 6)) for d in found]


def test_hysteresis():
    # opens at >= 0.5, stays open while >= 0.3, closes at the first frame < 0.3
    assert spans([0.1, 0.5, 0.4, 0.3, 0.29, 0.4, 0.1]) == [(0.1, 0.4, 0.4)]
    assert spans([0.49, 0.4, 0.45]) == []
    assert spans([]) == []


def test_open_span_closes_at_end_of_stream_and_is_clipped():
    assert spans([0.1, 0.9, 0.8]) == [(0.1, 0.3, 0.85)]
    assert spans([0.1, 0.9, 0.8], end_time=0.25) == [(0.1, 0.25, 0.85)]


def test_origin_shifts_times():
    assert spans([0.9, 0.1], origin=10.0) == [(10.0, 10.1, 0.9)]


def test_merge_gap():
    curve = [0.9, 0.1, 0.1, 0.9, 0.1]
    assert spans(curve) == [(0.0, 0.1, 0.9), (0.3, 0.4, 0.9)]
    # a 0.2 s gap merges with merge_gap 0.2 (gap frames join the span and its mean)
    assert spans(curve, merge_gap=0.2) == [(0.0, 0.4, 0.5)]
    assert spans(curve, merge_gap=0.1) == [(0.0, 0.1, 0.9), (0.3, 0.4, 0.9)]
    # a gap frame between offset and onset does not reopen the span
    assert spans([0.9, 0.1, 0.4, 0.1, 0.1], merge_gap=0.2) == [(0.0, 0.1, 0.9)]


def test_merge_gap_zero_does_not_merge_one_frame_gaps():
    assert spans([0.9, 0.1, 0.9]) == [(0.0, 0.1, 0.9), (0.2, 0.3, 0.9)]


def test_min_duration():
    curve = [0.9, 0.1, 0.9, 0.9, 0.9, 0.1]
    assert spans(curve, min_duration=0.2) == [(0.2, 0.5, 0.9)]
    assert spans(curve, min_duration=0.35) == []


def test_embedding_is_mean_of_span_frames():
    loc = Localizer(LocalizerConfig(0.5, 0.3, 0.0, 0.0), STEP, 0.0, {"visual": "visual"})
    emb = np.arange(8, dtype=np.float32).reshape(4, 2)
    (d,) = loc.push(np.array([0.1, 0.9, 0.7, 0.1]), emb)
    assert d.modality == "visual"
    assert np.array_equal(d.embedding, [3.0, 4.0])


@pytest.mark.parametrize("seed", range(5))
def test_any_chunking_gives_the_same_spans(seed):
    rng = np.random.default_rng(seed)
    curve = np.clip(np.repeat(rng.random(40), rng.integers(1, 6, 40)), 0, 1)
    params = {"merge_gap": 0.2, "min_duration": 0.2}
    whole = spans(curve, **params)
    assert whole  # the curve is busy enough to hold spans
    cuts = sorted(rng.choice(np.arange(1, len(curve)), size=7, replace=False))
    assert spans(curve, pieces=cuts, **params) == whole
    assert spans(curve, pieces=list(range(1, len(curve))), **params) == whole
