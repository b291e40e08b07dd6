"""CIFAR-10 from the standard python archive, verified by MD5, found locally or downloaded.

Accepted forms: ``cifar-10-python.tar.gz`` (read in place, nothing is unpacked) or its
unpacked ``cifar-10-batches-py/`` folder. Where they are looked for: an explicit
``data_dir`` (``--data-dir``) is the only place looked (it and ``DIR/cifar10``) and must
exist; without one, ``$TBN_DATA/cifar10``, ``$TBN_DATA``, ``../shared/data/cifar10`` and
the user cache (``~/.cache/tbn/cifar10``), in that order. When none has it, the archive
is downloaded into ``data_dir`` or the cache (unless ``download=False`` or
``$TBN_OFFLINE``), verified and moved into place atomically.

Every batch is checked against the MD5 of the canonical release (the archive too, when
read from it); ``verify=False`` accepts other data in the same format (a subset, a test
fixture). Batches are unpickled with only numpy's array constructors allowed, so a
crafted file cannot run code.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tbn.data import locate
from tbn.data.split import Split
from tbn.errors import TbnError, UsageError
from tbn.files import FileError, read_bounded

ARCHIVE = "cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
FOLDER = "cifar-10-batches-py"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
BATCHES: dict[str, str] = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
SPLITS = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# per-channel statistics of the training split, as the authors' (and most) CIFAR-10 code uses
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
_MAX_BATCH_BYTES = 64 << 20  # a batch of 10,000 images pickles to about 31 MB
_MAX_ARCHIVE_BYTES = 512 << 20  # the release is 170 MB


class Cifar10Error(TbnError, RuntimeError):
    """CIFAR-10 cannot be found, downloaded or read."""


class Cifar10(Split):
    """One split: ``images`` uint8 ``(n, 3, 32, 32)``, ``labels`` uint8 ``(n,)``."""

    MEAN = MEAN
    STD = STD


class _ArraysOnly(pickle.Unpickler):
    """Unpickles dicts, lists, strings, bytes and numpy arrays; refuses every other global."""

    _ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset({
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")})

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}")
        return super().find_class(module, name)


def parse_batch(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (n, 3, 32, 32), labels uint8 (n,)) from one pickled batch's bytes."""
    try:
        d = _ArraysOnly(io.BytesIO(raw), encoding="bytes").load()
    except Exception as e:  # any unpickling failure means: not a CIFAR-10 batch
        raise Cifar10Error(f"{where}: not a CIFAR-10 python batch ({e or type(e).__name__})") from None
    if not isinstance(d, dict) or b"data" not in d or b"labels" not in d:
        raise Cifar10Error(f"{where}: not a CIFAR-10 python batch (no data and labels)")
    data, labels = np.asarray(d[b"data"]), np.asarray(d[b"labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise Cifar10Error(f"{where}: data is {data.dtype} {data.shape}, expected uint8 (n, 3072)")
    if labels.shape != (len(data),) or not np.isin(labels, np.arange(10)).all():
        raise Cifar10Error(f"{where}: expected {len(data)} labels in 0..9, got shape {labels.shape}")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.uint8)


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _check(data: bytes, want: str, where: str, verify: bool) -> bytes:
    if verify and _md5(data) != want:
        raise Cifar10Error(f"{where}: MD5 is {_md5(data)}, expected {want}: the file is truncated, corrupt "
                           f"or not the CIFAR-10 release; delete it and fetch it again (verify=False "
                           f"or --no-verify accepts other data in this format)")
    return data


def _read(path: Path, limit: int, what: str) -> bytes:
    """A regular file of at most ``limit`` bytes (never a FIFO, a device or a runaway file)."""
    try:
        return read_bounded(path, limit, what)
    except FileError as e:
        raise Cifar10Error(str(e)) from None


def _from_folder(folder: Path, names: tuple[str, ...], verify: bool) -> list[bytes]:
    out = []
    for name in names:
        if not (folder / name).exists():
            raise Cifar10Error(f"{folder} lacks {name}: an incomplete {FOLDER} folder")
        data = _read(folder / name, _MAX_BATCH_BYTES, "a CIFAR-10 batch")
        out.append(_check(data, BATCHES[name], str(folder / name), verify))
    return out


def _from_archive(archive: Path, names: tuple[str, ...], verify: bool) -> list[bytes]:
    data = _read(archive, _MAX_ARCHIVE_BYTES, "the CIFAR-10 archive")
    _check(data, ARCHIVE_MD5, str(archive), verify)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            out = []
            for name in names:
                try:
                    member = tar.getmember(f"{FOLDER}/{name}")
                except KeyError:
                    raise Cifar10Error(f"{archive} lacks {FOLDER}/{name}") from None
                f = tar.extractfile(member) if member.size <= _MAX_BATCH_BYTES else None
                if f is None:
                    raise Cifar10Error(f"{archive}: {FOLDER}/{name} is not a regular file of a batch's size")
                out.append(_check(f.read(), BATCHES[name], f"{archive}:{FOLDER}/{name}", verify))
            return out
    except (tarfile.TarError, OSError, EOFError) as e:
        raise Cifar10Error(f"{archive}: not a complete .tar.gz ({e or type(e).__name__}); the file is "
                           f"truncated or corrupt: delete it and fetch it again") from None


def _download(dest_dir: Path) -> Path:
    dest_dir.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(URL, timeout=60) as resp:
            raw = resp.read()
    except (urllib.error.URLError, OSError) as e:
        raise Cifar10Error(f"could not download {URL}: {e}") from None
    _check(raw, ARCHIVE_MD5, URL, verify=True)
    fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix=f".{ARCHIVE}.")
    with os.fdopen(fd, "wb") as f:
        f.write(raw)
    os.replace(tmp, dest_dir / ARCHIVE)
    return dest_dir / ARCHIVE


