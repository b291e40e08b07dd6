"""tbn.boards: one reader for every board and MicroPython target description in boards/."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tbn.boards import SCHEMA, BoardError, is_target, list_boards, load_board, load_target, section
from tbn.device.emulator import Emulator
from tbn.paths import root


@pytest.mark.parametrize("kind", list(SCHEMA))
def test_every_description_passes_the_schema(kind: str) -> None:
    folder = root() / "boards" / ("micropython" if kind == "micropython" else "")
    names = list_boards(kind)
    assert names and names == sorted(p.stem for p in folder.glob("*.json"))
    for name in names:
        t = section(json.loads((folder / f"{name}.json").read_text()), kind, name)
        assert set(t) == set(SCHEMA[kind])


def test_micropython_targets_are_described_in_boards_like_the_others() -> None:
    assert list_boards("micropython") == ["mpy_an385", "mpy_an500", "mpy_unix"]
    an500, unix = load_target("mpy_an500"), load_target("mpy_unix")
    assert (an500.port, an500.board, an500.arch, an500.emulated) == ("qemu", "MPS2_AN500", "armv7emdp", True)
    assert (unix.port, unix.emulated) == ("unix", False)
    assert is_target("mpy_an385") and not is_target("mps2_an500") and not is_target("mpy")
    with pytest.raises(BoardError, match="unknown MicroPython target 'mpy_esp32'"):
        load_target("mpy_esp32")


def test_an_emulator_starts_from_its_own_description(tmp_path: Path) -> None:
    """QEMU's command line of a MicroPython target: its ROMFS placeholder filled, no Board made."""
    cmd = Emulator(load_target("mpy_an500").emulation, tmp_path / "fw.elf", port=4321,
                   values={"romfs": tmp_path / "rom.img"}).command()
    assert cmd[:3] == ["qemu-system-arm", "-M", "mps2-an500"]
    assert f"loader,file={tmp_path / 'rom.img'},addr=0x60c00000,force-raw=on" in cmd
    assert "tcp:127.0.0.1:4321,server=on,wait=on,nodelay=on" in cmd
    with pytest.raises(BoardError, match="nucleo_f767zi is not emulated"):
        load_board("nucleo_f767zi").emulation  # noqa: B018


def test_the_cost_unit_and_the_defaults_come_from_the_schema() -> None:
    assert load_board("mps2_an500").cost_unit == "instructions"  # emulated by QEMU: icount
    assert load_board("nucleo_f767zi").cost_unit == "cycles"
    assert load_board("uno").cost_unit == "cycles"  # simavr counts cycles: said in its file
    assert load_board("mps2_an500").stack_bytes == 8192 and load_board("uno").stack_bytes == 544


@pytest.mark.parametrize(("edit", "message"), [
    ({"arena_byte": 5}, r"unknown keys \['arena_byte'\]"),
    ({"clock_hz": "fast"}, "'clock_hz' is 'fast', not a int"),
    ({"model_ops": 1}, "'model_ops' is 1, not a bool"),
])
def test_a_malformed_description_is_named(edit: dict, message: str) -> None:
    def described(**changes: object) -> dict:
        doc = json.loads((root() / "boards" / "mps2_an500.json").read_text())
        doc["tbn"].update(changes)
        return doc

    with pytest.raises(BoardError, match=message):
        section(described(**edit), "firmware", "mps2_an500.json")
    doc = described()
    del doc["tbn"]["hal"]
    with pytest.raises(BoardError, match="needs 'hal'"):
        section(doc, "firmware", "mps2_an500.json")


def test_make_lists_boards_through_the_same_reader() -> None:
    out = subprocess.run([sys.executable, "-m", "tbn.boards", "list", "--emulated"], capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == [n for n in list_boards() if load_board(n).emulated] and "nucleo_f767zi" not in out
