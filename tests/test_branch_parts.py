"""A batch's rows cut into parts that the branch threads share (Detector._parts_forward): the same
scores as each branch scoring its whole batch, carried frames included."""

import numpy as np
from helpers import tiny_av_config

from dfstream.engine.core.config import replace
from dfstream.engine.runtime.detector import Detector, row_parts
from dfstream.engine.runtime.frame_cache import FrameCache


def test_row_parts_keep_a_streams_rows_together_in_order_and_balance_the_rest():
    keys = [("a", 1), ("b", 1), ("a", 2), ("c", 1), ("d", 1), ("a", 3)]
    parts = row_parts(keys, 6, 2)
    assert sorted(np.concatenate(parts).tolist()) == list(range(6))
    assert [0, 2, 5] in [p.tolist() for p in parts]  # stream a's three windows, in order, in one part
    assert sorted(len(p) for p in parts) == [3, 3]
    assert [p.tolist() for p in row_parts(None, 5, 2)] == [[0, 1, 2], [3, 4]]
    assert [p.tolist() for p in row_parts([("a", 1)], 1, 2)] == [[0]]


def test_parts_score_as_whole_batches_do_with_carried_frames():
    config = tiny_av_config()
    together = Detector.from_config(config, seed=3)
    apart = Detector.from_config(replace(config, "inference.parallel_branches", False), seed=3)
    apart.model.load_state_dict(together.model.state_dict())
    assert together._pool is not None and apart._pool is None
    rng = np.random.default_rng(0)
    n = 6
    audio = (rng.standard_normal((n, together.plans["audio"].length)) * 0.1).astype(np.float32)
    visual = rng.integers(0, 255, (n, together.plans["visual"].length, 32, 32, 3), dtype=np.uint8)
    present = {name: np.ones((n, plan.hop_frames), bool) for name, plan in together.plans.items()}
    present["visual"][4] = False  # a window without a face
    batches = [  # streams a and b have two windows in one batch: they chain their frames within it
        [("a", 0), ("a", 1), ("b", 0), ("b", 1), ("c", 0), ("d", 0)],
        [("a", 2), ("b", 2), ("c", 1), ("d", 1), ("e", 0), ("e", 1)],
    ]
    caches = [{name: FrameCache() for name in det.cacheable} for det in (together, apart)]
    assert together.cacheable == apart.cacheable and together.cacheable
    for keys in batches:
        windows = {"audio": audio, "visual": visual}
        got = together.score(windows, present, keys, caches[0])
        expected = apart.score(windows, present, keys, caches[1])
        assert np.allclose(got.probs, expected.probs, atol=1e-5)
        assert np.allclose(got.embeddings, expected.embeddings, atol=1e-5)
        for name in together.branches:
            assert np.allclose(got.branches[name], expected.branches[name], atol=1e-5)
