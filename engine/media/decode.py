"""PyAV decoding into float32 mono 16 kHz audio stamped with stream time.

One mechanism for files and bytes: :func:`iter_audio` opens a path or a bytes
payload with PyAV, places every decoded frame on the timeline by its PTS (gaps
filled with silence, overlaps trimmed), mixes channels down to mono and
resamples with soxr's streaming resampler, whose output is identical to
resampling the whole signal at once.

Raw PCM payloads (content types ``audio/L16;rate=R[;channels=C]`` for 16-bit
big-endian PCM as in RFC 2586, ``audio/pcm;format=s16le|f32le;rate=R`` for
little-endian) are parsed with NumPy and take the same resampling path.

Untrusted media is bounded by :class:`dfstream.engine.media.limits.LimitsConfig` (config
section ``limits``): native sample rate and channel count, timestamp jumps
(filled with silence, so a jump of hours would be hours of zeros), and for
chunks (bytes payloads) the decoded duration and the wall time spent
decoding (checked between frames). Each breach is a :class:`MediaError` with
its own reason.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import soxr

from dfstream.engine.core.errors import MediaError
from dfstream.engine.core.types import Chunk
from dfstream.engine.media.limits import LIMITS, LimitsConfig

SAMPLE_RATE = 16000
"""Sample rate (Hz) of all decoded audio."""

_GAP_TOLERANCE = 0.002  # seconds of PTS jitter ignored before inserting silence / trimming


COUNTED_FROM_SKIP = {"mp3"}
"""Container formats without timestamps of their own, whose times FFmpeg counts in samples from
the encoder delay it skipped (an MP3's LAME header: 1105 samples, 69 ms at 16 kHz): the first
decoded sample is the stream's time 0, whatever its time says."""


@dataclass(frozen=True)
class AudioBlock:
    """Decoded audio: ``samples`` float32, shape ``(n,)``, mono at 16 kHz;
    ``t0`` the stream time (seconds) of ``samples[0]``."""

    samples: np.ndarray
    t0: float

    @property
    def duration(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def place(
    samples: np.ndarray, start: int, expected: int, rate: float, max_gap_seconds: float = LIMITS.max_gap_seconds, fill=0
) -> np.ndarray:
    """Align ``samples`` that start at index ``start`` to a timeline expecting ``expected`` next.

    A gap larger than the PTS tolerance (2 ms) is filled with ``fill`` (silence);
    an overlap is trimmed from the front; smaller jitter is ignored. Indices are
    in units at ``rate`` per second (audio samples; also video frames or masks,
    any array whose first axis is time). A gap over ``max_gap_seconds`` raises
    MediaError ``timestamp-jump``.
    """
    if abs(start - expected) <= _GAP_TOLERANCE * rate:
        return samples
    check_gap((start - expected) / rate, max_gap_seconds)
    if start > expected:
        gap = np.full((start - expected,) + samples.shape[1:], fill, samples.dtype)
        return np.concatenate([gap, samples])
    return samples[expected - start :]


def check_gap(seconds: float, max_gap_seconds: float) -> None:
    """MediaError ``timestamp-jump`` when a gap of ``seconds`` would be filled with more silence than allowed."""
    if seconds > max_gap_seconds:
        raise MediaError(
            f"timestamps jump {seconds:.1f} s ahead; at most {max_gap_seconds:g} s of missing audio "
            "is filled with silence (limits.max_gap_seconds)",
            "timestamp-jump",
        )


def check_format(rate: int, channels: int, limits: LimitsConfig) -> None:
    """MediaError ``bad-rate`` / ``too-many-channels`` for a native format outside ``limits``."""
    if not limits.min_sample_rate <= rate <= limits.max_sample_rate:
        raise MediaError(
            f"sample rate {rate} Hz is outside [{limits.min_sample_rate}, {limits.max_sample_rate}] "
            "(limits.min_sample_rate / max_sample_rate)",
            "bad-rate",
        )
    if not 1 <= channels <= limits.max_channels:
        raise MediaError(
            f"{channels} audio channels; at most {limits.max_channels} (limits.max_channels)", "too-many-channels"
        )


def _check_length(samples: int, limits: LimitsConfig) -> None:
    if samples > limits.max_chunk_seconds * SAMPLE_RATE:
        raise MediaError(
            f"chunk decodes to more than {limits.max_chunk_seconds:g} s of audio (limits.max_chunk_seconds)", "too-long"
        )


class _Timeline:
    """Places frames of one native sample rate on a continuous timeline, then resamples.

    Parameters
    ----------
    rate : int
        Native sample rate (Hz) of the frames pushed.
    t0 : float
        Stream time (seconds) of native sample 0.
    max_gap_seconds : float
        Longest timestamp gap filled with silence.
    """

    def __init__(self, rate: int, t0: float, max_gap_seconds: float):
        self.rate, self.t0, self.pos, self.max_gap = rate, t0, 0, max_gap_seconds
        self.resampler = (
            None if rate == SAMPLE_RATE else soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
        )

    def push(self, mono: np.ndarray, time: float | None) -> np.ndarray:
        """Add native-rate samples starting at stream time ``time`` (None: contiguous)."""
        if time is not None:
            mono = place(mono, round((time - self.t0) * self.rate), self.pos, self.rate, self.max_gap)
        self.pos += len(mono)
        return self._resample(mono, last=False)

    def flush(self) -> np.ndarray:
        return self._resample(np.zeros(0, np.float32), last=True)

    def _resample(self, mono: np.ndarray, last: bool) -> np.ndarray:
        if self.resampler is None:
            return mono
        return self.resampler.resample_chunk(mono, last=last)


def _check_riff(head: bytes, size: int) -> None:
    """WAV: FFmpeg estimates the duration from the file size, so a truncated file
    looks whole to it; the RIFF header's declared size is the only record of the
    real length."""
    if len(head) >= 8 and head[:4] == b"RIFF":
        declared = int.from_bytes(head[4:8], "little") + 8
        if declared > size and declared != 0xFFFFFFFF + 8:  # 0xFFFFFFFF: size unknown (streamed)
            raise MediaError(f"truncated: the RIFF header declares {declared} bytes, the file has {size}", "truncated")


class Extent:
    """Where the demuxed packets of each stream end (stream time, seconds), as a pass reads them.

    A file is truncated when its data ends before its own index says it should; a track that is
    merely shorter than another is not. Telling the two apart needs the end of every track's
    data, not only the decoded one's (:func:`check_complete`).
    """

    def __init__(self):
        self.ends: dict[int, float] = {}

    def see(self, packet: av.Packet) -> None:
        """Account for ``packet`` (flush packets and packets without a time are skipped)."""
        if packet.pts is None or not packet.time_base:
            return
        end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
        index = packet.stream.index
        if end > self.ends.get(index, -math.inf):
            self.ends[index] = end

    def latest(self) -> float | None:
        """The end of the data of the track that ends last (None before any timed packet)."""
        return max(self.ends.values(), default=None)


class Demuxed:
    """A chunk's payload opened once and read in one pass for several decoders (audio and video).

    Opening probes the streams (FFmpeg decodes a little of each to learn its parameters), which
    costs as much as decoding a 2 s chunk's audio; :func:`dfstream.engine.media.blocks.decode_media` opens once and
    hands this object to :func:`iter_audio` and :func:`dfstream.engine.media.video.iter_video` as their ``source``.
    :meth:`demux` replays one stream's packets as ``container.demux(stream)`` would give them (its
    flush packet included), and an error that stopped the pass is raised to each decoder after the
    packets read before it. The pass reads every stream, so that :attr:`extent` knows where each
    track's data ends. Other attributes are the container's. Counts as a chunk (:func:`is_chunk`).
    """

    def __init__(self, payload: bytes, pick):
        """Open ``payload`` and keep the packets of the streams ``pick(container)`` returns (a list)."""
        self.container = open_media(payload)
        self.packets: dict[int, list[av.Packet]] = {}
        self.extent = Extent()
        self.error: BaseException | None = None
        try:
            wanted = {s.index for s in pick(self.container)}
            if wanted:
                for packet in self.container.demux():
                    self.extent.see(packet)
                    if packet.stream.index in wanted:
                        self.packets.setdefault(packet.stream.index, []).append(packet)
        except (av.error.FFmpegError, IndexError) as e:
            self.error = e
        except BaseException:
            self.container.close()
            raise

    def demux(self, stream) -> Iterator[av.Packet]:
        yield from self.packets.get(stream.index, ())
        if self.error is not None:
            raise self.error

    def __getattr__(self, name):
        return getattr(self.container, name)

    def __enter__(self) -> Demuxed:  # a decoder's ``with open_media(...)``: the owner closes (close())
        return self

    def __exit__(self, *exc) -> None:
        pass

    def close(self) -> None:
        self.packets.clear()
        self.container.close()


def is_chunk(source) -> bool:
    """Whether ``source`` is a chunk (bytes, or a :class:`Demuxed` payload) rather than a file path:
    chunks are bounded in duration, frames and decoding time (``limits``)."""
    return isinstance(source, (bytes, bytearray, memoryview, Demuxed))


def open_media(source) -> av.container.InputContainer:
    """Open a path or bytes with PyAV, mapping failures to MediaError (a :class:`Demuxed` is open)."""
    if isinstance(source, Demuxed):
        return source
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise MediaError("empty payload", "empty")
        _check_riff(bytes(source[:8]), len(source))
        handle = io.BytesIO(bytes(source))
    else:
        path = Path(source)
        if not path.exists():
            raise MediaError(f"no such file: {path}")
        if path.is_dir():
            raise MediaError(f"is a directory, not a media file: {path}")
        size = path.stat().st_size
        if size == 0:
            raise MediaError(f"empty file: {path}", "empty")
        with open(path, "rb") as f:
            _check_riff(f.read(8), size)
        handle = str(path)
    try:
        container = av.open(handle, mode="r", metadata_errors="replace")  # metadata is not ours to trust
    except av.error.FFmpegError as e:
        raise MediaError(
            f"not a readable media file ({e.__class__.__name__}: {e.strerror or e})", "not-media"
        ) from None
    if not container.streams:
        container.close()
        raise MediaError(
            "no stream in the file: not media, or cut before its index (an MP4 without its moov atom)", "not-media"
        )
    return container


def _audio_stream(container):
    if not container.streams.audio:
        raise MediaError("no audio stream", "no-audio")
    return container.streams.audio[0]


def check_complete(container, stream, end: float, extent: Extent) -> None:
    """MediaError ``truncated`` when the data of ``stream`` ends before the file's own index says it should.

    ``end`` is the stream time (s) where the decoded track ends. A track's own declared duration
    (MP4 / MOV track headers, FLAC's STREAMINFO, an MP3's Xing header) is held against that track;
    a container whose tracks declare none (Matroska / WebM, MPEG-TS) declares only its own
    duration, that of its longest track, which is held against the end of the data of every track
    (``extent``): a track that is shorter than another, or starts later, is not truncated.
    Muxers disagree on whether a declared duration counts from time 0 or from the first
    timestamp, so the more lenient reading is taken; so is a tolerance of 2 % (at least 0.1 s).
    """
    if stream.duration is not None and stream.time_base is not None:
        declared = float(stream.duration * stream.time_base)
        first = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        have = max(end, extent.ends.get(stream.index, end))
    elif container.duration is not None:
        declared = container.duration / av.time_base
        first = container.start_time / av.time_base if container.start_time is not None else 0.0
        have = max(end, extent.latest() if extent.ends else end)
    else:
        return
    if max(have, have - first) < declared - max(0.1, 0.02 * declared):
        raise MediaError(f"truncated: the file declares {declared:.2f} s, its data ends at {have:.2f} s", "truncated")


_SAMPLE_TYPES = {
    "u8": np.uint8,
    "s16": np.int16,
    "s32": np.int32,
    "s64": np.int64,
    "flt": np.float32,
    "dbl": np.float64,
}


def _plane(plane, dtype: np.dtype, count: int) -> np.ndarray:
    if plane.buffer_size < count * dtype.itemsize:
        raise MediaError("corrupt: a decoded frame holds fewer samples than it declares", "corrupt")
    return np.frombuffer(plane, dtype, count)


def _frame_to_mono(frame: av.AudioFrame) -> np.ndarray:
    """One decoded frame -> float32 mono at its native rate (channel mean).

    Read straight from the frame's planes, every length checked against the
    buffer: PyAV's own conversion (``AudioResampler``, ``to_ndarray``) reads
    out of bounds on some malformed channel layouts -- fuzzing found an AAC
    chunk switching to "31 channels" that crashed the process.
    """
    fmt, channels, n = frame.format, frame.layout.nb_channels, frame.samples
    kind = fmt.name[:-1] if fmt.is_planar else fmt.name
    if kind not in _SAMPLE_TYPES:
        raise MediaError(f"unsupported sample format {fmt.name!r}", "unsupported-codec")
    dtype = np.dtype(_SAMPLE_TYPES[kind])
    planes = frame.planes
    if fmt.is_planar:
        if len(planes) < channels:
            raise MediaError(f"corrupt: {len(planes)} sample planes for {channels} channels", "corrupt")
        data = np.stack([_plane(p, dtype, n) for p in planes[:channels]])
    else:
        data = _plane(planes[0], dtype, n * channels).reshape(n, channels).T
    mono = data.mean(axis=0, dtype=np.float64)
    if dtype.kind == "u":
        mono = (mono - 128.0) / 128.0
    elif dtype.kind == "i":
        mono /= float(2 ** (8 * dtype.itemsize - 1))
    return mono.astype(np.float32)


def demux(container, stream, extent: Extent | None = None) -> Iterator[av.Packet]:
    """Packets of ``stream`` (or streams), like ``container.demux(stream)``; ``extent`` sees every stream's.

    The pass reads every stream of the file (FFmpeg reads their packets anyway) so that
    ``extent`` learns where each track's data ends; a :class:`Demuxed` payload has done that
    already. PyAV raises IndexError when a malformed file (seen with MPEG-TS) sends a packet for
    a stream it did not announce; that is a corrupt input here.
    """
    if isinstance(container, Demuxed):
        if extent is not None:
            extent.ends.update(container.extent.ends)
        packets, extent = container.demux(stream), None
    else:
        packets = container.demux() if extent is not None else container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except IndexError:
            raise MediaError("corrupt: a packet refers to a stream the container does not declare", "corrupt") from None
        if extent is None:
            yield packet
        else:
            extent.see(packet)
            if packet.stream.index == stream.index:
                yield packet


def check_deadline(deadline: float | None, limits: LimitsConfig) -> None:
    """MediaError ``decode-timeout`` once ``time.monotonic()`` is past ``deadline`` (None: no deadline)."""
    if deadline is not None and time.monotonic() > deadline:
        raise MediaError(
            f"decoding took over {limits.decode_timeout_seconds:g} s (limits.decode_timeout_seconds)", "decode-timeout"
        )


def _frames(container, stream, extent: Extent) -> Iterator[av.AudioFrame]:
    """Decoded frames of ``stream``, like ``container.decode(stream)`` (see :func:`demux`)."""
    for packet in demux(container, stream, extent):
        yield from packet.decode()


def iter_audio(source, block_seconds: float | None = None, limits: LimitsConfig = LIMITS) -> Iterator[AudioBlock]:
    """Decode the first audio stream of ``source`` incrementally.

    Parameters
    ----------
    source : str | Path | bytes
        A media file path, or the bytes of a self-contained container.
    block_seconds : float, optional
        Yield blocks of exactly ``round(block_seconds * 16000)`` samples (the
        last may be shorter); ``None`` yields whatever each packet decodes to.
    limits : LimitsConfig
        Bounds (see module doc); duration and decode time apply to bytes only.

    Yields
    ------
    AudioBlock
        Consecutive, gapless blocks of float32 mono 16 kHz audio.

    Raises
    ------
    MediaError
        Missing, empty, unreadable, audio-less, corrupt or truncated input,
        or input beyond ``limits``.
    """
    block = None if block_seconds is None else max(1, round(block_seconds * SAMPLE_RATE))
    chunk = is_chunk(source)
    deadline = time.monotonic() + limits.decode_timeout_seconds if chunk else None
    with open_media(source) as container:
        stream = _audio_stream(container)
        timeline = None
        pending: list[np.ndarray] = []
        n_pending, emitted, t0, first = 0, 0, 0.0, 0.0
        extent = Extent()
        try:
            for frame in _frames(container, stream, extent):
                check_deadline(deadline, limits)
                check_format(frame.sample_rate, frame.layout.nb_channels, limits)
                if timeline is None:
                    first = float(frame.time) if frame.time is not None else 0.0
                    timeline = _Timeline(frame.sample_rate, first, limits.max_gap_seconds)
                    t0 = 0.0 if container.format.name in COUNTED_FROM_SKIP else first
                elif frame.sample_rate != timeline.rate:
                    raise MediaError(f"sample rate changes mid-stream ({timeline.rate} -> {frame.sample_rate} Hz)")
                out = timeline.push(_frame_to_mono(frame), frame.time)
                pending.append(out)
                n_pending += len(out)
                if chunk:
                    _check_length(emitted + n_pending, limits)
                while block is not None and n_pending >= block:
                    samples, pending, n_pending = _take(pending, block)
                    yield AudioBlock(samples, t0 + emitted / SAMPLE_RATE)
                    emitted += len(samples)
                if block is None and n_pending:
                    yield AudioBlock(np.concatenate(pending), t0 + emitted / SAMPLE_RATE)
                    emitted += n_pending
                    pending, n_pending = [], 0
        except av.error.DecoderNotFoundError:
            raise MediaError(
                "unsupported codec: FFmpeg has no decoder for this audio stream", "unsupported-codec"
            ) from None
        except av.error.FFmpegError as e:
            at = (emitted + n_pending) / SAMPLE_RATE
            raise MediaError(f"corrupt or truncated media at {at:.2f} s ({e.__class__.__name__})", "corrupt") from None
        if timeline is None:
            raise MediaError("audio stream holds no decodable audio", "no-audio")
        pending.append(timeline.flush())
        tail = np.concatenate(pending)
        while len(tail):
            size = len(tail) if block is None else min(block, len(tail))
            yield AudioBlock(tail[:size], t0 + emitted / SAMPLE_RATE)
            emitted += size
            tail = tail[size:]
        check_complete(container, stream, first + emitted / SAMPLE_RATE, extent)


def _take(pending: list[np.ndarray], n: int):
    whole = np.concatenate(pending)
    return whole[:n], [whole[n:]], len(whole) - n


def decode_audio(source, limits: LimitsConfig = LIMITS) -> AudioBlock:
    """Decode all audio of ``source`` (path or bytes) into one :class:`AudioBlock` (see :func:`iter_audio`)."""
    blocks = list(iter_audio(source, None, limits))
    if not blocks:
        return AudioBlock(np.zeros(0, np.float32), 0.0)
    return AudioBlock(np.concatenate([b.samples for b in blocks]), blocks[0].t0)


def _content_params(content_type: str) -> tuple[str, dict]:
    kind, *params = [p.strip() for p in content_type.split(";")]
    values = {}
    for p in params:
        key, _, value = p.partition("=")
        values[key.strip().lower()] = value.strip()
    return kind.lower(), values


_RAW_FORMATS = {("audio/l16", None): ">i2", ("audio/pcm", "s16le"): "<i2", ("audio/pcm", "f32le"): "<f4"}


def pcm16_samples(pcm: bytes) -> np.ndarray:
    """16-bit little-endian mono PCM -> float32 samples in [-1, 1] (MediaError on odd length)."""
    if len(pcm) % 2:
        raise MediaError(f"odd-length PCM: {len(pcm)} bytes is not a whole number of 16-bit samples", "bad-pcm")
    return np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0


def raw_pcm_content_type(sample_rate: int = SAMPLE_RATE) -> str:
    """Content type of the float32 little-endian mono chunks replay produces."""
    return f"audio/pcm;format=f32le;rate={sample_rate}"


def decode_raw_pcm(payload: bytes, content_type: str, t0: float, limits: LimitsConfig = LIMITS) -> AudioBlock:
    """Parse a raw PCM payload described by ``content_type`` (see module doc)."""
    kind, params = _content_params(content_type)
    dtype = _RAW_FORMATS.get((kind, params.get("format") if kind == "audio/pcm" else None))
    if dtype is None:
        raise MediaError(
            f"unsupported raw PCM content type {content_type!r}; use "
            "audio/L16;rate=R or audio/pcm;format=s16le|f32le;rate=R",
            "unsupported-codec",
        )
    try:
        rate = int(params["rate"])
        channels = int(params.get("channels", 1))
    except (KeyError, ValueError):
        raise MediaError(
            f"raw PCM content type {content_type!r} needs rate=N (and optional channels=N)", "bad-pcm"
        ) from None
    check_format(rate, channels, limits)
    width = np.dtype(dtype).itemsize * channels
    if len(payload) % width:
        raise MediaError(
            f"raw PCM payload of {len(payload)} bytes is not a whole number of {width}-byte frames", "bad-pcm"
        )
    _check_length(round(len(payload) // width * SAMPLE_RATE / rate), limits)
    data = np.frombuffer(payload, dtype=dtype).reshape(-1, channels)
    mono = data.astype(np.float32).mean(axis=1)
    if np.dtype(dtype).kind == "i":
        mono /= 32768.0
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    return AudioBlock(np.ascontiguousarray(mono, dtype=np.float32), t0)


def is_raw_pcm(content_type: str) -> bool:
    return _content_params(content_type)[0] in ("audio/l16", "audio/pcm")


def decode_chunk(chunk: Chunk, limits: LimitsConfig = LIMITS) -> AudioBlock:
    """Decode one chunk's payload; ``chunk.t0`` (if set) is the stream time of its first sample."""
    if is_raw_pcm(chunk.content_type):
        return decode_raw_pcm(chunk.payload, chunk.content_type, chunk.t0 or 0.0, limits)
    block = decode_audio(chunk.payload, limits)
    return block if chunk.t0 is None else AudioBlock(block.samples, chunk.t0)
