"""The authors' CIFAR-10 ResNet-18 on a microcontroller: weights, arena, the Nucleo-F767ZI fit
check, and instructions per inference on the emulated Cortex-M7 and M4 (QEMU icount), every
device output compared with the reference interpreter.

The model: ``--model MODEL.pt`` (a ``tbn train --recipe resnet18`` run), else trained here for
``--epochs`` on CIFAR-10 (``--data-dir`` or ``$TBN_DATA``), else, where CIFAR-10 is not on the
machine, on a synthetic set in its format (``tbn.data.cifar10.write_synthetic``): then the
accuracy means nothing, but weights, arena and cost are the real model's (they do not depend on
the weights' values). INT8 activations, calibrated on ``--calibration`` training images.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from _table import print_table, write_json
from tbn import compile_model
from tbn.boards import load_board
from tbn.data import Cifar10Error, load_cifar10
from tbn.data.cifar10 import write_synthetic
from tbn.device.build import FitError, build, check_fit
from tbn.device.runner import DeviceRunner
from tbn.device.session import open_device
from tbn.format import read
from tbn.format.inspect import summarize
from tbn.train import TrainConfig, dataset_tensors, load_model, train


def model_file(args: argparse.Namespace, work: Path) -> tuple[Path, str | None, bool]:
    """(model.pt, the data folder to calibrate from, whether that data is the real CIFAR-10)."""
    try:
        load_cifar10("test", args.data_dir, download=False)
        data_dir, real = args.data_dir, True
    except Cifar10Error as e:
        print(f"CIFAR-10 not found ({str(e)[:80]}...): using a synthetic set in its format")
        data_dir, real = str(work / "synthetic"), False
        write_synthetic(Path(data_dir), n_train=args.calibration, n_test=16)
    if args.model is not None:
        return args.model, data_dir, real
    out = work / "run"
    config = TrainConfig.for_recipe("resnet18", p=args.p, epochs=args.epochs, data_dir=data_dir,
                                    verify_data=real, batch_size=32 if not real else 128)
    train(config, out, progress=not real)
    return out / "model.pt", data_dir, real


def on_board(board: str, path: Path, prog: Any, x: np.ndarray) -> dict[str, Any]:
    with open_device(board, model=path) as link:
        runner = DeviceRunner(link, prog)
        results = [runner.compare(xi) for xi in x]
    return {"board": board, "instructions": int(np.mean([r.cost for r in results])),
            "equal": f"{sum(r.matches for r in results)}/{len(results)}"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="a trained resnet18 model.pt (else one is trained)")
    ap.add_argument("--p", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--data-dir")
    ap.add_argument("--calibration", type=int, default=64)
    ap.add_argument("--boards", nargs="+", default=["mps2_an500", "mps2_an386"])
    ap.add_argument("--n", type=int, default=2, help="device inferences per board")
    ap.add_argument("--json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        pt, data_dir, real = model_file(args, work)
        model, config = load_model(pt)
        calib, _ = dataset_tensors("cifar10", "train", data_dir, verify=real)
        data = compile_model(model, torch.zeros(1, 3, 32, 32), activations="int8",
                             calibration=calib[:args.calibration])
        prog = read(data)
        s = summarize(prog, len(data))["sections"]
        path = work / "resnet18.tbn"
        path.write_bytes(data)
        # the Nucleo cannot be built here (its PlatformIO platform needs the registry): its fit
        # check takes the runtime's flash from the same core's emulated build
        nucleo, m7 = load_board("nucleo_f767zi"), build(load_board("mps2_an500"))
        try:
            check_fit(nucleo.name, len(data), prog.arena_size, arena_limit=nucleo.arena_bytes,
                      flash_limit=nucleo.flash_bytes, runtime_flash=m7.flash_bytes)
            fit = (f"fits: arena {prog.arena_size:,} of {nucleo.arena_bytes:,} B; flash {m7.flash_bytes:,} "
                   f"(runtime, M7 build) + {len(data):,} (model) of {nucleo.flash_bytes:,} B")
        except FitError as e:
            fit = str(e)
        x = dataset_tensors("cifar10", "test", data_dir, verify=real)[0][:args.n].numpy()
        rows = [{"p": config.p, "file": len(data), "weights": s["tile bits"] + s["scales"] + s["biases"],
                 "arena": prog.arena_size, **on_board(b, path, prog, x)} for b in args.boards]
    print(f"nucleo_f767zi: {fit}")
    print_table(rows, [("p", "p"), ("file", ".tbn bytes"), ("weights", "weight bytes"),
                       ("arena", "arena bytes"), ("board", "board"), ("instructions", "instructions"),
                       ("equal", "outputs equal")])
    write_json(args.json, {"real_cifar10": real, "nucleo_f767zi": fit, "rows": rows})
    return 0 if all(r["equal"].split("/")[0] == r["equal"].split("/")[1] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
