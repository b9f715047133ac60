"""The BlazeFace weights: fetched once from PyPI at install time, loaded from disk at run time.

MediaPipe's short-range face detector (BlazeFace, Apache-2.0, Google) ships as
``mediapipe/modules/face_detection/face_detection_short_range.tflite`` inside
the ``mediapipe`` wheel on PyPI. :func:`fetch` downloads that wheel with pip
(``--no-deps``; mediapipe is never installed, so its ``numpy<2`` pin does not
matter), checks the model file's SHA-256, converts it with
:mod:`dfstream.modalities.visual.tflite_import` and writes one safetensors file whose
metadata holds the op list. Nothing is downloaded at run time:
:func:`load` reads that file and raises ConfigError, saying how to fetch it,
when it is missing.

Where: ``$DFSTREAM_FACE_MODEL`` if set, else
``$XDG_CACHE_HOME/dfstream/blazeface_short_range.safetensors`` (``~/.cache``
when unset). ``make install`` runs ``dfstream fetch-face-model``.

We did not train this detector; it only finds the face to crop, like OpenCV's
Haar cascade before it. Model card: "BlazeFace (short range)", MediaPipe.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from safetensors import safe_open
from safetensors.numpy import save_file

from dfstream.engine.core.errors import ConfigError

WHEEL = "mediapipe==0.10.21"
WHEEL_PLATFORM = ("manylinux_2_28_x86_64", "3.11")  # any wheel holds the same model; pin one
MEMBER = "mediapipe/modules/face_detection/face_detection_short_range.tflite"
SHA256 = "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"
FILENAME = "blazeface_short_range.safetensors"
SOURCE = (
    f"{MEMBER} from the PyPI wheel {WHEEL} (MediaPipe BlazeFace short range, Apache-2.0, Google); converted by dfstream"
)


def default_path() -> Path:
    """Where the converted weights live (see the module docstring)."""
    if os.environ.get("DFSTREAM_FACE_MODEL"):
        return Path(os.environ["DFSTREAM_FACE_MODEL"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "dfstream" / FILENAME


def convert(tflite_bytes: bytes, out: Path) -> Path:
    """Convert the model file's bytes to safetensors at ``out``; ConfigError unless their SHA-256 is :data:`SHA256`."""
    from dfstream.modalities.visual.tflite_import import read_tflite

    digest = hashlib.sha256(tflite_bytes).hexdigest()
    if digest != SHA256:
        raise ConfigError(
            f"{MEMBER}: SHA-256 {digest} is not the expected {SHA256} (another mediapipe "
            f"build? dfstream converts the one in {WHEEL})"
        )
    ops, tensors, inputs, outputs = read_tflite(tflite_bytes)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    save_file(
        tensors,
        str(tmp),
        metadata={
            "graph": json.dumps(ops),
            "inputs": json.dumps(inputs),
            "outputs": json.dumps(outputs),
            "source": SOURCE,
            "sha256": digest,
        },
    )
    tmp.replace(out)
    return out


def fetch(out: Path | None = None, wheel: Path | None = None) -> Path:
    """Download the wheel (or use ``wheel``), extract and convert the model; returns the written path."""
    out = Path(out) if out else default_path()
    with tempfile.TemporaryDirectory() as tmp:
        if wheel is None:
            platform, python = WHEEL_PLATFORM
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "--platform",
                platform,
                "--python-version",
                python,
                "-d",
                tmp,
                WHEEL,
            ]
            done = subprocess.run(cmd, capture_output=True, text=True)
            found = sorted(Path(tmp).glob("mediapipe-*.whl"))
            if done.returncode or not found:
                raise ConfigError(f"could not download {WHEEL} from PyPI: {done.stderr.strip()[-400:]}")
            wheel = found[0]
        try:
            with zipfile.ZipFile(wheel) as archive:
                data = archive.read(MEMBER)
        except (KeyError, zipfile.BadZipFile, OSError) as e:
            raise ConfigError(f"{wheel}: cannot read {MEMBER} ({e})") from None
    return convert(data, out)


def load(path: Path | None = None) -> tuple[list[dict], dict, list[str], list[str]]:
    """``(ops, tensors, inputs, outputs)`` from the converted file; ConfigError when it is missing."""
    path = Path(path) if path else default_path()
    if not path.is_file():
        raise ConfigError(
            f"BlazeFace weights not found at {path}: run `dfstream fetch-face-model` "
            "(downloads the mediapipe wheel from PyPI once), or set DFSTREAM_FACE_MODEL"
        )
    with safe_open(str(path), "np") as handle:
        meta = handle.metadata() or {}
        if meta.get("sha256") != SHA256 or "graph" not in meta:
            raise ConfigError(f"{path} is not the converted {MEMBER}; run `dfstream fetch-face-model` again")
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    return json.loads(meta["graph"]), tensors, json.loads(meta["inputs"]), json.loads(meta["outputs"])
