"""Run inputs on a device exactly as the host reference would, and compare the two.

Inputs are prepared (quantised for int8 models) by the reference interpreter, so the
device receives the very bytes the reference runs on; outputs are compared the way the
golden vectors are (:mod:`tbn.parity`): int8 bit-exact, f32 within a tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tbn.device.link import DeviceLink
from tbn.errors import UsageError
from tbn.format import Program
from tbn.parity import output_error, within
from tbn.runtime import Interpreter, output_as_float
from tbn.runtime.kernels import NUMPY_OF


@dataclass(frozen=True)
class Result:
    output: np.ndarray  # as stored (int8 or float32)
    scores: np.ndarray  # as float
    reference: np.ndarray  # the reference's output, as stored
    reference_scores: np.ndarray
    cost: int
    error: float  # int8: max |difference|; f32: max |difference| / max |reference|

    @property
    def matches(self) -> bool:
        return within(self.error, self.output.dtype == np.int8)

    @property
    def predicted(self) -> int:
        return _predicted(self.scores)

    @property
    def reference_predicted(self) -> int:
        return _predicted(self.reference_scores)


def _predicted(scores: np.ndarray) -> int:
    """The class: argmax of the scores, or the value itself for a model that ends in argmax."""
    flat = scores.reshape(-1)
    return int(flat.argmax()) if flat.size > 1 else int(flat[0])


@dataclass(frozen=True)
class OpCost:
    """One op's share of an inference on the device."""

    index: int
    op: str
    output_shape: tuple[int, ...]
    cost: int


class DeviceRunner:
    """Runs one input at a time on ``link``'s active model, beside the reference for ``program``."""

    def __init__(self, link: DeviceLink, program: Program) -> None:
        self.link = link
        self.program = program
        self.reference = Interpreter(program)
        out = self.reference.output
        self._out_dtype = NUMPY_OF[out.dtype]
        self._out_shape = out.shape

    def _one(self, x: np.ndarray) -> np.ndarray:
        xs, batched = self.reference.prepare(x)
        if batched:
            raise UsageError(
                f"the device takes one input at a time, of shape {tuple(self.reference.input.shape)}; "
                f"got {x.shape}"
            )
        return xs[0]

    def profile(self, x: np.ndarray) -> list[OpCost]:
        """The device's cost of each op of one inference of ``x``, beside what the op is."""
        costs = self.link.profile(np.ascontiguousarray(self._one(x)))
        prog = self.program
        if len(costs) != len(prog.ops):
            raise UsageError(f"the device profiled {len(costs)} ops, the model has {len(prog.ops)}: "
                             f"is the device running another model?")
        return [OpCost(i, op.opcode.name, prog.tensors[op.args["output"]].shape, c)
                for i, (op, c) in enumerate(zip(prog.ops, costs, strict=True))]

    def run(self, x: np.ndarray) -> Result:
        """``x``: one input as the model takes it (float; quantised here for int8 models)."""
        x1 = self._one(x)
        ref = self.reference.run(x1)  # already prepared: quantised once
        got = self.link.infer(np.ascontiguousarray(x1))
        out = np.frombuffer(got.output, dtype=self._out_dtype)
        if out.size != int(np.prod(self._out_shape)):
            raise UsageError(
                f"the device returned {len(got.output)} output bytes, the model's output is "
                f"{self._out_shape} {self._out_dtype.__name__}: is the device running another model?"
            )
        out = out.reshape(self._out_shape)
        return Result(
            out,
            output_as_float(self.program, out),
            ref,
            output_as_float(self.program, ref),
            got.cost,
            output_error(out, ref),
        )
