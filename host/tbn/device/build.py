"""Build the device firmware with PlatformIO, offline, and check what fits the board.

PlatformIO's core lives in ``build/pio/core`` (never the user's home). Every board builds
with the project-local platform ``firmware/platform/tbn-bare`` and ``tool-scons``
registered from the pip-installed SCons, so nothing needs the registry; real boards are then
uploaded by :mod:`tbn.device.upload`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tbn.boards import Board
from tbn.errors import TbnError
from tbn.format import Program
from tbn.paths import build_dir, root

FIRMWARE = root() / "firmware"
PIO_DIR = build_dir() / "pio"


class BuildError(TbnError, RuntimeError):
    """The firmware did not build; the message carries PlatformIO's output."""


class FitError(TbnError, ValueError):
    """The model, runtime and arena do not fit the board; the message has the numbers."""


@dataclass(frozen=True)
class Firmware:
    board: Board
    elf: Path
    flash_bytes: int  # code, constants, the embedded model and .data's initial values
    ram_bytes: int  # .data, .bss (model slot, arena, frame buffer) and the stack
    model_bytes: int  # the embedded model (0 for none)


def pio_env() -> dict[str, str]:
    """Environment for `pio`: a project-local core, with tool-scons registered from pip's SCons."""
    core = PIO_DIR / "core"
    (core / "packages").mkdir(parents=True, exist_ok=True)
    link = core / "packages" / "tool-scons.pio-link"
    spec = {
        "cwd": "/",
        "spec": {
            "owner": "platformio",
            "id": None,
            "name": "tool-scons",
            "requirements": None,
            "uri": f"symlink://{FIRMWARE / 'platform' / 'tool-scons'}",
        },
    }
    if not link.is_file() or json.loads(link.read_text()) != spec:
        link.write_text(json.dumps(spec))
    env = dict(os.environ)
    env.update(
        PLATFORMIO_CORE_DIR=str(core),
        PLATFORMIO_WORKSPACE_DIR=str(PIO_DIR / "workspace"),
        PLATFORMIO_SETTING_ENABLE_TELEMETRY="No",
        PLATFORMIO_SETTING_CHECK_PLATFORMIO_INTERVAL="3650",
        PLATFORMIO_NO_ANSI="true",
    )
    env.pop("TBN_MODEL", None)
    env.pop("TBN_BUILD_DEFINES", None)
    return env


def pio_command() -> list[str]:
    exe = shutil.which("pio", path=str(Path(sys.executable).parent)) or shutil.which("pio")
    if exe is None:
        raise BuildError("PlatformIO is not installed: pip install 'tbn[firmware]' (or `make setup`)")
    return [exe]


def section_sizes(elf: Path) -> dict[str, int]:
    out = subprocess.run(
        ["arm-none-eabi-size", "-A", "-d", str(elf)], capture_output=True, text=True, check=True
    ).stdout
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\.\S+)\s+(\d+)\s+\d+", out, re.M)}


def runtime_subset(program: Program) -> dict[str, str]:
    """The C runtime's build defines (tbn_internal.h's TBN_BUILD_*) that keep only the ops, the
    activation type, the kernels (lookup tables or not) and the rescaling (REQUANT or not) that
    ``program`` uses."""
    from tbn.format.spec import NONE_ID, DType
    from tbn.format.validate import token_linear

    mask = 0
    for op in program.ops:
        mask |= 1 << int(op.opcode)
    tables = any(op.args.get("scratch", NONE_ID) != NONE_ID for op in program.ops)
    tokens = any(token_linear(program, op) for op in program.ops)
    requant = any(v.dtype == DType.REQUANT for v in program.scales)
    return {"TBN_BUILD_OPS": f"{mask:#x}u", "TBN_BUILD_F32": str(int(not program.int8)),
            "TBN_BUILD_INT8": str(int(program.int8)), "TBN_BUILD_TABLES": str(int(tables)),
            "TBN_BUILD_TOKENS": str(int(tokens)), "TBN_BUILD_REQUANT": str(int(requant))}


# MLPerf Tiny's model names, as the runner's test scripts know them (m-model-[...])
MLPERF_MODELS = ("kws01", "vww01", "ic01", "ad01", "sww01")
# MLPerf Tiny's energy mode: the DUT's UART rate (the runner's devices_*.yaml: its IO manager
# talks to the board at 9600 baud) and timestamps as pulses on a pin, not m-lap-us lines
MLPERF_ENERGY_BAUD = 9600


