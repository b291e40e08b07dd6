"""The real Nucleo-F767ZI, as far as it can be checked without one: the firmware builds
offline with the board's memory map and vector table, the fit check, and the exact upload
command of each tool (tbn.device.upload). Flashing and the HAL on hardware are untested."""

from __future__ import annotations

import dataclasses
import os
import shutil
import stat
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tbn.boards import load_board
from tbn.device import upload as upload_mod
from tbn.device.build import FitError, build
from tbn.device.session import flash

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "tests" / "vectors" / "mlp_int8.tbn"
FLASH, RAM = (0x08000000, 2 << 20), (0x20000000, 512 << 10)
UART_IRQ = 39  # USART3's interrupt on the STM32F767


@pytest.fixture(scope="module")
def elf() -> Path:
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("the Arm toolchain is missing: make deps installs it")
    return build(load_board("nucleo_f767"), MODEL).elf


def _inside(addr: int, size: int, region: tuple[int, int]) -> bool:
    return region[0] <= addr and addr + size <= region[0] + region[1]


def test_firmware_builds_offline_into_the_f767_memory_map(elf: Path) -> None:
    from elftools.elf.elffile import ELFFile

    with open(elf, "rb") as f:
        e = ELFFile(f)
        sections = {s.name: s for s in e.iter_sections()}
        for name in (".isr_vector", ".text"):
            s = sections[name]
            assert _inside(s["sh_addr"], s["sh_size"], FLASH), name
        for name in (".data", ".bss"):
            s = sections[name]
            assert _inside(s["sh_addr"], s["sh_size"], RAM), name
        assert sections[".isr_vector"]["sh_addr"] == FLASH[0]  # where the F7 boots from
        symbols = {s.name: s["st_value"] for s in e.get_section_by_name(".symtab").iter_symbols()}
        words = struct.unpack(f"<{16 + UART_IRQ + 1}I", sections[".isr_vector"].data()[: 4 * (17 + UART_IRQ)])
    assert words[0] == RAM[0] + RAM[1] == symbols["_estack"]  # the stack starts at the top of RAM
    assert words[1] == symbols["Reset_Handler"] | 1  # Thumb
    assert words[16 + UART_IRQ] == symbols["uart_rx_isr"] | 1


def test_the_fit_is_checked_before_building() -> None:
    board = dataclasses.replace(load_board("nucleo_f767zi"), arena_bytes=256)
    with pytest.raises(FitError, match=r"needs \d+ bytes of arena, the firmware has 256"):
        flash(board, MODEL, dry_run=True)


def test_upload_commands(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    board, elf = load_board("nucleo_f767zi"), tmp_path / "program.elf"
    tools: dict[str, str] = {}
    which = shutil.which  # only the upload tools are pretended away or present

    def fake_which(name: str, path: str | None = None) -> str | None:
        return tools.get(name) if name in ("openocd", "pyocd") else which(name, path=path)

    monkeypatch.setattr(upload_mod.shutil, "which", fake_which)
    monkeypatch.setattr(upload_mod, "_pio_platform_installed", lambda b: False)
    with pytest.raises(upload_mod.UploadToolMissing, match="apt-get install openocd"):
        upload_mod.upload_command(board, elf)
    tools["pyocd"] = "/usr/bin/pyocd"
    assert upload_mod.upload_command(board, elf).argv == (
        "/usr/bin/pyocd", "flash", "--target", "stm32f767zi", str(elf))
    tools["openocd"] = "/usr/bin/openocd"
    assert upload_mod.upload_command(board, elf).argv == (
        "/usr/bin/openocd", "-f", "interface/stlink.cfg", "-f", "target/stm32f7x.cfg",
        "-c", f"program {elf} verify reset exit")
    monkeypatch.setattr(upload_mod, "_pio_platform_installed", lambda b: True)
    cmd = upload_mod.upload_command(board, elf, MODEL)
    assert cmd.tool == "platformio" and cmd.argv[-4:] == ("-e", "nucleo_f767zi_ststm32", "-t", "upload")
    assert cmd.env is not None and cmd.env["TBN_MODEL"] == str(MODEL)


def test_flash_dry_run_prints_the_exact_upload_command(elf: Path, tmp_path: Path) -> None:
    """With openocd on the PATH (a stand-in file: a dry run only looks it up, never runs it)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "openocd"
    fake.write_text("#!/bin/sh\nexit 99\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    argv = ["--board", "nucleo_f767", "--model", str(MODEL), "--dry-run"]
    out = subprocess.run([sys.executable, "-m", "tbn.cli.flash", *argv], capture_output=True, text=True,
                         env=env)
    assert out.returncode == 0, out.stderr
    assert (f"would run (openocd): {fake} -f interface/stlink.cfg -f target/stm32f7x.cfg "
            f"-c 'program {elf} verify reset exit'") in out.stdout
    assert "flash " in out.stdout and "arena 262144" in out.stdout
