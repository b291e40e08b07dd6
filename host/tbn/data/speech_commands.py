"""Speech Commands v0.02 as MLPerf Tiny's keyword-spotting benchmark uses it: 12 classes (ten
words, ``_silence_``, ``_unknown_``) and 49x10 MFCC features (:mod:`tbn.data.mfcc`).

The splits are TensorFlow Datasets' ``speech_commands`` (which the reference trains from):
``train`` is every clip of the release not named in ``validation_list.txt`` or
``testing_list.txt``; ``validation`` the clips that list names; the words outside the ten are
``_unknown_``; ``_silence_`` is the release's ``_background_noise_`` recordings cut into
one-second clips every half second (``running_tap.wav`` for validation, the rest for
training); ``test`` is the separate test-set archive, whose folders are the 12 classes.

Accepted forms, each: the archive as released (read in place, nothing unpacked) or its
unpacked folder (``speech_commands_v0.02/``, ``speech_commands_test_set_v0.02/``). Where
they are looked for, and the download when online, as for CIFAR-10
(:mod:`tbn.data.cifar10`): ``--data-dir`` (and ``DIR/speech_commands``) only, else
``$TBN_DATA``, ``../shared/data`` and the user cache. An archive is checked against its
release's size and SHA-256 (``verify=False`` accepts other data in the same format); an
unpacked folder for its layout. The features of each split are cached beside the user cache
(``~/.cache/tbn/speech_commands``), keyed by the sources' paths, sizes and times.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tbn.data import locate
from tbn.data.locate import sha256_file
from tbn.data.mfcc import CLIP_SAMPLES, SAMPLE_RATE, mfcc, normalise_clip
from tbn.data.mnist import cache_dir
from tbn.data.wav import pcm16, read_pcm16
from tbn.errors import TbnError, UsageError
from tbn.files import atomic_open

WORDS = ("down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes")
SILENCE, UNKNOWN, NOISE = "_silence_", "_unknown_", "_background_noise_"
CLASSES = (*WORDS, SILENCE, UNKNOWN)
VALIDATION_NOISE = "running_tap.wav"  # the one noise recording TFDS keeps for validation
SPLITS = ("train", "validation", "test")
FEATURES_VERSION = 1  # bump when the features change, so caches are rebuilt
_MAX_CLIP_BYTES = 64 << 20  # a noise recording is about 2 MB; a word clip 32 KB


@dataclass(frozen=True)
class Source:
    """One released archive and the folder it unpacks to."""

    archive: str
    folder: str
    url: str
    size: int
    sha256: str


RELEASE = Source("speech_commands_v0.02.tar.gz", "speech_commands_v0.02",
                 "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz", 2428923189,
                 "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58")
TEST_SET = Source("speech_commands_test_set_v0.02.tar.gz", "speech_commands_test_set_v0.02",
                  "http://download.tensorflow.org/data/speech_commands_test_set_v0.02.tar.gz", 112563277,
                  "cc2a00c1147c2254e9be3fa0f779d8c17421dc349b86366567a8edfa9acd51df")


class SpeechCommandsError(TbnError, RuntimeError):
    """Speech Commands cannot be found, downloaded or read."""


def _verified(path: Path, src: Source) -> None:
    size = path.stat().st_size
    if size != src.size or sha256_file(path) != src.sha256:
        raise SpeechCommandsError(f"{path}: {size} bytes, not the release's {src.size} with SHA-256 "
                                  f"{src.sha256}: the file is truncated, corrupt or not the release; delete "
                                  "it and fetch it again (verify=False or --no-verify accepts other data in "
                                  "this format)")


def find(src: Source, data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The unpacked folder or the archive of ``src`` in the first place that has one."""
    def fetch(folder: Path) -> Path:
        return locate.fetch(src.url, folder / src.archive, src.size, src.sha256, SpeechCommandsError)
    return locate.find("speech_commands", src.folder, src.archive, data_dir, download, fetch,
                       SpeechCommandsError, f"Speech Commands ({src.archive})",
                       f"Put {src.archive} (from {src.url}) or its unpacked {src.folder}/ folder in DIR and "
                       "pass --data-dir DIR.")


