"""A stream's state as bytes, so that it can move between workers.

``dfstream serve`` writes the state of a stream after each committed chunk to a
compacted topic; the worker that takes the stream's partition over restores it
and goes on as if it had processed the earlier chunks itself. The format is a
safetensors file (arrays: each branch's input still needed and its presence
mask, the open span's embedding sums) whose metadata holds the scalars as JSON
— no pickle, nothing executable. The geometry the state was cut for (per
branch rate, hop and context; the fused step) is stored and checked on
restore: a state cut for another geometry is refused.
"""

from __future__ import annotations

import json

import numpy as np
import safetensors.numpy

from dfstream.engine.core.errors import DfstreamError
from dfstream.fusion.localizer import Localizer

FORMAT = "dfstream.stream-state/2"


class StateError(DfstreamError):
    """A stored stream state is unreadable or was cut for another model geometry."""


def _geometry(detector) -> dict:
    return {
        "step": detector.step,
        **{
            name: {"rate": detector.specs[name].sample_rate, "hop": plan.hop, "context": plan.context}
            for name, plan in detector.plans.items()
        },
    }


def dump_state(state, detector, extra: dict | None = None) -> bytes:
    """Serialize a :class:`dfstream.engine.runtime.stream.StreamState` (and caller's ``extra`` JSON) to bytes."""
    loc = state.localizer
    arrays = {}
    for name, track in state.tracks.items():
        arrays[f"{name}.data"] = np.ascontiguousarray(track.data)
        arrays[f"{name}.present"] = np.ascontiguousarray(track.present, np.uint8)
    if loc.emb_sum is not None:
        arrays["emb_sum"] = np.asarray(loc.emb_sum, np.float64)
    if loc.at_gap[1] is not None:
        arrays["gap_emb_sum"] = np.asarray(loc.at_gap[1], np.float64)
    scalars = {
        "geometry": _geometry(detector),
        "origin": state.origin,
        "next_window": state.next_window,
        "tracks": {name: {"start": t.start, "received": t.received} for name, t in state.tracks.items()},
        "localizer": {
            "origin": loc.origin,
            "start": loc.start,
            "gap_start": loc.gap_start,
            "prob_sum": loc.prob_sum,
            "gap_prob_sum": loc.at_gap[0],
            "next_frame": loc.next_frame,
            "branch_sums": loc.branch_sums,
            "gap_branch_sums": loc.at_gap[2],
        },
        "extra": extra or {},
    }
    return safetensors.numpy.save(arrays, metadata={"format": FORMAT, "state": json.dumps(scalars)})


def _metadata(data: bytes) -> dict:
    """The ``__metadata__`` of a safetensors buffer."""
    if len(data) < 8:
        raise StateError("stream state is too short to be a safetensors buffer")
    size = int.from_bytes(data[:8], "little")
    try:
        header = json.loads(data[8 : 8 + size])
        return header["__metadata__"]
    except (ValueError, KeyError, TypeError):
        raise StateError("stream state has no readable safetensors header") from None


def load_state(data: bytes, detector, state_cls, track_cls):
    """Rebuild a stream state from :func:`dump_state` bytes.

    Returns ``(state, extra)``. Raises :class:`StateError` when the bytes are
    not a state or were cut for another geometry.
    """
    meta = _metadata(data)
    if meta.get("format") != FORMAT:
        raise StateError(f"not a {FORMAT} buffer (format={meta.get('format')!r})")
    try:
        scalars = json.loads(meta["state"])
        arrays = safetensors.numpy.load(data)
    except Exception as e:  # safetensors raises its own error type for corrupt buffers
        raise StateError(f"stream state is corrupt: {e}") from None
    if scalars["geometry"] != _geometry(detector):
        raise StateError(
            f"stream state was cut for geometry {scalars['geometry']}, this model uses {_geometry(detector)}"
        )
    s = scalars["localizer"]
    loc = Localizer(detector.config.localizer, detector.step, s["origin"], detector.modalities)
    loc.start, loc.gap_start, loc.prob_sum, loc.next_frame = s["start"], s["gap_start"], s["prob_sum"], s["next_frame"]
    loc.branch_sums = s["branch_sums"]
    loc.emb_sum = arrays.get("emb_sum")
    loc.at_gap = (s["gap_prob_sum"], arrays.get("gap_emb_sum"), s["gap_branch_sums"])
    tracks = {
        name: track_cls(
            arrays[f"{name}.data"],
            arrays[f"{name}.present"].astype(bool),
            detector.specs[name].sample_rate,
            t["start"],
            t["received"],
        )
        for name, t in scalars["tracks"].items()
    }
    state = state_cls(scalars["origin"], loc, tracks, scalars["next_window"])
    return state, scalars["extra"]
