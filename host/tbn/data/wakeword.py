"""Speech Commands v0.02 as MLPerf Tiny's streaming wake word benchmark (sww01) trains on it:
three classes (``marvin``, ``_silence``, ``_unknown``) and 30x40 log filterbank energies
(:mod:`tbn.data.lfbe`), built as mlcommons/tiny's ``streaming_wakeword/get_dataset.py``
(1afd2c9) builds them, with its ``str_ww_util.py`` defaults:

- the release's three splits by its two lists (``test`` is the release's ``testing_list.txt``,
  not the separate test-set archive); ``marvin`` is the target, every other word ``_unknown``;
- each split made 20% targets (repeated, or cut) and 10% silence (one second of Gaussian noise
  of 0.1) beside all of its unknown words (70%);
- each clip once (the reference caches its augmented features): minus its mean, over its
  largest magnitude, scaled by a volume from U(0.25, 1.5), shifted by up to 100 ms, and, in
  ``train`` and ``validation`` with probability 0.8, background noise added at U(0.5, 2.0)
  (1.5 in validation) times the noise, at most twice the clip's volume, clipped to [-1, 1].

Background noise is 15-second pieces (50 at most, from recordings in a shuffled order) of:
in ``train``, the release's ``_background_noise_`` and MUSAN's ``noise/free-sound`` and
``speech/us-gov``; in ``validation``, MUSAN's ``noise/sound-bible`` and ``speech/librivox``.
MUSAN (OpenSLR 17, 11 GB) is read from ``musan_dir`` or a ``musan/`` folder beside the
release; without it ``train`` has the release's noise only and ``validation`` none (said on
stderr). The reference's lists of bad ``marvin`` clips and excluded noise files are used where
``bad_marvin_files.txt`` and ``exclude_background_files.txt`` lie beside the release.

Features are cached per split beside the user cache, keyed by the sources and ``seed``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from tbn.data.lfbe import lfbe
from tbn.data.mfcc import CLIP_SAMPLES, SAMPLE_RATE
from tbn.data.speech_commands import (
    RELEASE,
    SpeechCommandsError,
    _verified,
    features_cache,
    find,
    read_wav,
    release_clips,
)
from tbn.errors import UsageError
from tbn.files import atomic_open

TARGET, SILENCE, UNKNOWN = "marvin", "_silence", "_unknown"
CLASSES = (TARGET, SILENCE, UNKNOWN)
SPLITS = ("train", "validation", "test")
FRACTION_TARGET, FRACTION_SILENT, SILENT_NOISE = 0.2, 0.1, 0.1
FOREGROUND = (0.25, 1.5)
BACKGROUND = {"train": 2.0, "validation": 1.5, "test": 0.0}  # the noise's largest volume
BACKGROUND_FREQUENCY, MIN_SNR = 0.8, 0.5
TIME_SHIFT = SAMPLE_RATE // 10  # 100 ms
NOISE_PIECE, NOISE_PIECES = 15 * SAMPLE_RATE, 50
MUSAN = {"train": ("noise/free-sound", "speech/us-gov"),
         "validation": ("noise/sound-bible", "speech/librivox")}
FEATURES_VERSION = 1


def _names(folder: Path, name: str) -> set[str]:
    """The file names listed in ``folder/name`` (the reference's exclusion lists), if it is there."""
    path = folder / name
    if not path.is_file():
        return set()
    return {line.strip().split("/")[-1] for line in path.read_text().splitlines()
            if line.strip() and not line.startswith("#")}


def _musan(folder: Path | None, split: str, excluded: set[str]) -> list[np.ndarray]:
    """The recordings of MUSAN's folders for ``split`` but the ``excluded`` names, as int16 samples."""
    if folder is None or split not in MUSAN:
        return []
    out = []
    for sub in MUSAN[split]:
        wavs = sorted((folder / sub).glob("*.wav"))
        if not wavs:
            raise SpeechCommandsError(f"{folder / sub}: no .wav files; MUSAN's layout is "
                                      "musan/noise/free-sound/*.wav, musan/speech/us-gov/*.wav, ...")
        out += [read_wav(p.read_bytes(), str(p)) for p in wavs if p.name not in excluded]
    return out


def _pieces(recordings: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Up to 50 15-second pieces of the recordings, in a shuffled order, as floats in [-1, 1]."""
    pieces: list[np.ndarray] = []
    for i in rng.permutation(len(recordings)):
        r = recordings[i]
        pieces += [r[s:s + NOISE_PIECE].astype(np.float32) / 32768
                   for s in range(0, len(r) - NOISE_PIECE + 1, NOISE_PIECE)]
        if len(pieces) >= NOISE_PIECES:
            break
    return pieces[:NOISE_PIECES]


def _composed(targets: list[np.ndarray], unknown: list[np.ndarray],
              rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray]:
    """All the unknown clips, targets repeated or cut to 20% and noise clips as 10% of the whole."""
    total = int(len(unknown) / (1.0 - FRACTION_SILENT - FRACTION_TARGET))
    n_target, n_silent = int(FRACTION_TARGET * total), int(FRACTION_SILENT * total)
    if not targets and n_target:
        raise SpeechCommandsError(f"no {TARGET!r} clips in a split: not the Speech Commands release")
    order = rng.permutation(len(targets))  # the reference shuffles, then repeats or cuts
    picked = [targets[order[i % len(targets)]] for i in range(n_target)] if targets else []
    silent = [rng.normal(0.0, SILENT_NOISE, CLIP_SAMPLES).astype(np.float32) for _ in range(n_silent)]
    labels = [2] * len(unknown) + [0] * len(picked) + [1] * len(silent)
    return unknown + picked + silent, np.asarray(labels, np.int64)


def augment(clip: np.ndarray, split: str, noise: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """One clip as the reference's ``augment_wavs_func`` makes it (module docstring)."""
    w = np.asarray(clip, np.float32)[:CLIP_SAMPLES]
    w = w - w.mean()
    top = np.abs(w).max()
    w = np.pad(w / top if top > 0 else w, (0, CLIP_SAMPLES - len(w)))
    volume = rng.uniform(*FOREGROUND)
    shift = rng.integers(0, 2 * TIME_SHIFT - 1)
    w = np.pad(w * np.float32(volume), TIME_SHIFT)[shift:shift + CLIP_SAMPLES]
    if noise and BACKGROUND[split] > 0:
        piece = noise[rng.integers(len(noise))]
        start = rng.integers(0, len(piece) - CLIP_SAMPLES)
        level = rng.uniform(0.5, BACKGROUND[split]) if rng.uniform() < BACKGROUND_FREQUENCY else 0.0
        level = min(level, volume / MIN_SNR)
        w = np.clip(w + np.float32(level) * piece[start:start + CLIP_SAMPLES], -1.0, 1.0)
    return w.astype(np.float32)


def _features(source: Path, musan: Path | None, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    bad = _names(source.parent, "bad_marvin_files.txt")
    excluded = _names(source.parent, "exclude_background_files.txt")
    words: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {s: ([], []) for s in SPLITS}
    release_noise = []
    for split, word, name, samples in release_clips(source):
        if split == "noise":
            if name not in excluded:
                release_noise.append(samples)
        elif word == TARGET:
            if name not in bad:
                words[split][0].append(samples)
        elif not word.startswith("_"):
            words[split][1].append(samples)
    if musan is None:
        print(f"{source}: no MUSAN folder (musan/ beside the release, or musan_dir): background noise "
              "from the release's _background_noise_ only, none in validation", file=sys.stderr)
    out = {}
    for i, split in enumerate(SPLITS):
        rng = np.random.default_rng([seed, i])
        recordings = (release_noise if split == "train" else []) + _musan(musan, split, excluded)
        noise = _pieces(recordings, rng) if BACKGROUND[split] > 0 else []
        clips, labels = _composed(*words[split], rng)
        if not clips:
            raise SpeechCommandsError(f"{source}: no clips of the {split} split")
        x = np.concatenate([lfbe(np.stack([augment(c, split, noise, rng) for c in clips[j:j + 2048]]))
                            for j in range(0, len(clips), 2048)])  # a chunk of waves at a time
        out[split] = np.ascontiguousarray(x.transpose(0, 2, 1)[..., None]), labels  # (n, 40, 30, 1)
    return out


def _cache_path(split: str, source: Path, musan: Path | None, verified: bool, seed: int) -> Path:
    return features_cache("wakeword", split, source, musan and musan.resolve(), verified, seed,
                          FEATURES_VERSION)


def load_wakeword(split: str = "train", data_dir: str | os.PathLike | None = None,
                  musan_dir: str | os.PathLike | None = None, download: bool = True, verify: bool = True,
                  cache: bool = True, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A split (``train``, ``validation``, ``test``) as sww01 reads it: float32 features
    ``(n, 40, 30, 1)`` (40 bands, 30 frames; Keras' ``(30, 1, 40)`` channels first) and int64
    labels (indices into :data:`CLASSES`). All three splits are computed, and cached, together."""
    if split not in SPLITS:
        raise UsageError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    source = find(RELEASE, data_dir, download)
    musan = Path(musan_dir) if musan_dir is not None else source.parent / "musan"
    if musan_dir is not None and not musan.is_dir():
        raise SpeechCommandsError(f"{musan}: not a folder; give MUSAN's unpacked musan/ folder")
    musan = musan if musan.is_dir() else None
    verified = source.is_file() and verify
    if cache and (path := _cache_path(split, source, musan, verified, seed)).is_file():
        with np.load(path) as f:
            return f["x"], f["y"]
    if verified:
        _verified(source, RELEASE)
    splits = _features(source, musan, seed)
    if cache:
        for name, (x, y) in splits.items():
            p = _cache_path(name, source, musan, verified, seed)
            p.parent.mkdir(parents=True, exist_ok=True)
            with atomic_open(p) as f:
                np.savez(f, x=x, y=y)
    return splits[split]
