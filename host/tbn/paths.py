"""Where tbn finds its files: the source checkout, the C runtime's sources and flags, data.

The checkout is ``$TBN_ROOT`` if set, else the one this package runs from (``host/tbn``
inside it). The C runtime's sources and compiler flags are those of its PlatformIO
manifest, ``firmware/lib/tbn/library.json``: PlatformIO reads it itself, and the Makefile
(``python -m tbn.paths c-flags``), the size benchmark and the HIL load generator ask here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from tbn.errors import TbnError


class CheckoutError(TbnError, FileNotFoundError):
    """The tbn checkout (or $TBN_ROOT) lacks a file tbn needs, or holds a malformed one."""


def root() -> Path:
    """The tbn source checkout (boards/, firmware/, kernels_gpu/, tests/vectors/)."""
    env = os.environ.get("TBN_ROOT")
    return Path(env) if env else Path(__file__).resolve().parents[2]


def build_dir() -> Path:
    """Where builds go: ``<root>/build``."""
    return root() / "build"


def shared_data() -> Path:
    """``../shared/data`` beside the checkout, where datasets lie on machines without internet."""
    return root().parent / "shared" / "data"


def shared_third_party() -> Path:
    """``../shared/third_party`` beside the checkout: pinned source archives for offline builds."""
    return root().parent / "shared" / "third_party"


@dataclass(frozen=True)
class CRuntime:
    """The C runtime as its manifest describes it."""

    include: Path
    sources: tuple[Path, ...]
    flags: tuple[str, ...]  # language and warnings; optimisation and target flags are the caller's


def c_runtime() -> CRuntime:
    """Read ``firmware/lib/tbn/library.json``."""
    lib = root() / "firmware" / "lib" / "tbn"
    manifest = lib / "library.json"
    try:
        build = json.loads(manifest.read_text())["build"]
        flags = tuple(str(f) for f in build["flags"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckoutError(f"{manifest}: cannot read the C runtime's sources and flags ({e!r}); "
                            f"is {root()} a tbn checkout? (set TBN_ROOT to one)") from e
    src = lib / build.get("srcDir", "src")
    return CRuntime(lib / build.get("includeDir", "include"), tuple(sorted(src.rglob("*.c"))), flags)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Print one of tbn's paths or C build facts (for make).")
    ap.add_argument("what", choices=("root", "c-flags", "c-sources", "c-include"))
    what = ap.parse_args(argv).what
    if what == "root":
        print(root())
        return 0
    try:
        c = c_runtime()
    except CheckoutError as e:
        print(f"tbn.paths: error: {e}", file=sys.stderr)
        return 1
    # relative: make runs from the checkout
    out = {"c-flags": " ".join(c.flags), "c-sources": " ".join(os.path.relpath(p) for p in c.sources),
           "c-include": os.path.relpath(c.include)}[what]
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
