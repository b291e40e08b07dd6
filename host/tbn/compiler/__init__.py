"""``tbn.compile_model``: a trained PyTorch model to ``.tbn`` bytecode.

The stages, one module each, called in this order by :func:`compile_program`:

1. ``capture``: torch.fx tracing with shape propagation, each operation classified as the
   spec's op it becomes (``classify``; the nodes are ``graph.Node``);
2. ``fold``: BatchNorm folded into the layer before it, ReLU/ReLU6 fused, flattens dropped;
3. ``lower``: the program's tensors and ops, each layer's vectors from ``weights``. INT8
   lowers the F32 program first, runs it in the reference interpreter on the calibration
   batch to measure every value's range (``quant``), and lowers again with those ranges;
4. ``memory``: the static memory plan, once, on the program returned;
5. write: :func:`tbn.format.serialize` (in :func:`compile_model`).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import nn

from tbn.compiler.capture import capture
from tbn.compiler.fold import fold_and_fuse
from tbn.compiler.graph import TbnCompileError
from tbn.compiler.lower import lower
from tbn.compiler.memory import plan_memory
from tbn.compiler.quant import quant_params
from tbn.format import Program, serialize
from tbn.runtime import Interpreter

__all__ = ["TbnCompileError", "compile_model", "compile_program"]


def compile_program(model: nn.Module, example_input: torch.Tensor,
                    activations: Literal["f32", "int8"] = "f32",
                    calibration: np.ndarray | torch.Tensor | None = None,
                    params: Literal["auto", "wide"] = "auto", lookup_tables: bool = True,
                    dense_weights: Literal["per_output", "per_tensor"] = "per_output") -> Program:
    """Like :func:`compile_model`, returning the decoded :class:`Program`."""
    if dense_weights not in ("per_output", "per_tensor"):
        raise TbnCompileError(f"dense_weights={dense_weights!r} is not 'per_output' or 'per_tensor'")
    per_tensor = dense_weights == "per_tensor"
    if activations not in ("f32", "int8"):
        raise TbnCompileError(f"activations={activations!r} is not 'f32' or 'int8'")
    if params not in ("auto", "wide"):
        raise TbnCompileError(f"params={params!r} is not 'auto' or 'wide'")
    if is_keras_model(model):
        model, example_input, calibration = _from_keras(model, example_input, calibration)
    was_training = model.training
    try:
        nodes = fold_and_fuse(capture(model, example_input))
    finally:
        model.train(was_training)
    if activations == "int8" and calibration is None:
        raise TbnCompileError("activations='int8' needs calibration data: a batch of typical inputs")
    options = {"narrow": params == "auto", "lookup_tables": lookup_tables, "dense_per_tensor": per_tensor}
    program, tid = lower(nodes, **options)
    if activations == "int8":
        program, _ = lower(nodes, quant=_calibrate(program, tid, calibration), **options)
    plan_memory(program)
    return program


def _calibrate(program: Program, tid: dict[str, int],
               calibration: np.ndarray | torch.Tensor) -> dict[str, tuple[float, int]]:
    """Each float value's INT8 (scale, zero point), from its range when the F32 ``program``
    runs the calibration batch in the reference interpreter."""
    calib = np.asarray(calibration.detach().cpu() if isinstance(calibration, torch.Tensor) else calibration,
                       dtype=np.float32)
    _, values = Interpreter(program).run(calib, keep=True)
    return {name: quant_params(values[t].min(), values[t].max())
            for name, t in tid.items() if values[t].dtype == np.float32}


def is_keras_model(model: object) -> bool:
    """Whether ``model`` is a Keras model (without importing Keras when it is not)."""
    return any(c.__module__.split(".")[0] == "keras" for c in type(model).__mro__)


def _from_keras(model: object, example_input: object,
                calibration: object) -> tuple[nn.Module, torch.Tensor, object]:
    """A Keras model as its PyTorch graph (tbn.keras.to_torch), with channels-last example
    and calibration batches turned channels-first as the graph reads them."""
    from tbn.keras import channels_first, to_torch

    calib = None if calibration is None else channels_first(calibration)
    return to_torch(model), torch.from_numpy(channels_first(example_input)), calib


def compile_model(model: nn.Module, example_input: torch.Tensor,
                  activations: Literal["f32", "int8"] = "f32",
                  calibration: np.ndarray | torch.Tensor | None = None,
                  params: Literal["auto", "wide"] = "auto", lookup_tables: bool = True,
                  dense_weights: Literal["per_output", "per_tensor"] = "per_output") -> bytes:
    """Compile ``model`` to ``.tbn`` bytes.

    ``example_input`` fixes the input shape (a batch; the batch axis is not part of the
    model). ``activations="int8"`` quantises activations per tensor, calibrated on
    ``calibration`` (a batch of inputs). Raises :class:`TbnCompileError` naming any
    operation that cannot be compiled and where it is. ``lookup_tables=False`` keeps every
    tiled op on the direct kernel (no scratch in the arena); by default ops whose tile rows
    are shared widely enough get a scratch tensor for the faster table kernel. Layers kept
    dense store int8 weights with one scale per output row, or with ``dense_weights=
    "per_tensor"`` one for the whole matrix, as TFLite Micro's per-tensor quantisation does.
    ``params="auto"`` stores each layer's per-output scales and biases in the narrowest form
    that holds them within tolerance (int16 requantisation and biases, float16; see
    :mod:`tbn.format.narrow`); ``"wide"`` keeps int32 pairs, int32 and float32 everywhere.

    ``model`` may also be a built Keras 3 model (``pip install 'tbn[tf]'``; docs/keras.md):
    its example and calibration batches are channels-last as Keras reads them, and the
    compiled model reads channels-first ``(C, H, W)`` inputs, as every ``.tbn`` does.
    """
    return serialize(compile_program(model, example_input, activations, calibration, params, lookup_tables,
                                     dense_weights))
