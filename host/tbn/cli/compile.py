"""``tbn compile``: a trained model (``tbn train``'s model.pt) to ``.tbn`` bytecode."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tbn.cli.types import count
from tbn.errors import UsageError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("compile", help="compile a trained model to .tbn bytecode",
                       description="Compile model.pt from `tbn train` to .tbn bytecode.")
    p.add_argument("model", help="model.pt written by tbn train")
    p.add_argument("-o", "--output", help="output .tbn (default: the model's name with .tbn)")
    p.add_argument("--activations", choices=("f32", "int8"), default="f32")
    p.add_argument("--params", choices=("auto", "wide"), default="auto",
                   help="per-output scales and biases: the narrowest form that holds each layer "
                        "within tolerance (int16, float16; default), or wide (int32, float32)")
    p.add_argument("--calibration", type=count, default=512, metavar="N",
                   help="INT8: calibrate on the first N training images (default 512)")
    p.add_argument("--data-dir", help="folder with the recipe's dataset, MNIST or CIFAR-10 (INT8 "
                   "calibration)")
    p.add_argument("--no-lookup-tables", dest="lookup_tables", action="store_false",
                   help="run every tiled op with the direct kernel: no scratch in the arena, slower")
    p.add_argument("--force", action="store_true", help="replace an existing output that is not a .tbn")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from tbn.compiler import compile_model
    from tbn.files import check_output, write_atomic
    from tbn.format import read
    from tbn.format.inspect import render, summarize
    from tbn.train import dataset_tensors, load_model
    from tbn.train.recipes import input_shape, recipe

    model, config = load_model(args.model)
    out = Path(args.output) if args.output else Path(args.model).with_suffix(".tbn")
    check_output(out, [args.model], "tbn", args.force)  # before the work, not after
    calibration = None
    if args.activations == "int8":
        if args.calibration < 1:
            raise UsageError("--calibration needs at least one image")
        calibration = dataset_tensors(recipe(config.recipe).dataset, "train", args.data_dir,
                                      config.verify_data)[0][:args.calibration]
    data = compile_model(model, torch.zeros(1, *input_shape(config.recipe)), activations=args.activations,
                       calibration=calibration, params=args.params,
                       lookup_tables=args.lookup_tables)
    write_atomic(out, data, inputs=[args.model])
    print(render(summarize(read(data), len(data))))
    print(f"\nwrote {out}")
    return 0
