"""``tbn micropython``: the tbn module on MicroPython. ``build`` makes the native tbn.mpy per
architecture; ``run`` boots an emulated target (or the unix port) and runs a model there beside
the reference; ``boot`` leaves an emulated target running with models in /rom; ``deploy`` puts
the .mpy for a real board's architecture and a model on it with mpremote."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from tbn.cli.inputs import add_data_option
from tbn.cli.types import count, tcp_port
from tbn.errors import UsageError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("micropython", help="run tbn on MicroPython (module, .mpy, emulated targets)",
                       description=__doc__)
    cmds = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    b = cmds.add_parser("build", help="build tbn.mpy for architectures (default: every one with a compiler)")
    b.add_argument("--arch", action="append", help="x64, armv6m, armv7m, armv7emsp, armv7emdp, rv32imc, "
                   "xtensawin (repeatable)")
    b.add_argument("--mip", type=Path, metavar="DIR", help="also write DIR/ARCH/package.json and tbn.mpy, "
                   "for `mpremote mip install DIR/ARCH/package.json` (or from where DIR is published)")
    b.set_defaults(func=_build)

    r = cmds.add_parser("run", help="run a model on a MicroPython target beside the reference")
    _target_args(r)
    src = r.add_mutually_exclusive_group()
    add_data_option(src, "the test split's first --n inputs (default mnist)", default="mnist")
    src.add_argument("--input", type=Path, metavar="X.npy", help="a batch of inputs")
    r.add_argument("--n", type=count, default=100, help="how many inputs (default 100)")
    r.add_argument("--data-dir", help="the dataset's folder (docs/datasets.md)")
    r.add_argument("--float-input", action="store_true",
                   help="INT8 models: send float inputs for the device to quantise (tbn_quantize)")
    r.add_argument("--reps", type=int, default=0, metavar="K",
                   help="time K more calls per input: instructions per inference on the emulated boards")
    r.set_defaults(func=_run)

    o = cmds.add_parser("boot", help="build and boot an emulated MicroPython target with tbn, models in /rom")
    _target_args(o)
    o.add_argument("--file", type=Path, action="append", default=[],
                   help="another file for /rom (repeatable)")
    o.add_argument("--serial-port", type=tcp_port, help="TCP port for the REPL (default: a free one)")
    o.set_defaults(func=_boot)

    d = cmds.add_parser("deploy", help="copy tbn.mpy for a board's architecture and a model onto it")
    d.add_argument("--port", required=True, help="the board's serial port (mpremote's device name)")
    d.add_argument("--model", type=Path, help="a .tbn to copy to the board's filesystem")
    d.add_argument("--dry-run", action="store_true", help="print what would be copied, copy nothing")
    d.set_defaults(func=_deploy)


def _target_args(p: argparse.ArgumentParser) -> None:
    from tbn.boards import list_boards

    p.add_argument("--target", default="mpy_an500", choices=list_boards("micropython"),
                   help="emulated board or unix port (default mpy_an500)")
    p.add_argument("--model", type=Path, action="append", required=True, help="a .tbn (repeatable for boot)")
    p.add_argument("--mpy", action="store_true", help="stock firmware importing the native tbn.mpy "
                   "(default: firmware with tbn built in)")


def _build(args: argparse.Namespace) -> int:
    from tbn.micropython.build import MicroPythonBuildError, natmod
    from tbn.micropython.targets import ARCHS

    if args.mip is not None and args.mip.exists() and not args.mip.is_dir():
        raise UsageError(f"--mip {args.mip} is not a folder")
    failed = 0
    for arch in args.arch or list(ARCHS):
        if arch not in ARCHS:
            raise UsageError(f"unknown architecture {arch!r}; choose from {', '.join(ARCHS)}")
        try:
            path = natmod(arch)
            print(f"{arch:<10} {path.stat().st_size:>7,} bytes  {path}")
            if args.mip is not None:
                _mip_package(args.mip / arch, path)
        except MicroPythonBuildError as e:
            failed += 1 if args.arch else 0  # asked for by name: an error; by default: a note
            print(f"{arch:<10} skipped: {str(e).splitlines()[0]}")
    return 2 if failed else 0


def _mip_package(folder: Path, mpy: Path) -> None:
    """A mip package: package.json naming tbn.mpy beside it, which mip installs to /lib
    (relative URLs work from a local folder and from a repository mpremote can fetch from)."""
    import json

    from tbn.files import FileError, write_atomic
    from tbn.format.spec import VERSION_MAJOR, VERSION_MINOR

    doc = {"urls": [["tbn.mpy", "tbn.mpy"]], "version": f"{VERSION_MAJOR}.{VERSION_MINOR}"}
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FileError(f"cannot make {folder} ({e.strerror})") from None
    write_atomic(folder / "tbn.mpy", mpy.read_bytes())
    write_atomic(folder / "package.json", (json.dumps(doc, indent=1) + "\n").encode())


def _run(args: argparse.Namespace) -> int:
    from tbn.cli.inputs import load_inputs, score
    from tbn.format import load
    from tbn.micropython import open_target, target
    from tbn.micropython.runner import run_model, stage

    if len(args.model) != 1:
        raise UsageError("run takes one --model")
    path = args.model[0]
    program = load(path)
    data = path.read_bytes()
    x, labels = load_inputs(args, program)
    t = target(args.target)
    floats = args.float_input or not program.int8 or args.input is None
    with open_target(t, stage(path.name, data, x, floats), with_module=not args.mpy) as session:
        run = run_model(session, path.name, data, x, floats=floats, reps=args.reps)
    how = "native tbn.mpy" if args.mpy else "tbn built in"
    print(f"{t.title} ({how}): {path} ({len(data)} bytes), arena {program.arena_size} bytes")
    print(f"outputs equal to the reference: {run.equal}/{len(x)} (worst {run.worst:.2g})")
    if labels is not None:
        from tbn.runtime import output_as_float

        metric, value = score(np.stack([output_as_float(program, o) for o in run.outputs]), labels, x)
        print(f"{metric} on {len(x)} inputs: {value:.4f}")
    print(f"heap taken by tbn.Model: {run.heap_bytes} bytes (arena {program.arena_size})")
    if run.instructions is not None:
        print(f"instructions per inference: {run.instructions:,.0f} (QEMU icount, through MicroPython)")
    return 0 if run.equal == len(x) else 1


def _boot(args: argparse.Namespace) -> int:
    from tbn.device.emulator import Emulator
    from tbn.micropython import firmware, natmod, romfs, target
    from tbn.micropython.build import out_dir

    t = target(args.target)
    if not t.emulated:
        raise UsageError(f"{t.name} is not emulated: `tbn micropython run --target {t.name}` runs models "
                         f"there, or run its micropython (build/micropython/{t.name}-tbn/micropython)")
    from tbn.files import regular_file
    from tbn.format import load

    for p in args.model:
        load(p)  # a corrupt or foreign file stops here, with the reason
    files: dict[str, Path | bytes] = {p.name: p for p in args.model}
    files.update({p.name: regular_file(p, "a file for /rom") for p in args.file})
    if args.mpy:
        files["tbn.mpy"] = natmod(t.arch)
    image = romfs(files, out_dir() / f"{t.name}-boot.img")
    with Emulator(t.emulation, firmware(t, with_module=not args.mpy), port=args.serial_port,
                  values={"romfs": image}) as emu:
        print(f"{t.title} running (pid {emu.proc.pid if emu.proc else '?'}); /rom holds {', '.join(files)}")
        print(f"connect with: mpremote connect {emu.url} repl")
        if args.mpy:
            print("then: import sys; sys.path.insert(0, '/rom'); import tbn")
        print(f"  m = tbn.Model(memoryview(open('/rom/{args.model[0].name}', 'rb'))); m.info()")
        print("Ctrl-C stops it")
        while not emu.exited(wait=1.0):
            time.sleep(0.5)
    return 0


def _deploy(args: argparse.Namespace) -> int:
    from tbn.micropython import natmod
    from tbn.micropython.session import ReplSession
    from tbn.micropython.targets import MPY_ARCH_CODES

    if args.model is not None:
        from tbn.format import load

        load(args.model)
    s = ReplSession(args.port, root="")
    try:
        code = int(s.exec("import sys\nprint(sys.implementation._mpy)").strip())
        arch = MPY_ARCH_CODES.get(code >> 10)
        arch = "armv7m" if arch == "armv7em" else arch  # no FPU: the soft-float build runs there
        if arch is None:
            raise UsageError(f"the board's MicroPython has no native-code architecture (_mpy={code})")
        mpy = natmod(arch)
        copies = [(mpy, "/lib/tbn.mpy")] + ([(args.model, f"/{args.model.name}")] if args.model else [])
        for src, dest in copies:
            print(f"{'would copy' if args.dry_run else 'copy'} {src} -> :{dest}  "
                  f"(mpremote connect {args.port} cp {src} :{dest})")
            if not args.dry_run:
                s.exec("import os\ntry:\n os.mkdir('/lib')\nexcept OSError:\n pass")
                s.write_file(dest, Path(src).read_bytes())
        if not args.dry_run:
            check = "import tbn\nprint(tbn.FORMAT_MAJOR, tbn.FORMAT_MINOR)"
            if args.model:
                check += f"\nprint(tbn.Model(open('/{args.model.name}', 'rb').read()).info())"
            print(s.exec(check).strip())
        print(f"{args.port}: MicroPython for {arch} (sys.implementation._mpy = {code})")
    finally:
        s.close()
    return 0
