"""Third-party sources tbn builds with or reads, each pinned to one commit and found in this
order: an environment variable naming an unpacked copy (any version the user vouches for),
the unpacked copy in ``build/``, the pinned archive in ``../shared/third_party`` (unpacked
once), a download of the pinned commit (online), else one error naming all of them."""

from __future__ import annotations

import os
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tbn.errors import TbnError
from tbn.paths import build_dir, shared_third_party


class SourceNotFoundError(TbnError, FileNotFoundError):
    """A pinned third-party source is nowhere to be had."""


@dataclass(frozen=True)
class Pinned:
    """One pinned project: where a copy may come from and how to tell it is one."""

    name: str  # the project, as messages say it
    stem: str  # the archive (``<stem>-<commit[:7]>.tar.xz``) and the unpacked folder's name
    commit: str
    repo: str  # "owner/name" on GitHub
    env: str  # the variable naming an unpacked copy
    is_tree: Callable[[Path], bool]
    what: str  # what is_tree checks, for the message

    @property
    def archive(self) -> str:
        return f"{self.stem}-{self.commit[:7]}.tar.xz"

    @property
    def url(self) -> str:
        return f"https://github.com/{self.repo}/archive/{self.commit}.tar.gz"


def _unpack(archive: Path, dest: Path) -> Path:
    """Unpack ``archive`` (one top folder) into ``dest``, atomically: a killed unpack leaves none."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        (top,) = Path(tmp).iterdir()
        top.rename(dest)
    return dest


def locate(p: Pinned) -> Path:
    """An unpacked copy of ``p`` (see the module docstring for the order)."""
    env = os.environ.get(p.env)
    if env:
        if not p.is_tree(Path(env)):
            raise SourceNotFoundError(f"{p.env}={env} is not a {p.name} tree ({p.what})")
        return Path(env)
    dest = build_dir() / f"{p.stem}-{p.commit[:7]}"
    if p.is_tree(dest):
        return dest
    pinned = shared_third_party() / p.archive
    if pinned.is_file():
        return _unpack(pinned, dest)
    if os.environ.get("TBN_OFFLINE"):
        reason = "downloads are off (TBN_OFFLINE is set)"
    else:
        try:
            with tempfile.NamedTemporaryFile(suffix=".tar.gz") as f:
                with urllib.request.urlopen(p.url, timeout=120) as resp:
                    f.write(resp.read())
                f.flush()
                return _unpack(Path(f.name), dest)
        except (urllib.error.URLError, OSError, tarfile.TarError) as e:
            reason = f"downloading {p.url} failed ({e})"
    raise SourceNotFoundError(
        f"{p.name} (commit {p.commit[:7]}) not found: set {p.env} to a copy, put {p.archive} in "
        f"{shared_third_party()}, or go online; {reason}")


MICROPYTHON = Pinned(
    "MicroPython", "micropython", "1c3c201149f37fe8d81246191b3127bb198d6306",  # v1.29.0-preview
    "micropython/micropython", "MICROPY_DIR",
    lambda d: (d / "py" / "dynruntime.mk").is_file() and (d / "ports" / "qemu").is_dir(),
    "no py/dynruntime.mk or ports/qemu")
MLPERF_TINY = Pinned(
    "MLPerf Tiny (mlcommons/tiny)", "mlperf-tiny", "1afd2c96", "mlcommons/tiny", "TBN_MLPERF_TINY",
    lambda d: (d / "benchmark" / "training").is_dir() or (d / "image_classification").is_dir(),
    "no image_classification/ or benchmark/training/")
