"""Typed, frozen configuration, validated once at start-up.

The dataclass defaults are the base configuration (``configs/default.yaml``
spells them out); a YAML file given with ``--config`` overrides any subset.
Unknown keys and wrong types are rejected with a message naming the key, the
expected type and the valid keys.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from dfstream.engine.core.errors import ConfigError


@dataclass(frozen=True)
class EncoderConfig:
    """The self-supervised speech encoder (``transformers``).

    ``kind`` is ``wavlm`` or ``wav2vec2``. With ``pretrained`` set to a local
    directory, weights load with ``local_files_only=True`` and the size fields
    are ignored; otherwise the encoder is built from these sizes (random init).
    ``feature_norm`` is the convolutional feature extractor's normalisation:
    ``layer`` (each 20 ms frame normalised on its own, as in WavLM Large) keeps
    every frame's features a function of its own 25 ms of audio, so a stream's
    overlapping windows share them (:mod:`dfstream.engine.runtime.frame_cache`); ``group``
    (WavLM Base) normalises over the whole window, so every window recomputes them.
    """

    kind: str = "wavlm"
    pretrained: typing.Optional[str] = None
    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 1024
    conv_dim: int = 256
    feature_norm: str = "layer"
    seed: int = 0


@dataclass(frozen=True)
class AudioBranchConfig:
    """Audio branch: encoder + learned layer weights (+ learned spectral path) + BiLSTM back-end.

    ``mel_bands`` > 0 adds :mod:`dfstream.modalities.audio.spectral`: log-mel frames on the
    encoder's grid through a small CNN whose channels are ``mel_channels``,
    summed into the back-end's input; 0 leaves the encoder alone.
    """

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    mel_bands: int = 64
    mel_channels: int = 32
    backend_dim: int = 128
    backend_layers: int = 2
    dropout: float = 0.1


@dataclass(frozen=True)
class ViTConfig:
    """The vision transformer (``transformers`` ``ViTModel``) of the visual branch.

    With ``pretrained`` set to a local directory, weights load with
    ``local_files_only=True`` and the size fields are ignored; otherwise the
    encoder is built from these sizes (random init).
    """

    pretrained: typing.Optional[str] = None
    image_size: int = 112
    patch_size: int = 16
    hidden_size: int = 192
    num_layers: int = 4
    num_heads: int = 3
    intermediate_size: int = 768
    seed: int = 0


@dataclass(frozen=True)
class VisualBranchConfig:
    """Visual branch: sampled frames -> face crops -> ViT -> temporal back-end.

    Frames are sampled at ``fps`` on a grid of stream time and decoded scaled
    so that their longer side is at most ``decode_side`` pixels (the face
    detector's input). ``crop`` ``face`` scores a crop of the tracked largest
    face, ``frame`` the whole frame; ``face_detector`` names an entry of
    ``dfstream.modalities.visual.faces.FACE_DETECTORS`` (``haar``, OpenCV's cascade,
    needs nothing; ``blazeface``, MediaPipe's detector, finds far more faces
    and needs ``dfstream fetch-face-model`` once). ``detect_every`` > 1 runs the
    detector on every n-th sampled frame while a face is tracked (the box is
    kept in between). ``mouth_channels`` > 0 adds :mod:`dfstream.modalities.visual.mouth`:
    the crop's mouth region and its motion through a small CNN with that many
    channels, summed into the back-end's input; 0 leaves the ViT alone.
    """

    encoder: ViTConfig = field(default_factory=ViTConfig)
    fps: float = 5.0
    decode_side: int = 320
    crop: str = "face"
    face_detector: str = "haar"
    face_margin: float = 0.25
    detect_every: int = 1
    mouth_channels: int = 32
    backend_dim: int = 128
    backend_layers: int = 1
    dropout: float = 0.1


FUSION_RULES = ("weighted", "any")
"""The values of ``fusion.rule`` (:mod:`dfstream.fusion.fusion`)."""


@dataclass(frozen=True)
class FusionConfig:
    """Audio-visual fusion (:mod:`dfstream.fusion.fusion`), used when more than one branch is configured.

    ``rule`` ``weighted`` (a gated average; ``hidden`` is the width of the
    per-modality gate that weighs each branch per time step) or ``any``
    (noisy-OR: forged where any present modality is).
    """

    rule: str = "weighted"
    hidden: int = 32


@dataclass(frozen=True)
class InferenceConfig:
    """Sliding-window inference on a grid of stream time.

    Each window scores ``hop_seconds`` of new audio and sees ``context_seconds``
    of earlier audio; both must be multiples of the branch's frame step (20 ms).
    ``dtype`` ``bfloat16`` converts the encoders' weights for inference (about twice
    as fast on CPUs with native bf16, ten times slower where bf16 is emulated; what was
    trained on top of them - back-ends, spectral and mouth paths, fusion - stays float32,
    :func:`dfstream.engine.runtime.precision.encoders_in`; training always runs in float32); ``auto`` (the
    default) is bfloat16 where the hardware computes it natively and float32 elsewhere
    (:func:`dfstream.engine.runtime.device.resolve_dtype`).
    ``quantize`` ``int8`` applies dynamic int8 quantization to the branches'
    feed-forward linear layers (CPU only; attention projections stay float
    because the encoders read their weights directly). ``feature_extractor``
    ``fused`` runs the speech encoder's convolutional feature extractor as matrix
    products over time-major frames (:mod:`dfstream.modalities.audio.conv_frames`; the same
    result within float rounding; on this project's CPU 1.3-2x faster in float32,
    about 3x in bf16), and at inference (:class:`dfstream.engine.runtime.detector.Detector`) WavLM's
    attention through torch's fused kernel (:mod:`dfstream.modalities.audio.attention`);
    ``transformers`` runs the library's modules as they are (the reference, and
    what peers run).
    ``parallel_branches`` runs the branches of a batch at once, each on its own
    thread, until they meet at the fusion (same results: each branch computes what
    it computes alone). ``threads`` is torch's intra-op CPU thread count; 0 (the
    default) is torch's default, less one per decode worker where a scheduler
    decodes beside the model (``scheduler.decode_workers``), divided among the
    branches while several run at once; at least 1
    (:func:`dfstream.engine.runtime.device.intra_op_threads`). A batch in which one branch has
    media (audio-only streams of an audio-visual model) gives it all of them.
    """

    hop_seconds: float = 2.0
    context_seconds: float = 2.0
    batch_size: int = 8
    device: str = "auto"
    threads: int = 0
    dtype: str = "auto"
    quantize: str = "none"
    feature_extractor: str = "fused"
    parallel_branches: bool = True


@dataclass(frozen=True)
class SchedulerConfig:
    """Batching across streams (:mod:`dfstream.engine.runtime.scheduler`).

    A batch holds at most ``batch_chunks`` decoded chunks of any streams; the
    model thread waits at most ``max_wait_ms`` after the first is ready for
    more. ``decode_workers`` threads decode chunks off the model thread. At most
    ``max_pending`` chunks wait unresolved; submitting more blocks.
    """

    batch_chunks: int = 16
    max_wait_ms: float = 10.0
    decode_workers: int = 2
    max_pending: int = 256


@dataclass(frozen=True)
class LimitsConfig:
    """Bounds on what untrusted media may make the decoder do (:mod:`dfstream.engine.media.decode`).

    Every violation is a :class:`~dfstream.engine.core.errors.MediaError` with its own reason
    (in brackets). Each applies to chunks (bytes payloads from Kafka or a topic
    replay); files replayed from disk are checked for rate, channels and
    gaps but may be as long as they are, decoded block by block.
    """

    max_chunk_seconds: float = 600.0     # decoded audio per chunk [too-long]
    decode_timeout_seconds: float = 30.0  # wall time decoding one chunk, checked between frames [decode-timeout]
    max_gap_seconds: float = 600.0       # a timestamp jump filled with silence, files included [timestamp-jump]
    max_channels: int = 64               # [too-many-channels]
    min_sample_rate: int = 1000          # native rates outside [min, max] Hz [bad-rate]
    max_sample_rate: int = 384000
    max_chunk_frames: int = 3000         # sampled video frames per chunk [too-many-frames]
    max_frame_pixels: int = 8192 * 8192  # a decoded video frame's width x height [frame-too-large]


@dataclass(frozen=True)
class LocalizerConfig:
    """Frame probabilities -> spans: hysteresis, merge, minimum duration.

    A span opens when a frame's probability reaches ``onset`` and ends when it
    falls below ``offset``; spans separated by at most ``merge_gap`` seconds are
    merged; spans shorter than ``min_duration`` seconds are dropped.
    """

    onset: float = 0.5
    offset: float = 0.4
    min_duration: float = 0.1
    merge_gap: float = 0.1
    modality_threshold: float = 0.5


@dataclass(frozen=True)
class AttributionConfig:
    """Attribution of forged spans to known generators.

    ``index`` is a directory written by ``dfstream index build`` (null: no
    attribution, detections carry ``attribution: []``). ``threshold`` is the
    open-set cosine similarity below which a span is ``unknown``; null uses the
    threshold the index calibrated at build time.
    """

    index: typing.Optional[str] = None
    threshold: typing.Optional[float] = None
    top_k: int = 3
    neighbours: int = 10


@dataclass(frozen=True)
class ReplayConfig:
    """``dfstream replay``: size of the chunks an archived file is cut into."""

    chunk_seconds: float = 2.0


@dataclass(frozen=True)
class CallHookConfig:
    """``dfstream call-hook`` and ``CallScreener``: live call audio, one verdict per hop.

    ``hop_seconds`` and ``context_seconds`` replace the inference ones for calls
    (a verdict every hop; each window sees hop + context). Hops the VAD finds
    no speech in are labelled ``no-speech`` and cost no model time. A hop whose
    score reaches ``synthetic_threshold`` is ``likely-synthetic``.
    """

    hop_seconds: float = 0.5
    context_seconds: float = 1.5
    vad: bool = True
    vad_threshold: float = 0.5
    synthetic_threshold: float = 0.5
    max_connections: int = 64
    max_connections_per_client: int = 16
    max_message_bytes: int = 65536
    idle_timeout_seconds: float = 30.0
    max_summary_detections: int = 1000


@dataclass(frozen=True)
class KafkaConfig:
    """Connection to a Kafka cluster (any: Apache Kafka, Redpanda, the dev broker).

    ``client`` passes through, unchanged, to every kafka-python client
    (consumer, producer, admin): security settings such as
    ``security_protocol: SASL_SSL``, ``sasl_mechanism``, ``sasl_plain_username``,
    ``sasl_plain_password``, ``ssl_cafile``, ``ssl_certfile``, ``ssl_keyfile``.
    """

    bootstrap_servers: str = "127.0.0.1:9092"
    client: dict = field(default_factory=dict)
    request_timeout_ms: int = 30000
    session_timeout_ms: int = 10000
    heartbeat_interval_ms: int = 1000
    max_poll_interval_ms: int = 300000


@dataclass(frozen=True)
class ServeConfig:
    """``dfstream serve``: topics, group, limits and backpressure.

    ``state_topic`` holds each stream's state after its last committed chunk
    (keyed by stream id, compacted), so that a stream moves with its partition
    on rebalance; it needs as many partitions as ``in_topic``. ``queue_chunks``
    bounds the work queue: partitions are paused while it is full and resumed
    when it has drained to half. A chunk larger than ``max_chunk_bytes`` is a
    dead letter.
    """

    in_topic: str = "media.segments"
    out_topic: str = "media.verdicts"
    dlq_topic: str = "media.segments.dlq"
    state_topic: str = "media.segments.state"
    group: str = "dfstream"
    max_chunk_bytes: int = 16 * 1024 * 1024
    queue_chunks: int = 32
    batch_chunks: int = 8
    poll_records: int = 64
    retry_backoff_seconds: float = 0.5
    retry_backoff_max_seconds: float = 10.0
    shutdown_timeout_seconds: float = 60.0
    create_topics: bool = True
    partitions: int = 4


@dataclass(frozen=True)
class TrainConfig:
    """``dfstream train``. ``val_fraction`` is used when metadata has no val split.
    ``lr_schedule`` ``cosine`` lowers the learning rate along a half cosine, epoch by
    epoch, to 5 % of ``learning_rate`` in the last epoch; ``constant`` keeps it.
    ``augment``: each training window's inputs pass through its branch's ``augment``
    (branches that have one; the visual branch flips, shifts and re-lights the mouth
    regions, one draw per window), drawn from ``seed``; validation never is.
    ``degrade``: the chance that a training window's inputs are replaced, epoch by epoch,
    by its branch's ``degrade`` copy (branches that have one; audio: through a telephone
    line, :mod:`dfstream.modalities.audio.channel`), encoded once and cached beside the clean
    inputs; drawn from ``seed``; validation never is. 0 turns it off.
    ``generator_loss``: the weight of an auxiliary loss in training: a linear classifier
    learns from the audio branch's frame embeddings which generator (the metadata's
    ``audio_model``, among train's) forged each frame of ``audio_fake_segments``, so the
    embeddings that attribution indexes separate generators. The classifier is not
    saved. 0 turns it off (and needs fewer than two generators in train to do nothing)."""

    epochs: int = 8
    batch_size: int = 16
    learning_rate: float = 0.002
    lr_schedule: str = "cosine"
    weight_decay: float = 0.01
    finetune_encoder: bool = False
    val_fraction: float = 0.2
    seed: int = 0
    augment: bool = False
    degrade: float = 0.0
    generator_loss: float = 0.0


@dataclass(frozen=True)
class Config:
    """The whole configuration. ``branches`` names entries of ``modalities.BRANCHES``."""

    branches: tuple[str, ...] = ("audio",)
    audio: AudioBranchConfig = field(default_factory=AudioBranchConfig)
    visual: VisualBranchConfig = field(default_factory=VisualBranchConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    localizer: LocalizerConfig = field(default_factory=LocalizerConfig)
    attribution: AttributionConfig = field(default_factory=AttributionConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    call_hook: CallHookConfig = field(default_factory=CallHookConfig)
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def _check(cfg: Config) -> Config:
    """Cross-field rules that types cannot express."""
    inf, loc = cfg.inference, cfg.localizer
    rules = [
        (cfg.audio.encoder.kind in ("wavlm", "wav2vec2"), "audio.encoder.kind must be 'wavlm' or 'wav2vec2'"),
        (cfg.audio.encoder.feature_norm in ("layer", "group"), "audio.encoder.feature_norm must be 'layer' or 'group'"),
        (cfg.audio.mel_bands >= 0 and cfg.audio.mel_bands % 8 == 0 and cfg.audio.mel_channels >= 2,
         "audio.mel_bands must be 0 (no spectral path) or a multiple of 8, and audio.mel_channels >= 2"),
        (inf.hop_seconds > 0, "inference.hop_seconds must be > 0"),
        (inf.context_seconds >= 0, "inference.context_seconds must be >= 0"),
        (inf.batch_size >= 1, "inference.batch_size must be >= 1"),
        (inf.dtype in ("auto", "float32", "bfloat16"), "inference.dtype must be 'auto', 'float32' or 'bfloat16'"),
        (inf.quantize in ("none", "int8"), "inference.quantize must be 'none' or 'int8'"),
        (inf.feature_extractor in ("fused", "transformers"),
         "inference.feature_extractor must be 'fused' or 'transformers'"),
        (inf.quantize == "none" or inf.dtype in ("auto", "float32"),
         "inference.quantize: int8 works on float32 weights; set inference.dtype: float32 or auto"),
        (cfg.scheduler.batch_chunks >= 1 and cfg.scheduler.decode_workers >= 1 and cfg.scheduler.max_pending >= 1,
         "scheduler.batch_chunks, decode_workers and max_pending must be >= 1"),
        (cfg.scheduler.max_wait_ms >= 0, "scheduler.max_wait_ms must be >= 0"),
        (cfg.limits.max_chunk_seconds > 0 and cfg.limits.decode_timeout_seconds > 0
         and cfg.limits.max_gap_seconds >= 0 and cfg.limits.max_channels >= 1,
         "limits.max_chunk_seconds and decode_timeout_seconds must be > 0, max_gap_seconds >= 0, "
         "max_channels >= 1"),
        (0 < cfg.limits.min_sample_rate <= cfg.limits.max_sample_rate,
         "limits needs 0 < min_sample_rate <= max_sample_rate"),
        (inf.device in ("auto", "cpu", "cuda") or inf.device.startswith("cuda:"),
         "inference.device must be 'auto', 'cpu', 'cuda' or 'cuda:N'"),
        (0 < loc.offset <= loc.onset < 1, "localizer needs 0 < offset <= onset < 1"),
        (cfg.fusion.rule in FUSION_RULES, f"fusion.rule must be one of {', '.join(FUSION_RULES)}"),
        (loc.min_duration >= 0 and loc.merge_gap >= 0, "localizer.min_duration and merge_gap must be >= 0"),
        (cfg.replay.chunk_seconds > 0, "replay.chunk_seconds must be > 0"),
        (0 <= cfg.train.val_fraction < 1, "train.val_fraction must be in [0, 1)"),
        (0 <= cfg.train.degrade <= 1, "train.degrade must be in [0, 1]"),
        (cfg.train.generator_loss >= 0, "train.generator_loss must be >= 0"),
        (cfg.train.epochs >= 1, "train.epochs must be >= 1"),
        (cfg.train.lr_schedule in ("cosine", "constant"), "train.lr_schedule must be 'cosine' or 'constant'"),
        (cfg.attribution.top_k >= 1 and cfg.attribution.neighbours >= 1,
         "attribution.top_k and attribution.neighbours must be >= 1"),
        (cfg.attribution.threshold is None or -1 <= cfg.attribution.threshold <= 1,
         "attribution.threshold must be a cosine similarity in [-1, 1] or null"),
        (len(cfg.branches) > 0, "branches must name at least one branch"),
        (len(set(cfg.branches)) == len(cfg.branches), "branches must not repeat a name"),
        (cfg.visual.fps > 0 and abs(0.02 * cfg.visual.fps * round(1 / (0.02 * cfg.visual.fps)) - 1) < 1e-9,
         "visual.fps must divide 50 (frames on the 20 ms audio grid: 1, 2, 2.5, 5, 10, 12.5, 25 or 50)"),
        (cfg.visual.crop in ("face", "frame"), "visual.crop must be 'face' or 'frame'"),
        (cfg.visual.mouth_channels == 0 or cfg.visual.mouth_channels >= 2,
         "visual.mouth_channels must be 0 (no mouth path) or >= 2"),
        (cfg.visual.decode_side >= 16 and cfg.visual.face_margin >= 0 and cfg.visual.detect_every >= 1,
         "visual.decode_side must be >= 16, visual.face_margin >= 0 and visual.detect_every >= 1"),
        (cfg.visual.encoder.image_size % cfg.visual.encoder.patch_size == 0,
         "visual.encoder.image_size must be a multiple of patch_size"),
        (0 < loc.modality_threshold < 1, "localizer.modality_threshold must be in (0, 1)"),
        (cfg.limits.max_chunk_frames >= 1 and cfg.limits.max_frame_pixels >= 1,
         "limits.max_chunk_frames and max_frame_pixels must be >= 1"),
        (cfg.call_hook.hop_seconds > 0 and cfg.call_hook.context_seconds >= 0,
         "call_hook.hop_seconds must be > 0 and context_seconds >= 0"),
        (cfg.call_hook.max_connections >= 1 and cfg.call_hook.max_connections_per_client >= 1,
         "call_hook.max_connections and max_connections_per_client must be >= 1"),
        (cfg.call_hook.idle_timeout_seconds > 0, "call_hook.idle_timeout_seconds must be > 0"),
        (cfg.serve.queue_chunks >= 1 and cfg.serve.batch_chunks >= 1 and cfg.serve.poll_records >= 1,
         "serve.queue_chunks, batch_chunks and poll_records must be >= 1"),
        (cfg.serve.max_chunk_bytes >= 1 and cfg.serve.partitions >= 1,
         "serve.max_chunk_bytes and serve.partitions must be >= 1"),
        (0 < cfg.serve.retry_backoff_seconds <= cfg.serve.retry_backoff_max_seconds,
         "serve needs 0 < retry_backoff_seconds <= retry_backoff_max_seconds"),
        (all(isinstance(k, str) for k in cfg.kafka.client), "kafka.client keys must be strings"),
    ]
    for ok, message in rules:
        if not ok:
            raise ConfigError(message)
    return cfg


def _convert(tp, value, key: str):
    """Convert a YAML value to the annotated type ``tp`` or raise ConfigError."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping of {[f.name for f in dataclasses.fields(tp)]}")
        return _build(tp, value, key + ".")
    if origin is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else _convert(args[0], value, key)
    if tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping")
        return dict(value)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list")
        return tuple(_convert(typing.get_args(tp)[0], v, key) for v in value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is bool and not isinstance(value, bool) or not isinstance(value, tp) or (
            tp is int and isinstance(value, bool)):
        raise ConfigError(f"{key} must be {tp.__name__}, got {value!r}")
    return value


def _build(cls, data: dict, prefix: str = ""):
    """Build dataclass ``cls`` from a mapping, defaults for missing keys."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown config key {prefix}{unknown[0]}; valid keys here: {', '.join(sorted(names))}")
    base = cls()
    values = {}
    for name in names:
        if name in data:
            values[name] = _convert(hints[name], data[name], prefix + name)
        else:
            values[name] = getattr(base, name)
    return cls(**values)


def config_from_dict(data: dict | None) -> Config:
    """Validate a nested mapping (as read from YAML) into a :class:`Config`."""
    return _check(_build(Config, data or {}))


def read_yaml(path: str | Path) -> dict:
    """The mapping in a YAML config file (empty file: empty mapping)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at top level")
    return data or {}


def load_config(path: str | Path | None = None) -> Config:
    """Defaults overridden by the YAML file at ``path`` (if given)."""
    return config_from_dict(None if path is None else read_yaml(path))


def config_to_dict(cfg) -> dict:
    """Plain nested dict (tuples as lists), e.g. for checkpoint metadata."""
    def plain(v):
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v
    return plain(dataclasses.asdict(cfg))


def replace(cfg, path: str, value):
    """Return ``cfg`` with the dotted field ``path`` set to ``value`` (validated)."""
    data = config_to_dict(cfg)
    node = data
    *parents, last = path.split(".")
    for p in parents:
        node = node[p]
    node[last] = value
    return config_from_dict(data)
