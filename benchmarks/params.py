"""Per-output scales and biases, wide and narrow (``tbn compile --params wide|auto``), side by side.

The same trained weights compiled both ways, F32 and INT8: bytes per section, the whole
file's bits per weight, test accuracy (the reference interpreter, whose bytes the device
output equals on every inference run here) and its change from the wide form, and
instructions per inference on the emulated Cortex-M7 (mps2_an500) and Cortex-M4
(mps2_an386), QEMU icount, mean over ``--n`` inferences.

Models: the MNIST MLP 784-256-256-10 at p = 1, 4, 8, 16, the cnn recipe at p=4 and the
tiny-cnn recipe, each trained for ``--epochs`` into ``--runs``. The tiny CNN runs the direct
kernels (``lookup_tables=False``): without table scratch its int8 arena is under 1.5 KB.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from _table import print_table, write_json
from mcu import measure, mnist_inputs
from tbn import compile_model
from tbn.format import read
from tbn.format.inspect import summarize
from tbn.train import TrainConfig, load_model, train

# name -> (recipe, p, compile_model options); p None: the recipe's default
MODELS: dict[str, tuple[str, int | None, dict[str, Any]]] = {
    "mlp_p1": ("mlp", 1, {}), "mlp_p4": ("mlp", 4, {}), "mlp_p8": ("mlp", 8, {}), "mlp_p16": ("mlp", 16, {}),
    "cnn_p4": ("cnn", 4, {}), "tiny_cnn": ("tiny-cnn", None, {"lookup_tables": False}),
}


def trained(name: str, runs: Path, epochs: int) -> torch.nn.Module:
    recipe, p, _ = MODELS[name]
    out = runs / name
    if not (out / "model.pt").exists():
        options = {"epochs": epochs} | ({} if p is None else {"p": p})
        train(TrainConfig.for_recipe(recipe, **options), out, overwrite=True, progress=False)
    return load_model(out / "model.pt")[0].eval()


def row_for(name: str, acts: str, params: str, data: bytes, measured: dict[str, Any]) -> dict[str, Any]:
    s = summarize(read(data), len(data))
    sec = s["sections"]
    return {"model": name, "acts": acts, "params": params, "tiles": sec["tile bits"],
            "dense": sec["dense int8 weights"], "scales": sec["scales"], "biases": sec["biases"],
            "structure": len(data) - s["payload_bytes"],
            "bits_per_weight": round(s["file_bits_per_weight"], 4),
            **measured}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", nargs="+", default=["mps2_an500", "mps2_an386"])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--runs", type=Path, default=Path("runs/bench/params"))
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--n", type=int, default=3, help="device inferences per model (cost mean)")
    ap.add_argument("--n-accuracy", type=int, default=10000)
    ap.add_argument("--json")
    args = ap.parse_args()
    x, calib, example = mnist_inputs(args.n)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as d:
        for name in args.models:
            model = trained(name, args.runs, args.epochs)
            for acts in ("f32", "int8"):
                wide_acc = None
                for params in ("wide", "auto"):
                    data = compile_model(model, example, activations=acts, params=params,
                                         calibration=calib if acts == "int8" else None, **MODELS[name][2])
                    m = measure(data, Path(d) / f"{name}_{acts}_{params}.tbn", args.boards, x,
                                args.n_accuracy, None)
                    m["accuracy"] *= 100
                    wide_acc = m["accuracy"] if wide_acc is None else wide_acc
                    row = row_for(name, acts, params, data, m)
                    row["delta"] = round(m["accuracy"] - wide_acc, 2)
                    rows.append(row)
                    print(row, flush=True)
    cols = [("model", "model"), ("acts", "acts"), ("params", "params"), ("bytes", "file bytes"),
            ("tiles", "tile bits"), ("dense", "dense"), ("scales", "scales"), ("biases", "biases"),
            ("structure", "structure"), ("bits_per_weight", "bits/weight"), ("arena", "arena"),
            ("accuracy", f"accuracy % ({args.n_accuracy})"), ("delta", "vs wide")]
    cols += [(b, f"{b} instructions") for b in args.boards]
    print_table(rows, cols)
    write_json(args.json, {"boards": args.boards, "n": args.n, "epochs": args.epochs, "rows": rows})
    return 0 if all(r[f"{b}_equal"] for r in rows for b in args.boards) else 1


if __name__ == "__main__":
    sys.exit(main())
