"""The AVR boards' emulator: ``firmware/sim/tbn_simavr.c`` on libsimavr, built on first use.

Board descriptions name it ``tbn-simavr`` in their ``emulator`` command, with QEMU's arguments
(``-M``, ``-kernel``, ``-serial tcp:...``), so :class:`tbn.device.emulator.Emulator` runs it as
it runs QEMU.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tbn.errors import DeviceError
from tbn.paths import build_dir, root

NAME = "tbn-simavr"
SOURCE = root() / "firmware" / "sim" / "tbn_simavr.c"
HEADER = Path("/usr/include/simavr/sim_avr.h")


class SimavrError(DeviceError):
    """The harness could not be built: libsimavr or a C compiler is missing."""


def stack_guard(elf: Path) -> int:
    """The end of the firmware's static RAM (the linker's ``_end``, after .data, .bss and
    .noinit): the harness stops the core, naming the overflow, if the stack pointer goes below."""
    nm = shutil.which("avr-nm")
    if nm is None:
        raise SimavrError("avr-nm not found (Debian: apt-get install binutils-avr)")
    out = subprocess.run([nm, str(elf)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == "_end":
            return int(parts[0], 16) & 0xFFFF  # data addresses are 0x800000 + SRAM address
    raise SimavrError(f"{elf} has no _end symbol: not an avr-gcc firmware?")


def command(cmd: list[str], elf: Path) -> list[str]:
    """A board's ``tbn-simavr`` command made runnable: the built harness, with the stack guard."""
    return [str(harness()), "-stack-guard", hex(stack_guard(elf)), *cmd[1:]]


def harness() -> Path:
    """The built harness, compiled again when its source is newer."""
    exe = build_dir() / "host" / NAME
    if exe.is_file() and exe.stat().st_mtime >= SOURCE.stat().st_mtime:
        return exe
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or not HEADER.is_file():
        raise SimavrError(f"{NAME} needs a C compiler and libsimavr (Debian: apt-get install gcc "
                          "libsimavr-dev; `make deps` does, as root)")
    exe.parent.mkdir(parents=True, exist_ok=True)
    tmp = exe.with_suffix(".partial")
    proc = subprocess.run([cc, "-O2", "-Wall", "-Wextra", "-Werror", "-I/usr/include/simavr", str(SOURCE),
                           "-lsimavr", "-o", str(tmp)], capture_output=True, text=True)
    if proc.returncode:
        raise SimavrError(f"building {NAME} failed:\n{proc.stderr[-2000:]}")
    tmp.replace(exe)
    return exe
