"""How far an INT8 file is from its F32 twin, op by op: the measure of "within a quantisation
step of the float model run through the same quantisation"."""

from __future__ import annotations

import numpy as np

from tbn.format import Program
from tbn.format.spec import OP_LAYOUTS, OPS
from tbn.runtime.interpreter import Interpreter
from tbn.runtime.kernels import KERNELS


def int8_op_steps(f32: Program, int8: Program, x: np.ndarray) -> list[int]:
    """Per op, the most quantisation steps by which the INT8 file's output differs from the
    F32 file's same op run on the INT8 op's own (dequantised) inputs and then quantised as
    the INT8 file quantises it. Both files must come from one model: the same kernel family
    op by op (an F32 vector's SOFTMAX is INT8's SOFTMAX_AXIS)."""
    if [OPS[op.opcode].kernel for op in f32.ops] != [OPS[op.opcode].kernel for op in int8.ops]:
        raise ValueError("the F32 and INT8 files hold different ops; compile both from one model")
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
