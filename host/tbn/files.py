"""Reading and writing the user's files without surprises: only regular files are read, and
never more than a format allows; outputs are written atomically and never over an input."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np

from tbn.errors import TbnError


class FileError(TbnError, OSError):
    """A path that cannot be read or written as asked."""


def regular_file(path: str | os.PathLike, what: str) -> Path:
    """``path`` if it is a regular file, else a :class:`FileError` saying what it is instead."""
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise FileError(f"{p}: no such file (expected {what})") from None
    except OSError as e:
        raise FileError(f"{p}: cannot read ({e.strerror})") from e
    if stat.S_ISDIR(mode):
        raise FileError(f"{p} is a folder, not {what}")
    if not stat.S_ISREG(mode):
        raise FileError(f"{p} is not a regular file (a pipe or a device?), not {what}")
    return p


def read_bounded(path: str | os.PathLike, limit: int, what: str) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes."""
    p = regular_file(path, what)
    size = p.stat().st_size
    if size > limit:
        raise FileError(f"{p} is {size} bytes, more than {what} can be ({limit})")
    try:
        return p.read_bytes()
    except OSError as e:
        raise FileError(f"{p}: cannot read ({e.strerror})") from e


# What an output of each kind starts with: a command replaces an existing file only when it
# is of the kind it writes (or with --force), so a mistyped -o never destroys a checkpoint.
KINDS = {"tbn": ((b"TBNB",), "a .tbn model"), "json": ((b"{", b"["), "a JSON file")}


def check_output(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = (), kind: str | None = None,
                 force: bool = False) -> None:
    """Refuse an output path that is one of ``inputs``, a folder, a pipe or device, or in a
    missing folder; and, unless ``force``, an existing file that is not of ``kind`` (a key of
    :data:`KINDS`)."""
    path = Path(path)
    for i in inputs:
        if Path(i).exists() and path.exists() and os.path.samefile(i, path):
            raise FileError(f"{path} is also the input: writing it would destroy the input; "
                            f"choose another output")
    if path.is_dir():
        raise FileError(f"{path} is a folder: give a file name for the output")
    if path.exists() and not path.is_file():  # a rename over a pipe or /dev/null would replace it
        raise FileError(f"{path} is not a regular file (a pipe or a device?): give a file name for "
                        "the output")
    if not path.parent.is_dir():
        raise FileError(f"{path.parent} does not exist: create it or choose another output")
    if kind is not None and not force and path.is_file() and path.stat().st_size:
        starts, what = KINDS[kind]
        with path.open("rb") as f:
            head = f.read(64).lstrip()
        if not head.startswith(starts):
            raise FileError(f"{path} exists and is not {what}: writing {what} there would destroy it; "
                            "choose another output, or add --force to replace it")


@contextmanager
def atomic_open(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = ()) -> Iterator[IO[bytes]]:
    """A binary file that replaces ``path`` only once it is completely written (a temporary
    file beside it, synced, then renamed): a crash leaves the old file or none, never half."""
    p = Path(path)
    check_output(p, inputs)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike, data: bytes, inputs: Iterable[str | os.PathLike] = ()) -> None:
    """Write ``data`` to ``path`` with :func:`atomic_open`."""
    with atomic_open(path, inputs) as f:
        f.write(data)


MAX_NPY_BYTES = 1 << 32  # inputs beyond 4 GiB are not something a microcontroller model takes


def read_npy(path: str | os.PathLike, what: str = "a .npy array of inputs") -> np.ndarray:
    """A numeric array from a regular ``.npy`` file (no pickles), or a :class:`FileError`."""
    p = regular_file(path, what)
    if p.stat().st_size > MAX_NPY_BYTES:
        raise FileError(f"{p} is {p.stat().st_size} bytes, more than {what} can be ({MAX_NPY_BYTES})")
    try:
        x = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise FileError(f"{p} is not {what} ({e}); write one with numpy.save") from e
    if not isinstance(x, np.ndarray) or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise FileError(f"{p} holds {getattr(x, 'dtype', type(x).__name__)}, not numbers ({what})")
    return x
