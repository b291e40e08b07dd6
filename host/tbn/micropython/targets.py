"""The native-module architectures of tbn's MicroPython module. The targets themselves (a
MicroPython port, its board, its ``.mpy`` architecture and emulator) are described in
``boards/micropython/`` and read by :mod:`tbn.boards`."""

from __future__ import annotations

from tbn.boards import Target, list_boards, load_target

# Every architecture a native .mpy of tbn is built for, and the compiler each needs.
ARCHS: dict[str, str] = {
    "x64": "gcc", "armv6m": "arm-none-eabi-gcc", "armv7m": "arm-none-eabi-gcc",
    "armv7emsp": "arm-none-eabi-gcc", "armv7emdp": "arm-none-eabi-gcc",
    "rv32imc": "riscv64-unknown-elf-gcc", "xtensawin": "xtensa-esp32-elf-gcc",
}
# sys.implementation._mpy >> 10 (the firmware's native architecture) -> its .mpy architecture
MPY_ARCH_CODES = {1: "x86", 2: "x64", 3: "armv6", 4: "armv6m", 5: "armv7m", 6: "armv7em", 7: "armv7emsp",
                  8: "armv7emdp", 9: "xtensa", 10: "xtensawin", 11: "rv32imc", 12: "rv64imc"}


def targets() -> dict[str, Target]:
    """Every MicroPython target, by name."""
    return {name: load_target(name) for name in list_boards("micropython")}


def target(name: str) -> Target:
    """A MicroPython target by name (a :class:`~tbn.boards.BoardError` lists them)."""
    return load_target(name)
