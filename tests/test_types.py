"""Span algebra and the verdict message."""

import json

import pytest

from dfstream.engine.core.types import VERDICT_SCHEMA, Detection, Span, Verdict, error_record


def test_span_algebra():
    a, b = Span(1.0, 3.0), Span(2.0, 6.0)
    assert a.duration == 2.0
    assert a.intersection(b) == 1.0 and b.intersection(a) == 1.0
    assert a.iou(b) == pytest.approx(1 / 5)
    assert a.union(b) == Span(1.0, 6.0)
    assert a.intersection(Span(3.0, 4.0)) == 0.0 and a.iou(Span(5.0, 7.0)) == 0.0
    assert a.contains(1.0) and not a.contains(3.0)
    assert Span(2.0, 2.0).iou(Span(2.0, 2.0)) == 0.0
    assert sorted([b, a]) == [a, b]
    with pytest.raises(ValueError):
        Span(2.0, 1.0)
    with pytest.raises(AttributeError):
        a.start = 0.0  # frozen


def test_detection_modality_is_checked():
    with pytest.raises(ValueError, match="modality"):
        Detection(Span(0, 1), 0.5, "smell")


def test_verdict_json_round_trip():
    d = Detection(Span(0.5, 1.25), 0.875, "audio", ({"generator": "unknown"},))
    v = Verdict("cam-1", 3, Span(6.0, 8.0), 0.9, Span(6.0, 8.0), (d,), "m", 12.5, final=True)
    data = json.loads(v.to_json())
    assert data == {
        "schema": VERDICT_SCHEMA,
        "stream_id": "cam-1",
        "seq": 3,
        "span": [6.0, 8.0],
        "score": 0.9,
        "scored": [6.0, 8.0],
        "detections": [
            {"start": 0.5, "end": 1.25, "score": 0.875, "modality": "audio", "attribution": [{"generator": "unknown"}]}
        ],
        "model": "m",
        "latency_ms": 12.5,
        "final": True,
        "speech": None,
        "dropped_frames": 0,
    }
    assert Verdict.from_dict(data) == v
    empty = Verdict("s", 0, Span(0, 0.1), None, None, (), "m", 1.0)
    assert Verdict.from_dict(json.loads(empty.to_json())) == empty
    with pytest.raises(ValueError):
        Verdict.from_dict({**data, "schema": "other/1"})


def test_error_record():
    assert error_record("f.wav", "boom") == {"schema": VERDICT_SCHEMA, "stream_id": "f.wav", "error": "boom"}
    assert error_record("f.wav", "boom", seq=4)["seq"] == 4
