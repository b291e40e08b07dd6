"""Run inputs on a device exactly as the host reference would, and compare the two.

Inputs are prepared (quantised for int8 models) by the reference interpreter, so the
device receives the very bytes the reference runs on; outputs are compared the way the
golden vectors are (:mod:`tbn.parity`): int8 bit-exact, f32 within a tolerance.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tbn.device.link import DeviceLink
from tbn.errors import UsageError
from tbn.format import Program, load
from tbn.parity import output_error, within
from tbn.runtime import EngineBase, Interpreter, output_as_float
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


class DeviceRunner(EngineBase):
    """Runs one input at a time on ``link``'s active model, beside the reference for ``program``:
    the ``device`` engine of :mod:`tbn.engines` (``run``), and the parity check of ``tbn infer``
    (``compare``)."""

    name = "device"

    @classmethod
    def open(cls, model: str | os.PathLike | bytes, board: str | None = None, port: str | None = None,
             **device: Any) -> DeviceRunner:
        """The engine interface's constructor: boot ``board`` (or reach ``port``) with ``model``
        active, as :func:`tbn.device.session.open_device` does with the same options; the
        device is released by :meth:`close`."""
        from tbn.device.session import open_device

        stack = ExitStack()
        try:
            if isinstance(model, bytes | bytearray):
                folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tbn-device-")))
                (folder / "model.tbn").write_bytes(model)
                model = folder / "model.tbn"
            link = stack.enter_context(open_device(board, port, Path(model), **device))
            runner = cls(link, load(model))
        except BaseException:
            stack.close()
            raise
        runner._stack = stack
        return runner

    def __init__(self, link: DeviceLink, program: Program) -> None:
        self.link = link
        self.program = program
        self._stack: ExitStack | None = None  # what open() started: the device, its emulator
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

    def _infer(self, x1: np.ndarray) -> tuple[np.ndarray, int]:
        """One prepared input on the device: (output as stored, cost)."""
        got = self.link.infer(np.ascontiguousarray(x1))
        out = np.frombuffer(got.output, dtype=self._out_dtype)
        if out.size != int(np.prod(self._out_shape)):
            raise UsageError(
                f"the device returned {len(got.output)} output bytes, the model's output is "
                f"{self._out_shape} {self._out_dtype.__name__}: is the device running another model?"
            )
        return out.reshape(self._out_shape), got.cost

    def run(self, x: np.ndarray) -> np.ndarray:
        """One input or a batch, one inference each on the device; the outputs as stored."""
        xs, batched = self.reference.prepare(x)
        ys = np.stack([self._infer(xi)[0] for xi in xs])
        return ys if batched else ys[0]

    def close(self) -> None:
        """End what :meth:`open` started (the link, the emulator); a runner made on a link the
        caller holds leaves it open."""
        if self._stack is not None:
            self._stack.close()

    def compare(self, x: np.ndarray) -> Result:
        """One input on the device and in the reference: ``x`` as the model takes it (float;
        quantised here for int8 models)."""
        x1 = self._one(x)
        ref = self.reference.run(x1)  # already prepared: quantised once
        out, cost = self._infer(x1)
        return Result(
            out,
            output_as_float(self.program, out),
            ref,
            output_as_float(self.program, ref),
            cost,
            output_error(out, ref),
        )
