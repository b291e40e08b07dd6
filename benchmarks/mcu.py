"""Instructions per inference of tbn's kernels on the emulated Cortex-M boards (QEMU icount).

For the MNIST MLP (784-256-256-10) at p = 1, 4, 8, 16 and the `cnn` recipe at p = 4, each
compiled with f32 and int8 activations, with the table kernel (the default) and with the
direct kernel only (``lookup_tables=False``): model bytes, arena bytes, accuracy on the
first ``--n-accuracy`` MNIST test images (the reference interpreter, whose outputs the
device reproduces: every device output is checked against it here too) and instructions
per inference on each board (mean over ``--n`` images, firmware built by tbn-flash at -Os).

Models are trained for ``--epochs`` into ``--runs`` unless a model.pt is already there.
The CMSIS-NN int8 baseline is not built by this script yet (see docs/results.md).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from _table import print_table, write_json
from tbn import compile_model
from tbn.data import load_mnist
from tbn.device.runner import DeviceRunner
from tbn.device.session import open_device
from tbn.runtime import Interpreter
from tbn.train import TrainConfig, load_model, mnist_tensors, train
from tbn.train.recipes import INPUT_SHAPE

MODELS = {"mlp_p1": ("mlp", 1), "mlp_p4": ("mlp", 4), "mlp_p8": ("mlp", 8), "mlp_p16": ("mlp", 16),
          "cnn_p4": ("cnn", 4)}


def trained(name: str, runs: Path, epochs: int) -> torch.nn.Module:
    recipe, p = MODELS[name]
    out = runs / name
    if not (out / "model.pt").exists():
        train(TrainConfig(recipe=recipe, p=p, epochs=epochs), out, overwrite=True, progress=False)
    return load_model(out / "model.pt")[0].eval()


def accuracy(data: bytes, n: int) -> float:
    test = load_mnist("test")
    y = Interpreter(data).run_float(test.normalized(n))
    return float(np.mean(y.argmax(axis=1) == test.labels[:n]))


def on_board(board: str, path: Path, x: np.ndarray) -> dict[str, Any]:
    from tbn.format import read

    with open_device(board, model=path) as link:
        runner = DeviceRunner(link, read(path.read_bytes()))
        results = [runner.run(xi) for xi in x]
    return {"instructions": int(np.mean([r.cost for r in results])),
            "equal": sum(r.matches for r in results) == len(results)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", nargs="+", default=["mps2_an500", "mps2_an386"])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--runs", type=Path, default=Path("runs/bench/mcu"))
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--n", type=int, default=5, help="device inferences per model (cost mean)")
    ap.add_argument("--n-accuracy", type=int, default=1000)
    ap.add_argument("--json")
    args = ap.parse_args()
    x_test = load_mnist("test").normalized(args.n)
    calib = mnist_tensors("train")[0][:512]
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for name in args.models:
            model = trained(name, args.runs, args.epochs)
            for acts in ("int8", "f32"):
                for tables in (True, False):
                    data = compile_model(model, torch.zeros(1, *INPUT_SHAPE), activations=acts,
                                         calibration=calib if acts == "int8" else None, lookup_tables=tables)
                    path = Path(d) / f"{name}_{acts}_{'tables' if tables else 'direct'}.tbn"
                    path.write_bytes(data)
                    prog = Interpreter(data).program
                    row = {"model": name, "activations": acts, "kernel": "tables" if tables else "direct",
                           "bytes": len(data), "arena": prog.arena_size,
                           "accuracy": accuracy(data, args.n_accuracy)}
                    for board in args.boards:
                        r = on_board(board, path, x_test)
                        row[board] = r["instructions"]
                        row[f"{board}_equal"] = r["equal"]
                    rows.append(row)
                    print(row, flush=True)
    for r in rows:  # the table kernel's gain over the direct one, per board
        base = next(b for b in rows if (b["model"], b["activations"], b["kernel"]) ==
                    (r["model"], r["activations"], "direct"))
        for board in args.boards:
            r[f"{board}_x"] = f"{base[board] / r[board]:.2f}"
    cols = [("model", "model"), ("activations", "acts"), ("kernel", "kernel"), ("bytes", ".tbn bytes"),
            ("arena", "arena bytes"), ("accuracy", f"accuracy ({args.n_accuracy})")]
    for board in args.boards:
        cols += [(board, f"{board} instructions"), (f"{board}_x", "x direct")]
    print_table(rows, cols)
    write_json(args.json, {"boards": args.boards, "n": args.n, "rows": rows})
    return 0 if all(r[f"{b}_equal"] for r in rows for b in args.boards) else 1


if __name__ == "__main__":
    sys.exit(main())
