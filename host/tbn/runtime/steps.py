"""How far an INT8 file is from its F32 twin, op by op: the measure of "within a quantisation
step of the float model run through the same quantisation"."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tbn.format import DType, Op, Operation, Program
from tbn.format.spec import OP_LAYOUTS, OPS, Trait, has
from tbn.runtime.interpreter import Interpreter, output_as_float
from tbn.runtime.kernels import KERNELS


def int8_op_steps(f32: Program, int8: Program, x: np.ndarray,
                  values: dict[int, np.ndarray] | None = None) -> list[int]:
    """Per op, the most quantisation steps by which the INT8 file's output differs from the
    F32 file's same op run on the INT8 op's own (dequantised) inputs and then quantised as
    the INT8 file quantises it. Both files must come from one model: the same kernel family
    op by op (an F32 vector's SOFTMAX is INT8's SOFTMAX_AXIS)."""
    if [OPS[op.opcode].kernel for op in f32.ops] != [OPS[op.opcode].kernel for op in int8.ops]:
        raise ValueError("the F32 and INT8 files hold different ops; compile both from one model")
    if values is None:  # every tensor of the INT8 file on x, by id
        _, values = Interpreter(int8).run(x, keep=True)
    steps = []
    for fop, qop in zip(f32.ops, int8.ops, strict=True):
        real = []
        for name in OP_LAYOUTS[qop.opcode].inputs:
            t = int8.tensors[qop.args[name]]
            q = values[qop.args[name]].astype(np.float64)
            real.append(((q - t.zero_point) * t.scale).astype(np.float32))
        y = KERNELS[fop.opcode](f32, fop, *real).astype(np.float64)
        out = int8.tensors[qop.args["output"]]
        want = np.clip(np.rint(y / out.scale) + out.zero_point, out.qmin, out.qmax) if out.scale else y
        got = values[qop.args["output"]].astype(np.int64).reshape(want.shape)
        steps.append(int(np.abs(got - want).max(initial=0)))
    return steps


class QuantisationWarning(UserWarning):
    """An INT8 op further from its F32 twin than :func:`step_bound` quantisation steps."""


# An op further than this from its F32 twin (quantisation steps of its output) is worth a
# warning: table ops and rescalings round once, so a correct op is at most 1 step away.
STEP_BOUND = 1


@dataclass(frozen=True)
class Agreement:
    """An INT8 file against its F32 twin on a batch: ``top1`` (the share of inputs whose
    largest output is the same one; None for a single output), ``error`` (the largest output
    difference over the F32 outputs' largest magnitude) and ``far`` (``(op index, opcode
    name, steps)`` of each op past its :func:`step_bound`)."""

    n: int
    top1: float | None
    error: float
    far: tuple[tuple[int, str, int], ...]


def agreement(f32: Program, int8: Program, x: np.ndarray) -> Agreement:
    """How far ``int8`` is from ``f32`` on the inputs ``x`` (see :class:`Agreement`)."""
    want = Interpreter(f32).run(x).reshape(len(x), -1).astype(np.float64)
    out, values = Interpreter(int8).run(x, keep=True)
    got = output_as_float(int8, out).reshape(len(x), -1).astype(np.float64)
    top1 = float(np.mean(got.argmax(1) == want.argmax(1))) if want.shape[1] > 1 else None
    error = float(np.abs(got - want).max() / (np.abs(want).max() or 1.0))
    steps = int8_op_steps(f32, int8, x, values)
    far = tuple((i, Op(op.opcode).name, s) for i, (op, s) in enumerate(zip(int8.ops, steps, strict=True))
                if s > step_bound(int8, op))
    return Agreement(len(x), top1, error, far)


def step_bound(prog: Program, op: Operation) -> int:
    """How far a correct INT8 op may be from its F32 op: STEP_BOUND, plus for a weighted op
    half its largest requantisation factor (its integer bias rounds at the accumulator's
    resolution, ``s_x * scale``, which a factor above 1 spreads over that many output steps)."""
    if not has(op.opcode, Trait.WEIGHTED):
        return STEP_BOUND
    v = prog.scales[op.args["scale"]]
    if v.dtype == DType.RQ16:
        factor = float(np.abs(v.data.astype(np.float64)).max()) * 2.0 ** -(v.pre_shift + v.shift)
    else:
        rq = v.data.reshape(-1, 2).astype(np.float64)
        factor = float((np.abs(rq[:, 0]) * 2.0 ** -rq[:, 1]).max())
    return STEP_BOUND + math.ceil(factor / 2)
