"""WavLM's attention through torch's fused kernel (modalities/audio/attention.py) against the library's."""

import numpy as np
import pytest
import torch
from helpers import tiny_config

from dfstream.engine.core.config import replace
from dfstream.engine.runtime.detector import Detector
from dfstream.modalities.audio.attention import sdpa_attention, use_sdpa
from dfstream.modalities.audio.config import EncoderConfig
from dfstream.modalities.audio.encoder import build_encoder

SMALL = {"hidden_size": 32, "num_layers": 2, "num_heads": 4, "intermediate_size": 64, "conv_dim": 24}


def _encoder():
    """A small WavLM whose relative position table and gates are random, so that the bias counts."""
    encoder = build_encoder(EncoderConfig(**SMALL)).eval()
    with torch.no_grad():
        for name, p in encoder.named_parameters():
            if "rel_attn_embed" in name or "gru_rel_pos" in name:
                p.copy_(torch.randn_like(p))
    return encoder


def _states(encoder, wav):
    with torch.inference_mode():
        return encoder(wav, output_hidden_states=True).hidden_states


@pytest.mark.parametrize("samples", [4000, 16123])
def test_sdpa_attention_equals_the_librarys_in_float32(samples):
    encoder = _encoder()
    wav = torch.from_numpy(np.random.default_rng(samples).standard_normal((3, samples)).astype(np.float32)) * 0.1
    expected = _states(encoder, wav)
    assert use_sdpa(encoder) == SMALL["num_layers"]
    got = _states(encoder, wav)
    assert len(got) == len(expected) == SMALL["num_layers"] + 1
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-4)
    assert not torch.equal(got[-1], expected[-1])  # the fused kernel did run


def test_sdpa_attention_in_bfloat16_is_as_close_to_float32_as_the_librarys():
    encoder = _encoder()
    wav = torch.from_numpy(np.random.default_rng(1).standard_normal((2, 8000)).astype(np.float32)) * 0.1
    reference = _states(encoder, wav)[-1]
    low = encoder.to(torch.bfloat16)
    library = _states(low, wav.bfloat16())[-1].float()
    use_sdpa(low)
    fused = _states(low, wav.bfloat16())[-1].float()
    library_error = (library - reference).abs().max().item()
    fused_error = (fused - reference).abs().max().item()
    assert 0 < library_error < 0.1
    assert fused_error <= 1.5 * library_error


def test_training_mode_and_padding_masks_run_the_librarys_path():
    encoder = _encoder()
    layer = encoder.encoder.layers[0].attention
    states = torch.randn(2, 10, SMALL["hidden_size"])
    bias = torch.randn(2 * SMALL["num_heads"], 10, 10)
    mask = torch.ones(2, 10, dtype=torch.long)
    with torch.no_grad():
        expected = layer.torch_multi_head_self_attention(states, mask, bias)
        got = sdpa_attention(layer, states, mask, bias)  # a padding mask: the library's path
        assert torch.equal(got[0], expected[0]) and got[1] is not None
        layer.train()
        got = sdpa_attention(layer, states, None, bias)
        assert got[1] is not None  # the library's path returns the weights


@pytest.mark.parametrize("path", ["fused", "transformers"])
def test_the_detector_binds_it_with_the_fused_path_only(path):
    det = Detector.from_config(replace(tiny_config(), "inference.feature_extractor", path))
    bound = [
        m
        for m in det.branches["audio"].modules()
        if getattr(getattr(m, "torch_multi_head_self_attention", None), "__func__", None) is sdpa_attention
    ]
    assert len(bound) == (det.branches["audio"].encoder.config.num_hidden_layers if path == "fused" else 0)
