"""Speech gate: Silero VAD, whose model ships inside the ``silero-vad`` wheel (MIT).

Windows whose new audio holds no speech are not scored (see
``StreamProcessor(gate=...)``). We pass arrays ourselves; the package's file
reader would need torchaudio. The model is stateful; its state is reset for
every batch, and it keeps one state per row, so each hop is judged on its own
audio while all hops of a batch step through their 32 ms frames together.

``import silero_vad`` sets torch's CPU threads to 1 for the whole process; the
gate restores the count it found, so the model it sits beside keeps its threads.
"""

from __future__ import annotations

import numpy as np
import torch

FRAME = 512  # samples per Silero frame at 16 kHz


def _load_silero():
    threads = torch.get_num_threads()
    try:
        import silero_vad  # its import calls torch.set_num_threads(1)

        return silero_vad.load_silero_vad()
    finally:
        torch.set_num_threads(threads)


class SileroGate:
    """``gate(hops) -> bool array``: a hop holds speech when any 32 ms frame's
    speech probability reaches ``threshold``.

    Parameters
    ----------
    threshold : float
        Silero speech probability (0..1) that counts as speech.
    """

    def __init__(self, threshold: float = 0.5):
        self.model = _load_silero()
        self.threshold = threshold

    def __call__(self, hops: np.ndarray) -> np.ndarray:
        """``hops`` float32 ``(B, samples)`` at 16 kHz -> boolean ``(B,)``."""
        hops = np.asarray(hops, np.float32)
        out = np.zeros(len(hops), bool)
        if not len(hops):
            return out
        with torch.inference_mode():
            self.model.reset_states()
            for start in range(0, hops.shape[1] - FRAME + 1, FRAME):
                frame = torch.from_numpy(np.ascontiguousarray(hops[:, start : start + FRAME]))
                out |= self.model(frame, 16000)[:, 0].numpy() >= self.threshold
                if out.all():
                    break
        return out
