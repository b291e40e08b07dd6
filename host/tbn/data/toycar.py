"""DCASE 2020 Task 2's ToyCar recordings (ToyADMOS) as MLPerf Tiny's anomaly-detection
benchmark (ad01) trains and scores on them: 640-value log-mel vectors (:mod:`tbn.data.logmel`).

The layout is the reference's ``get_dataset.sh``: ``dev_data_ToyCar.zip`` (zenodo record
3678171) and ``eval_data_train_ToyCar.zip`` (record 3727685) both unpack to ``ToyCar/``, whose
``train/`` holds normal clips of machines 01 to 07 (``normal_id_01_00000000.wav``) and ``test/``
normal and anomalous clips of machines 01 to 04 (``anomaly_id_01_00000000.wav``). Accepted: the
unpacked ``ToyCar/`` folder, or ``dev_data_ToyCar.zip`` read in place, with
``eval_data_train_ToyCar.zip`` beside it adding its training clips when present. Found like the
other datasets (:mod:`tbn.data.locate`); the release publishes no checksum tbn could check, so
nothing is downloaded: the error says where to fetch the archives. Every clip is checked as it
is read (16-bit mono WAV, one sample rate across the set).

A split is ``(x, y)``: float32 vectors ``(n, 640)`` and int64 ``(n, 3)`` rows of (machine id,
clip number in the split, anomalous 0 or 1), so a score can gather a clip's vectors:
:func:`clip_scores` and :func:`auc` give the reference's metric (the AUC of each machine's
clips by mean reconstruction error, averaged over machines).
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from tbn.data import locate
from tbn.data.logmel import VECTOR, log_mel, vectors
from tbn.data.wav import pcm16, read_pcm16
from tbn.errors import TbnError, UsageError

FOLDER = "ToyCar"
ARCHIVE = "dev_data_ToyCar.zip"
EXTRA_ARCHIVE = "eval_data_train_ToyCar.zip"  # machines 05 to 07's training clips
URLS = ("https://zenodo.org/record/3678171/files/dev_data_ToyCar.zip",
        "https://zenodo.org/record/3727685/files/eval_data_train_ToyCar.zip")
SPLITS = ("train", "test")
_NAME = re.compile(r"(normal|anomaly)_id_(\d\d)_(\d+)\.wav")
_MAX_CLIP_BYTES = 8 << 20  # a 10 s clip is 320 KB


class ToyCarError(TbnError, RuntimeError):
    """The ToyCar recordings cannot be found or read."""


def find(data_dir: str | os.PathLike | None = None) -> Path:
    """The unpacked ``ToyCar/`` folder or ``dev_data_ToyCar.zip`` in the first place that has one."""
    return locate.find_unchecked("toycar", FOLDER, ARCHIVE, data_dir, ToyCarError, f"ToyCar ({ARCHIVE})",
                                 f"Download {' and '.join(URLS)}, put them (or the ToyCar/ folder they "
                                 "unpack to) in DIR and pass --data-dir DIR.")


def _order(name: str) -> tuple:
    """Machine by machine, a normal clip then the anomalous clip of the same number, so the first
    clips of a split hold both kinds (a device scoring ``--n`` inputs gets an AUC)."""
    m = _NAME.fullmatch(name)
    return (0, m[2], int(m[3]), m[1] != "normal") if m else (1, name)


def _members(source: Path, split: str) -> Iterator[tuple[str, bytes]]:
    """(file name, bytes) of every ``.wav`` of ``split`` in the folder or the archive(s), in
    :func:`_order`."""
    if source.is_dir():
        folder = source / split
        if not folder.is_dir():
            raise ToyCarError(f"{source}: no {split}/ folder: not the ToyCar layout (ToyCar/train, "
                              "ToyCar/test)")
        for p in sorted(folder.glob("*.wav"), key=lambda p: _order(p.name)):
            yield _bounded(str(p), p.stat().st_size, p.name), p.read_bytes()
        return
    archives = [source] + ([source.with_name(EXTRA_ARCHIVE)] if split == "train" else [])
    found = {}
    for archive in (a for a in archives if a.is_file()):
        try:
            with zipfile.ZipFile(archive) as z:
                for info in z.infolist():
                    parts = info.filename.split("/")
                    if parts[-3:-1] == [FOLDER, split] and parts[-1].endswith(".wav"):
                        found[parts[-1]] = (archive, info)
        except (zipfile.BadZipFile, OSError) as e:
            raise ToyCarError(f"{archive}: not a complete zip archive ({e}); delete it and fetch it "
                              "again") from None
    for name in sorted(found, key=_order):
        archive, info = found[name]
        _bounded(f"{archive}:{info.filename}", info.file_size, name)
        try:
            with zipfile.ZipFile(archive) as z:
                yield name, z.read(info)
        except (zipfile.BadZipFile, OSError) as e:  # a member's CRC is checked as it is read
            raise ToyCarError(f"{archive}:{info.filename}: {e}; the archive is corrupt: fetch it "
                              "again") from None


def _bounded(where: str, size: int, name: str) -> str:
    if size > _MAX_CLIP_BYTES:
        raise ToyCarError(f"{where}: {size} bytes, more than any ToyCar clip ({_MAX_CLIP_BYTES}): "
                          "not the release")
    return name


def load_toycar(split: str = "train",
                data_dir: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A split as ad01 reads it: float32 ``(n, 640)`` vectors and int64 ``(n, 3)`` rows of
    (machine id, clip number, anomalous). ``train`` holds normal clips only."""
    if split not in SPLITS:
        raise UsageError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    source = find(data_dir)
    xs, rows, rate = [], [], None
    for name, data in _members(source, split):
        m = _NAME.fullmatch(name)
        if m is None or (split == "train" and m[1] != "normal"):
            kinds = "normal" if split == "train" else "normal or anomaly"
            raise ToyCarError(f"{source}: {split}/{name} is not a {kinds}_id_NN_NNNNNNNN.wav clip: not "
                              "the ToyCar layout")
        samples, r = read_pcm16(data, f"{source}:{split}/{name}", ToyCarError, "ToyCar")
        if rate is not None and r != rate:
            raise ToyCarError(f"{source}: {split}/{name} is sampled at {r} Hz, the clips before it at {rate}")
        rate = r
        v = vectors(log_mel(samples, r)) if len(samples) > 512 else np.zeros((0, VECTOR), np.float32)
        xs.append(v)
        rows.append(np.tile([int(m[2]), len(rows), int(m[1] == "anomaly")], (len(v), 1)))
    if not xs or not sum(len(v) for v in xs):
        raise ToyCarError(f"{source}: no {split} clip long enough for a vector (8 s at 16 kHz)")
    return np.concatenate(xs), np.concatenate(rows).astype(np.int64)