def find(data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The unpacked folder or the archive of the first place that has one (downloading if allowed)."""
    return locate.find("cifar10", FOLDER, ARCHIVE, data_dir, download, _download, Cifar10Error, "CIFAR-10",
                       f"Put {ARCHIVE} (from https://www.cs.toronto.edu/~kriz/cifar.html) or its unpacked "
                       f"{FOLDER}/ folder in DIR and pass --data-dir DIR, or put it in $TBN_DATA/cifar10.")


def load_cifar10(split: str = "train", data_dir: str | os.PathLike | None = None, download: bool = True,
                 verify: bool = True) -> Cifar10:
    """Load a CIFAR-10 split (``"train"``, 50,000 images, or ``"test"``, 10,000)."""
    if split not in SPLITS:
        raise UsageError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    source = find(data_dir, download)
    read = _from_folder if source.is_dir() else _from_archive
    parts = [parse_batch(raw, f"{source}:{name}")
             for raw, name in zip(read(source, SPLITS[split], verify), SPLITS[split], strict=True)]
    return Cifar10(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))


def write_synthetic(folder: Path, n_train: int = 100, n_test: int = 50, archive: bool = True,
                    seed: int = 0) -> Path:
    """Write a small synthetic dataset in CIFAR-10's release format (pickled batches of uint8
    (n, 3072) data and labels in cifar-10-batches-py/, packed as cifar-10-python.tar.gz unless
    ``archive=False``): for tests and for trying a pipeline offline (read it with
    ``verify=False``). Each class is a colour template plus noise, learnable in a few steps."""
    rng = np.random.default_rng(seed)
    templates = rng.integers(0, 256, (10, 3, 1, 1)) + rng.integers(-40, 40, (10, 3, 32, 32))

    def batch(n: int, label: str) -> bytes:
        labels = rng.integers(0, 10, n)
        data = np.clip(templates[labels] + rng.integers(-30, 30, (n, 3, 32, 32)), 0, 255).astype(np.uint8)
        return pickle.dumps({b"batch_label": label.encode(), b"labels": [int(v) for v in labels],
                             b"data": data.reshape(n, 3072), b"filenames": [b"x.png"] * n}, protocol=2)

    per = -(-n_train // 5)
    files = {f"data_batch_{i + 1}": batch(per, f"training batch {i + 1} of 5") for i in range(5)}
    files["test_batch"] = batch(n_test, "testing batch 1 of 1")
    folder.mkdir(parents=True, exist_ok=True)
    if not archive:
        (folder / FOLDER).mkdir()
        for name, raw in files.items():
            (folder / FOLDER / name).write_bytes(raw)
        return folder / FOLDER
    path = folder / ARCHIVE
    with tarfile.open(path, "w:gz") as tar:
        for name, raw in files.items():
            info = tarfile.TarInfo(f"{FOLDER}/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return path
