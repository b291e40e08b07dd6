"""``tbn infer``: run a dataset on a device over its serial link and check every result
against the host reference; prints accuracy and cost per inference."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from tbn.cli.inputs import add_data_option, load_inputs, score
from tbn.cli.types import count
from tbn.errors import DeviceError, UsageError
from tbn.files import check_output, write_atomic
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
    add_data_option(src, "stream a dataset's test split (default mnist)", default="mnist")
    src.add_argument("--input", type=Path, metavar="X.npy", help="stream the inputs of a .npy batch")
    p.add_argument("--n", type=count, default=100, help="how many inputs (default 100)")
    p.add_argument("--data-dir", help="the dataset's folder (docs/datasets.md)")


def check_device_outputs(args: argparse.Namespace) -> None:
    """The files add_device_arguments' options write (--log), checked before any device starts."""
    if args.log is not None:
        check_output(args.log, [p for p in (args.model, args.input) if p is not None])


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
    p.add_argument("--json", type=Path, metavar="FILE",
                   help="also write every result as JSON (written even when the device fails part-way)")
    p.add_argument("--force", action="store_true", help="replace an existing --json file that is not JSON")
    p.set_defaults(func=run)


@dataclass
class _Run:
    """What a run has gathered so far: kept when the device fails part-way."""

    requested: int
    info: Any = None
    stats: Any = None
    results: list[Any] = field(default_factory=list)
    profile: list[Any] | None = None
    inputs: Any = None  # what an autoencoder's outputs are scored against


def run(args: argparse.Namespace) -> int:
    from tbn.device.runner import DeviceRunner
    from tbn.device.session import open_device

    program = load(args.model)
    x, labels = load_inputs(args, program)
    check_device_outputs(args)
    if args.json is not None:
        check_output(args.json, [p for p in (args.model, args.input) if p is not None], "json", args.force)
    got = _Run(len(x), inputs=x)
    try:
        with open_device(args.board, args.port, args.model, embed=not args.load, log=args.log) as link:
            got.info, got.stats = link.info(), link.stats
            print(f"device {describe_device(got.info)}")
            print(
                f"model: {args.model} ({args.model.stat().st_size} bytes, {got.info.model_source}), "
                f"arena {program.arena_size} bytes, {'int8' if program.int8 else 'f32'} activations"
            )
            runner = DeviceRunner(link, program)
            for xi in tqdm(x, desc="infer", unit="input", leave=False, disable=None):
                got.results.append(runner.compare(xi))
            got.profile = runner.profile(x[0]) if args.profile else None
    except (DeviceError, KeyboardInterrupt) as e:
        if got.results:
            print(f"the device failed after {len(got.results)} of {len(x)} inputs; the results so far:")
            _report(args, program, got, labels)
        _write_json(args, program, got, labels, e)
        raise
    matches = _report(args, program, got, labels)
    _write_json(args, program, got, labels, None)
    if got.profile is not None:
        print_profile(got.profile, got.info.cost_unit.name.lower())
    return 0 if matches == len(got.results) else 1


def _scores(got: _Run, labels: np.ndarray | None) -> tuple[str, float, float] | None:
    """(metric, the device's score, the reference's) on the inputs run so far."""
    if labels is None or not got.results:
        return None
    n = len(got.results)
    want, x = labels[:n], got.inputs[:n]
    try:
        metric, device = score(np.stack([r.scores for r in got.results]), want, x)
    except UsageError as e:  # an AUC of too few clips: the run stands, without a score
        print(f"no score: {e}")
        return None
    return metric, device, score(np.stack([r.reference_scores for r in got.results]), want, x)[1]


def _report(args: argparse.Namespace, program: Any, got: _Run, labels: np.ndarray | None) -> int:
    """Print the table of what ran; returns how many outputs equal the reference's."""
    results, info = got.results, got.info
    matches = sum(r.matches for r in results)
    costs = np.array([r.cost for r in results])
    worst = max(r.error for r in results)
    rows = [("", f"device ({info.board})", "host reference")]
    scored = _scores(got, labels)
    if scored is not None:
        rows.append((f"{scored[0]} on {len(results)} inputs", f"{scored[1]:.4f}", f"{scored[2]:.4f}"))
    size = args.model.stat().st_size
    rows += [
        (
            "outputs equal to the reference",
            f"{matches}/{len(results)} (worst {'|diff|' if program.int8 else 'rel.'} {worst:.2g})",
            "",
        ),
        ("model bytes", f"{size}", f"{size}"),
        ("arena bytes", f"{program.arena_size} (of {info.arena_bytes})", f"{program.arena_size}"),
        (f"{info.cost_unit.name.lower()} per inference", f"{costs.mean():,.0f}", "-"),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    print(
        f"cost: {cost_text(costs.mean(), info)}, min {costs.min():,}, max {costs.max():,}; "
        f"link: {got.stats.requests} requests, {got.stats.retries} retries"
    )
    return matches


def _write_json(args: argparse.Namespace, program: Any, got: _Run, labels: np.ndarray | None,
                error: BaseException | None) -> None:
    """--json: every result so far, whether the run completed, and why not."""
    if args.json is None:
        return
    scored = _scores(got, labels)
    metric, value, reference = scored if scored is not None else ("accuracy", None, None)
    info = got.info
    doc = {
        "model": str(args.model),
        "model_bytes": args.model.stat().st_size,
        "int8": program.int8,
        "device": None if info is None else {
            "board": info.board, "firmware": info.firmware_version, "protocol": info.protocol,
            "cost_unit": info.cost_unit.name.lower(), "clock_hz": info.clock_hz,
            "model_source": info.model_source,
        },
        "complete": error is None and len(got.results) == got.requested,
        "error": None if error is None else (str(error) or type(error).__name__),
        "requested": got.requested,
        "done": len(got.results),
        "metric": metric,  # "accuracy", a forecast's "rmse" or an anomaly detector's "auc"
        metric: value,
        f"reference_{metric}": reference,
        "matches": sum(r.matches for r in got.results),
        "results": [
            {"index": i, "predicted": r.predicted, "reference": r.reference_predicted,
             "label": None if labels is None else labels[i].tolist(), "matches": bool(r.matches),
             "error": float(r.error), "cost": int(r.cost)}
            for i, r in enumerate(got.results)
        ],
        "profile": None if got.profile is None else [
            {"index": p.index, "op": p.op, "output_shape": list(p.output_shape), "cost": p.cost}
            for p in got.profile
        ],
        "link": None if got.stats is None else asdict(got.stats),
    }
    write_atomic(args.json, (json.dumps(doc, indent=1) + "\n").encode(),
                 [p for p in (args.model, args.input) if p is not None])
    print(f"wrote {args.json} ({len(got.results)} of {got.requested} results)")


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
