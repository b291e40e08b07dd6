"""tbn's kernels and CMSIS-NN int8 side by side on the emulated Cortex-M7 and M4 (QEMU icount).

One firmware per runtime, from the same app, cost counter, compiler and flags (tbn-flash's
build, at each ``--opt``): tbn's own kernels on the tiled .tbn, and CMSIS-NN's
``arm_fully_connected_s8`` (benchmarks/cmsis: the tbn loader and app, dense int8 layers
handed to CMSIS-NN) on the same architecture trained as a float model and quantised per
tensor (its convs run by arm_convolve_wrapper_s8 between CHW/HWC transposes, counted).
CMSIS-NN comes from $CMSIS_NN_DIR, ../shared/third_party or a download of the pinned commit
(benchmarks/cmsis/sources.py).

Models: the MNIST MLP 784-256-256-10 at p = 1, 4, 8, 16, the authors' microcontroller
model (784-128-10 without bias, first layer p=4, second binary) and the cnn recipe at p=4.
Each trained for ``--epochs`` into ``--runs``.
Per row: weight bytes (tiles or int8 weights, scales, biases), arena bytes, accuracy on
``--n-accuracy`` test images (the reference interpreter, whose bytes the device output
equals on every inference run here), instructions per inference (mean over ``--n``) and
the ratio to CMSIS-NN on the same architecture and board.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from _table import print_table, write_json
from cmsis.sources import cmsis
from tbn import compile_model
from tbn.data import load_mnist
from tbn.device.runner import DeviceRunner
from tbn.device.session import open_device
from tbn.format import read
from tbn.format.inspect import summarize
from tbn.runtime import Interpreter
from tbn.train import TrainConfig, load_model, mnist_tensors, train
from tbn.train.recipes import input_shape

BACKEND = Path(__file__).parent / "cmsis" / "backend.py"
# name -> (recipe, p, the CMSIS-NN baseline's name); p None: the float model
MODELS: dict[str, tuple[str, int | None, str | None]] = {
    "mlp_float": ("mlp", None, None), "mlp_p1": ("mlp", 1, "mlp_float"), "mlp_p4": ("mlp", 4, "mlp_float"),
    "mlp_p8": ("mlp", 8, "mlp_float"), "mlp_p16": ("mlp", 16, "mlp_float"),
    "mcu_float": ("mcu", None, None), "mcu_p4": ("mcu", 4, "mcu_float"),
    "cnn_float": ("cnn", None, None), "cnn_p4": ("cnn", 4, "cnn_float"),
}


def trained(name: str, runs: Path, epochs: int) -> torch.nn.Module:
    recipe, p, _ = MODELS[name]
    out = runs / name
    if not (out / "model.pt").exists():
        train(TrainConfig(recipe=recipe, p=p, epochs=epochs), out, overwrite=True, progress=False)
    return load_model(out / "model.pt")[0].eval()


def mnist_inputs(n: int) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    """``n`` test images for the devices, 512 training images to calibrate INT8 on, and the
    example input that fixes every model's shape (each reads one MNIST image)."""
    example = torch.zeros(1, *input_shape("mlp"))
    return load_mnist("test").normalized(n), mnist_tensors("train")[0][:512], example


def measure(data: bytes, path: Path, boards: list[str], x: np.ndarray, n_acc: int,
            backend: Path | None) -> dict[str, Any]:
    """Sizes, reference accuracy, and the device's cost on each board (outputs checked)."""
    prog = read(data)
    s = summarize(prog, len(data))["sections"]
    test = load_mnist("test")
    y = Interpreter(data).run_float(test.normalized(n_acc))
    row: dict[str, Any] = {"bytes": len(data), "arena": prog.arena_size,
                           "weights": s["tile bits"] + s["scales"] + s["biases"] + s["dense int8 weights"],
                           "accuracy": float(np.mean(y.argmax(axis=1) == test.labels[:n_acc]))}
    path.write_bytes(data)
    for board in boards:
        with open_device(board, model=path, backend=backend) as link:
            runner = DeviceRunner(link, prog)
            results = [runner.compare(xi) for xi in x]
        row[board] = int(np.mean([r.cost for r in results]))
        row[f"{board}_equal"] = all(r.matches for r in results)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", nargs="+", default=["mps2_an500", "mps2_an386"])
    ap.add_argument("--models", nargs="+", default=[m for m in MODELS if MODELS[m][1] is not None],
                    choices=list(MODELS))
    ap.add_argument("--opt", nargs="+", default=["-Os", "-O2"], choices=["-Os", "-O2", "-O3"])
    ap.add_argument("--runs", type=Path, default=Path("runs/bench/mcu"))
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--n", type=int, default=5, help="device inferences per model (cost mean)")
    ap.add_argument("--n-accuracy", type=int, default=1000)
    ap.add_argument("--direct", action="store_true", help="also run tbn's direct kernel (no tables)")
    ap.add_argument("--json")
    args = ap.parse_args()
    src = cmsis()
    os.environ.update(CMSIS_NN_DIR=str(src.nn), CMSIS_CORE_INCLUDE=str(src.core_include))
    x, calib, example = mnist_inputs(args.n)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as d:
        for opt in args.opt:
            os.environ["TBN_OPT"] = opt  # read by the emulated platform's builder
            baselines: dict[str, dict[str, Any]] = {}
            for name in args.models:
                base = MODELS[name][2]
                if base is not None and base not in baselines:
                    data = compile_model(trained(base, args.runs, args.epochs), example, activations="int8",
                                         calibration=calib, dense_weights="per_tensor")
                    row = measure(data, Path(d) / f"{base}.tbn", args.boards, x, args.n_accuracy, BACKEND)
                    baselines[base] = row = {"model": base, "runtime": "CMSIS-NN", "acts": "int8", "opt": opt,
                                             **row}
                    rows.append(row)
                    print(row, flush=True)
                model = trained(name, args.runs, args.epochs)
                kernels = (True, False) if args.direct else (True,)
                for acts, tables in [(a, t) for a in ("int8", "f32") for t in kernels]:
                    data = compile_model(model, example, activations=acts, lookup_tables=tables,
                                         calibration=calib if acts == "int8" else None)
                    path = Path(d) / f"{name}_{acts}_{tables}.tbn"
                    row = {"model": name, "runtime": "tbn" if tables else "tbn direct", "acts": acts,
                           "opt": opt, **measure(data, path, args.boards, x, args.n_accuracy, None)}
                    if base is not None:
                        for board in args.boards:
                            row[f"{board}_x"] = f"{row[board] / baselines[base][board]:.3f}"
                    rows.append(row)
                    print(row, flush=True)
    for r in rows:
        for board in args.boards:
            r.setdefault(f"{board}_x", "1" if r["runtime"] == "CMSIS-NN" else "-")
    cols = [("model", "model"), ("runtime", "runtime"), ("acts", "acts"), ("opt", "opt"),
            ("weights", "weight bytes"), ("arena", "arena bytes"),
            ("accuracy", f"accuracy ({args.n_accuracy})")]
    for board in args.boards:
        cols += [(board, f"{board} instructions"), (f"{board}_x", "/ CMSIS-NN")]
    print_table(rows, cols)
    write_json(args.json, {"boards": args.boards, "n": args.n, "rows": rows})
    return 0 if all(r[f"{b}_equal"] for r in rows for b in args.boards) else 1


if __name__ == "__main__":
    sys.exit(main())
