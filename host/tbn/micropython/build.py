"""Builds, each cached under ``build/micropython/`` and redone by make only when a source changed:
MicroPython firmware for a target (with the tbn module built in, or stock), the native
``tbn.mpy`` for an architecture, and ROMFS images of files for ``/rom``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tbn.errors import TbnError
from tbn.micropython.source import micropython_dir
from tbn.micropython.targets import ARCHS, Target
from tbn.paths import build_dir, root

MODULE_DIR = root() / "firmware" / "micropython"  # USER_C_MODULES: tbn/micropython.mk inside
# What the QEMU and unix ports need left out here: micropython-lib (frozen manifest), and on
# unix the submodules behind ffi, btree and TLS.
_QEMU_FLAGS = ["FROZEN_MANIFEST="]
# The qemu port's GC heap: 512 KB, not its default 140 KB, which a 99 KB arena (PointNet's F32)
# does not find whole once a session has run a few models (the heap does not compact). The MPS2
# boards have 4 MB; the MCUs MicroPython users run such models on have 256 KB to 1 MB.
QEMU_HEAP_BYTES = 512 * 1024
_UNIX_FLAGS = ["FROZEN_MANIFEST=", "MICROPY_PY_FFI=0", "MICROPY_PY_BTREE=0", "MICROPY_PY_SSL=0",
               "MICROPY_SSL_MBEDTLS=0"]


class MicroPythonBuildError(TbnError, RuntimeError):
    """A MicroPython build failed or cannot run here."""


def out_dir() -> Path:
    return build_dir() / "micropython"


def _make(args: list[str], what: str, cwd: Path | None = None, jobs: int = 2) -> None:
    # the venv's python first on PATH: mpy_ld.py wants pyelftools and ar, which tbn[micropython] installs
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    r = subprocess.run(["make", f"-j{jobs}", *args], cwd=cwd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise MicroPythonBuildError(f"building {what} failed:\n{(r.stdout + r.stderr)[-3000:]}")


def mpy_cross() -> Path:
    mp = micropython_dir()
    _make(["-C", str(mp / "mpy-cross")], "mpy-cross")
    return mp / "mpy-cross" / "build" / "mpy-cross"


def firmware(t: Target, with_module: bool = True) -> Path:
    """The firmware for ``t``: with tbn built in (a user C module), or stock. Returns the ELF
    (qemu) or the executable (unix)."""
    mp = micropython_dir()
    mpy_cross()
    kind = "tbn" if with_module else "stock"
    build = out_dir() / f"{t.name}-{kind}"
    module = [f"USER_C_MODULES={MODULE_DIR}"] if with_module else []
    if t.port == "unix":
        _make(["-C", str(mp / "ports" / "unix"), *_UNIX_FLAGS, *module, f"BUILD={build}", "PROG=micropython"],
              f"MicroPython's unix port ({kind})")
        return build / "micropython"
    if shutil.which("arm-none-eabi-gcc") is None:
        raise MicroPythonBuildError("arm-none-eabi-gcc not found: `make deps` installs it (as root)")
    build = build.with_name(f"{build.name}-heap{QEMU_HEAP_BYTES // 1024}k")  # a new size: a new build
    _make(["-C", str(mp / "ports" / "qemu"), f"BOARD={t.board}", *_QEMU_FLAGS,
           f"MICROPY_HEAP_SIZE={QEMU_HEAP_BYTES}", *module, f"BUILD={build}"],
          f"MicroPython's qemu port for {t.board} ({kind})")
    return build / "firmware.elf"


def natmod(arch: str) -> Path:
    """``tbn.mpy`` for ``arch`` (a native module: the same modtbn.c and the whole runtime)."""
    if arch not in ARCHS:
        raise MicroPythonBuildError(f"no native module for {arch!r}; architectures: {', '.join(ARCHS)}")
    if shutil.which(ARCHS[arch]) is None:
        raise MicroPythonBuildError(f"building tbn.mpy for {arch} needs {ARCHS[arch]}, which is not "
                                    f"installed")
    mp = micropython_dir()
    build = out_dir() / f"natmod-{arch}"
    build.mkdir(parents=True, exist_ok=True)
    # make runs in the build folder, through a link to the Makefile (its rules name ./Makefile),
    # so the .mpy, written to the current folder, lands there and the source tree stays clean
    link = build / "Makefile"
    if not link.is_symlink():
        link.symlink_to(MODULE_DIR / "natmod" / "Makefile")
    _make([f"MPY_DIR={mp}", f"ARCH={arch}", f"BUILD={build / 'obj'}"], f"tbn.mpy for {arch}", cwd=build,
          jobs=1)  # its rules race under -j
    return build / "tbn.mpy"


def romfs(files: dict[str, Path | bytes], image: Path) -> Path:
    """A ROMFS image holding ``files`` (name in /rom -> a file or its bytes), each 16-byte
    aligned so that a model is read in place, for QEMU's loader."""
    from tbn.micropython.romfs_image import build as build_image

    blobs = {n: c if isinstance(c, bytes) else Path(c).read_bytes() for n, c in files.items()}
    image.parent.mkdir(parents=True, exist_ok=True)
    image.write_bytes(build_image(blobs))
    return image
