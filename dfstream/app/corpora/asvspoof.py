"""ASVspoof 2019, 2021 and 5: utterance-level spoofing corpora, read from their CM protocols.

Each listed FLAC file is one utterance, bona fide or spoofed as a whole: a spoofed one becomes one
forged span from 0 to the file's end (read from the FLAC), its attack id in ``audio_model``.

Official files read (paths relative to ROOT):

* **2019** (``--track LA``, default, or ``PA``; ROOT holds ``LA/`` (``PA/``) or is that folder):
  ``LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.{train.trn,dev.trl,eval.trl}.txt``, lines
  ``SPEAKER FILE ENV ATTACK KEY`` (``ENV`` ``-`` for LA, the replay environment for PA; ``ATTACK``
  ``-`` for bona fide, A01-A19 for LA, AA-CC for PA; ``KEY`` bonafide|spoof); audio
  ``LA/ASVspoof2019_LA_{train,dev,eval}/flac/FILE.flac``. Splits train, val (dev), test (eval).
* **2021** (``--track LA``, default, or ``DF``): audio ``ASVspoof2021_LA_eval/flac/FILE.flac``
  (DF: ``ASVspoof2021_DF_eval/flac``, all its parts unpacked into one folder); keys from the
  separately released ``LA-keys-full.tar.gz`` unpacked in ROOT: ``keys/LA/CM/trial_metadata.txt``
  (also found under ``LA-keys-full/``), columns as the official evaluation package's ``config.py``
  names them: LA ``speaker file codec transmission attack key trim subset``, DF ``speaker file
  compression source attack key trim subset vocoder task team gender-pair language`` (a bona fide
  line has ``bonafide`` as its attack). Everything is split test; ``subset`` (eval, progress,
  hidden) is kept, since the official EER is that of the ``eval`` subset.
* **5**: ``ASVspoof5.train.tsv``, ``ASVspoof5.dev.track_1.tsv``, ``ASVspoof5.eval.track_1.tsv``
  (in ROOT or ``ASVspoof5_protocols/``), space-separated ``SPEAKER FILE GENDER CODEC CODEC_Q
  CODEC_SEED ATTACK_TAG ATTACK_LABEL KEY TMP``; audio ``flac_T/``, ``flac_D/``, ``flac_E_eval/``
  (``FILE.flac``), as the database README says unpacking ``flac_{T,D,E}_*.tar`` makes them.

Not verified against the real files (no copy here; read from the official READMEs, the
organisers' evaluation packages and public loaders): whether ``ASVspoof5_protocols.tar.gz``
unpacks into a folder (both places are searched); the DF keys' exact bona fide attack column
(any value: a bona fide line's attack is dropped); that 2021's key tarballs unpack to ``keys/``.
2021 PA is not supported (its keys name the replay set-up in six columns, not an attack).
"""

from __future__ import annotations

from pathlib import Path

from dfstream.app.corpora.common import Corpus, Utterance, first_existing, parse_key, protocol_rows

SPLITS_2019 = (("train", "train.trn", "train"), ("dev", "dev.trl", "val"), ("eval", "eval.trl", "test"))
"""2019: (audio folder part, protocol part, split)."""

COLUMNS_2021 = {
    "LA": ("speaker", "file", "codec", "transmission", "attack", "key", "trim", "subset"),
    "DF": ("speaker", "file", "compression", "source", "attack", "key", "trim", "subset", "vocoder"),
}
"""2021 keys' columns (the evaluation package's names; DF's last four are not kept)."""

KEPT_2021 = {
    "LA": ("codec", "transmission", "trim", "subset"),
    "DF": ("compression", "source", "trim", "subset", "vocoder"),
}

PARTS_5 = (
    ("ASVspoof5.train.tsv", "flac_T", "train"),
    ("ASVspoof5.dev.track_1.tsv", "flac_D", "val"),
    ("ASVspoof5.eval.track_1.tsv", "flac_E_eval", "test"),
)
"""ASVspoof 5: (protocol, audio folder, split)."""

