"""``tbn run``: run a ``.tbn`` file on a dataset (accuracy) or on one input (.npy)."""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from tbn.cli.types import count
from tbn.errors import UsageError
from tbn.format import load
from tbn.runtime import Interpreter, output_as_float

ENGINES = ("reference", "c", "cuda")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("run", help="run a .tbn model", description=__doc__)
    p.add_argument("model", help="a .tbn file")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", choices=("mnist",), help="report accuracy on a dataset's test split")
    src.add_argument("--input", metavar="X.npy", help="run one input (or a batch) and print the output")
    p.add_argument("--n", type=count, help="use the first N test images (default all)")
    p.add_argument("--engine", choices=ENGINES, default="reference", help="which runtime runs it")
    p.add_argument("--dtype", choices=("float32", "float16", "bfloat16"),
                   help="cuda engine: activation type between ops (default float32)")
    p.add_argument("--data-dir", help="folder with MNIST")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.dtype is not None and args.engine != "cuda":
        raise UsageError(f"--dtype applies to the cuda engine only; the {args.engine} engine computes "
                         f"in the model's own types (drop --dtype, or add --engine cuda)")
    interp = Interpreter(load(args.model))
    engine = interp
    if args.engine == "c":
        from tbn.capi import CRuntime
        from tbn.files import read_bounded
        from tbn.format.spec import MAX_FILE_BYTES

        engine = CRuntime(read_bounded(args.model, MAX_FILE_BYTES, "a .tbn model"))
    elif args.engine == "cuda":
        from tbn.gpu import CudaEngine

        engine = CudaEngine(interp.program, dtype=args.dtype or "float32")

    def run_float(x: np.ndarray) -> np.ndarray:
        return output_as_float(interp.program, engine.run(x))

    if args.input:
        from tbn.files import read_npy

        x = read_npy(args.input)
        print(np.array2string(run_float(x), precision=6))
        return 0
    from tbn.data.datasets import mnist_test

    x, labels = mnist_test(tuple(interp.input.shape), args.n, args.data_dir)
    n = len(x)
    if x[0].size != interp.input.numel:
        raise UsageError(f"{args.model} takes inputs of shape {tuple(interp.input.shape)} "
                         f"({interp.input.numel} values), MNIST images have {x[0].size}: "
                         "this model was not built for MNIST; give its inputs with --input X.npy")
    t0 = time.perf_counter()
    y = run_float(x.reshape(n, *interp.input.shape))
    seconds = time.perf_counter() - t0
    pred = y.reshape(n, -1).argmax(axis=1) if y.reshape(n, -1).shape[1] > 1 else y.reshape(n)
    acc = float((pred == labels).mean())
    print(f"{args.model}: accuracy {acc:.4f} on {n} MNIST test images "
          f"({args.engine} engine, {1e3 * seconds / n:.3f} ms per image)")
    return 0