def clip_scores(errors: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each clip's anomaly score, the mean of its vectors' ``errors`` (mean squared
    reconstruction error each), as (machine ids, scores, anomalous), one entry a clip."""
    _, first, inverse = np.unique(rows[:, 1], return_index=True, return_inverse=True)
    scores = np.bincount(inverse, weights=errors) / np.bincount(inverse)
    return rows[first, 0], scores, rows[first, 2]


def roc_auc(scores: np.ndarray, anomalous: np.ndarray) -> float:
    """The area under the ROC curve: the chance an anomalous clip scores above a normal one,
    ties counted half (the Mann-Whitney statistic, as scikit-learn's ``roc_auc_score``)."""
    pos, neg = scores[anomalous == 1], scores[anomalous == 0]
    if not len(pos) or not len(neg):
        raise UsageError(f"an AUC needs normal and anomalous clips; got {len(neg)} normal, "
                         f"{len(pos)} anomalous")
    both = np.concatenate([pos, neg])
    ranks = _average_ranks(both)
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing their mean rank."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    sorted_x = x[order]
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], len(x)]
    for s, e in zip(starts, ends, strict=True):
        ranks[order[s:e]] = (s + e + 1) / 2
    return ranks


def auc(errors: np.ndarray, rows: np.ndarray) -> float:
    """The reference's score: each machine's ROC AUC over its clips, averaged over the machines
    that have normal and anomalous clips among ``rows`` (a part of a split may not)."""
    ids, scores, anomalous = clip_scores(np.asarray(errors, np.float64), rows)
    both = [i for i in np.unique(ids) if len(np.unique(anomalous[ids == i])) == 2]
    if not both:
        clips = f"{len(scores)} clip{'s' if len(scores) != 1 else ''}"
        raise UsageError(f"an AUC needs normal and anomalous clips of one machine; among {clips} no "
                         "machine has both: score more of the test split")
    return float(np.mean([roc_auc(scores[ids == i], anomalous[ids == i]) for i in both]))


def write_synthetic(folder: Path, clips: int = 3, seconds: float = 9.0, rate: int = 16000,
                    seed: int = 0) -> Path:
    """``dev_data_ToyCar.zip`` in the release's layout, small: for each of two machines,
    ``clips`` normal training clips, and test clips normal and anomalous (a hum with noise; an
    anomaly adds a tone). For tests and for trying the pipeline offline."""
    rng = np.random.default_rng(seed)

    def wav(anomalous: bool, machine: int) -> bytes:
        t = np.arange(int(rate * seconds)) / rate
        x = 3000 * np.sin(2 * np.pi * (120 + 40 * machine) * t) + rng.normal(0, 300, t.size)
        return pcm16(x + (2500 * np.sin(2 * np.pi * 3100 * t) if anomalous else 0), rate)

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ARCHIVE
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for machine in (1, 2):
            for k in range(clips):
                z.writestr(f"{FOLDER}/train/normal_id_{machine:02d}_{k:08d}.wav", wav(False, machine))
                z.writestr(f"{FOLDER}/test/normal_id_{machine:02d}_{k:08d}.wav", wav(False, machine))
                z.writestr(f"{FOLDER}/test/anomaly_id_{machine:02d}_{k:08d}.wav", wav(True, machine))
    return path
