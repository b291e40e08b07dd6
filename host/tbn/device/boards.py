"""Board descriptions: ``boards/<name>.json``, one per board.

Each is a PlatformIO board manifest (so ``pio run -e <name>`` reads the same file) with a
``tbn`` section: core, clock, memory map, HAL file, model slot and arena sizes, and the
emulator command for boards QEMU emulates, and the other names users know it by
(``aliases``: ``tbn-flash --board nucleo_f767`` finds ``nucleo_f767zi``).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path

from tbn.errors import TbnError
from tbn.paths import root

ROOT = root()


class BoardError(TbnError, ValueError):
    """An unknown board or a malformed description."""


@dataclass(frozen=True)
class Board:
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
    # what its cost counts: "cycles" on a real core and under a cycle-accurate simulator
    # (simavr), "instructions" under QEMU's -icount
    cost_unit: str = "cycles"
    # the activation types its firmware runs (the Uno: int8 only, f32 needs more stack)
    activations: tuple[str, ...] = ("f32", "int8")
    stack_bytes: int = 8192  # what the firmware's stack may take (the fit check counts it)

    @property
    def emulated(self) -> bool:
        return bool(self.emulator)


def boards_dir() -> Path:
    path = ROOT / "boards"
    if not path.is_dir():
        raise BoardError(
            f"no boards/ folder under {ROOT}: tbn-flash runs from a tbn source checkout "
            "(or set TBN_ROOT to one)"
        )
    return path


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def _names() -> dict[str, str]:
    """Every name a board answers to (its file name and its ``tbn.aliases``), normalised,
    mapped to the file name."""
    names = {}
    for path in sorted(boards_dir().glob("*.json")):
        try:
            aliases = json.loads(path.read_text()).get("tbn", {}).get("aliases", [])
        except ValueError as e:
            raise BoardError(f"{path}: malformed board description ({e})") from e
        for alias in (path.stem, *aliases):
            names.setdefault(_key(alias), path.stem)
    return names


def resolve_board(name: str) -> str:
    """The board a user means: its name, an alias, or a unique prefix of one (any case,
    ``-`` or ``_``); an unknown or ambiguous name lists what it could be."""
    names = _names()
    key = _key(name)
    if key in names:
        return names[key]
    starts = sorted({board for alias, board in names.items() if key and alias.startswith(key)})
    if len(starts) == 1:
        return starts[0]
    if starts:
        raise BoardError(f"board {name!r} is ambiguous: it could be {', '.join(starts)}")
    close = sorted({names[a] for a in difflib.get_close_matches(key, names, n=3, cutoff=0.6)})
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise BoardError(f"unknown board {name!r}; {hint}known boards: {', '.join(list_boards())} "
                     "(tbn-flash --list)")


def load_board(name: str) -> Board:
    """The description of the board ``name`` means (see :func:`resolve_board`)."""
    stem = resolve_board(name)
    path = boards_dir() / f"{stem}.json"
    try:
        doc = json.loads(path.read_text())
        tbn = doc["tbn"]
        return Board(
            name=stem,
            title=doc["name"],
            core=tbn["core"],
            clock_hz=int(tbn["clock_hz"]),
            flash_bytes=int(doc["upload"]["maximum_size"]),
            ram_bytes=int(doc["upload"]["maximum_ram_size"]),
            slot_bytes=int(tbn["slot_bytes"]),
            arena_bytes=int(tbn["arena_bytes"]),
            hal=tbn["hal"],
            emulator=tuple(tbn.get("emulator", ())),
            aliases=tuple(tbn.get("aliases", ())),
            pio_platform=tbn.get("upload", {}).get("platformio", ""),
            openocd_target=doc.get("debug", {}).get("openocd_target", ""),
            pyocd_target=tbn.get("upload", {}).get("pyocd_target", ""),
            model_ops=bool(tbn.get("model_ops", False)),
            cost_unit=tbn.get("cost_unit", "instructions" if tbn.get("emulator") else "cycles"),
            activations=tuple(tbn.get("activations", ("f32", "int8"))),
            stack_bytes=int(tbn.get("stack_bytes", 8192)),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise BoardError(f"{path}: malformed board description ({e!r})") from e


def list_boards() -> list[str]:
    return sorted(p.stem for p in boards_dir().glob("*.json"))
