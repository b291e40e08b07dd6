"""``tbn-flash``: build the firmware for a board, check that the model fits, then flash it
(real boards: PlatformIO's upload, openocd or pyOCD, whichever this machine has) or boot the
emulator with its serial port exposed (emulated boards). ``--dry-run`` builds and prints the
command instead of running it."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tbn.boards import Board, list_boards, load_board
from tbn.cli.exits import EXIT_USER_ERROR, add_debug_flag, run_reporting
from tbn.cli.types import tcp_port
from tbn.device.build import MLPERF_MODELS
from tbn.errors import UsageError

if TYPE_CHECKING:
    from tbn.device.emulator import Emulator
    from tbn.device.session import Flashed


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tbn-flash", description=__doc__)
    p.add_argument("--board", help="board name (see --list)")
    p.add_argument("--list", action="store_true", help="list the boards and exit")
    p.add_argument("--model", type=Path, help="a .tbn to build into flash (else upload one later with LOAD)")
    p.add_argument(
        "--serial-port", type=tcp_port, help="emulated boards: TCP port for the UART (default: a free one)"
    )
    p.add_argument(
        "--detach", action="store_true", help="emulated boards: leave the emulator running and exit"
    )
    p.add_argument("--model-ops", action="store_true",
                   help="build the runtime with only the ops and activation type of --model: smaller "
                        "firmware, which refuses other models (TBN_ERR_NOT_BUILT)")
    p.add_argument("--protocol", choices=("tbn", "mlperf"), default="tbn",
                   help="what the firmware answers on its UART: tbn's framed protocol (default), or "
                        "MLCommons' MLPerf Tiny runner (text commands; needs --model and --mlperf-model)")
    p.add_argument("--mlperf-model", choices=MLPERF_MODELS,
                   help="--protocol mlperf: the MLPerf Tiny model the firmware says it runs (m-model-[...])")
    p.add_argument("--energy", action="store_true",
                   help="--protocol mlperf: MLPerf Tiny's energy mode (UART at 9600 baud for the runner's IO "
                        "manager; timestamps as pulses on the board's timestamp pin, not m-lap-us lines)")
    p.add_argument("--dry-run", action="store_true",
                   help="build and check the fit, then print the upload (real boards) or emulator "
                        "command instead of running it")
    p.add_argument("--verbose", "-v", action="store_true", help="show PlatformIO's output")
    add_debug_flag(p)
    return p


def list_table() -> str:
    rows = [("board", "also", "core", "clock", "flash", "RAM", "slot", "arena", "how")]
    for name in list_boards():
        b = load_board(name)
        rows.append(
            (
                name,
                ", ".join(b.aliases) or "-",
                b.core,
                f"{b.clock_hz / 1e6:g} MHz",
                _size(b.flash_bytes),
                _size(b.ram_bytes),
                _size(b.slot_bytes),
                _size(b.arena_bytes),
                f"emulated ({b.emulator[0]} -M {b.emulator[2]})"
                if b.emulated
                else "real: upload with " + _tools(b),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() for r in rows)


def _size(n: int) -> str:
    return f"{n // 1024} KiB" if n % 1024 == 0 else f"{n:,} B"


def _tools(b: Board) -> str:
    tools = (("PlatformIO", b.pio_platform), ("openocd", b.openocd_target), ("pyOCD", b.pyocd_target))
    return ", ".join(t for t, ok in tools if ok) or "nothing known"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list:
        print(list_table())
        return 0
    if not args.board:
        print("tbn-flash: error: name a --board (or --list)", file=sys.stderr)
        return EXIT_USER_ERROR
    return run_reporting("tbn-flash", lambda: _flash(args), debug=args.debug)


def _flash(args: argparse.Namespace) -> int:
    from tbn.device.emulator import Emulator
    from tbn.device.session import boot, flash

    board = load_board(args.board)
    if (args.protocol == "mlperf") != (args.mlperf_model is not None):
        raise UsageError("--protocol mlperf and --mlperf-model go together: the runner asks the firmware "
                         "which MLPerf Tiny model it runs")
    if args.energy and args.protocol != "mlperf":
        raise UsageError("--energy is MLPerf Tiny's energy mode: it goes with --protocol mlperf")
    done = flash(board, args.model, verbose=args.verbose, dry_run=args.dry_run, model_ops=args.model_ops,
                 mlperf=args.mlperf_model, energy=args.energy)
    fw = done.firmware
    print(f"{board.name}: firmware {fw.elf}")
    print(
        f"  flash {fw.flash_bytes} / {board.flash_bytes} bytes (runtime and app {done.runtime_flash}, "
        f"model {fw.model_bytes}); RAM {fw.ram_bytes} / {board.ram_bytes} bytes "
        f"(arena {board.arena_bytes}, model slot {board.slot_bytes})"
    )
    if not board.emulated:
        return _real(board.name, done, args)
    if args.dry_run:
        emu = Emulator(board.emulation, fw.elf, port=args.serial_port)
        print("  would run: " + shlex.join(emu.command()))
        return 0
    if args.protocol == "mlperf":
        emu = _boot_mlperf(board, fw.elf, args)
        return 0 if args.detach else _wait(emu)
    emu, link = boot(board, fw.elf, port=args.serial_port, detach=args.detach)
    with link:  # "running" means this: the firmware answered INFO
        info = link.info()
    if emu.exited():
        raise emu.exit_error("after answering INFO")
    model = f"model {info.model.model_bytes} bytes" if info.model else "no model"
    print(f"  {board.emulator[0]} running (pid {emu.proc.pid}); its UART is {emu.url}, "
          f"where it answered INFO (firmware {info.firmware_version}, {model})")
    print(f"  connect with: tbn monitor --port {emu.url}" + (f" --model {args.model}" if args.model else ""))
    return 0 if args.detach else _wait(emu)


def _wait(emu: Emulator) -> int:
    print("  Ctrl-C stops the emulator")
    try:
        emu.proc.wait()
    except KeyboardInterrupt:
        emu.stop()
    return 0


def _boot_mlperf(board: Board, elf: Path, args: argparse.Namespace) -> Emulator:
    """Boot a firmware that answers MLCommons' runner; "running" once it has said m-ready. Its
    boot banner is read here, so the runner's first command gets its own reply."""
    from tbn.device.emulator import Emulator
    from tbn.device.runner_protocol import RunnerLink

    emu = Emulator(board.emulation, elf, port=args.serial_port).start(detach=args.detach)
    try:
        port = emu.connect()
        RunnerLink(port, timeout=10).ready()
        port.close()
    except BaseException:
        emu.stop()
        raise
    print(f"  {board.emulator[0]} running (pid {emu.proc.pid}); its UART is {emu.url}, where it answers "
          f"MLCommons' runner as {args.mlperf_model} (docs/mlperf.md)")
    return emu


def _real(name: str, done: Flashed, args: argparse.Namespace) -> int:
    """What happened to a real board: flashed, or (dry run) the command that would flash it."""
    if not args.dry_run:
        print(f"  flashed with {done.upload.tool if done.upload else '?'}; watch it with: "
              f"tbn monitor --board {name} --model <m.tbn>")
        return 0
    if done.upload is None:
        print("  would upload with openocd, pyOCD or PlatformIO, but none is installed here "
              "(Debian: apt-get install openocd; or pip install pyocd)")
    else:
        print(f"  would run ({done.upload.tool}): {done.upload}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
