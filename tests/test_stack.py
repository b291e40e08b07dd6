"""The firmware's worst-case stack fits what each 32-bit board reserves (benchmarks/stack.py:
GCC's call graph of the app, HAL, start-up code and runtime as the firmware build compiles them).
A kernel's frame is memory the model's arena does not count: the quad kernel's stage and masks
take about 4.3 KB of it on the Cortex-M boards, the per-channel kernel's ring 1 KB on sifive_e.
The Uno's is measured in simavr (docs/results.md)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tbn.paths import root


def test_the_worst_case_stack_fits_every_32_bit_board(tmp_path: Path) -> None:
    if not shutil.which("arm-none-eabi-gcc") or not shutil.which("riscv64-unknown-elf-gcc"):
        pytest.skip("the cross compilers are not installed (make deps installs them)")
    out = tmp_path / "stack.json"
    subprocess.run([sys.executable, "benchmarks/stack.py", "--json", str(out)], cwd=root(), check=True,
                   capture_output=True, text=True)
    rows = json.loads(out.read_text())["boards"]
    boards = {"mps2_an386", "mps2_an500", "netduinoplus2", "nucleo_f767zi", "sifive_e"}
    assert {r["board"] for r in rows} == boards
    for r in rows:
        assert "tbn_invoke" in r["main_path"], r  # the graph was read: an inference is the deepest path
        assert r["worst_bytes"] <= r["stack_bytes"], (
            f"{r['board']}: the worst case takes {r['worst_bytes']} bytes of stack, the board reserves "
            f"{r['stack_bytes']}: {' > '.join(r['main_path'])}")