def build(board: Board, model: Path | None = None, verbose: bool = False,
          backend: Path | None = None, ops_of: Program | None = None, mlperf: str | None = None,
          energy: bool = False) -> Firmware:
    """Build the app for ``board``, with ``model`` embedded in flash when given. ``backend``: a
    PlatformIO script that builds another kernel library in for some ops (benchmarks/cmsis).
    ``ops_of``: a model (read) whose ops and activation type alone the runtime is built with
    (:func:`runtime_subset`); it then refuses any model that needs more. ``mlperf``: answer
    MLCommons' runner instead of tbn's protocol (app/mlperf.c), as that MLPerf Tiny model;
    ``energy``: in its energy mode (UART at :data:`MLPERF_ENERGY_BAUD`, timestamps on a pin)."""
    env = pio_env()
    for key in ("TBN_BACKEND", "TBN_PROTOCOL", "TBN_MLPERF_MODEL", "TBN_DB_BYTES", "TBN_MLPERF_ENERGY_BAUD"):
        env.pop(key, None)
    if energy and mlperf is None:
        raise BuildError("energy mode is the MLPerf runner protocol's: it needs mlperf (--protocol mlperf)")
    if mlperf is not None:
        if model is None:
            raise BuildError("the MLPerf runner protocol has no upload: it needs an embedded model (--model)")
        from tbn.format import load

        env.update(TBN_PROTOCOL="mlperf", TBN_MLPERF_MODEL=mlperf,
                   TBN_DB_BYTES=str(load(model).tensors[0].nbytes))
        if energy:
            env["TBN_MLPERF_ENERGY_BAUD"] = str(MLPERF_ENERGY_BAUD)
    if ops_of is not None:
        env["TBN_BUILD_DEFINES"] = " ".join(f"{k}={v}" for k, v in runtime_subset(ops_of).items())
    if backend is not None:
        env["TBN_BACKEND"] = str(Path(backend).resolve())
    if model is not None:
        env["TBN_MODEL"] = str(Path(model).resolve())
    cmd = [
        *pio_command(),
        "run",
        "-d",
        str(FIRMWARE),
        "-e",
        board.name,
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if verbose or proc.returncode:
        log = proc.stdout + proc.stderr
        if proc.returncode:
            overflow = re.search(r"region `(\w+)' overflowed by (\d+) bytes", log)
            too_big = re.search(r"program size \((\d+) bytes\) is greater than maximum allowed \((\d+)", log)
            if too_big:  # PlatformIO's own check, where the linker script has no flash region
                raise FitError(f"{board.name}: the firmware does not fit: {too_big[1]} bytes of flash, "
                               f"the board has {too_big[2]}")
            if overflow:
                raise FitError(
                    f"{board.name}: the firmware does not fit: {overflow[1]} overflowed by "
                    f"{overflow[2]} bytes (flash {board.flash_bytes} bytes, RAM {board.ram_bytes})"
                )
            raise BuildError(f"`{' '.join(cmd)}` failed:\n{log[-4000:]}")
        print(log)
    elf = PIO_DIR / "workspace" / "build" / board.name / "program.elf"
    sizes = section_sizes(elf)
    flash = sum(sizes.get(s, 0) for s in (".isr_vector", ".text", ".ARM.exidx", ".data"))
    ram = sum(sizes.get(s, 0) for s in (".data", ".bss", ".stack"))
    if ".stack" not in sizes and ram + board.stack_bytes > board.ram_bytes:  # AVR: no .stack to link
        raise FitError(f"{board.name}: the firmware does not fit: {ram} bytes of static RAM and a "
                       f"{board.stack_bytes}-byte stack, the board has {board.ram_bytes}")
    return Firmware(board, elf, flash, ram, Path(model).stat().st_size if model else 0)


def check_fit(
    name: str,
    model_bytes: int,
    arena_bytes: int,
    *,
    arena_limit: int,
    slot_limit: int | None = None,
    flash_limit: int | None = None,
    runtime_flash: int = 0,
) -> None:
    """Refuse, with the numbers, a model that cannot run on device ``name``.

    ``arena_limit`` is the firmware's arena; ``slot_limit`` the RAM slot a model is uploaded
    to; ``flash_limit`` the board's flash, which must hold ``runtime_flash`` (a model-less
    build) plus the model when it is embedded.
    """
    problems = []
    if arena_bytes > arena_limit:
        problems.append(f"the model needs {arena_bytes} bytes of arena, the firmware has {arena_limit}")
    if flash_limit is not None and runtime_flash + model_bytes > flash_limit:
        problems.append(
            f"runtime {runtime_flash} + model {model_bytes} = {runtime_flash + model_bytes} "
            f"bytes of flash, the board has {flash_limit}"
        )
    if slot_limit is not None and model_bytes > slot_limit:
        problems.append(f"the model is {model_bytes} bytes, the RAM model slot holds {slot_limit}")
    if problems:
        raise FitError(f"{name}: model does not fit: " + "; ".join(problems))