def _bounded(where: str, size: int) -> None:
    """A file far past any clip's size is not the release's (a clip is 32 KB, a noise recording
    2 MB): refused by name, not read."""
    if size > _MAX_CLIP_BYTES:
        raise SpeechCommandsError(f"{where}: {size} bytes, more than any Speech Commands file "
                                  f"({_MAX_CLIP_BYTES}): not the release's layout")


def _files(source: Path) -> Iterator[tuple[str, bytes]]:
    """(path inside the release, bytes) of every regular file of an archive or a folder."""
    if source.is_dir():
        for p in sorted(source.rglob("*")):
            if p.is_file():
                _bounded(str(p), p.stat().st_size)
                yield p.relative_to(source).as_posix(), p.read_bytes()
        return
    try:
        with tarfile.open(source, mode="r|gz") as tar:  # a stream: one pass, nothing unpacked
            for m in tar:
                if m.isfile():
                    _bounded(f"{source}:{m.name}", m.size)
                    f = tar.extractfile(m)
                    if f is not None:
                        yield m.name.removeprefix("./"), f.read()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise SpeechCommandsError(f"{source}: not a complete .tar.gz ({e or type(e).__name__}); the file is "
                                  "truncated or corrupt: delete it and fetch it again") from None


def read_wav(data: bytes, where: str) -> np.ndarray:
    """The int16 samples of a 16 kHz, 16-bit, mono WAV file."""
    samples, rate = read_pcm16(data, where, SpeechCommandsError, "Speech Commands")
    if rate != SAMPLE_RATE:
        raise SpeechCommandsError(f"{where}: 1 channel of 16 bits at {rate} Hz; Speech Commands clips are "
                                  "mono 16-bit 16 kHz")
    return samples


def _label(word: str) -> int:
    return CLASSES.index(word) if word in CLASSES else CLASSES.index(UNKNOWN)


