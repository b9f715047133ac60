"""The audio branch's spectral path (modalities/audio/spectral.py)."""

import librosa
import numpy as np
import pytest
import torch
from helpers import tiny_config

from dfstream.engine.core.config import replace
from dfstream.engine.core.errors import ConfigError
from dfstream.engine.runtime.detector import Detector
from dfstream.modalities.audio.spectral import BandPool, LogMel, SpectralCNN


def test_log_mel_is_librosas_on_the_encoders_grid():
    rng = np.random.default_rng(0)
    wav = rng.standard_normal(16000).astype(np.float32) * 0.1
    ours = LogMel(64)(torch.from_numpy(wav)[None])[0].numpy()
    mel = librosa.feature.melspectrogram(
        y=wav,
        sr=16000,
        n_fft=400,
        hop_length=320,
        win_length=400,
        window="hann",
        center=False,
        power=2.0,
        n_mels=64,
        fmin=20.0,
        fmax=8000.0,
        htk=False,
        norm="slaney",
    )
    assert ours.shape == (1 + (16000 - 400) // 320, 64) == mel.T.shape
    np.testing.assert_allclose(ours, np.log(mel.T + 1e-6), atol=1e-3)


@pytest.mark.parametrize("samples", [400, 719, 720, 16000, 64321])
def test_spectral_frames_line_up_with_the_encoders(samples):
    branch = Detector.from_config(tiny_config()).branches["audio"]
    features = branch.frontend(torch.zeros(2, samples))
    assert features.shape[1] == 1 + (samples - 400) // 320
    assert features.shape[2] == branch.conv_dim + branch.cfg.mel_bands


def test_a_log_mel_frame_sees_only_its_own_25_ms():
    rng = np.random.default_rng(1)
    wav = torch.from_numpy(rng.standard_normal(8000).astype(np.float32))
    changed = wav.clone()
    changed[3200:3520] += 0.5  # samples of frames 9 and 10 only (frame k covers 320 k .. 320 k + 400)
    a, b = LogMel(32)(wav[None])[0], LogMel(32)(changed[None])[0]
    differs = (a != b).any(dim=1).nonzero().flatten().tolist()
    assert differs == [9, 10]


def test_frontend_features_give_the_same_scores_as_the_whole_branch():
    branch = Detector.from_config(tiny_config()).branches["audio"].eval()
    wav = torch.from_numpy(np.random.default_rng(2).standard_normal((3, 12800)).astype(np.float32) * 0.1)
    with torch.inference_mode():
        whole, whole_emb = branch(wav)
        parts, parts_emb = branch.forward_features(branch.frontend(wav))
    torch.testing.assert_close(parts, whole, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(parts_emb, whole_emb, atol=1e-5, rtol=1e-5)


def test_the_spectral_path_adds_to_the_back_end_input_and_can_be_left_out():
    without = Detector.from_config(replace(tiny_config(), "audio.mel_bands", 0)).branches["audio"].eval()
    with_mel = Detector.from_config(tiny_config()).branches["audio"].eval()
    assert without.spectral is None and not any("spectral" in k for k in without.state_dict())
    assert with_mel.load_state_dict(without.state_dict(), strict=False).unexpected_keys == []
    wav = torch.from_numpy(np.random.default_rng(3).standard_normal((1, 8000)).astype(np.float32))
    with torch.inference_mode():
        hidden, mel = without.encode(wav)
        assert mel is None
        base = without.head_forward((hidden, None))[0]
        added = with_mel.head_forward(with_mel.encode(wav))[0]
        assert added.shape == base.shape and not torch.allclose(added, base)
        with_mel.spectral.proj.weight.zero_()
        with_mel.spectral.proj.bias.zero_()
        torch.testing.assert_close(with_mel.head_forward(with_mel.encode(wav))[0], base)


def test_cnn_keeps_every_frame():
    cnn = SpectralCNN(64, 8, 16).eval()
    assert cnn(torch.randn(2, 37, 64)).shape == (2, 37, 16)


@pytest.mark.parametrize("bands", [12, -8])
def test_mel_bands_must_be_a_multiple_of_8(bands):
    with pytest.raises(ConfigError, match="mel_bands"):
        replace(tiny_config(), "audio.mel_bands", bands)


@pytest.mark.parametrize("bands", [8, 9, 32])
def test_band_pool_is_max_pool_over_band_pairs(bands):
    x = torch.randn(3, 4, bands, 7)
    torch.testing.assert_close(BandPool()(x), torch.nn.MaxPool2d((2, 1))(x), rtol=0, atol=0)
