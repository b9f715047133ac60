"""The Silero speech gate: batched hops are judged one by one, and loading it leaves torch's threads alone."""

import numpy as np
import torch

from dfstream.app.toyset import make_toyset
from dfstream.engine.media.decode import decode_audio
from dfstream.engine.runtime.vad import SileroGate


def test_loading_the_gate_keeps_torch_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        SileroGate()
        assert torch.get_num_threads() == 2  # silero_vad's import alone sets 1
    finally:
        torch.set_num_threads(before)


def test_a_batch_is_judged_hop_by_hop(tmp_path):
    make_toyset(tmp_path, files=2, seed=5)
    audio = np.concatenate([decode_audio(p).samples for p in sorted(tmp_path.rglob("*.wav"))])
    hops = audio[: len(audio) // 8000 * 8000].reshape(-1, 8000)
    noise = np.random.default_rng(0).standard_normal((2, 8000)).astype(np.float32) * 0.01
    hops = np.concatenate([np.zeros((2, 8000), np.float32), hops, noise])
    gate = SileroGate()
    batched = gate(hops)
    alone = np.array([gate(h[None])[0] for h in hops])
    assert np.array_equal(batched, alone)
    assert not batched[:2].any() and batched.sum() >= len(hops) // 2  # silence is not speech; the toy calls are
    assert gate(np.zeros((0, 8000), np.float32)).shape == (0,)
