"""The reference interpreter: runs a validated :class:`Program` on numpy arrays."""

from __future__ import annotations

import math
import os
import warnings
from typing import Any

import numpy as np

from tbn.errors import UsageError
from tbn.files import read_bounded
from tbn.format import Program, TbnFormatError, load, read
from tbn.format.spec import MAX_FILE_BYTES, OP_LAYOUTS, DType
from tbn.runtime import kernels

DEFAULT_MAX_ARENA = 256 << 20


def quantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """``clamp(rint(x / scale) + zero_point, -128, 127)`` as int8 (rint: half to even), the
    division in float32 as a microcontroller does it (the C runtime's tbn_quantize)."""
    with np.errstate(over="ignore"):  # beyond float32: clipped below
        q = np.rint(np.asarray(x, dtype=np.float32) / np.float32(scale)).astype(np.float64) + zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """``scale * (q - zero_point)`` as float32."""
    return (np.float32(scale) * (q.astype(np.float32) - np.float32(zero_point))).astype(np.float32)


def check_finite(x: np.ndarray) -> None:
    """Refuse an input holding NaN or infinity, naming where."""
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        bad = np.argwhere(~np.isfinite(x))[0]
        raise UsageError(f"input holds NaN or infinity (first at index {tuple(int(i) for i in bad)}): "
                         f"the model's outputs would be meaningless")


class InputWarning(UserWarning):
    """An input that runs but is probably not what the model was trained on."""


def input_warning(program: Program, x: np.ndarray) -> str | None:
    """Why ``x`` (batched, finite) looks wrong for ``program``, or None: raw 0-255 pixels
    where the model takes normalised values, or values an int8 input saturates."""
    raw = x.dtype.kind in "ui" and not (program.int8 and x.dtype == np.int8)
    if x.size and (raw or x.dtype.kind == "f"):
        lo, hi = float(x.min()), float(x.max())
        if lo >= 0 and 16 <= hi <= 255 and (raw or bool(np.all(x == np.round(x)))):
            return (f"the input holds whole numbers {lo:g}..{hi:g}: raw 0-255 pixels? tbn's models take "
                    "inputs normalised as in training, for MNIST (x / 255 - 0.1307) / 0.3081")
    if program.int8 and x.dtype != np.int8 and x.size:
        t = program.tensors[0]
        lo, hi = (-128 - t.zero_point) * t.scale, (127 - t.zero_point) * t.scale
        outside = float(np.mean((x < lo - t.scale) | (x > hi + t.scale)))
        if outside > 0.01:
            return (f"{outside:.0%} of the input values lie outside {lo:.3g}..{hi:.3g}, the range the "
                    "model's int8 input holds: they saturate; were they normalised as in training?")
    return None


class EngineBase:
    """What the engines of ``.tbn`` files share (:mod:`tbn.engines`): ``open`` takes a program,
    ``.tbn`` bytes or a path to them (read once, bounded), ``run_float`` dequantises ``run``'s
    outputs, and ``close`` releases nothing unless an engine holds something (a device)."""

    program: Program

    @classmethod
    def open(cls, model: Program | bytes | str | os.PathLike, **options: Any) -> Any:
        if not isinstance(model, Program | bytes | bytearray | memoryview):
            model = read_bounded(model, MAX_FILE_BYTES, "a .tbn model")
        return cls(model, **options)

    def run_float(self, x: np.ndarray) -> np.ndarray:
        """Like :meth:`run`, with INT8 outputs dequantised to float32."""
        return output_as_float(self.program, self.run(x))

    def close(self) -> None:
        """Nothing to release."""


CHUNK = 256  # inputs run together by Interpreter.run