def _noise_clips(samples: np.ndarray) -> list[np.ndarray]:
    """A long recording as one-second clips every half second (TFDS' ``_silence_``)."""
    return [samples[s:s + CLIP_SAMPLES] for s in range(0, len(samples) - CLIP_SAMPLES, CLIP_SAMPLES // 2)]


def release_clips(source: Path) -> Iterator[tuple[str, str, str, np.ndarray]]:
    """(split, word folder, file name, int16 samples) of every clip of the release, in one pass
    over the audio: ``train``, ``validation`` or ``test`` as the two lists say, ``noise`` for the
    ``_background_noise_`` recordings."""
    names = ("validation_list.txt", "testing_list.txt")
    if source.is_dir():
        lists = {n: (source / n).read_bytes() for n in names if (source / n).is_file()}
    else:  # a first pass for the two lists (they come last in the release), keeping nothing else
        lists = {path: data for path, data in _files(source) if path in names}
    if missing := [n for n in names if n not in lists]:
        raise SpeechCommandsError(f"{source}: no {' or '.join(missing)}: not the Speech Commands "
                                  "release's layout")
    held = {n: set(lists[n].decode(errors="replace").split()) for n in names}
    for path, data in _files(source):
        if not path.endswith(".wav") or "/" not in path:
            continue
        word, name = path.split("/")[-2:]
        split = "noise" if word == NOISE else "test" if path in held["testing_list.txt"] else \
            "validation" if path in held["validation_list.txt"] else "train"
        yield split, word, name, read_wav(data, f"{source}:{path}")


def _clips(source: Path, test: bool) -> Iterator[tuple[str, np.ndarray, int]]:
    """(split, int16 samples, label) of every clip in a source: the test set's, or the release's
    train and validation clips in one pass over the audio."""
    if test:
        for path, data in _files(source):
            if path.endswith(".wav") and "/" in path:
                yield "test", read_wav(data, f"{source}:{path}"), _label(path.split("/")[-2])
        return
    for split, word, name, samples in release_clips(source):
        if split == "noise":
            split = "validation" if name == VALIDATION_NOISE else "train"
            for clip in _noise_clips(samples):
                yield split, clip, CLASSES.index(SILENCE)
        elif split != "test":
            yield split, samples, _label(word)


def features_cache(kind: str, split: str, source: Path, *key: object) -> Path:
    """Where features computed from a release are cached: keyed by the source's path, size and
    time, and ``key`` (whatever else they depend on)."""
    st = source.stat()
    k = ":".join(map(str, (source.resolve(), st.st_size, st.st_mtime_ns, *key)))
    return cache_dir() / kind / f"{split}-{hashlib.sha256(k.encode()).hexdigest()[:16]}.npz"


def _cache_path(split: str, source: Path, verified: bool) -> Path:
    """Keyed also by whether the source was checked against the release."""
    return features_cache("speech_commands", split, source, verified, FEATURES_VERSION)


def _features(source: Path, test: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every split a source holds, as (features, labels)."""
    clips: dict[str, tuple[list[np.ndarray], list[int]]] = {}
    for split, samples, label in _clips(source, test):
        xs, ys = clips.setdefault(split, ([], []))
        xs.append(normalise_clip(samples))
        ys.append(label)
    out = {}
    for split, (xs, ys) in clips.items():
        x = np.concatenate([mfcc(np.stack(xs[i:i + 4096])) for i in range(0, len(xs), 4096)])
        out[split] = x[:, None], np.asarray(ys, np.int64)
    return out


def _save(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as f:
        np.savez(f, x=x, y=y)


def load_speech_commands(split: str = "train", data_dir: str | os.PathLike | None = None,
                         download: bool = True, verify: bool = True,
                         cache: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A split (``train``, ``validation``, ``test``) as the keyword-spotting models read it:
    float32 MFCC features ``(n, 1, 49, 10)`` and int64 labels (indices into :data:`CLASSES`).
    The release's train and validation splits are computed, and cached, together."""
    if split not in SPLITS:
        raise UsageError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    src = TEST_SET if split == "test" else RELEASE
    source = find(src, data_dir, download)
    verified = source.is_file() and verify
    if cache and (path := _cache_path(split, source, verified)).is_file():
        with np.load(path) as f:
            return f["x"], f["y"]
    if verified:  # the 2.4 GB hash only when the audio is read, not on every load from the cache
        _verified(source, src)
    splits = _features(source, split == "test")
    if split not in splits:
        raise SpeechCommandsError(f"{source}: no clips of the {split} split")
    if cache:
        for name, (x, y) in splits.items():
            _save(_cache_path(name, source, verified), x, y)
    return splits[split]


def write_synthetic(folder: Path, clips_per_word: int = 2, seed: int = 0,
                    unknown_words: tuple[str, ...] = ("bed", "cat"),
                    noise_seconds: tuple[float, float] = (3.0, 2.0)) -> tuple[Path, Path]:
    """Both archives in the release's format, small: each class's clips a tone of its own plus
    noise (the ten words, ``unknown_words``, the test set's ``_silence_`` and ``_unknown_``
    folders, two ``_background_noise_`` recordings of ``noise_seconds`` and the two lists).
    For tests and for trying a pipeline offline (read with ``verify=False``)."""
    rng = np.random.default_rng(seed)

    def wav(freq: float, seconds: float = 1.0) -> bytes:
        t = np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE
        return pcm16(6000 * np.sin(2 * np.pi * freq * t) + rng.normal(0, 500, t.size), SAMPLE_RATE)

    tones = {w: 300.0 + 150 * i for i, w in enumerate((*WORDS, *unknown_words))}
    release: dict[str, bytes] = {}
    lists: dict[str, list[str]] = {"validation_list.txt": [], "testing_list.txt": []}
    for word, freq in tones.items():
        for i in range(clips_per_word + 2):
            path = f"{word}/{i:08x}_nohash_0.wav"
            release[path] = wav(freq)
            if i >= clips_per_word:  # one to each held-out list
                lists["validation_list.txt" if i == clips_per_word else "testing_list.txt"].append(path)
    release[f"{NOISE}/white_noise.wav"] = wav(50.0, noise_seconds[0])
    release[f"{NOISE}/{VALIDATION_NOISE}"] = wav(60.0, noise_seconds[1])
    release.update({name: ("\n".join(paths) + "\n").encode() for name, paths in lists.items()})
    test = {f"{w}/{i:08x}_nohash_0.wav": wav(tones.get(w, 70.0)) for w in (*WORDS, SILENCE, UNKNOWN)
            for i in range(clips_per_word)}
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for src, files in ((RELEASE, release), (TEST_SET, test)):
        with tarfile.open(folder / src.archive, "w:gz") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(f"./{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        out.append(folder / src.archive)
    return out[0], out[1]
