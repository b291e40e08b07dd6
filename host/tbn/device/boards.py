"""Board descriptions: ``boards/<name>.json``, one per board.

Each is a PlatformIO board manifest (so ``pio run -e <name>`` reads the same file) with a
``tbn`` section: core, clock, memory map, HAL file, model slot and arena sizes, and the
emulator command for boards QEMU emulates.
"""

from __future__ import annotations

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


def load_board(name: str) -> Board:
    path = boards_dir() / f"{name}.json"
    if not path.is_file():
        raise BoardError(f"unknown board {name!r}; known boards: {', '.join(list_boards())}")
    try:
        doc = json.loads(path.read_text())
        tbn = doc["tbn"]
        return Board(
            name=name,
            title=doc["name"],
            core=tbn["core"],
            clock_hz=int(tbn["clock_hz"]),
            flash_bytes=int(doc["upload"]["maximum_size"]),
            ram_bytes=int(doc["upload"]["maximum_ram_size"]),
            slot_bytes=int(tbn["slot_bytes"]),
            arena_bytes=int(tbn["arena_bytes"]),
            hal=tbn["hal"],
            emulator=tuple(tbn.get("emulator", ())),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise BoardError(f"{path}: malformed board description ({e!r})") from e


def list_boards() -> list[str]:
    return sorted(p.stem for p in boards_dir().glob("*.json"))
