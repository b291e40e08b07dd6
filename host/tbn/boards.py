"""Every place tbn runs a model, described in ``boards/``, read here and only here.

``boards/<name>.json``: a board the tbn firmware runs on. Each is a PlatformIO board manifest
(so ``pio run -e <name>`` reads the same file) with a ``tbn`` section: core, clock, memory
map, HAL file, model slot and arena sizes, the emulator command for boards QEMU or simavr
emulate, and the other names users know it by (``aliases``: ``tbn-flash --board
nucleo_f767`` finds ``nucleo_f767zi``). ``boards/micropython/<name>.json``: a MicroPython
target (a port of MicroPython, its board and ``.mpy`` architecture, and its emulator).

:data:`SCHEMA` gives each key's type and default; the host (:func:`load_board`,
:func:`load_target`) and the firmware build (``firmware/scripts/board.py``) read the
sections through :func:`section`. This module needs the standard library only.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tbn.errors import TbnError
from tbn.paths import root

REQUIRED = object()
# The "tbn" section of a board (firmware) or a MicroPython target: key -> (type, default).
SCHEMA: dict[str, dict[str, tuple[type, Any]]] = {
    "firmware": {
        "arch": (str, REQUIRED), "core": (str, REQUIRED), "clock_hz": (int, REQUIRED), "hal": (str, REQUIRED),
        "uart_irq": (int, REQUIRED), "slot_bytes": (int, REQUIRED), "arena_bytes": (int, REQUIRED),
        "flash_origin": (str, ""), "ram_origin": (str, ""), "frame_timeout_ms": (int, 100),
        "aliases": (list, []), "cflags": (list, []), "emulator": (list, []), "upload": (dict, {}),
        # what the cost counter counts: executed instructions under QEMU's -icount, else cycles
        # (a real core, or a cycle-accurate simulator such as simavr): derived when absent
        "cost_unit": (str, None), "model_ops": (bool, False), "activations": (list, ["f32", "int8"]),
        "stack_bytes": (int, 8192), "timer_hz": (int, None), "frame_bytes": (int, None),
        "rx_ring_bytes": (int, None),
    },
    "micropython": {
        "port": (str, REQUIRED), "board": (str, ""), "mpy_arch": (str, "x64"), "emulator": (list, []),
        "aliases": (list, []),
    },
}
KINDS = {"firmware": "", "micropython": "micropython"}  # each kind's folder under boards/


class BoardError(TbnError, ValueError):
    """An unknown board or a malformed description."""


@dataclass(frozen=True)
class EmulatorSpec:
    """How to boot an emulated board: its command line, whose ``{elf}`` and ``{serial}`` (and
    any other placeholder, e.g. a MicroPython target's ``{romfs}``) the emulator fills."""

    board: str
    command: tuple[str, ...]

    @property
    def program(self) -> str:
        return self.command[0]


class _Emulated:
    """``emulated`` and ``emulation`` from an ``emulator`` command (empty: not emulated)."""

    name: str
    emulator: tuple[str, ...]

    @property
    def emulated(self) -> bool:
        return bool(self.emulator)

    @property
    def emulation(self) -> EmulatorSpec:
        """How to boot it; a :class:`BoardError` saying what to do instead where it is not emulated."""
        if not self.emulator:
            raise BoardError(f"{self.name} is not emulated: {self.NOT_EMULATED.format(name=self.name)}")
        return EmulatorSpec(self.name, self.emulator)

    NOT_EMULATED = ""


@dataclass(frozen=True)
class Board(_Emulated):
    """A board the tbn firmware runs on."""

    name: str
    title: str
    core: str
    clock_hz: int
    flash_bytes: int
    ram_bytes: int
    slot_bytes: int
    arena_bytes: int
    hal: str
    emulator: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    # real boards: how tbn.device.upload can flash them (PlatformIO platform, openocd target
    # script, pyOCD target), each "" where it does not apply
    pio_platform: str = ""
    openocd_target: str = ""
    pyocd_target: str = ""
    # the runtime is built with the embedded model's ops only (a small flash: tbn-flash --model-ops)
    model_ops: bool = False
    cost_unit: str = "cycles"
    # the activation types its firmware runs (the Uno: int8 only, f32 needs more stack)
    activations: tuple[str, ...] = ("f32", "int8")
    stack_bytes: int = 8192  # what the firmware's stack may take (the fit check counts it)
    arch: str = "cortexm"  # firmware/arch/<arch>/: cortexm, riscv, avr

    NOT_EMULATED = "a real board; flash it with `tbn-flash --board {name}`"


@dataclass(frozen=True)
class Target(_Emulated):
    """A MicroPython target: a port (``qemu`` or ``unix``), its BOARD, the native-module
    architecture its firmware imports, and the emulator of a QEMU port."""

    name: str
    title: str
    port: str
    board: str = ""
    arch: str = "x64"
    emulator: tuple[str, ...] = ()
    NOT_EMULATED = "this MicroPython target runs on this machine"


def boards_dir(kind: str = "firmware") -> Path:
    path = root() / "boards" / KINDS[kind]
    if not path.is_dir():
        raise BoardError(f"no {path} folder: tbn-flash runs from a tbn source checkout "
                         "(or set TBN_ROOT to one)")
    return path


def _read(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise BoardError(f"{path}: malformed board description ({e})") from e
    if not isinstance(doc, dict):
        raise BoardError(f"{path}: malformed board description (not a JSON object)")
    return doc


def section(doc: dict[str, Any], kind: str = "firmware", where: str = "") -> dict[str, Any]:
    """A description's ``tbn`` section with every key of :data:`SCHEMA`: defaults filled in,
    types checked, unknown keys refused (a misspelt key would otherwise be a silent default)."""
    given, schema, out = doc.get("tbn"), SCHEMA[kind], {}
    if not isinstance(given, dict):
        raise BoardError(f"{where}: malformed board description (no \"tbn\" section)")
    unknown = sorted(set(given) - set(schema))
    if unknown:
        raise BoardError(f"{where}: malformed board description: unknown keys {unknown} in \"tbn\"")
    for key, (typ, default) in schema.items():
        if key not in given and default is REQUIRED:
            raise BoardError(f"{where}: malformed board description: \"tbn\" needs {key!r}")
        value = given[key] if key in given else copy.copy(default)  # a default list is never shared
        if value is not None and (not isinstance(value, typ) or (typ is int and isinstance(value, bool))):
            raise BoardError(f"{where}: malformed board description: {key!r} is {value!r}, "
                             f"not a {typ.__name__}")
        out[key] = value
    if kind == "firmware" and out["cost_unit"] is None:
        out["cost_unit"] = "instructions" if out["emulator"] else "cycles"
    return out


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def _names(kind: str) -> dict[str, str]:
    """Every name a board answers to (its file name and its aliases), normalised, mapped to
    the file name."""
    names: dict[str, str] = {}
    for path in sorted(boards_dir(kind).glob("*.json")):
        for alias in (path.stem, *section(_read(path), kind, str(path))["aliases"]):
            names.setdefault(_key(alias), path.stem)
    return names


def resolve_board(name: str, kind: str = "firmware") -> str:
    """The board a user means: its name, an alias, or a unique prefix of one (any case,
    ``-`` or ``_``); an unknown or ambiguous name lists what it could be."""
    names = _names(kind)
    key = _key(name)
    if key in names:
        return names[key]
    starts = sorted({board for alias, board in names.items() if key and alias.startswith(key)})
    if len(starts) == 1:
        return starts[0]
    what = "board" if kind == "firmware" else "MicroPython target"
    if starts:
        raise BoardError(f"{what} {name!r} is ambiguous: it could be {', '.join(starts)}")
    close = sorted({names[a] for a in difflib.get_close_matches(key, names, n=3, cutoff=0.6)})
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    listing = "tbn-flash --list" if kind == "firmware" else "boards/micropython/"
    raise BoardError(f"unknown {what} {name!r}; {hint}known: {', '.join(list_boards(kind))} ({listing})")


def load_board(name: str) -> Board:
    """The description of the board ``name`` means (see :func:`resolve_board`)."""
    stem = resolve_board(name)
    path = boards_dir() / f"{stem}.json"
    doc = _read(path)
    t = section(doc, "firmware", str(path))
    try:
        return Board(
            name=stem, title=doc["name"], core=t["core"], clock_hz=t["clock_hz"],
            flash_bytes=int(doc["upload"]["maximum_size"]), ram_bytes=int(doc["upload"]["maximum_ram_size"]),
            slot_bytes=t["slot_bytes"], arena_bytes=t["arena_bytes"], hal=t["hal"],
            emulator=tuple(t["emulator"]), aliases=tuple(t["aliases"]),
            pio_platform=t["upload"].get("platformio", ""),
            openocd_target=doc.get("debug", {}).get("openocd_target", ""),
            pyocd_target=t["upload"].get("pyocd_target", ""), model_ops=t["model_ops"],
            cost_unit=t["cost_unit"], activations=tuple(t["activations"]), stack_bytes=t["stack_bytes"],
            arch=t["arch"],
        )
    except (KeyError, TypeError, ValueError) as e:
        raise BoardError(f"{path}: malformed board description ({e!r})") from e


def load_target(name: str) -> Target:
    """The MicroPython target ``name`` means (``boards/micropython/``)."""
    stem = resolve_board(name, "micropython")
    path = boards_dir("micropython") / f"{stem}.json"
    doc = _read(path)
    t = section(doc, "micropython", str(path))
    return Target(stem, str(doc.get("name", stem)), t["port"], t["board"], t["mpy_arch"],
                  tuple(t["emulator"]))


def list_boards(kind: str = "firmware") -> list[str]:
    return sorted(p.stem for p in boards_dir(kind).glob("*.json"))


def is_target(name: str) -> bool:
    """Whether ``name`` is exactly a MicroPython target's name (as ``pytest --board`` takes it)."""
    return name in list_boards("micropython")


def main(argv: list[str] | None = None) -> int:
    """``python -m tbn.boards list [--kind K] [--emulated]``: names, one line (for make)."""
    ap = argparse.ArgumentParser(prog="python -m tbn.boards", description=main.__doc__)
    ap.add_argument("action", choices=("list",))
    ap.add_argument("--kind", choices=tuple(KINDS), default="firmware")
    ap.add_argument("--emulated", action="store_true", help="only the emulated ones")
    args = ap.parse_args(argv)
    names = list_boards(args.kind)
    if args.emulated:
        load = load_board if args.kind == "firmware" else load_target
        names = [n for n in names if load(n).emulated]
    print(" ".join(names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