COLUMNS_5 = ("speaker", "file", "gender", "codec", "codec_q", "codec_seed", "attack_tag", "attack", "key")


def _flac(folder: str, name: str) -> str:
    return f"{folder}/{name}" if name.endswith(".flac") else f"{folder}/{name}.flac"


def _attack(value: str) -> str | None:
    return None if value in ("-", "bonafide") else value


def read_2019(root: Path, track: str):
    base = root / track if (root / track / f"ASVspoof2019_{track}_cm_protocols").is_dir() else root
    prefix = base.relative_to(root).as_posix()
    prefix = "" if prefix == "." else prefix + "/"
    protocols = base / f"ASVspoof2019_{track}_cm_protocols"
    for part, protocol_part, split in SPLITS_2019:
        protocol = protocols / f"ASVspoof2019.{track}.cm.{protocol_part}.txt"
        for where, fields in protocol_rows(protocol, 5):
            speaker, name, environment, attack, key = fields[:5]
            extra = {"speaker": speaker} if environment == "-" else {"speaker": speaker, "environment": environment}
            spoof = parse_key(key, where)
            yield Utterance(
                _flac(f"{prefix}ASVspoof2019_{track}_{part}/flac", name), split, spoof, _attack(attack), extra=extra
            )


def read_2021(root: Path, track: str):
    keys = first_existing(
        root / "keys" / track / "CM" / "trial_metadata.txt",
        root / f"{track}-keys-full" / "keys" / track / "CM" / "trial_metadata.txt",
    )
    names = COLUMNS_2021[track]
    for where, fields in protocol_rows(keys, len(names)):
        row = dict(zip(names, fields))
        spoof = parse_key(row["key"], where)
        extra = {"speaker": row["speaker"], **{k: row[k] for k in KEPT_2021[track]}}
        yield Utterance(
            _flac(f"ASVspoof2021_{track}_eval/flac", row["file"]), "test", spoof, _attack(row["attack"]), extra=extra
        )


def read_5(root: Path, track: str | None):
    for protocol_name, folder, split in PARTS_5:
        protocol = first_existing(root / protocol_name, root / "ASVspoof5_protocols" / protocol_name)
        for where, fields in protocol_rows(protocol, len(COLUMNS_5)):
            row = dict(zip(COLUMNS_5, fields))
            spoof = parse_key(row["key"], where)
            extra = {k: row[k] for k in ("speaker", "gender", "codec", "codec_q", "attack_tag") if row[k] != "-"}
            yield Utterance(_flac(folder, row["file"]), split, spoof, _attack(row["attack"]), extra=extra)


ASVSPOOF2019 = Corpus(
    "asvspoof2019",
    "ASVspoof 2019 LA (A01-A19) or PA (--track PA): utterance-level, splits train/val/test",
    "LA/ with ASVspoof2019_LA_cm_protocols/ and ASVspoof2019_LA_{train,dev,eval}/flac/ (or PA/ likewise)",
    "the EER as the organisers compute it, from --scores",
    read_2019,
    ("LA", "PA"),
)
ASVSPOOF2021 = Corpus(
    "asvspoof2021",
    "ASVspoof 2021 LA or DF (--track DF) evaluation set: utterance-level, split test",
    "ASVspoof2021_LA_eval/flac/ (DF: ASVspoof2021_DF_eval/flac/) and keys/LA/CM/trial_metadata.txt "
    "(LA-keys-full.tar.gz unpacked)",
    "the EER as the organisers compute it, on the eval subset (the official one), from --scores",
    read_2021,
    ("LA", "DF"),
)
ASVSPOOF5 = Corpus(
    "asvspoof5",
    "ASVspoof 5 track 1: utterance-level, splits train/val/test",
    "ASVspoof5.{train,dev.track_1,eval.track_1}.tsv (or in ASVspoof5_protocols/), flac_T/, flac_D/, flac_E_eval/",
    "minDCF (the primary metric: Pspoof 0.05, Cmiss 1, Cfa 10) and the EER, from --scores",
    read_5,
)
