"""Speech gate: Silero VAD, whose model ships inside the ``silero-vad`` wheel (MIT).

Windows whose new audio holds no speech are not scored (see
``StreamProcessor(gate=...)``). We pass arrays ourselves; the package's file
reader would need torchaudio. The model is stateful, so its state is reset for
every hop: each hop is judged on its own audio.
"""
from __future__ import annotations

import numpy as np
import torch

FRAME = 512  # samples per Silero frame at 16 kHz


class SileroGate:
    """``gate(hops) -> bool array``: a hop holds speech when any 32 ms frame's
    speech probability reaches ``threshold``.

    Parameters
    ----------
    threshold : float
        Silero speech probability (0..1) that counts as speech.
    """

    def __init__(self, threshold: float = 0.5):
        import silero_vad  # imported here: only processes that gate pay for it
        self.model = silero_vad.load_silero_vad()
        self.threshold = threshold

    def __call__(self, hops: np.ndarray) -> np.ndarray:
        """``hops`` float32 ``(B, samples)`` at 16 kHz -> boolean ``(B,)``."""
        out = np.zeros(len(hops), bool)
        with torch.inference_mode():
            for i, hop in enumerate(hops):
                self.model.reset_states()
                for start in range(0, len(hop) - FRAME + 1, FRAME):
                    if float(self.model(torch.from_numpy(np.ascontiguousarray(hop[start:start + FRAME])),
                                        16000)) >= self.threshold:
                        out[i] = True
                        break
        return out
