"""From a board name (or a port) and a model to a running device with that model active.

``flash`` is what ``tbn-flash`` does; ``open_device`` is what ``tbn monitor``, ``tbn infer``
and the hardware-in-the-loop tests use.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tbn.device.boards import Board, load_board
from tbn.device.build import FIRMWARE, Firmware, build, check_fit, pio_command, pio_env
from tbn.device.emulator import Emulator
from tbn.device.link import DeviceLink
from tbn.format import load


@dataclass(frozen=True)
class Flashed:
    firmware: Firmware
    base: Firmware  # the same firmware without a model: the runtime's own footprint
    arena_needed: int


def flash(board: Board, model: Path | None = None, verbose: bool = False) -> Flashed:
    """Build for ``board`` (embedding ``model``), refuse what does not fit, and upload to a real
    board. Emulated boards are booted separately (:class:`Emulator`) from ``firmware.elf``."""
    arena = 0
    model_bytes = 0
    if model is not None:
        program = load(model)  # a corrupt or foreign file stops here, with the reason
        arena, model_bytes = program.arena_size, Path(model).stat().st_size
    base = build(board, verbose=verbose)
    check_fit(board, model_bytes, arena, base)
    fw = build(board, model, verbose=verbose) if model is not None else base
    if not board.emulated:
        env = pio_env()
        if model is not None:
            env["TBN_MODEL"] = str(Path(model).resolve())
        cmd = [*pio_command(), "run", "-d", str(FIRMWARE), "-e", board.name, "-t", "upload"]
        proc = subprocess.run(cmd, env=env, capture_output=not verbose, text=True)
        if proc.returncode:
            raise RuntimeError(
                f"upload to {board.name} failed:\n{(proc.stdout or '') + (proc.stderr or '')}"[-4000:]
            )
    return Flashed(fw, base, arena)


def find_port(board: Board) -> str:
    """The serial port of a connected real board (an ST-LINK virtual COM port)."""
    from serial.tools import list_ports

    ports = [p.device for p in list_ports.comports() if p.vid == 0x0483]
    if len(ports) != 1:
        found = ", ".join(ports) or "none"
        raise RuntimeError(
            f"{board.name}: need exactly one ST-LINK serial port to talk to, found {found}; "
            "name it with --port"
        )
    return ports[0]


@contextmanager
def open_device(
    board: str | None = None,
    port: str | None = None,
    model: Path | None = None,
    embed: bool = True,
    log: Path | None = None,
    verbose: bool = False,
) -> Iterator[DeviceLink]:
    """A link to a device running ``model``.

    With ``port``, talk to a device already running there (``model``, if given, is uploaded
    with LOAD). With only ``board``, build and boot the emulator (or flash the real board),
    with ``model`` embedded in the firmware (``embed``) or uploaded over the link.
    """
    if board is None and port is None:
        raise ValueError("name a --board or a --port")
    b = load_board(board) if board else None
    emulator = None
    try:
        if port is None:
            assert b is not None
            flashed = flash(b, model if embed else None, verbose=verbose)
            if b.emulated:
                emulator = Emulator(b, flashed.firmware.elf, log=log).start()
                link = DeviceLink(emulator.connect())
            else:
                link = DeviceLink(find_port(b), baudrate=b.baudrate)
        else:
            link = DeviceLink(port, baudrate=b.baudrate if b else 115200)
        with link:
            link.sync()
            if model is not None and (port is not None or not embed):
                data = Path(model).read_bytes()
                info = link.info()
                check_fit(b or _board_of(info), len(data), load(model).arena_size)
                link.load(data)
            yield link
    finally:
        if emulator is not None:
            emulator.stop()


def _board_of(info) -> Board:
    """A Board for the fit check of a device known only by its INFO."""
    return Board(
        name=info.board,
        title=info.board,
        core="?",
        clock_hz=info.clock_hz,
        flash_bytes=0,
        ram_bytes=0,
        slot_bytes=info.slot_bytes,
        arena_bytes=info.arena_bytes,
        hal="?",
        emulator=(),
    )
