"""MLPerf Tiny's architectures on the emulated Cortex-M (QEMU icount): instructions per
inference and per multiply-accumulate, the share of each op kind, weight bytes and arena, every
device output compared with the reference interpreter.

The models are ``tbn.train.mlperf_models`` (the reference architectures in PyTorch), binary at
p=1 and with every layer tiled at p=4 where 4 divides its outputs (the rest binary); random
weights with BatchNorm statistics measured on random inputs (costs do not depend on the weights' values), INT8
activations. Beside them: CMSIS-NN int8 on the same architecture, float weights quantised per
output channel, on the same board in the same run (benchmarks/cmsis: its convolution,
depthwise convolution and fully connected kernels; the CHW/HWC conversions its layout needs
are left out of its count), and the best published MLPerf Tiny v1.3 latency on a Cortex-M7 as
cycles per MAC.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import torch

from _table import print_table, write_json
from cmsis.sources import cmsis
from tbn import compile_model
from tbn.device.runner import DeviceRunner
from tbn.device.session import open_device
from tbn.format import read
from tbn.format.inspect import summarize
from tbn.mlperf import reference_file
from tbn.third_party import SourceNotFoundError
from tbn.train.mlperf_models import ARCHITECTURES, random_model

BACKEND = Path(__file__).parent / "cmsis" / "backend.py"
# ST's STM32H7A3 (280 MHz) results of MLPerf Tiny v1.3, cycles per MAC (../shared/notes/peers.md);
# sww01 is new in v1.4, whose results our notes do not hold
PUBLISHED = {"kws01": 1.19, "vww01": 0.89, "ic01": 0.91, "ad01": 1.15}


def op_kind(op: str, groups: int, k: int) -> str:
    """The row of the share table an op falls in: depthwise, 1x1 and other convs apart."""
    if "CONV" in op:
        return "depthwise conv" if groups > 1 else ("1x1 conv" if k == 1 else "conv")
    return "linear" if "LINEAR" in op else "other"


def run(link: Any, task: str, p: int | None, n: int, backend: Path | None = None) -> dict[str, Any]:
    """Compile (INT8; REQUANT scales for CMSIS-NN's float baseline), load, run one warm-up (the
    CMSIS-NN backend reorders weights on its first run) and ``n`` inputs beside the reference,
    and profile one. A file larger than the board's model slot is built into a firmware of its
    own (``backend`` its op backend)."""
    model, shape, n_macs = random_model(task, p)
    x = torch.randn(64, *shape, generator=torch.Generator().manual_seed(1))
    params = "wide" if p is None else "auto"
    data = compile_model(model, x[:1], activations="int8", calibration=x, params=params)
    prog = read(data)
    with ExitStack() as stack:
        if len(data) > link.device.slot_bytes:
            path = Path(stack.enter_context(tempfile.TemporaryDirectory())) / f"{task}.tbn"
            path.write_bytes(data)
            link = stack.enter_context(open_device(link.device.board, model=path, backend=backend))
        else:
            link.load(data)
        runner = DeviceRunner(link, prog)
        runner.run(x[0].numpy())
        results = [runner.compare(xi) for xi in x[:n].numpy()]
        profile = runner.profile(x[0].numpy())
    return {"program": prog, "data": data, "results": results, "profile": profile, "macs": n_macs}


def published_int8(task: str) -> dict[str, Any]:
    """The published int8 .tflite beside tbn's file: its bytes and TFLite Micro's own arena
    report for it (None where the pinned copy or the tf extra is missing)."""
    try:
        from tbn.keras.tflite import TflmModel

        path = reference_file(task, "int8")
        return {"tflite_bytes": path.stat().st_size, "tflm_arena": TflmModel.open(path).arena_bytes()}
    except (SourceNotFoundError, ImportError) as e:
        print(f"{task}: no published int8 figures ({e})", flush=True)
        return {"tflite_bytes": None, "tflm_arena": None}


def measure(link: Any, task: str, p: int, n: int) -> dict[str, Any]:
    got = run(link, task, p, n)
    prog, data, results, n_macs = got["program"], got["data"], got["results"], got["macs"]
    shares: dict[str, int] = defaultdict(int)
    for c, op in zip(got["profile"], prog.ops, strict=True):
        kh, kw = op.args.get("kh", 1), op.args.get("kw", 1)
        shares[op_kind(c.op, op.args.get("groups", 1), kh * kw)] += c.cost
    cost = results[0].cost
    s = summarize(prog, len(data))["sections"]
    return {"task": task, "p": p, "macs": n_macs, "weights": s["tile bits"] + s["scales"] + s["biases"],
            "arena": prog.arena_size, **published_int8(task), "accuracy": "no data",
            "instructions": cost, "per_mac": cost / n_macs,
            "published": PUBLISHED.get(task),
            "shares": {k: v / sum(shares.values()) for k, v in shares.items()},
            "equal": f"{sum(r.matches for r in results)}/{len(results)}"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--boards", nargs="+", default=["mps2_an500", "mps2_an386"])
    ap.add_argument("--tasks", nargs="+", default=list(ARCHITECTURES), choices=list(ARCHITECTURES))
    ap.add_argument("--p", nargs="+", type=int, default=[1, 4])
    ap.add_argument("--n", type=int, default=2, help="device inferences per model, each compared")
    ap.add_argument("--opt", nargs="+", default=["Os"], choices=["Os", "O2", "O3"],
                    help="the firmware's optimisation, both runtimes alike (tbn-flash builds Os)")
    ap.add_argument("--json", help="also write the table here")
    args = ap.parse_args(argv)
    src = cmsis()
    os.environ.update(CMSIS_NN_DIR=str(src.nn), CMSIS_CORE_INCLUDE=str(src.core_include))
    rows = []
    for opt, board in ((o, b) for o in args.opt for b in args.boards):
        os.environ["TBN_OPT"] = f"-{opt}"  # read by the emulated platform's builder
        baseline = {}
        with open_device(board, backend=BACKEND) as link:  # CMSIS-NN on the float architecture
            for task in args.tasks:
                results = run(link, task, None, args.n, BACKEND)["results"]
                baseline[task] = (results[0].cost, all(r.matches for r in results))
                print(f"{board} {task} CMSIS-NN: {baseline[task][0]:,} (outputs equal: {baseline[task][1]})",
                      flush=True)
        with open_device(board) as link:
            for task in args.tasks:
                for p in args.p:
                    row = {"opt": opt, "board": board, **measure(link, task, p, args.n)}
                    ranked = sorted(row["shares"].items(), key=lambda kv: -kv[1])
                    row["share"] = ", ".join(f"{k} {v:.0%}" for k, v in ranked)
                    row["cmsis"], row["cmsis_equal"] = baseline[task]
                    row["ratio"] = row["instructions"] / row["cmsis"]
                    rows.append(row)
                    print(f"{board} {task} p={p}: {row['instructions']:,} ({row['equal']} equal)", flush=True)
    print_table(rows, [("opt", "build"), ("board", "board"), ("task", "task"), ("p", "p"), ("macs", "MACs"),
                       ("weights", "weight bytes"), ("tflite_bytes", "published int8 .tflite bytes"),
                       ("arena", "arena bytes"), ("tflm_arena", "TFLM arena bytes"), ("accuracy", "accuracy"),
                       ("instructions", "instructions"),
                       ("per_mac", "per MAC"), ("cmsis", "CMSIS-NN int8"), ("ratio", "tbn / CMSIS-NN"),
                       ("published", "published M7 cycles/MAC"), ("share", "share"),
                       ("equal", "outputs equal")])
    write_json(args.json, {"rows": rows})
    return 0 if all(r["equal"].split("/")[0] == r["equal"].split("/")[1] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
