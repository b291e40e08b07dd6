"""tbn through MicroPython beside the bare-metal firmware on the emulated Cortex-M7 (QEMU
icount), the native module's size per architecture, and the heap ``tbn.Model`` takes.

The model: the MNIST MLP at p=4 (``--epochs`` of training), compiled with f32 and int8
activations. On MicroPython (the AN500 QEMU firmware with tbn built in) each input is passed
as the model takes it (int8 bytes, or array('f')) and ``predict(x, out)`` is timed ``--reps``
times; the bare-metal firmware's count is its own (tbn infer). Outputs are checked against the
reference on both.
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
from tbn.data import load_mnist
from tbn.device.runner import DeviceRunner
from tbn.device.session import open_device
from tbn.format import read
from tbn.micropython import MicroPythonBuildError, natmod, open_target, target
from tbn.micropython.runner import run_model, stage
from tbn.micropython.targets import ARCHS
from tbn.train import TrainConfig, load_model, mnist_tensors, train


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--n", type=int, default=20, help="inputs per model")
    ap.add_argument("--reps", type=int, default=20, help="timed calls per input on MicroPython")
    ap.add_argument("--json")
    args = ap.parse_args()
    x = load_mnist("test").normalized(args.n)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as d:
        train(TrainConfig(p=4, epochs=args.epochs), Path(d) / "run", progress=False)
        model, _ = load_model(Path(d) / "run" / "model.pt")
        calib = mnist_tensors("train")[0][:512]
        for acts in ("int8", "f32"):
            data = compile_model(model, torch.zeros(1, 1, 28, 28), activations=acts, calibration=calib)
            path = Path(d) / f"mlp_{acts}.tbn"
            path.write_bytes(data)
            with open_target(target("mpy_an500"), stage(path.name, data, x)) as s:
                mp = run_model(s, path.name, data, x, reps=args.reps)
            with open_device("mps2_an500", model=path) as link:
                bare = [DeviceRunner(link, read(data)).compare(xi) for xi in x]
            cost = float(np.mean([r.cost for r in bare]))
            rows.append({"model": f"MLP p=4 {acts}", "bare": round(cost), "mpy": round(mp.instructions or 0),
                         "extra": f"{(mp.instructions or 0) / cost - 1:+.1%}",
                         "equal": f"{mp.equal}/{len(x)}, {sum(r.matches for r in bare)}/{len(x)}",
                         "model_bytes": len(data), "arena": read(data).arena_size, "heap": mp.heap_bytes})
    sizes = {}
    for arch in ARCHS:
        try:
            sizes[arch] = natmod(arch).stat().st_size
        except MicroPythonBuildError as e:
            sizes[arch] = str(e).splitlines()[0]
    print_table(rows, [("model", "model"), ("bare", "bare-metal instructions"), ("mpy", "MicroPython"),
                       ("extra", "extra"), ("equal", "equal (MicroPython, bare)"),
                       ("model_bytes", ".tbn bytes"), ("arena", "arena"), ("heap", "tbn.Model heap")])
    print_table([{"arch": a, "bytes": b} for a, b in sizes.items()], [("arch", "architecture"),
                                                                       ("bytes", "tbn.mpy bytes")])
    write_json(args.json, {"rows": rows, "mpy_bytes": sizes})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
