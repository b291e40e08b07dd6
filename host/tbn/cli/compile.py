"""``tbn compile``: a trained model (``tbn train``'s model.pt, a Keras ``.keras``/``.h5`` file or
a ``.tflite`` file) to ``.tbn`` bytecode."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tbn.cli.types import count, count_or_none
from tbn.errors import UsageError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("compile", help="compile a trained model to .tbn bytecode",
                       description="Compile model.pt from `tbn train`, a Keras model file (.keras, "
                                   "or the .h5 TensorFlow 2.x wrote) or a TFLite model (.tflite) to .tbn "
                                   "bytecode.")
    p.add_argument("model", help="model.pt written by tbn train, a .keras / .h5 Keras model or a .tflite "
                   "model")
    p.add_argument("-o", "--output", help="output .tbn (default: the model's name with .tbn)")
    p.add_argument("--activations", choices=("f32", "int8"), default="f32")
    p.add_argument("--params", choices=("auto", "wide"), default="auto",
                   help="per-output scales and biases: the narrowest form that holds each layer "
                        "within tolerance (int16, float16; default), or wide (int32, float32)")
    p.add_argument("--calibration", type=count, default=512, metavar="N",
                   help="INT8: calibrate on the first N training images (default 512)")
    p.add_argument("--data-dir", help="folder with the recipe's dataset, MNIST or CIFAR-10 (INT8 "
                   "calibration)")
    p.add_argument("--calibration-data", metavar="X.npy",
                   help="INT8 calibration inputs of a Keras or TFLite model: a batch as the model "
                        "reads it (channels last)")
    p.add_argument("--dequantise", action="store_true",
                   help="a .tflite model of int8 arithmetic: compile its float twin (its weights "
                        "dequantised), which tbn then quantises its own way")
    p.add_argument("--check", type=count_or_none, default=8, metavar="N",
                   help="INT8: compare the file with its F32 twin on the first N calibration inputs "
                        "(default 8; 0: no check)")
    p.add_argument("--no-lookup-tables", dest="lookup_tables", action="store_false",
                   help="run every tiled op with the direct kernel: no scratch in the arena, slower")
    p.add_argument("--force", action="store_true", help="replace an existing output that is not a .tbn")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from tbn.compiler import compile_model
    from tbn.data.datasets import as_float
    from tbn.files import check_output, write_atomic
    from tbn.foreign import is_foreign, load_foreign
    from tbn.format import read
    from tbn.format.inspect import render, summarize
    from tbn.train import dataset_tensors, load_model
    from tbn.train.recipes import input_shape, recipe

    foreign = is_foreign(args.model)
    if args.calibration_data and not foreign:
        raise UsageError("--calibration-data is for Keras and TFLite models; a model.pt calibrates on its "
                         "recipe's dataset (--data-dir)")
    if args.dequantise and Path(args.model).suffix.lower() != ".tflite":
        raise UsageError("--dequantise is for .tflite models")
    # the input first
    model, config = (load_foreign(args.model, args.dequantise), None) if foreign else load_model(args.model)
    out = Path(args.output) if args.output else Path(args.model).with_suffix(".tbn")
    check_output(out, [args.model], "tbn", args.force)  # before the work, not after
    if args.activations == "int8" and args.calibration < 1:
        raise UsageError("--calibration needs at least one image")
    if foreign:
        example, calibration = _foreign_inputs(args, model)
    else:
        example, calibration = torch.zeros(1, *input_shape(config.recipe)), None
        if args.activations == "int8":
            calibration = as_float(dataset_tensors(recipe(config.recipe).dataset, "train", args.data_dir,
                                                   config.verify_data, stored=True)[0][:args.calibration])
    data = compile_model(model, example, activations=args.activations, calibration=calibration,
                         params=args.params, lookup_tables=args.lookup_tables)
    write_atomic(out, data, inputs=[args.model])
    print(render(summarize(read(data), len(data))))
    if args.activations == "int8" and args.check:
        _report_int8(model, example, calibration[:args.check], read(data), args)
    print(f"\nwrote {out}")
    return 0


def _report_int8(model: Any, example: Any, calibration: Any, int8: Any, args: argparse.Namespace) -> None:
    """The INT8 file against its F32 twin on (the first ``--check``) calibration inputs: top-1
    agreement, largest output difference, and a warning for each op past its bound
    (tbn.runtime.steps.step_bound). The reference interpreter runs both: a few inputs."""
    import warnings

    import numpy as np

    from tbn.compiler import compile_program
    from tbn.runtime.steps import QuantisationWarning, agreement, step_bound

    f32 = compile_program(model, example, params=args.params, lookup_tables=args.lookup_tables)
    a = agreement(f32, int8, np.asarray(calibration, dtype=np.float32))
    top1 = f"the same top-1 output on {a.top1:.1%}, " if a.top1 is not None else ""
    print(f"\nINT8 against its F32 twin on the {a.n} calibration inputs: {top1}outputs within "
          f"{a.error:.2%} of the F32 outputs' largest magnitude")
    for i, name, steps in a.far:
        warnings.warn(f"op {i} ({name}) is {steps} quantisation steps from its F32 op (bound "
                      f"{step_bound(int8, int8.ops[i])}); its inputs' range or its function loses precision "
                      "in INT8", QuantisationWarning, stacklevel=1)


def _foreign_inputs(args: argparse.Namespace, model: Any) -> tuple[Any, Any]:
    """A channels-first example batch of a Keras or TFLite model's input shape and (INT8) the
    first ``--calibration`` inputs of ``--calibration-data`` (channels last, as the model reads
    them), checked against that shape and turned channels first."""
    import torch

    from tbn.files import read_npy
    from tbn.layout import channels_first, channels_first_shape

    shape = model.meta["input_shape"]
    if None in shape:
        raise UsageError(f"{args.model}: its input shape {shape} is not fixed; tbn compiles one size")
    calibration = None
    if args.activations == "int8":
        if not args.calibration_data:
            dims = ", ".join(map(str, shape))
            raise UsageError("INT8 needs calibration inputs for a Keras or TFLite model: --calibration-data"
                             f" X.npy, a batch of shape (N, {dims}) as the model reads it")
        calibration = read_npy(args.calibration_data)[:args.calibration]
        if calibration.shape[1:] != shape or not len(calibration):
            raise UsageError(f"{args.calibration_data} holds an array of shape {calibration.shape}; the "
                             f"model takes inputs of shape {shape}: give (N, {', '.join(map(str, shape))})")
        calibration = torch.from_numpy(channels_first(calibration))
    return torch.zeros(1, *channels_first_shape(shape)), calibration
