"""Where MicroPython's sources come from, pinned to one commit (:data:`tbn.third_party.MICROPYTHON`):
``$MICROPY_DIR`` (a checkout of any version the user vouches for), else the pinned archive in
``../shared/third_party``, else a download of the pinned commit (online), else a clear error
naming all three."""

from __future__ import annotations

from pathlib import Path

from tbn.third_party import MICROPYTHON, locate


def micropython_dir() -> Path:
    """A MicroPython source tree of the pinned commit (or ``$MICROPY_DIR``)."""
    return locate(MICROPYTHON)
