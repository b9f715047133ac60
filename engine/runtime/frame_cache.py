"""Feature-extractor frames carried from one window of a stream to the next.

Window ``k`` of a stream sees ``context`` samples it shares with window
``k-1``. When a branch's feature extractor is local (every output frame a
function of its own receptive field: the audio branch with per-frame
normalisation, ``AudioBranch.cacheable``; the visual branch, whose ViT sees each
frame alone), the frames
of that shared audio need not be computed twice: window ``k`` keeps them, and
window ``k+1`` computes only the frames of its new audio. One frame is computed
again: the last frame of a window sees ``receptive - frame`` samples of zero
padding (so it is complete without the next chunk, see :mod:`dfstream.engine.runtime.windows`);
the next window recomputes it from the real samples. The result equals scoring
every window from scratch up to float rounding (tested).

The store is keyed by stream id and holds, per stream, the index of the window
it is ready for and ``context_frames - 1`` frames. A window the speech gate turns
away still carries its frames forward when its predecessor's are at hand (its new
frames only; they are not scored). A stream's first window (index 0) sees only
zeros before the stream start: its context frames are the extractor's frames of
zeros, the same for every stream, computed once per cache from the first such
window and reused (half of each stream's first window's extractor work, which
counts for a clip of a few seconds). A window whose predecessor's frames are not at
hand (a stream that starts late, a state moved from another worker) computes all
its frames.
"""

from __future__ import annotations

import torch

from dfstream.engine.runtime.windows import WindowPlan


class FrameCache:
    """Per-stream frames of a branch's feature extractor (on the model's device, in its dtype)."""

    def __init__(self):
        self._store: dict[str, tuple[int, torch.Tensor]] = {}
        self._silence: torch.Tensor | None = None  # context frames of the zeros before a stream's start

    def __len__(self) -> int:
        return len(self._store)

    def drop(self, key: str) -> None:
        """Forget a stream (it ended, was closed or its state replaced)."""
        self._store.pop(key, None)

    def features(
        self, branch, plan: WindowPlan, x: torch.Tensor, keys: list[tuple[str, int]], needed=None
    ) -> torch.Tensor:
        """Feature-extractor frames of windows ``x`` ``(B, plan.length)``, row ``i`` being window
        ``keys[i] = (stream id, window index)``; rows of one stream come in window order.

        Computes only the new frames of each window whose predecessor is in this batch or in the
        store, or that is a stream's window 0 (its context is zeros: the frames of zeros, computed
        once), and leaves each stream's last window's frames in the store for its next window.
        ``needed`` (bool ``(B,)``, default all) marks the rows whose frames are returned; the
        others (windows the speech gate turned away) only carry their frames forward, when that
        is cheap (their predecessor's frames are at hand), so the next window need not start over.
        A caller that leaves a window out instead ends its stream's chain there: the stream's
        next window computes all its frames.
        """
        needed = [True] * len(keys) if needed is None else [bool(n) for n in needed]
        frame, context_frames = plan.frame, plan.context // plan.frame
        carry = slice(plan.hop_frames, plan.hop_frames + context_frames - 1)  # the next window's context frames
        # the window each of these streams' frames are for (only this call's streams: calls for other
        # streams may change the store meanwhile, from another thread, Detector's parts of a batch)
        ready = {key: self._store[key][0] for key, _ in keys if key in self._store}
        chained = []
        for (key, k), need in zip(keys, needed):
            chained.append(ready.get(key) == k or k == 0)
            if chained[-1] or need:
                ready[key] = k + 1
            else:
                ready.pop(key, None)
        full_rows = [i for i, (c, n) in enumerate(zip(chained, needed)) if n and not c]
        new = iter(
            branch.frontend(x[[i for i, c in enumerate(chained) if c], plan.context - frame :]) if any(chained) else ()
        )
        full = iter(branch.frontend(x[full_rows]) if full_rows else ())
        first = next((i for i, (_, k) in enumerate(keys) if k == 0), None)
        if self._silence is None and first is not None:
            self._silence = branch.frontend(x[first : first + 1, : plan.context])[0, : context_frames - 1].clone()
        out = []
        for (key, k), c, need in zip(keys, chained, needed):
            if not (c or need):
                self._store.pop(key, None)
                continue
            if c:  # after its predecessor's frames: the store's, or for window 0 those of the zeros
                frames = torch.cat([self._silence if k == 0 else self._store[key][1], next(new)])
            else:
                frames = next(full)
            self._store[key] = (k + 1, frames[carry].clone())  # a copy: not a view keeping the batch alive
            if need:
                out.append(frames)
        return torch.stack(out) if out else x.new_zeros((0, 0, 0))
