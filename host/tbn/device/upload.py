"""Flash a real board with what its user has: PlatformIO's own upload where the board's
PlatformIO platform is installed, else openocd (ST-LINK), else pyOCD.

``tbn-flash --dry-run`` prints the command instead of running it. Untested on hardware here:
no board is attached to these machines; the command lines are (tests/test_nucleo.py).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tbn.boards import Board
from tbn.device.build import FIRMWARE, pio_command, pio_env
from tbn.errors import DeviceError

TOOLS = ("platformio", "openocd", "pyocd")


class UploadError(DeviceError):
    """The upload failed; the message carries the tool's output."""


class UploadToolMissing(UploadError):
    """None of the board's upload tools is installed; the message says how to get one."""


@dataclass(frozen=True)
class Upload:
    tool: str
    argv: tuple[str, ...]
    env: dict[str, str] | None = None  # for PlatformIO: its project-local core

    def __str__(self) -> str:
        return shlex.join(self.argv)


def _pio_platform_installed(board: Board) -> bool:
    core = Path(pio_env()["PLATFORMIO_CORE_DIR"])
    return bool(board.pio_platform) and (core / "platforms" / board.pio_platform).exists()


def upload_command(board: Board, elf: Path, model: Path | None = None) -> Upload:
    """The command that flashes ``elf`` (built with ``model`` embedded) onto ``board``, with
    the first tool this machine has; :class:`UploadToolMissing` when it has none."""
    if _pio_platform_installed(board):  # PlatformIO's own build and upload, in its environment
        env = pio_env() | ({"TBN_MODEL": str(Path(model).resolve())} if model else {})
        argv = (*pio_command(), "run", "-d", str(FIRMWARE), "-e", f"{board.name}_{board.pio_platform}",
                "-t", "upload")
        return Upload("platformio", argv, env)
    if board.openocd_target and (openocd := shutil.which("openocd")):
        target = f"target/{board.openocd_target}.cfg"
        return Upload("openocd", (openocd, "-f", "interface/stlink.cfg", "-f", target,
                                  "-c", f"program {elf} verify reset exit"))
    if board.pyocd_target and (pyocd := shutil.which("pyocd")):
        return Upload("pyocd", (pyocd, "flash", "--target", board.pyocd_target, str(elf)))
    raise UploadToolMissing(
        f"{board.name}: nothing here can flash it: install openocd (Debian: apt-get install openocd), "
        f"or pyOCD (pip install pyocd), or PlatformIO's {board.pio_platform or 'board'} platform "
        f"(pio pkg install -g -p {board.pio_platform}, with the PlatformIO registry reachable); "
        f"tbn-flash --board {board.name} --dry-run builds without one")


def upload(cmd: Upload) -> None:
    """Run an upload command; :class:`UploadError` with its output when it fails."""
    proc = subprocess.run(list(cmd.argv), env=cmd.env, capture_output=True, text=True)
    if proc.returncode:
        log = (proc.stdout + proc.stderr)[-3000:]
        raise UploadError(f"`{cmd}` failed (exit {proc.returncode}); is the board connected over its "
                          f"ST-LINK USB port?\n{log}")
