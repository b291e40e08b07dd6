"""``tbn infer``: run a dataset on a device over its serial link and check every result
against the host reference; prints accuracy and cost per inference."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from tbn.format import load


def add_device_arguments(p: argparse.ArgumentParser, model_required: bool) -> None:
    """--board/--port, the model and the inputs: shared by `tbn infer` and `tbn monitor`."""
    where = p.add_argument_group("device")
    where.add_argument("--board", help="a board of boards/ (emulated boards are booted, real ones flashed)")
    where.add_argument(
        "--port",
        help="serial port or pyserial URL of a running device, e.g. /dev/ttyACM0 or socket://127.0.0.1:4321",
    )
    where.add_argument("--model", required=model_required, type=Path, help="the .tbn the device runs")
    where.add_argument(
        "--load",
        action="store_true",
        help="upload the model over the link (LOAD) instead of building it into the firmware",
    )
    where.add_argument("--log", type=Path, help="write the emulator's own output here")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", choices=("mnist",), default="mnist", help="stream a dataset's test split")
    src.add_argument("--input", type=Path, metavar="X.npy", help="stream the inputs of a .npy batch")
    p.add_argument("--n", type=int, default=100, help="how many inputs (default 100)")
    p.add_argument("--data-dir", help="folder with MNIST")


def load_inputs(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray | None]:
    """(inputs, labels or None) from --input or --data."""
    if args.input is not None:
        x = np.load(args.input, allow_pickle=False)
        return x[: args.n], None
    from tbn.data import load_mnist

    test = load_mnist("test", args.data_dir)
    x = test.normalized(args.n)
    return x, test.labels[: len(x)].astype(np.int64)


def describe_device(info: Any) -> str:
    """One line of what INFO says about the device."""
    return (
        f"{info.board}: firmware {info.firmware_version}, protocol {info.protocol}, bytecode "
        f"{info.format_version[0]}.{info.format_version[1]}, {info.clock_hz / 1e6:g} MHz, "
        f"arena {info.arena_bytes} B, model slot {info.slot_bytes} B, max frame {info.max_payload} B"
    )


def cost_text(total: float, info: Any) -> str:
    unit = info.cost_unit.name.lower()
    if info.cost_unit.name == "INSTRUCTIONS":
        return f"{total:,.0f} {unit} (QEMU icount, resolution {info.cost_resolution})"
    return f"{total:,.0f} {unit} at {info.clock_hz / 1e6:g} MHz"


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "infer", help="run a dataset on a device and check it against the host", description=__doc__
    )
    add_device_arguments(p, model_required=True)
    p.add_argument("--profile", action="store_true",
                   help="also measure each op of the first input on the device (PROFILE) and print the table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tbn.device.runner import DeviceRunner
    from tbn.device.session import open_device

    program = load(args.model)
    x, labels = load_inputs(args)
    with open_device(args.board, args.port, args.model, embed=not args.load, log=args.log) as link:
        info = link.info()
        print(f"device {describe_device(info)}")
        print(
            f"model: {args.model} ({args.model.stat().st_size} bytes, {info.model_source}), "
            f"arena {program.arena_size} bytes, {'int8' if program.int8 else 'f32'} activations"
        )
        runner = DeviceRunner(link, program)
        results = [runner.run(xi) for xi in tqdm(x, desc="infer", unit="input", leave=False, disable=None)]
        profile = runner.profile(x[0]) if args.profile else None
    matches = sum(r.matches for r in results)
    costs = np.array([r.cost for r in results])
    worst = max(r.error for r in results)
    rows = [("", f"device ({info.board})", "host reference")]
    if labels is not None:
        device_acc = np.mean(np.array([r.predicted for r in results]) == labels)
        ref_acc = np.mean(np.array([r.reference_predicted for r in results]) == labels)
        rows.append((f"accuracy on {len(results)} inputs", f"{device_acc:.4f}", f"{ref_acc:.4f}"))
    rows += [
        (
            "outputs equal to the reference",
            f"{matches}/{len(results)} (worst {'|diff|' if program.int8 else 'rel.'} {worst:.2g})",
            "",
        ),
        ("model bytes", f"{args.model.stat().st_size}", f"{args.model.stat().st_size}"),
        ("arena bytes", f"{program.arena_size} (of {info.arena_bytes})", f"{program.arena_size}"),
        (f"{info.cost_unit.name.lower()} per inference", f"{costs.mean():,.0f}", "-"),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    print(
        f"cost: {cost_text(costs.mean(), info)}, min {costs.min():,}, max {costs.max():,}; "
        f"link: {link.stats.requests} requests, {link.stats.retries} retries"
    )
    if profile is not None:
        print_profile(profile, info.cost_unit.name.lower())
    return 0 if matches == len(results) else 1


def print_profile(profile: list[Any], unit: str) -> None:
    """Each op's cost on the device and its share of the inference."""
    total = sum(p.cost for p in profile) or 1
    rows = [("#", "op", "output", unit, "share")]
    rows += [(str(p.index), p.op, "x".join(map(str, p.output_shape)), f"{p.cost:,}", f"{p.cost / total:.1%}")
             for p in profile]
    rows.append(("", "all ops", "", f"{sum(p.cost for p in profile):,}", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print("\nper op, first input (each op measured alone):")
    for r in rows:
        cells = (c.rjust(w) if i >= 3 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        print("  ".join(cells).rstrip())
