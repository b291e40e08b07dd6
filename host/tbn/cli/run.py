"""``tbn run``: run a ``.tbn`` file on a dataset (accuracy) or on one input (.npy)."""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from tbn.cli.inputs import add_data_option, load_inputs, score
from tbn.cli.types import count
from tbn.engines import ENGINES, names, open_engine
from tbn.errors import UsageError
from tbn.files import read_bounded
from tbn.format import read
from tbn.format.spec import MAX_FILE_BYTES


def add_parser(sub: Any) -> None:
    p = sub.add_parser("run", help="run a .tbn model", description=__doc__)
    p.add_argument("model", help="a .tbn file")
    src = p.add_mutually_exclusive_group(required=True)
    add_data_option(src, "report the score on a dataset's test split")
    src.add_argument("--input", metavar="X.npy", help="run one input (or a batch) and print the output")
    p.add_argument("--n", type=count, help="use the first N test inputs (default all)")
    p.add_argument("--engine", choices=names("tbn"), default="reference",
                   help="which runtime runs it; " + "; ".join(f"{n}: {ENGINES[n].needs}" for n in names()))
    p.add_argument("--dtype", choices=("float32", "float16", "bfloat16"),
                   help="cuda engine: activation type between ops (default float32)")
    p.add_argument("--board", help="device engine: a board of boards/ (emulated boards are booted)")
    p.add_argument("--port", help="device engine: the serial port or pyserial URL of a running device")
    p.add_argument("--data-dir", help="the dataset's folder (docs/datasets.md)")
    p.set_defaults(func=run)


# the options only one engine takes
_ENGINE_OF = {"dtype": "cuda", "board": "device", "port": "device"}


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """The chosen engine's own options; one given to another engine is refused."""
    for name, owner in _ENGINE_OF.items():
        if getattr(args, name) is not None and owner != args.engine:
            raise UsageError(f"--{name} applies to the {owner} engine only; the {args.engine} engine "
                             f"does not take it (drop --{name}, or add --engine {owner})")
    if args.engine == "device" and args.board is None and args.port is None:
        raise UsageError("the device engine needs a --board (emulated boards are booted) or a --port")
    return {n: getattr(args, n) for n, owner in _ENGINE_OF.items()
            if owner == args.engine and getattr(args, n) is not None}


def run(args: argparse.Namespace) -> int:
    options = _options(args)
    data = read_bounded(args.model, MAX_FILE_BYTES, "a .tbn model")
    program = read(data)  # a corrupt file is refused here, whatever the engine
    x, labels = load_inputs(args, program, single_ok=True)  # and bad inputs before any engine starts
    # the device engine builds the model into its firmware from the file
    engine = open_engine(args.engine, args.model if args.engine == "device" else data, **options)
    try:
        t0 = time.perf_counter()
        y = engine.run_float(x)
        seconds = time.perf_counter() - t0
    finally:
        engine.close()
    if labels is None:
        print(np.array2string(y, precision=6))
        return 0
    metric, value = score(y, labels, x)
    print(f"{args.model}: {metric} {value:.4f} on {len(x)} {args.data} test inputs "
          f"({args.engine} engine, {1e3 * seconds / len(x):.3f} ms per input)")
    return 0
