"""MNIST in 2 KB of RAM: the ``tiny`` recipes, trained, compiled and run on small boards.

Trains a float teacher (``--teacher``, default the ``tiny-teacher`` recipe), then each tiled
student distilled from it (BatchNorm statistics re-estimated at the end, the recipes'
default), on MNIST cropped and averaged to 16x16 on the host (:func:`tbn.data.datasets.mnist16`).
Each is compiled to int8 with the direct kernels (no table scratch in the arena) and reported
with: file bytes, bits per weight for the whole file, arena, int8 test accuracy on all 10,000
images (the reference interpreter), and, on each ``--boards`` board, built with only the
model's ops (``tbn-flash --model-ops``): flash for runtime + app and in all, static RAM, cost
per inference, and whether every device output equals the reference's on the first ``--n``
images ("does not fit" where the board refuses it, with its reason).

``--random-weights``: the variants' architectures untrained (BatchNorm statistics measured on 512
training images), for their costs on the boards alone: no training, no accuracy.

Variants: ``tiny`` (12-32-32-40 channels, 1,280-byte arena: the Uno's; the default), ``tiny3``
(12-32-48, the same arena), ``tiny_wide`` (16-32-64, 1,536 bytes) and ``tiny_wide_fc8`` (its
classifier kept dense int8: more bytes, better accuracy).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from _table import print_table, write_json
from tbn import compile_model
from tbn.boards import load_board
from tbn.cli.types import count
from tbn.data.datasets import mnist_test
from tbn.device.build import FitError
from tbn.device.runner import DeviceRunner
from tbn.device.session import flash, open_device
from tbn.format import read
from tbn.format.inspect import summarize
from tbn.runtime import Interpreter
from tbn.train import TrainConfig, dataset_tensors, load_model, train

SHAPE = (1, 16, 16)
# variant -> (recipe, training options beyond the recipe's)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "tiny": ("tiny", {}), "tiny3": ("tiny3", {}), "tiny_wide": ("tiny-wide", {}),
    "tiny_wide_fc8": ("tiny-wide", {"keep_dense": ["0", "10"]}),
}


def trained(out: Path, recipe: str, **options: Any) -> Path:
    if not (out / "model.pt").exists():
        train(TrainConfig.for_recipe(recipe, **options), out, overwrite=True, progress=True)
    return out / "model.pt"


def random_weights(recipe: str, options: dict[str, Any], calib: torch.Tensor, seed: int) -> torch.nn.Module:
    """``recipe``'s model untrained, its BatchNorm statistics those of ``calib``: the same
    layers, bytes and arena as a trained one, for what the boards' costs need."""
    from tbn.train.loop import recalibrate_batchnorm
    from tbn.train.model_file import build_model

    torch.manual_seed(seed)
    model, _ = build_model(TrainConfig.for_recipe(recipe, **options))
    with torch.no_grad():
        recalibrate_batchnorm(model, calib)
    return model.eval()


def on_board(board: str, path: Path, x: np.ndarray) -> dict[str, Any]:
    """Flash and RAM of the firmware built for ``path`` alone, and the device's cost and parity."""
    try:
        fw = flash(load_board(board), path, model_ops=True, dry_run=True)
    except FitError as e:
        print(e, flush=True)
        return {f"{board}_{k}": "does not fit" for k in ("runtime_flash", "flash", "ram", "cost", "equal")}
    program = read(path.read_bytes())
    with open_device(board, model=path, model_ops=True) as link:
        runner = DeviceRunner(link, program)
        results = [runner.compare(xi) for xi in x]
    return {f"{board}_runtime_flash": fw.runtime_flash, f"{board}_flash": fw.firmware.flash_bytes,
            f"{board}_ram": fw.firmware.ram_bytes, f"{board}_cost": int(np.mean([r.cost for r in results])),
            f"{board}_equal": all(r.matches for r in results)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", nargs="+", default=["uno", "sifive_e"])
    ap.add_argument("--variants", nargs="+", default=["tiny"], choices=list(VARIANTS))
    ap.add_argument("--teacher", default="tiny-teacher", help="the float teacher's recipe")
    ap.add_argument("--runs", type=Path, default=Path("runs/bench/tiny"))
    ap.add_argument("--teacher-epochs", type=count, help="the teacher's epochs (default its recipe's)")
    ap.add_argument("--epochs", type=count, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=100, help="test images run on each device")
    ap.add_argument("--random-weights", action="store_true",
                    help="untrained models: the boards' costs only (no training, no accuracy)")
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.random_weights:
        args.teacher_epochs = 0
    teacher_epochs = (TrainConfig.for_recipe(args.teacher).epochs if args.teacher_epochs is None
                      else args.teacher_epochs)
    teacher, teacher_acc = None, None
    if not args.random_weights:
        teacher = trained(args.runs / args.teacher, args.teacher, p=None, epochs=teacher_epochs,
                          seed=args.seed)
        teacher_acc = json.loads((args.runs / args.teacher / "metrics.json").read_text())["test_accuracy"]
    x_all, labels = mnist_test(SHAPE)
    calib = dataset_tensors("mnist16", "train")[0][:512]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as d:
        for name in args.variants:
            recipe, options = VARIANTS[name]
            if args.random_weights:
                model = random_weights(recipe, options, calib, args.seed)
            else:
                run = args.runs / f"{name}-from-{args.teacher}"  # a cached student is its teacher's
                model = load_model(trained(run, recipe, teacher=str(teacher), epochs=args.epochs,
                                           seed=args.seed, **options))[0].eval()
            data = compile_model(model, torch.zeros(1, *SHAPE), activations="int8", calibration=calib,
                                 lookup_tables=False)
            path = Path(d) / f"{name}.tbn"
            path.write_bytes(data)
            if args.random_weights:  # kept for `tbn infer --profile`
                args.runs.mkdir(parents=True, exist_ok=True)
                (args.runs / f"{name}-random.tbn").write_bytes(data)
            else:
                (run / "model.tbn").write_bytes(data)
            s = summarize(read(data), len(data))
            y = Interpreter(data).run_float(x_all)
            row: dict[str, Any] = {"model": name, "bytes": len(data), "arena": read(data).arena_size,
                                   "bits_per_weight": round(s["file_bits_per_weight"], 3),
                                   "accuracy": "untrained" if args.random_weights else
                                   round(100 * float(np.mean(y.argmax(axis=1) == labels)), 2)}
            for board in args.boards:
                row |= on_board(board, path, x_all[:args.n])
            rows.append(row)
            print(row, flush=True)
    cols = [("model", "model"), ("bytes", "file bytes"), ("bits_per_weight", "bits/weight"),
            ("arena", "arena"), ("accuracy", "int8 accuracy % (10,000)")]
    for b in args.boards:
        cols += [(f"{b}_runtime_flash", f"{b} runtime+app flash"), (f"{b}_flash", f"{b} flash with model"),
                 (f"{b}_ram", f"{b} static RAM"), (f"{b}_cost", f"{b} cost/inference"),
                 (f"{b}_equal", f"{b} = reference ({args.n})")]
    if teacher_acc is not None:
        print(f"float teacher: {100 * teacher_acc:.2f}%")
    print_table(rows, cols)
    write_json(args.json, {"boards": args.boards, "n": args.n, "epochs": args.epochs, "rows": rows,
                           "random_weights": args.random_weights,
                           "teacher": args.teacher, "teacher_epochs": teacher_epochs,
                           "teacher_accuracy": teacher_acc})
    return 0 if all(r[f"{b}_equal"] in (True, "does not fit") for r in rows for b in args.boards) else 1


if __name__ == "__main__":
    sys.exit(main())
