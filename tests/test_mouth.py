"""The visual branch's mouth path (modalities/visual/mouth.py)."""

import pytest
import torch
from helpers import tiny_av_config

from dfstream.engine.core.config import replace
from dfstream.engine.core.errors import ConfigError
from dfstream.engine.runtime.detector import Detector
from dfstream.modalities.visual.mouth import MouthCNN, mouth_region


def test_mouth_region_is_the_crops_lower_middle():
    crops = torch.zeros(1, 1, 3, 32, 32)
    crops[..., 16:32, 8:24] = 1.0  # lower half, middle half of the width
    region = mouth_region(crops)
    assert region.shape == (1, 1, 3, 16, 16) and bool((region == 1).all())
    assert mouth_region(torch.zeros(2, 5, 3, 33, 33)).shape == (2, 5, 3, 16, 16)


def test_a_frames_features_see_it_and_the_frame_before_only():
    cnn = MouthCNN(8, 4).eval()
    mouth = torch.randn(1, 6, 3, 16, 16)
    changed = mouth.clone()
    changed[:, 3] += 1.0
    with torch.inference_mode():
        differs = (cnn(mouth) != cnn(changed)).any(dim=2)[0].nonzero().flatten().tolist()
    assert differs == [3, 4]


def visual_branch(config):
    return Detector.from_config(config).branches["visual"].eval()


def test_frontend_features_give_the_same_scores_as_the_whole_branch():
    branch = visual_branch(tiny_av_config())
    frames = torch.rand(2, 7, 3, 32, 32) * 2 - 1
    with torch.inference_mode():
        whole, whole_emb = branch(frames)
        parts, parts_emb = branch.forward_features(branch.frontend(frames))
    torch.testing.assert_close(parts, whole)
    torch.testing.assert_close(parts_emb, whole_emb)


def test_the_mouth_path_adds_to_the_back_end_input_and_can_be_left_out():
    without = visual_branch(replace(tiny_av_config(), "visual.mouth_channels", 0))
    with_mouth = visual_branch(tiny_av_config())
    assert without.mouth is None and not any(k.startswith("mouth") for k in without.state_dict())
    assert with_mouth.load_state_dict(without.state_dict(), strict=False).unexpected_keys == []
    frames = torch.rand(1, 5, 3, 32, 32) * 2 - 1
    with torch.inference_mode():
        cls, mouth = without.encode(frames)
        assert mouth is None
        base = without.head_forward((cls, None))[0]
        assert not torch.allclose(with_mouth(frames)[0], base)
        with_mouth.mouth.proj.weight.zero_()
        with_mouth.mouth.proj.bias.zero_()
        torch.testing.assert_close(with_mouth(frames)[0], base)


def test_mouth_channels_are_checked():
    with pytest.raises(ConfigError, match="mouth_channels"):
        replace(tiny_av_config(), "visual.mouth_channels", 1)


def test_augment_moves_each_windows_frames_alike_and_leaves_cls_alone():
    branch = visual_branch(tiny_av_config())
    side = 14
    ramp = torch.linspace(-0.5, 0.5, side)  # brightness rises left to right
    mouth = ramp.expand(4, 3, 3, side, side).clone()
    mouth[:, 1] += 0.1  # a second frame differs only by a constant: motion must stay constant
    cls = torch.randn(4, 3, 8)
    gen = torch.Generator().manual_seed(0)
    out_cls, out = branch.augment((cls, mouth), gen)
    assert out_cls is cls and out.shape == mouth.shape
    again = branch.augment((cls, mouth), torch.Generator().manual_seed(0))[1]
    assert torch.equal(out, again)  # drawn from the generator only
    flipped = 0
    for w in range(4):
        motion = out[w, 1] - out[w, 0]
        assert torch.allclose(motion, motion.flatten()[0].expand_as(motion), atol=1e-6)
        assert torch.allclose(out[w, 2], out[w, 0], atol=1e-6)
        rows = out[w, 0, 0]
        steps = rows[:, 1:] - rows[:, :-1]
        assert bool((steps >= -1e-6).all()) or bool((steps <= 1e-6).all())  # monotone: a shift, maybe a mirror
        flipped += bool((steps <= 1e-6).all())
        gain = steps.abs().max() / (ramp[1] - ramp[0])
        assert 0.85 - 1e-4 <= float(gain) <= 1.15 + 1e-4
    assert 0 < flipped < 4  # seed 0 mirrors some windows and not others


def test_augment_without_the_mouth_path_changes_nothing():
    branch = visual_branch(replace(tiny_av_config(), "visual.mouth_channels", 0))
    encoded = (torch.randn(2, 3, 8), None)
    assert branch.augment(encoded, torch.Generator().manual_seed(0)) is encoded
