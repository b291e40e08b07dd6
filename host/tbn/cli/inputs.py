"""The inputs of every command that runs a model: ``--input X.npy`` or ``--data NAME`` (a
dataset's test split), checked against the model's input before any engine, device or emulator
starts; and the score of outputs against the split's labels or targets."""

from __future__ import annotations

import argparse
import math
from typing import Any

import numpy as np

from tbn.errors import UsageError


def add_data_option(group: Any, what: str, **kwargs: Any) -> None:
    """``--data NAME``: any dataset of :data:`tbn.data.datasets.DATASETS`."""
    from tbn.data.datasets import DATASETS

    group.add_argument("--data", choices=tuple(DATASETS), help=f"{what} (mnist: 28x28, or cropped and "
                       "averaged to 16x16 for a model that takes 16x16; membrane: a time series, scored "
                       "by RMSE; toycar: an autoencoder's clips, scored by AUC)", **kwargs)


def load_inputs(args: argparse.Namespace, program: Any,
                single_ok: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """(inputs, labels or a forecast's targets, or None): the first ``--n`` of ``--input``'s array, or of
    ``--data``'s test split (MNIST cropped and averaged to 16x16 for a model that takes 16x16).
    ``single_ok``: an array of exactly the model's input shape is one input, given back as it
    is. Without a ``program`` (a device's own model, unknown here) nothing is checked."""
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
    from tbn.data.datasets import test_split

    name = getattr(args, "data", None) or "mnist"
    x, labels = test_split(name, shape, n, getattr(args, "data_dir", None))
    if program is None:
        return x, labels
    if x[0].size != math.prod(shape):
        raise UsageError(f"the model takes inputs of shape {shape} ({math.prod(shape)} values), {name}'s "
                         f"have {x[0].size} {tuple(x.shape[1:])}: it was not built for {name}; give its "
                         "inputs with --input X.npy, or another --data")
    return x.reshape(len(x), *shape), labels


def score(outputs: np.ndarray, labels: np.ndarray, inputs: np.ndarray | None = None) -> tuple[str, float]:
    """("accuracy", top-1) against int labels (the argmax of each output, or the output itself
    for a model ending in argmax), ("rmse", root mean square error) against float targets, or
    ("auc", ROC AUC) of an autoencoder's reconstructions of ``inputs`` against anomaly rows
    (machine, clip, anomalous: :mod:`tbn.data.toycar`)."""
    n = len(labels)
    y = np.asarray(outputs, np.float64).reshape(n, -1)
    if labels.ndim == 2 and labels.dtype.kind in "iu":
        from tbn.data.toycar import auc

        if inputs is None:
            raise UsageError("an anomaly detector's score needs the inputs it reconstructs")
        errors = np.mean((y - np.asarray(inputs, np.float64).reshape(n, -1)) ** 2, axis=1)
        return "auc", auc(errors, labels)
    if labels.dtype.kind == "f":
        return "rmse", float(np.sqrt(np.mean((y - labels.reshape(n, -1)) ** 2)))
    pred = y.argmax(axis=1) if y.shape[1] > 1 else y[:, 0]
    return "accuracy", float(np.mean(pred == labels))


def check_batch(x: np.ndarray, program: Any, source: str) -> None:
    """Refuse a batch whose items are not one model input each (the first axis counts inputs)."""
    want = tuple(program.tensors[0].shape)
    if x.ndim == 0 or math.prod(x.shape[1:]) != math.prod(want):
        raise UsageError(f"{source} holds an array of shape {x.shape}; the model takes a batch of inputs "
                         f"of shape {want}, so give an array of shape (N, {', '.join(map(str, want))})")
