"""MNIST from IDX files, verified by MD5, found locally or downloaded.

Where the four files are looked for (each as ``NAME.gz`` or raw ``NAME``), in each place
both directly and in a ``mnist/`` subfolder: an explicit ``data_dir`` (the ``--data-dir``
option) is the only place looked, and it must exist; without one, in order,

1. ``$TBN_DATA``,
2. ``../shared/data`` (relative to the working directory, then to the source checkout),
3. the user cache, ``$XDG_CACHE_HOME/tbn`` (default ``~/.cache/tbn``).

A file is accepted when the MD5 of its decompressed bytes matches the canonical MNIST
release.  When a file is nowhere, it is downloaded (into ``data_dir`` when one is given,
else into the user cache) from the
canonical mirrors (unless ``download=False`` or ``$TBN_OFFLINE`` is set), verified, and
moved into place atomically.  Offline with no copy, :class:`MnistNotFoundError` says
where it looked and how to point tbn at a copy.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from tbn.data.split import Split
from tbn.errors import TbnError, UsageError
from tbn.paths import shared_data

FILES: dict[str, str] = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
SPLITS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


class MnistError(TbnError, RuntimeError):
    """Base class for MNIST loading errors."""


class MnistNotFoundError(MnistError):
    """The files are in none of the searched places and could not be downloaded."""


class IdxFormatError(MnistError):
    """A file is not a well-formed IDX file, or does not match its checksum."""


MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


class Mnist(Split):
    """One split: ``images`` uint8 ``(n, 28, 28)``, ``labels`` uint8 ``(n,)``."""

    MEAN = (MNIST_MEAN,)
    STD = (MNIST_STD,)


def parse_idx(data: bytes, name: str = "IDX data") -> np.ndarray:
    """Parse an IDX file's bytes into an array, checking the header against the size."""
    if len(data) < 4:
        raise IdxFormatError(f"{name}: {len(data)} bytes is too short for an IDX header")
    if data[0] != 0 or data[1] != 0:
        raise IdxFormatError(f"{name}: bad magic {data[:4].hex()} (IDX files start with 0000)")
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        raise IdxFormatError(f"{name}: unknown IDX element type 0x{code:02x}")
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise IdxFormatError(f"{name}: truncated header ({len(data)} bytes, {ndim} dimensions)")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise IdxFormatError(f"{name}: header says shape {shape} ({expected} bytes) "
                             f"but the file has {len(data)} bytes")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def search_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched, in order (see module docstring)."""
    if data_dir is not None:  # an explicit folder is the only place looked
        return [Path(data_dir), Path(data_dir) / "mnist"]
    roots: list[Path] = []
    if os.environ.get("TBN_DATA"):
        roots.append(Path(os.environ["TBN_DATA"]))
    roots.append(Path.cwd().parent / "shared" / "data")
    roots.append(shared_data())
    roots.append(cache_dir())
    out: list[Path] = []
    for r in roots:
        for d in (r, r / "mnist"):
            if d not in out:
                out.append(d)
    return out


def no_download_reason(download: bool) -> str | None:
    """Why a dataset may not be downloaded now (``$TBN_OFFLINE``, or the caller said no), or None."""
    if os.environ.get("TBN_OFFLINE"):
        return "downloads are off (TBN_OFFLINE is set)"
    return None if download else "download=False"


def cache_dir() -> Path:
    """The user cache folder where downloads go."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tbn"


def _read_verified(path: Path, name: str, verify: bool = True) -> bytes:
    raw = path.read_bytes()
    try:
        data = gzip.decompress(raw) if path.suffix == ".gz" else raw
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
        raise IdxFormatError(f"{path}: not a complete gzip file ({e or type(e).__name__}); the file is "
                             f"truncated or corrupt: delete it and fetch it again") from None
    digest = hashlib.md5(data).hexdigest()
    if verify and digest != FILES[name]:
        raise IdxFormatError(f"{path}: MD5 of the decompressed data is {digest}, expected "
                             f"{FILES[name]} for {name}; the file is corrupt or not MNIST")
    return data


def _download(name: str, dest_dir: Path) -> Path:
    dest_dir.mkdir(parents=True, exist_ok=True)
    errors = []
    for mirror in MIRRORS:
        url = f"{mirror}{name}.gz"
        try:
            with urllib.request.urlopen(url, timeout=30) as resp:
                raw = resp.read()
            if hashlib.md5(gzip.decompress(raw)).hexdigest() != FILES[name]:
                errors.append(f"{url}: checksum mismatch")
                continue
        except (urllib.error.URLError, OSError, EOFError) as e:
            errors.append(f"{url}: {e}")
            continue
        fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix=f".{name}.")
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        final = dest_dir / f"{name}.gz"
        os.replace(tmp, final)
        return final
    raise MnistNotFoundError(f"could not download {name}: " + "; ".join(errors))


def find_file(name: str, data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Path of a verified copy of MNIST file ``name`` (downloading it if allowed)."""
    if data_dir is not None and not Path(data_dir).is_dir():
        raise MnistNotFoundError(f"--data-dir {data_dir} does not exist (or is not a folder)")
    dirs = search_dirs(data_dir)
    for d in dirs:
        for candidate in (d / f"{name}.gz", d / name):
            if candidate.is_file():
                return candidate
    reason = no_download_reason(download)
    if reason is None:
        try:
            return _download(name, Path(data_dir) if data_dir is not None else cache_dir() / "mnist")
        except MnistNotFoundError as e:
            reason = str(e)
    raise MnistNotFoundError(
        f"MNIST file {name}(.gz) not found; looked in: {', '.join(map(str, dirs))}; {reason}. "
        f"Put the four IDX files in one folder and pass --data-dir DIR or set TBN_DATA=DIR.")


def load_mnist(split: str = "train", data_dir: str | os.PathLike | None = None,
               download: bool = True, verify: bool = True) -> Mnist:
    """Load an MNIST split (``"train"`` or ``"test"``), verified by MD5 (``verify=False``:
    accept other data in the IDX format, such as a subset)."""
    if split not in SPLITS:
        raise UsageError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    img_name, lbl_name = SPLITS[split]
    images = parse_idx(_read_verified(p := find_file(img_name, data_dir, download), img_name, verify), str(p))
    labels = parse_idx(_read_verified(q := find_file(lbl_name, data_dir, download), lbl_name, verify), str(q))
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise IdxFormatError(f"{p} and {q}: shapes {images.shape} and {labels.shape} do not pair up")
    return Mnist(images=images, labels=labels)
