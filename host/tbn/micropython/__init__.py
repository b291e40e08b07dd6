"""tbn on MicroPython: the ``tbn`` module (firmware/micropython) built into MicroPython firmware
or as a native ``.mpy``, the emulated and unix targets that run it, and a session that runs
models there beside the reference interpreter (docs/micropython.md)."""

from tbn.micropython.build import MicroPythonBuildError, firmware, natmod, romfs
from tbn.micropython.session import MicroPythonError, Session, open_target
from tbn.micropython.source import micropython_dir
from tbn.micropython.targets import Target, target, targets

__all__ = [
    "MicroPythonBuildError",
    "MicroPythonError",
    "Session",
    "Target",
    "firmware",
    "micropython_dir",
    "natmod",
    "open_target",
    "romfs",
    "target",
    "targets",
]
