"""The places tbn's MicroPython module runs here: MicroPython's QEMU port on two emulated
Cortex-M boards, and its unix port. Each names the firmware to build and the native-module
architecture that matches it."""

from __future__ import annotations

from dataclasses import dataclass

from tbn.errors import UsageError


@dataclass(frozen=True)
class Target:
    name: str
    title: str
    port: str  # MicroPython port: "qemu" or "unix"
    board: str = ""  # the port's BOARD
    machine: str = ""  # qemu-system-arm -M
    romfs_addr: int = 0  # where the port mounts /rom from (read-only, read in place)
    arch: str = "x64"  # the .mpy architecture this firmware imports

    @property
    def emulated(self) -> bool:
        return self.port == "qemu"


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("mpy_an385", "MicroPython on MPS2 AN385 (Cortex-M3), QEMU", "qemu", "MPS2_AN385", "mps2-an385",
           0x21000000, "armv7m"),
    Target("mpy_an500", "MicroPython on MPS2 AN500 (Cortex-M7, double-precision FPU), QEMU", "qemu",
           "MPS2_AN500", "mps2-an500", 0x60C00000, "armv7emdp"),
    Target("mpy_unix", "MicroPython's unix port, on this machine", "unix"),
)}

# Every architecture a native .mpy of tbn is built for, and the compiler each needs.
ARCHS: dict[str, str] = {
    "x64": "gcc", "armv6m": "arm-none-eabi-gcc", "armv7m": "arm-none-eabi-gcc",
    "armv7emsp": "arm-none-eabi-gcc", "armv7emdp": "arm-none-eabi-gcc",
    "rv32imc": "riscv64-unknown-elf-gcc", "xtensawin": "xtensa-esp32-elf-gcc",
}
# sys.implementation._mpy >> 10 (the firmware's native architecture) -> its .mpy architecture
MPY_ARCH_CODES = {1: "x86", 2: "x64", 3: "armv6", 4: "armv6m", 5: "armv7m", 6: "armv7em", 7: "armv7emsp",
                  8: "armv7emdp", 9: "xtensa", 10: "xtensawin", 11: "rv32imc", 12: "rv64imc"}


def target(name: str) -> Target:
    """A MicroPython target by name, or a :class:`UsageError` listing them."""
    try:
        return TARGETS[name]
    except KeyError:
        raise UsageError(f"unknown MicroPython target {name!r}; choose one of {', '.join(TARGETS)}") from None
