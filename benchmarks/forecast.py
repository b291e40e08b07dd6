"""A time series on the microcontroller: the ``forecast`` recipe (tbn.data.membrane: 128 samples
of a membrane potential in, the next 16 out), trained here, compiled and run on boards.

Trains the float twin (``--float``), the tiled recipe, and the tiled recipe distilled from the
twin (each cached under ``--runs``). Reports for each: the test RMSE of the PyTorch model and
of its compiled F32 and INT8 files on the reference interpreter (all 2,257 test windows;
standardised units and mV), file bytes, bits per weight for the whole file, arena, and on each
``--boards`` board the cost per inference and whether every output equals the reference's on
the first ``--n`` windows. The baseline to beat is persistence (the last sample repeated).
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
from tbn.cli.types import count
from tbn.data.membrane import load_membrane, persistence_rmse, scale_mv
from tbn.device.runner import DeviceRunner
from tbn.device.session import open_device
from tbn.format import read
from tbn.format.inspect import summarize
from tbn.runtime import Interpreter
from tbn.train import TrainConfig, load_model, train


def trained(out: Path, **options: Any) -> Path:
    if not (out / "model.pt").exists():
        train(TrainConfig.for_recipe("forecast", **options), out, overwrite=True, progress=True)
    return out / "model.pt"


def rmse(y: np.ndarray, want: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y.reshape(want.shape) - want) ** 2)))


def on_board(board: str, path: Path, x: np.ndarray) -> dict[str, Any]:
    with open_device(board, model=path) as link:
        runner = DeviceRunner(link, read(path.read_bytes()))
        results = [runner.compare(xi) for xi in x]
    return {f"{board}_cost": int(np.mean([r.cost for r in results])),
            f"{board}_equal": all(r.matches for r in results)}


def measure(name: str, model: torch.nn.Module, args: argparse.Namespace, data: dict[str, np.ndarray],
            workdir: Path) -> list[dict[str, Any]]:
    x, y, calib = data["x"], data["y"], torch.from_numpy(data["calib"])
    with torch.no_grad():
        pt = rmse(model(torch.from_numpy(x)).numpy(), y)
    rows = []
    for act in ("f32", "int8"):
        blob = compile_model(model, calib[:1], activations=act, calibration=calib)
        path = workdir / f"{name}-{act}.tbn"
        path.write_bytes(blob)
        s = summarize(read(blob), len(blob))
        err = rmse(Interpreter(blob).run_float(x), y)
        row: dict[str, Any] = {"model": f"{name} {act}", "pytorch_rmse": round(pt, 4), "rmse": round(err, 4),
                               "rmse_mv": round(err * data["mv"], 3), "bytes": len(blob),
                               "bits_per_weight": round(s["file_bits_per_weight"], 3),
                               "arena": read(blob).arena_size}
        for board in args.boards:
            row |= on_board(board, path, x[:args.n])
        rows.append(row)
        print(row, flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", nargs="+", default=["mps2_an500", "mps2_an386"])
    ap.add_argument("--runs", type=Path, default=Path("runs/bench/forecast"))
    ap.add_argument("--epochs", type=count, help="every run's epochs (default the recipe's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=20, help="test windows run on each board")
    ap.add_argument("--json")
    args = ap.parse_args()
    common = {"seed": args.seed} | ({"epochs": args.epochs} if args.epochs else {})
    twin = trained(args.runs / "float", p=None, **common)
    runs = {"float twin": twin, "tiled": trained(args.runs / "tiled", **common),
            "tiled, distilled": trained(args.runs / "distilled", teacher=str(twin), **common)}
    x, y = load_membrane("test")
    data = {"x": x, "y": y, "calib": load_membrane("train")[0][::8], "mv": scale_mv()}
    base = persistence_rmse(x, y)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as d:
        for name, path in runs.items():
            rows += measure(name, load_model(path)[0].eval(), args, data, Path(d))
    cols = [("model", "model"), ("pytorch_rmse", "PyTorch RMSE"), ("rmse", "file RMSE (reference)"),
            ("rmse_mv", "RMSE mV"), ("bytes", "file bytes"), ("bits_per_weight", "bits/weight"),
            ("arena", "arena")]
    for b in args.boards:
        cols += [(f"{b}_cost", f"{b} cost/inference"), (f"{b}_equal", f"{b} = reference ({args.n})")]
    print(f"persistence (the last sample repeated): RMSE {base:.4f} ({base * data['mv']:.3f} mV); "
          f"{len(x)} test windows")
    print_table(rows, cols)
    write_json(args.json, {"boards": args.boards, "n": args.n, "persistence_rmse": base,
                           "mv_per_unit": data["mv"], "rows": rows, "options": common})
    return 0 if all(r[f"{b}_equal"] for r in rows for b in args.boards) else 1


if __name__ == "__main__":
    sys.exit(main())
