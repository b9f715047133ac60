"""Video decoding: containers, grid sampling, PTS, scaling, rotation, blocks, corruption, limits."""

import io
import math
from fractions import Fraction

import av
import numpy as np
import pytest

import dfstream.engine.media.video
from dfstream.engine.core.errors import MediaError
from dfstream.engine.media.limits import LimitsConfig
from dfstream.engine.media.video import VideoBlock, decode_video, has_video, iter_video

RATE = 25  # native frame rate (Hz) of the generated clips


def pattern(index: int, width: int = 64, height: int = 64) -> np.ndarray:
    """RGB frame whose content encodes ``index`` < 100: top half gray 20 * tens + 10, bottom 20 * ones + 10."""
    img = np.empty((height, width, 3), np.uint8)
    img[: height // 2] = 20 * (index // 10) + 10
    img[height // 2 :] = 20 * (index % 10) + 10
    return img


def index_of(frame: np.ndarray) -> int:
    """Inverse of :func:`pattern` on a decoded (lossy, possibly scaled) frame."""
    h, w = frame.shape[:2]
    top = frame[h // 8 : 3 * h // 8, w // 4 : 3 * w // 4].mean()
    bottom = frame[5 * h // 8 : 7 * h // 8, w // 4 : 3 * w // 4].mean()
    return 10 * round((top - 10) / 20) + round((bottom - 10) / 20)


def indices(block: VideoBlock) -> list[int]:
    return [index_of(f) for f in block.frames]


def encode(
    fmt: str,
    codec: str,
    n: int = 50,
    size=(64, 64),
    pts=None,
    time_base=None,
    audio=None,
    pix_fmt: str = "yuv420p",
    images=None,
    rotation=None,
    hflip=False,
    sar=None,
    options=None,
) -> bytes:
    """Container bytes with ``n`` frames ``pattern(i)`` (or ``images[i]``) at PTS ``pts[i]`` (default ``i``).

    ``time_base`` (default ``1 / RATE``) is the unit of ``pts``; ``audio`` = (codec, rate) adds a
    silent audio stream of the same length.
    """
    pts = list(range(n)) if pts is None else pts
    time_base = time_base or Fraction(1, RATE)
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        v = out.add_stream(codec, rate=RATE, options=options or {})
        v.width, v.height, v.pix_fmt = size[0], size[1], pix_fmt
        v.codec_context.time_base = time_base
        if sar is not None:
            v.codec_context.sample_aspect_ratio = sar
        if rotation is not None:
            v.set_display_rotation(rotation, hflip=hflip)
        a = None
        if audio is not None:
            a = out.add_stream(audio[0], rate=audio[1], layout="mono")
        for i in range(n):
            img = images[i] if images is not None else pattern(i, *size)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = pts[i], time_base
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
        if a is not None:
            samples = round(float(pts[-1] * time_base) * audio[1]) + audio[1] // RATE
            for start in range(0, samples, 960):
                af = av.AudioFrame.from_ndarray(np.zeros((1, 960), np.float32), format="fltp", layout="mono")
                af.sample_rate, af.pts = audio[1], start
                out.mux(a.encode(af))
            out.mux(a.encode(None))
    return buf.getvalue()


def first_time(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as c:
        return float(next(c.decode(video=0)).time)


def expected(start: float, n: int, fps: float) -> tuple[float, list[int]]:
    """(t0, source indices) sampling ``n`` frames at ``start + i / RATE`` on the grid ``g / fps``."""
    g0 = math.ceil((start - 1e-6) * fps)
    end = start + n / RATE
    picks, g = [], g0
    while g / fps < end - 1e-6:
        picks.append(math.floor((g / fps - start) * RATE + 1e-6))
        g += 1
    return g0 / fps, picks


CONTAINERS = [  # (format, suffix, video codec, audio)
    ("mp4", "mp4", "libx264", ("aac", 48000)),
    ("mpegts", "ts", "libx264", None),
    ("webm", "webm", "libvpx", ("libopus", 48000)),
    ("webm", "webm", "libvpx-vp9", None),
    ("matroska", "mkv", "libx264", None),
]


@pytest.mark.parametrize("fmt,suffix,codec,audio", CONTAINERS, ids=[f"{c[1]}-{c[2]}" for c in CONTAINERS])
def test_every_container_samples_exact_frames(tmp_path, fmt, suffix, codec, audio):
    data = encode(fmt, codec, audio=audio)
    path = tmp_path / f"clip.{suffix}"
    path.write_bytes(data)
    t0, picks = expected(first_time(data), 50, 5)
    assert has_video(path) and has_video(data)
    by_path, by_bytes = decode_video(path, 5, 64), decode_video(data, 5, 64)
    for block in (by_path, by_bytes):
        assert block.frames.dtype == np.uint8 and block.frames.shape == (len(picks), 64, 64, 3)
        assert block.t0 == t0 and block.fps == 5 and block.dropped == 0
        assert block.duration == pytest.approx(len(picks) / 5)
        assert indices(block) == picks
    assert np.array_equal(by_path.frames, by_bytes.frames)


def test_25_to_5_fps_picks_every_fifth_frame():
    block = decode_video(encode("matroska", "libx264"), 5, 64)
    assert block.t0 == 0.0 and indices(block) == list(range(0, 50, 5))


def test_late_start_is_stream_time():
    block = decode_video(encode("matroska", "libx264", pts=[75 + i for i in range(50)]), 5, 64)
    assert block.t0 == 3.0 and indices(block) == list(range(0, 50, 5))
    off_grid = decode_video(encode("matroska", "libx264", pts=[76 + i for i in range(50)]), 5, 64)
    assert off_grid.t0 == pytest.approx(3.2) and indices(off_grid) == list(range(4, 50, 5))


def test_variable_frame_rate_holds_each_frame_until_the_next():
    ms = [0, 100, 150, 500, 520, 1000]  # the last lasts 40 ms (1 / RATE)
    block = decode_video(encode("matroska", "libx264", len(ms), pts=ms, time_base=Fraction(1, 1000)), 10, 64)
    assert block.t0 == 0.0 and indices(block) == [0, 1, 2, 2, 2, 3, 4, 4, 4, 4, 5]


def test_gap_is_held_within_limit_and_rejected_beyond():
    data = encode("matroska", "libx264", 4, pts=[0, 1, 2, 130])  # frame 3 at 5.2 s: a 5 s jump
    block = decode_video(data, 5, 64)
    assert indices(block) == [0] + [2] * 25 + [3]
    with pytest.raises(MediaError) as e:
        decode_video(data, 5, 64, LimitsConfig(max_gap_seconds=1.0))
    assert e.value.reason == "timestamp-jump"


def test_large_frame_scales_down_keeping_aspect():
    block = decode_video(
        encode("matroska", "libx264", 3, size=(1920, 1080), options={"preset": "ultrafast"}), RATE, 320
    )
    assert block.frames.shape == (3, 180, 320, 3) and indices(block) == [0, 1, 2]


def test_small_frames_are_never_upscaled_and_sides_stay_positive():
    assert decode_video(encode("matroska", "libx264", 2), RATE, 320).frames.shape == (2, 64, 64, 3)
    assert decode_video(encode("matroska", "libx264", 2, size=(64, 16)), RATE, 1).frames.shape == (2, 1, 1, 3)
    images = [np.full((1, 1, 3), 10 * i, np.uint8) for i in range(3)]
    tiny = decode_video(encode("matroska", "ffv1", 3, size=(1, 1), pix_fmt="bgr0", images=images), RATE, 64)
    assert tiny.frames.shape == (3, 1, 1, 3) and tiny.frames[:, 0, 0, 0].tolist() == [0, 10, 20]


def test_pixel_aspect_ratio_gives_display_size():
    block = decode_video(encode("matroska", "libx264", 2, size=(64, 32), sar=Fraction(2, 1)), RATE, 256)
    assert block.frames.shape == (2, 32, 128, 3)


def test_resolution_change_is_scaled_to_the_first_frame_size():
    first = encode("mpegts", "libx264", 10)
    second = encode("mpegts", "libx264", 10, size=(128, 64), pts=[12 + i for i in range(10)])
    block = decode_video(first + second, RATE, 64)  # MPEG-TS concatenates byte-wise
    assert block.frames.shape[1:] == (64, 64, 3)
    assert indices(block)[:10] == list(range(10)) and indices(block)[-10:] == list(range(10))


def test_one_scaler_per_decode_gives_pyav_s_own_frames_and_the_decoder_one_thread(monkeypatch):
    """The scaler kept between frames converts each exactly as a fresh ``frame.reformat`` would,
    across a resolution change; the decoder runs on the calling thread (no threads of its own)."""
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (48, 96, 3), np.uint8) for _ in range(10)]
    data = encode("mpegts", "libx264", 10, size=(96, 48), images=images) + encode(
        "mpegts", "libx264", 10, size=(64, 64), pts=[12 + i for i in range(10)]
    )
    with av.open(io.BytesIO(data)) as c:
        want = [f.reformat(width=64, height=32, format="rgb24").to_ndarray() for f in c.decode(video=0)]
    threads = []
    decoded = dfstream.engine.media.video._decoded

    def spy(container, stream, *args):
        threads.append(stream.codec_context.thread_count)
        yield from decoded(container, stream, *args)

    monkeypatch.setattr(dfstream.engine.media.video, "_decoded", spy)
    block = decode_video(data, RATE, 64)  # every native frame is a grid point
    assert threads == [1]
    assert len(block.frames) == len(want) == 20
    assert all(np.array_equal(got, w) for got, w in zip(block.frames, want))


@pytest.mark.parametrize(
    "rotation,hflip,turns,mirror",
    [(90, False, 1, False), (-90, False, -1, False), (180, False, 2, False), (90, True, 1, True), (0, True, 0, True)],
)
def test_display_rotation_is_applied(rotation, hflip, turns, mirror):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (32, 64, 3), np.uint8)
    data = encode(
        "matroska", "ffv1", 1, size=(64, 32), pix_fmt="bgr0", images=[img], rotation=rotation, hflip=hflip
    )  # lossless: exact comparison
    want = np.rot90(img, turns)
    want = want[:, ::-1] if mirror else want
    assert np.array_equal(decode_video(data, RATE, 64).frames[0], want)
    half = decode_video(data, RATE, 32).frames
    assert half.shape[1:3] == (want.shape[0] // 2, want.shape[1] // 2)


def test_blocks_are_exact_consecutive_and_equal_whole_decode(tmp_path):
    data = encode("matroska", "libx264")
    blocks = list(iter_video(data, 10, 64, block_seconds=0.3))
    assert [len(b.frames) for b in blocks] == [3] * 6 + [2]
    assert [b.t0 for b in blocks] == pytest.approx([0.3 * i for i in range(7)])
    for a, b in zip(blocks, blocks[1:]):
        assert b.t0 == pytest.approx(a.t0 + a.duration)
    whole = decode_video(data, 10, 64)
    assert np.array_equal(np.concatenate([b.frames for b in blocks]), whole.frames)
    free = list(iter_video(data, 10, 64))
    assert all(len(b.frames) <= 10 for b in free)
    assert np.array_equal(np.concatenate([b.frames for b in free]), whole.frames)


def _corrupt_packet(data: bytes, which: int) -> bytes:
    """``data`` with the payload of video packet ``which`` (in file order) overwritten with noise."""
    with av.open(io.BytesIO(data)) as c:
        packets = [(p.pos, p.size) for p in c.demux(video=0) if p.size]
    pos, size = packets[which]
    out = bytearray(data)
    out[pos + 4 : pos + size - 4] = np.random.default_rng(1).integers(0, 256, size - 8, np.uint8).tobytes()
    return bytes(out)


def test_corrupt_packet_is_dropped_and_the_previous_frame_held():
    # Observed: H.264 in Matroska: the decoder rejects the packet (InvalidDataError); the
    # frame is missing, frames referencing it still decode (concealed).
    data = _corrupt_packet(encode("matroska", "libx264"), 25)
    block = decode_video(data, RATE, 64)
    assert block.dropped >= 1 and len(block.frames) == 50 and block.t0 == 0.0
    got = indices(block)  # observed: frame 24 lost, 23 held in its slot, 25..49 exact
    lost = [i for i in range(50) if got[i] != i]
    assert 1 <= len(lost) <= 3 and lost[0] > 10
    assert all(got[i] == got[i - 1] for i in lost)  # each lost slot holds the frame before


def test_corrupt_mpegts_payload_does_not_stop_decoding():
    # Observed: in MPEG-TS, the H.264 decoder silently skips the damaged frame (no error,
    # so dropped may stay 0); the grid stays complete and the frame before is held.
    data = bytearray(encode("mpegts", "libx264"))
    middle = len(data) // 188 // 2 * 188
    for k in range(middle, middle + 3 * 188, 188):
        data[k + 4 : k + 188] = np.random.default_rng(2).integers(0, 256, 184, np.uint8).tobytes()
    start = first_time(bytes(data))
    block = decode_video(bytes(data), RATE, 64)
    t0, picks = expected(start, 50, RATE)
    assert block.t0 == t0 and len(block.frames) == len(picks)
    assert indices(block)[:10] == picks[:10]


def test_chunk_frame_limit_applies_to_bytes_only(tmp_path):
    data = encode("matroska", "libx264")
    limits = LimitsConfig(max_chunk_frames=9)
    with pytest.raises(MediaError) as e:
        decode_video(data, 5, 64, limits)
    assert e.value.reason == "too-many-frames"
    assert len(decode_video(data, 5, 64, LimitsConfig(max_chunk_frames=10)).frames) == 10
    path = tmp_path / "clip.mkv"
    path.write_bytes(data)
    assert len(decode_video(path, 5, 64, limits).frames) == 10


def test_frame_pixel_limit(tmp_path):
    data = encode("matroska", "libx264", 2)
    path = tmp_path / "clip.mkv"
    path.write_bytes(data)
    for source in (data, path):
        with pytest.raises(MediaError) as e:
            decode_video(source, 5, 64, LimitsConfig(max_frame_pixels=64 * 64 - 1))
        assert e.value.reason == "frame-too-large"
    assert decode_video(data, 5, 64, LimitsConfig(max_frame_pixels=64 * 64)) is not None


def test_decode_timeout_applies_to_bytes():
    with pytest.raises(MediaError) as e:
        list(iter_video(encode("matroska", "libx264", 5), 5, 64, limits=LimitsConfig(decode_timeout_seconds=1e-9)))
    assert e.value.reason == "decode-timeout"


def test_audio_only_has_no_video(tmp_path):
    path = tmp_path / "tone.wav"
    with av.open(str(path), "w", format="wav") as out:
        a = out.add_stream("pcm_s16le", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1600), np.int16), format="s16", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        out.mux(a.encode(frame))
        out.mux(a.encode(None))
    for source in (path, path.read_bytes()):
        assert not has_video(source)
        assert decode_video(source, 5, 64) is None
        with pytest.raises(MediaError) as e:
            list(iter_video(source, 5, 64))
        assert e.value.reason == "no-video"


def test_too_short_for_the_grid_gives_zero_frames():
    block = decode_video(encode("matroska", "libx264", 1, pts=[1], time_base=Fraction(1, 100)), 5, 64)
    assert block.frames.shape == (0, 64, 64, 3) and block.t0 == pytest.approx(0.2)


@pytest.mark.parametrize("payload,reason", [(b"", "empty"), (b"\x00garbage" * 100, "not-media")])
def test_bad_bytes_raise_media_error(payload, reason):
    for call in (
        lambda: decode_video(payload, 5, 64),
        lambda: has_video(payload),
        lambda: list(iter_video(payload, 5, 64)),
    ):
        with pytest.raises(MediaError) as e:
            call()
        assert e.value.reason == reason


def test_bad_arguments_raise_value_error():
    data = encode("matroska", "libx264", 2)
    for fps, side in ((0, 64), (5, 0)):
        with pytest.raises(ValueError):
            decode_video(data, fps, side)
    with pytest.raises(ValueError):
        list(iter_video(data, 5, 64, block_seconds=0))


def test_video_stream_without_frames_is_no_video():
    buf = io.BytesIO()
    with av.open(buf, "w", format="matroska") as out:
        v = out.add_stream("libx264", rate=RATE)
        v.width, v.height, v.pix_fmt = 64, 64, "yuv420p"
        a = out.add_stream("pcm_s16le", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1600), np.int16), format="s16", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        out.mux(a.encode(frame))
        out.mux(a.encode(None))
    assert has_video(buf.getvalue())
    with pytest.raises(MediaError) as e:
        decode_video(buf.getvalue(), 5, 64)
    assert e.value.reason == "no-video"


def test_nothing_decodable_is_corrupt():
    data = encode("matroska", "libx264", 10)
    for which in range(10):
        data = _corrupt_packet(data, which)
    with pytest.raises(MediaError) as e:
        decode_video(data, 5, 64)
    assert e.value.reason == "corrupt"


@pytest.mark.parametrize("fps", [5, 7, 25])
def test_frames_no_grid_point_shows_are_dropped_by_the_decoder_and_the_samples_stay_the_same(monkeypatch, fps):
    """H.264 with non-reference B-frames: those that no grid point shows are sent to be dropped;
    the sampled frames are those of decoding every packet, even with a gap check that tolerates
    no dropped frame's gap (it still sees the dropped frames' times)."""
    y, x = np.mgrid[0:64, 0:64]
    images = [
        np.stack([(3 * x + 2 * i) % 256, (3 * y + i) % 256, (x + y + i) % 256], -1).astype(np.uint8) for i in range(75)
    ]  # smooth motion: x264 codes B-frames
    data = encode(
        "matroska", "libx264", 75, images=images, options={"x264-params": "bframes=2:b-adapt=0:b-pyramid=none"}
    )
    strict = LimitsConfig(max_gap_seconds=0.001)  # a dropped frame's 40 ms would be a jump
    skipped, decoded = [], []
    skip, decode = dfstream.engine.media.video._Sampler.skip, av.Packet.decode

    def spy_skip(self, t, end):
        skipped.append(t)
        skip(self, t, end)

    def spy_decode(packet):
        frames = decode(packet)
        decoded.extend(f.pts for f in frames)
        return frames

    monkeypatch.setattr(dfstream.engine.media.video._Sampler, "skip", spy_skip)
    monkeypatch.setattr(av.Packet, "decode", spy_decode)
    got = decode_video(data, fps, 64, strict)
    out = len(decoded)
    monkeypatch.setattr(dfstream.engine.media.video, "_unshown", lambda *args: None)
    want = decode_video(data, fps, 64, strict)
    assert len(decoded) - out == 75  # without dropping, every frame decodes
    assert got.t0 == want.t0 and len(got.frames) == len(want.frames) == math.ceil(75 * fps / RATE)
    assert np.array_equal(got.frames, want.frames)
    if fps == RATE:  # every frame is a grid point: nothing to drop
        assert skipped == [] and out == 75
    else:
        assert skipped and out < 75  # the decoder dropped some of those sent to be dropped