class Interpreter(EngineBase):
    """Runs a ``.tbn`` program (bytes, a path, or a decoded :class:`Program`).

    ``run`` takes one input (the input tensor's shape) or a batch (a leading axis) of
    float32 values; INT8 models quantise them with the input tensor's parameters (or take
    int8 arrays as they are). It returns the output tensor as stored: float32, int8 or int32.
    It is the ``reference`` engine of :mod:`tbn.engines`.
    """

    name = "reference"

    def __init__(self, model: Program | bytes | str | os.PathLike,
                 max_arena_bytes: int = DEFAULT_MAX_ARENA) -> None:
        if isinstance(model, Program):
            self.program = model
        elif isinstance(model, bytes | bytearray | memoryview):
            self.program = read(model)
        else:
            self.program = load(model)
        if self.program.arena_size > max_arena_bytes:
            raise TbnFormatError(f"the model asks for a {self.program.arena_size}-byte arena, more "
                                 f"than the {max_arena_bytes} bytes allowed (max_arena_bytes)")

    @property
    def input(self):
        return self.program.tensors[0]

    @property
    def output(self):
        return self.program.tensors[self.program.output]

    def prepare(self, x: np.ndarray) -> tuple[np.ndarray, bool]:
        """Batch and type an input; returns (batched array, whether a batch was given).

        Accepted: the input's shape, a batch of it, or the same element layout under another
        shape (a 1-D convolution's ``(C, L)`` for its stored ``(C, 1, L)``)."""
        x = np.asarray(x)
        shape = self.input.shape
        numel = self.input.numel
        if x.shape == shape:
            x, batched = x[None], False
        elif len(shape) == 3 and shape[1] == 1 and x.shape == (shape[0], shape[2]):
            x, batched = x.reshape(1, *shape), False  # one (C, L), also where C = 1 reads as a batch
        elif x.shape[1:] == shape or (x.ndim > 1 and math.prod(x.shape[1:]) == numel):
            x, batched = x.reshape(x.shape[0], *shape), True
        elif x.size == numel:
            x, batched = x.reshape(1, *shape), False
        else:
            raise UsageError(f"input shape {x.shape} does not match the model's input {shape} "
                             f"(or a batch of it)")
        check_finite(x)
        warning = input_warning(self.program, x)
        if warning is not None:
            warnings.warn(warning, InputWarning, stacklevel=2)
        if self.program.int8 and x.dtype != np.int8:
            x = quantize(x, self.input.scale, self.input.zero_point)
        elif not self.program.int8:
            x = x.astype(np.float32)
        return x, batched

    def run(self, x: np.ndarray, keep: bool = False) -> np.ndarray | tuple[np.ndarray, dict[int, np.ndarray]]:
        """Run the model; with ``keep=True`` also return every tensor computed, by id. A batch
        runs :data:`CHUNK` inputs at a time (unless ``keep``), so a large one does not hold every
        intermediate value of every input at once (a convolution's unfolded windows of 10,000
        images are gigabytes)."""
        x0, batched = self.prepare(x)
        if keep or len(x0) <= CHUNK:
            out, values = self._ops(x0)
        else:
            out = np.concatenate([self._ops(x0[i:i + CHUNK])[0] for i in range(0, len(x0), CHUNK)])
        out = out if batched else out[0]
        return (out, values) if keep else out

    def _ops(self, x: np.ndarray) -> tuple[np.ndarray, dict[int, np.ndarray]]:
        """Every op on a prepared batch: the output, and every value by tensor id."""
        prog = self.program
        values: dict[int, np.ndarray] = {0: x}
        for op in prog.ops:
            a = op.args
            y = kernels.KERNELS[op.opcode](prog, op, *(values[a[n]] for n in OP_LAYOUTS[op.opcode].inputs))
            dtype = kernels.NUMPY_OF[prog.tensors[a["output"]].dtype]
            values[a["output"]] = y.astype(dtype, copy=False)
        return values[prog.output], values


def output_as_float(program: Program, y: np.ndarray) -> np.ndarray:
    """A model output as float32: INT8 outputs dequantised, others unchanged."""
    out = program.tensors[program.output]
    if program.int8 and out.dtype == DType.I8:
        return dequantize(y, out.scale, out.zero_point)
    return y
