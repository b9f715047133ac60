"""The fused feature extractor (modalities/audio/conv_frames.py) against the library's module."""

import numpy as np
import pytest
import torch
from helpers import tiny_config

from dfstream.engine.core.config import replace
from dfstream.engine.runtime.detector import Detector
from dfstream.modalities.audio.config import EncoderConfig
from dfstream.modalities.audio.conv_frames import conv_frames
from dfstream.modalities.audio.encoder import build_encoder

SMALL = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64, "conv_dim": 24}


@pytest.mark.parametrize("kind", ["wavlm", "wav2vec2"])
@pytest.mark.parametrize("norm", ["layer", "group"])
@pytest.mark.parametrize("samples", [400, 401, 719, 720, 16000, 16123])
def test_conv_frames_equal_the_librarys_feature_extractor(kind, norm, samples):
    extractor = build_encoder(EncoderConfig(kind=kind, feature_norm=norm, **SMALL)).feature_extractor.eval()
    with torch.no_grad():  # random norm scales and biases, so that every parameter counts
        for name, p in extractor.named_parameters():
            if p.dim() == 1:
                p.copy_(torch.randn_like(p) * 0.5 + (1.0 if name.endswith("weight") else 0.0))
    wav = torch.from_numpy(np.random.default_rng(samples).standard_normal((2, samples)).astype(np.float32)) * 0.1
    with torch.inference_mode():
        expected = extractor(wav).transpose(1, 2)
        got = conv_frames(extractor, wav)
    assert got.shape == expected.shape == (2, 1 + (samples - 400) // 320, 24)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_conv_frames_carry_gradients_like_the_module():
    """Fine-tuning the encoder (train.finetune_encoder) trains through the fused path: same gradients."""
    extractor = build_encoder(EncoderConfig(**SMALL)).feature_extractor
    wav = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 4000)).astype(np.float32))
    grads = []
    for fn in (lambda: extractor(wav).transpose(1, 2), lambda: conv_frames(extractor, wav)):
        extractor.zero_grad()
        fn().square().mean().backward()
        grads.append(extractor.conv_layers[0].conv.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=1e-4)


def test_the_config_chooses_the_path_and_scores_agree():
    scores = {}
    for path in ("fused", "transformers"):
        torch.manual_seed(0)  # the same back-end weights for both
        det = Detector.from_config(replace(tiny_config(), "inference.feature_extractor", path))
        assert det.branches["audio"].fused is (path == "fused")
        windows = np.random.default_rng(3).standard_normal((3, det.plan.length)).astype(np.float32) * 0.1
        scores[path] = det.score(windows)
    np.testing.assert_allclose(scores["fused"].probs, scores["transformers"].probs, atol=1e-5)
    np.testing.assert_allclose(scores["fused"].embeddings, scores["transformers"].embeddings, atol=1e-5)
