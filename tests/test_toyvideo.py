"""The SYNTHETIC audio-visual toy set: a detectable drawn face, MP4s, labels, confined manipulations."""

from __future__ import annotations

import json

import av
import cv2
import numpy as np
import pytest

from dfstream.app.toyset import GENERATORS, RATE
from dfstream.app.toyvideo import (
    VISUAL_GENERATORS,
    draw_face,
    face_track,
    lower_face_box,
    make_toy_av_set,
    plan_clips,
    render_audio,
    render_frames,
)
from dfstream.engine.core.errors import ConfigError

SMALL = dict(min_seconds=2.0, max_seconds=3.0, size=(160, 120))


def _detect(image):
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    return cascade.detectMultiScale(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), scaleFactor=1.1, minNeighbors=4)


def _canvas(seed=0):
    rng = np.random.default_rng(seed)
    noise = cv2.resize(rng.normal(0, 8, (6, 8, 3)).astype(np.float32), (320, 240), interpolation=cv2.INTER_CUBIC)
    return np.clip(120 + noise, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("cx, cy, height, mouth", [(70, 60, 60, 0.0), (160, 125, 100, 1.0), (225, 145, 150, 0.5)])
def test_drawn_face_is_found_by_the_haar_cascade(cx, cy, height, mouth):
    image = _canvas()
    assert len(_detect(image)) == 0
    draw_face(image, cx, cy, height, mouth)
    boxes = _detect(image)
    assert len(boxes) == 1, boxes
    x, y, w, h = boxes[0]
    assert abs(x + w / 2 - cx) < 0.15 * height and abs(y + h / 2 - cy) < 0.2 * height
    assert 0.8 * height < w < 1.3 * height


def test_mouth_opening_changes_only_the_lower_face():
    cx, cy, height = 160.3, 120.6, 110.0
    closed, opened = _canvas(), _canvas()
    draw_face(closed, cx, cy, height, 0.0)
    draw_face(opened, cx, cy, height, 1.0)
    rows, cols = np.nonzero(np.abs(closed.astype(int) - opened.astype(int)).max(axis=2) > 0)
    assert len(rows) > 50
    assert rows.min() > cy + 0.15 * height and rows.max() < cy + 0.5 * height
    assert np.abs(cols - cx).max() < 0.3 * height
    x0, y0, x1, y1 = lower_face_box(cx, cy, height)
    assert x0 <= cols.min() and cols.max() < x1 and y0 <= rows.min() and rows.max() < y1


def test_toy_av_set_files_and_labels(tmp_path):
    path = make_toy_av_set(tmp_path, files=5, seed=3, **SMALL)
    entries = json.loads(path.read_text())
    assert "SYNTHETIC" in (tmp_path / "README.md").read_text()
    assert [e["modify_type"] for e in entries] == ["real", "audio_modified", "visual_modified", "both_modified", "real"]
    assert sorted({e["split"] for e in entries}) == ["test", "train", "val"]
    for e in entries:
        with av.open(str(tmp_path / e["file"])) as container:
            assert len(container.streams.video) == 1 and len(container.streams.audio) == 1
            video, audio = container.streams.video[0], container.streams.audio[0]
            assert (video.codec_context.name, video.codec_context.width, video.codec_context.height) == (
                "h264",
                160,
                120,
            )
            assert (audio.codec_context.name, audio.codec_context.sample_rate, audio.codec_context.channels) == (
                "aac",
                RATE,
                1,
            )
            frames = sum(1 for _ in container.decode(video=0))
        with av.open(str(tmp_path / e["file"])) as container:
            samples = sum(f.samples for f in container.decode(audio=0))
        duration = e["audio_frames"] / RATE
        assert frames == e["video_frames"] and abs(frames / 25 - duration) < 0.1
        assert abs(samples / RATE - duration) < 0.1
        for key in ("fake_segments", "audio_fake_segments", "visual_fake_segments"):
            for s, end in e[key]:
                assert 0 <= s and end <= duration and end - s >= 0.6 - 1e-9
                assert round(s, 2) == s and round(end, 2) == end
        kind, audio_spans, visual_spans = e["modify_type"], e["audio_fake_segments"], e["visual_fake_segments"]
        assert bool(audio_spans) == (kind in ("audio_modified", "both_modified")) == (e["audio_model"] in GENERATORS)
        assert (
            bool(visual_spans)
            == (kind in ("visual_modified", "both_modified"))
            == (e["visual_model"] in VISUAL_GENERATORS)
        )
        assert bool(e["fake_segments"]) == (kind != "real")
        assert e["fake_segments"] == sorted(audio_spans + [s for s in visual_spans if s not in audio_spans])


def test_the_set_is_deterministic_for_a_seed(tmp_path):
    clips = plan_clips(8, seed=5, **SMALL)
    assert [c.entry() for c in clips] == [c.entry() for c in plan_clips(8, seed=5, **SMALL)]
    assert [c.entry() for c in clips] != [c.entry() for c in plan_clips(8, seed=6, **SMALL)]
    clip = clips[2]
    assert np.array_equal(render_audio(clip)[0], render_audio(clip)[0])
    assert np.array_equal(render_frames(clip), render_frames(clip))
    with pytest.raises(ConfigError, match="min_seconds"):
        plan_clips(2, min_seconds=1.0, max_seconds=3.0)


@pytest.mark.parametrize("generator", VISUAL_GENERATORS)
def test_visual_manipulation_stays_in_its_spans_and_the_lower_face(generator):
    clip = next(c for c in plan_clips(12, seed=1, **SMALL) if c.visual_model == generator)
    genuine = render_audio(clip)[1]
    forged, plain = render_frames(clip, genuine=genuine), render_frames(clip, manipulate=False, genuine=genuine)
    cx, cy, height = face_track(clip)
    changed = []
    for j in range(clip.video_frames):
        diff = np.abs(forged[j].astype(int) - plain[j].astype(int)).max(axis=2)
        if not any(s <= (j + 0.5) / clip.fps < e for s, e in clip.visual_segments):
            assert not diff.any(), j
            continue
        x0, y0, x1, y1 = lower_face_box(cx[j], cy[j], height[j], clip.size)
        outside = diff.copy()
        outside[y0:y1, x0:x1] = 0
        assert not outside.any(), j
        changed.append(diff[y0:y1, x0:x1].mean())
    assert changed
    if generator == "toy-blend":  # spatial: every frame of the span
        assert min(changed) > 0.5
    else:  # temporal: the first frozen frame equals the genuine one
        assert np.mean(np.array(changed) > 0.2) > 0.6 and np.mean(changed) > 1.0
