"""Where CMSIS-NN and CMSIS-Core come from for the side-by-side benchmark.

In this order: ``$CMSIS_NN_DIR`` and ``$CMSIS_CORE_DIR`` (unpacked checkouts: CMSIS-NN's
root with ``Include`` and ``Source``, CMSIS_6's root with ``CMSIS/Core/Include``); else
the pinned archives in ``../shared/third_party``; else a download of the same commits from
GitHub. Archives are unpacked once under ``build/third_party``.
"""

from __future__ import annotations

import os
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tbn.errors import TbnError
from tbn.paths import build_dir, shared_third_party

# (name, commit, archive in ../shared/third_party, folder inside it)
CMSIS_NN = ("CMSIS-NN", "99f736a63036613032f9b70de36b493bcd7802d4", "cmsis-nn-99f736a.tar.xz", "CMSIS-NN")
CMSIS_CORE = ("CMSIS_6", "7f62ddc8ab8e9af22039912b8f9f46a9290f49ba", "cmsis6-core-7f62ddc.tar.xz", "CMSIS_6")


class CmsisUnavailable(TbnError, RuntimeError):
    """CMSIS-NN sources are nowhere to be found or fetched."""


@dataclass(frozen=True)
class Cmsis:
    nn: Path  # has Include/ and Source/
    core_include: Path  # CMSIS/Core/Include


def _unpacked(project: tuple[str, str, str, str]) -> Path:
    name, commit, archive, folder = project
    dest = build_dir() / "third_party" / commit[:7]
    if (dest / folder).is_dir():
        return dest / folder
    local = shared_third_party() / archive
    dest.mkdir(parents=True, exist_ok=True)
    if local.is_file():
        with tarfile.open(local) as t:
            t.extractall(dest, filter="data")
        return dest / folder
    url = f"https://github.com/ARM-software/{name}/archive/{commit}.tar.gz"
    try:
        tmp = dest / f"{name}.tar.gz"
        urllib.request.urlretrieve(url, tmp)
    except OSError as e:
        raise CmsisUnavailable(
            f"{name}: no ${'CMSIS_NN_DIR' if name == 'CMSIS-NN' else 'CMSIS_CORE_DIR'}, no {local}, and "
            f"{url} cannot be fetched ({e}); set the variable to an unpacked checkout") from e
    with tarfile.open(tmp) as t:
        t.extractall(dest, filter="data")
    (dest / f"{name}-{commit}").rename(dest / folder)
    return dest / folder


def cmsis() -> Cmsis:
    """The CMSIS-NN and CMSIS-Core trees to build against."""
    nn = Path(os.environ["CMSIS_NN_DIR"]) if "CMSIS_NN_DIR" in os.environ else _unpacked(CMSIS_NN)
    core = Path(os.environ["CMSIS_CORE_DIR"]) if "CMSIS_CORE_DIR" in os.environ else _unpacked(CMSIS_CORE)
    found = Cmsis(nn, core / "CMSIS" / "Core" / "Include")
    for need in (found.nn / "Include" / "arm_nnfunctions.h", found.core_include / "cmsis_compiler.h"):
        if not need.is_file():
            raise CmsisUnavailable(f"{need} is missing: is the CMSIS checkout complete?")
    return found
