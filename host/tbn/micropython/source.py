"""Where MicroPython's sources come from, pinned to one commit: ``$MICROPY_DIR`` (a checkout of
any version the user vouches for), else the pinned archive in ``../shared/third_party``, else a
download of the pinned commit (online), else a clear error naming all three."""

from __future__ import annotations

import os
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tbn.errors import TbnError
from tbn.paths import build_dir, shared_third_party

COMMIT = "1c3c201149f37fe8d81246191b3127bb198d6306"  # v1.29.0-preview, 2026-08-19
ARCHIVE = f"micropython-{COMMIT[:7]}.tar.xz"
URL = f"https://github.com/micropython/micropython/archive/{COMMIT}.tar.gz"


class MicroPythonSourceError(TbnError, FileNotFoundError):
    """MicroPython's sources are nowhere to be had."""


def _is_tree(path: Path) -> bool:
    return (path / "py" / "dynruntime.mk").is_file() and (path / "ports" / "qemu").is_dir()


def _unpack(archive: Path, dest: Path) -> Path:
    """Unpack ``archive`` (one top folder) into ``dest``, atomically: a killed unpack leaves none."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        (top,) = Path(tmp).iterdir()
        top.rename(dest)
    return dest


def micropython_dir() -> Path:
    """A MicroPython source tree of the pinned commit (or ``$MICROPY_DIR``)."""
    env = os.environ.get("MICROPY_DIR")
    if env:
        if not _is_tree(Path(env)):
            raise MicroPythonSourceError(f"MICROPY_DIR={env} is not a MicroPython source tree "
                                         f"(no py/dynruntime.mk or ports/qemu)")
        return Path(env)
    dest = build_dir() / f"micropython-{COMMIT[:7]}"
    if _is_tree(dest):
        return dest
    pinned = shared_third_party() / ARCHIVE
    if pinned.is_file():
        return _unpack(pinned, dest)
    if os.environ.get("TBN_OFFLINE"):
        reason = "downloads are off (TBN_OFFLINE is set)"
    else:
        try:
            with tempfile.NamedTemporaryFile(suffix=".tar.gz") as f:
                with urllib.request.urlopen(URL, timeout=120) as resp:
                    f.write(resp.read())
                f.flush()
                return _unpack(Path(f.name), dest)
        except (urllib.error.URLError, OSError, tarfile.TarError) as e:
            reason = f"downloading {URL} failed ({e})"
    raise MicroPythonSourceError(
        f"MicroPython's sources (commit {COMMIT[:7]}) not found: set MICROPY_DIR to a checkout, put "
        f"{ARCHIVE} in {shared_third_party()}, or go online; {reason}")
