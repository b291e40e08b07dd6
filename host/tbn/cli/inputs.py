"""The inputs of every command that runs a model: ``--input X.npy`` or ``--data mnist``,
checked against the model's input before any engine, device or emulator starts."""

from __future__ import annotations

import argparse
import math
from typing import Any

import numpy as np

from tbn.errors import UsageError


def load_inputs(args: argparse.Namespace, program: Any,
                single_ok: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """(inputs, labels or None): the first ``--n`` of ``--input``'s array, or of MNIST's test
    images (cropped and averaged to 16x16 for a model that takes 16x16). ``single_ok``: an
    array of exactly the model's input shape is one input, given back as it is. Without a
    ``program`` (a device's own model, unknown here) nothing is checked."""
    shape = tuple(program.tensors[0].shape) if program is not None else ()
    n = getattr(args, "n", None)
    if getattr(args, "input", None) is not None:
        from tbn.files import read_npy

        x = read_npy(args.input)
        if single_ok and x.shape == shape:
            return x, None
        x = x[:n] if n else x
        if program is not None:
            check_batch(x, program, str(args.input))
        if len(x) == 0:
            raise UsageError(f"{args.input} holds no inputs (an array of shape {x.shape}): nothing to run")
        return x, None
    from tbn.data.datasets import mnist_test

    x, labels = mnist_test(shape, n, getattr(args, "data_dir", None))
    if program is None:
        return x, labels
    if x[0].size != math.prod(shape):
        raise UsageError(f"the model takes inputs of shape {shape} ({math.prod(shape)} values), MNIST "
                         f"images have {x[0].size}: it was not built for MNIST; give its inputs with "
                         "--input X.npy")
    return x.reshape(len(x), *shape), labels


def check_batch(x: np.ndarray, program: Any, source: str) -> None:
    """Refuse a batch whose items are not one model input each (the first axis counts inputs)."""
    want = tuple(program.tensors[0].shape)
    if x.ndim == 0 or math.prod(x.shape[1:]) != math.prod(want):
        raise UsageError(f"{source} holds an array of shape {x.shape}; the model takes a batch of inputs "
                         f"of shape {want}, so give an array of shape (N, {', '.join(map(str, want))})")
