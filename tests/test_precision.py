"""``inference.dtype: auto``: bf16 where the hardware computes it natively, float32 elsewhere, said at start-up."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
import torch
from helpers import tiny_config

import dfstream.engine.runtime.device
from dfstream.app.config import load_config
from dfstream.engine.core.model_store import shipped_model
from dfstream.engine.runtime.checkpoint import load_checkpoint, read_metadata
from dfstream.engine.runtime.config import config_from_dict
from dfstream.engine.runtime.detector import Detector
from dfstream.engine.runtime.device import cpu_flags, resolve_dtype

CPU = torch.device("cpu")
AVX2_EPYC = frozenset("fpu sse4_2 avx f16c fma avx2 bmi2".split())  # the machine: AVX2 + FMA, no bf16


@pytest.mark.parametrize(
    "flags,dtype",
    [
        (AVX2_EPYC, torch.float32),
        (AVX2_EPYC | {"avx512f", "avx512bw"}, torch.float32),  # emulated bf16
        (AVX2_EPYC | {"avx512f", "avx512_bf16"}, torch.bfloat16),
        (AVX2_EPYC | {"amx_tile", "amx_bf16"}, torch.bfloat16),
        (frozenset({"fp", "asimd", "sve", "bf16"}), torch.bfloat16),  # Arm
        (frozenset(), torch.float32),
    ],
)
def test_auto_is_bf16_only_where_the_cpu_computes_it_natively(flags, dtype):
    got, why = resolve_dtype("auto", CPU, flags=flags)
    assert got == dtype and why.startswith(str(dtype).removeprefix("torch.")) and "auto" in why


def test_explicit_dtypes_and_int8_are_kept():
    bf16 = frozenset({"avx512_bf16"})
    assert resolve_dtype("float32", CPU, flags=bf16)[0] == torch.float32
    assert resolve_dtype("bfloat16", CPU, flags=frozenset())[0] == torch.bfloat16  # asked for by name: obeyed
    dtype, why = resolve_dtype("auto", CPU, "int8", flags=bf16)
    assert dtype == torch.float32 and "int8" in why


def test_cpu_flags_read_linux_cpuinfo(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 fma avx512_bf16\n\nprocessor\t: 1\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\nCPU implementer\t: 0x41\n")
    assert cpu_flags(x86) == {"fpu", "avx2", "fma", "avx512_bf16"}
    assert cpu_flags(arm) == {"fp", "asimd", "bf16", "i8mm"}
    assert cpu_flags(tmp_path / "missing") == frozenset()


def test_the_default_is_auto_and_the_detector_says_what_it_chose(monkeypatch, caplog):
    assert config_from_dict({}).inference.dtype == "auto" == load_config(None).model.inference.dtype
    config = tiny_config(inference={"dtype": "auto"})
    with caplog.at_level(logging.INFO, logger="dfstream"):
        plain = Detector.from_config(config)
    assert plain.dtype == torch.float32  # conftest: a CPU without native bf16
    assert [r.getMessage() for r in caplog.records if r.name == "dfstream.engine.runtime.detector"] == [
        "inference on cpu in float32 (inference.dtype: auto; the CPU has no native bf16 - no avx512_bf16, "
        "amx_bf16 or bf16 flag - and emulated bf16 is several times slower)"
    ]
    monkeypatch.setattr(dfstream.engine.runtime.device, "cpu_flags", lambda *a: frozenset({"avx2", "avx512_bf16"}))
    native = Detector.from_config(config)
    assert native.dtype == torch.bfloat16
    assert next(native.branch.encoder.parameters()).dtype == torch.bfloat16
    assert native.branch.head.weight.dtype == torch.float32  # what was trained stays float32


def test_a_checkpoint_does_not_fix_how_it_runs(monkeypatch):
    """The shipped checkpoint was written with inference.dtype float32 (the training machine's setting):
    loading ignores it, and auto picks for the machine that loads it."""
    folder = shipped_model()
    assert read_metadata(folder)["config"]["inference"].get("dtype", "float32") == "float32"
    monkeypatch.setattr(dfstream.engine.runtime.device, "cpu_flags", lambda *a: frozenset({"amx_bf16"}))
    assert load_checkpoint(folder).dtype == torch.bfloat16
    assert load_checkpoint(folder, {"inference": {"dtype": "float32"}}).dtype == torch.float32


def test_benches_run_the_product_defaults_and_record_the_cpu_flags():
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from replay_speed import machine
    from throughput import ENGINE_DEFAULT

    assert ENGINE_DEFAULT == {}
    record = machine()
    assert set(record["native_bf16"]) <= {"avx512_bf16", "amx_bf16", "bf16"}
    assert isinstance(record["cpu_flags"], list) and record["cores"] >= 1
