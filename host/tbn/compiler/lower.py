"""Compiler stage 3, lower: folded nodes to a :class:`Program`'s tensors and ops, choosing
each layer's scale and bias vectors and, given calibrated ranges, quantising to INT8. Each
kernel family has one lowering (the table at the end); the memory plan is the next stage."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tbn.compiler.eltwise import ACTS, ElementwiseLowerings
from tbn.compiler.graph import Kind, Node, TbnCompileError
from tbn.compiler.params import ParamWriter
from tbn.compiler.quant import BIAS_LIMIT, relu6_qmax
from tbn.compiler.token_lowerings import TokenLowerings
from tbn.compiler.weights import layer_vectors, per_output
from tbn.format import Act, DType, Flag, Op, Operation, Program, Tensor
from tbn.format.narrow import narrow_bias
from tbn.format.spec import (
    DTYPE_SIZE,
    KERNELS,
    LUT_MIN_ROWS,
    LUT_MIN_ROWS_CONV,
    LUT_MIN_ROWS_INT8,
    NONE_ID,
    OPS,
    Trait,
    has,
    lut_planned_size,
    lut_rows,
    value_bound,
)
from tbn.format.validate import weight_count


@dataclass
class _Emitter(ElementwiseLowerings, TokenLowerings, ParamWriter):
    """The program being built, and the per-family lowerings that append to it."""

    quant: dict[str, tuple[float, int]] | None
    narrow: bool  # per-output parameters in their narrow form where tbn.format.narrow allows
    one_d: set[str]
    lookup_tables: bool
    dense_per_tensor: bool = False
    prog: Program = field(init=False)
    tid: dict[str, int] = field(default_factory=dict)
    torch_shape: dict[str, tuple[int, ...]] = field(default_factory=dict)  # each value's, batch aside

    def __post_init__(self) -> None:
        self.prog = Program(flags=int(Flag.INT8) if self.int8 else 0)

    @property
    def int8(self) -> bool:
        return self.quant is not None

    def shape_of(self, n: Node) -> tuple[int, ...]:
        if (n.output in self.one_d or n.attrs.get("conv1d")) and len(n.shape) == 2:
            return (n.shape[0], 1, n.shape[1])
        return n.shape or (1,)

    def tensor(self, n: Node, dtype: DType | None = None, like: Tensor | None = None) -> int:
        """A new tensor for ``n``'s output; INT8 parameters from calibration, or copied from
        ``like`` (ops that keep their input's quantisation), narrowed by a fused activation."""
        dtype = dtype or (DType.I8 if self.int8 else DType.F32)
        t = Tensor(dtype, self.shape_of(n))
        if self.quant is not None and dtype == DType.I8:
            if like is not None:
                t.scale, t.zero_point, t.qmin, t.qmax = like.scale, like.zero_point, like.qmin, like.qmax
            else:
                t.scale, t.zero_point = self.quant[n.output]
                t.qmin = -128
            if n.act in ("relu", "relu6"):
                t.qmin = max(t.qmin, t.zero_point)
            if n.act == "relu6":
                t.qmax = min(t.qmax, relu6_qmax(t.scale, t.zero_point))
        self.prog.tensors.append(t)
        self.tid[n.output] = len(self.prog.tensors) - 1
        self.torch_shape[n.output] = n.shape
        return self.tid[n.output]

    def same_quant(self, n: Node, src: Tensor, dtype: DType | None = None) -> int:
        return self.tensor(n, dtype, like=src if self.int8 else None)

    def op(self, code: Op, act: Act, args: dict[str, int]) -> None:
        self.prog.ops.append(Operation(code, act, args))

    def affine(self, act: Act, inp: int, out: int, g: np.ndarray, h: np.ndarray) -> None:
        self.op(Op.AFFINE, act, {"input": inp, "output": out, "scale": self.float_scale(g),
                                 "bias": self.float_bias(h)})

    # ---- per-family lowerings (the table below): (node, input tensor ids) -> ops appended -------

    def matmul(self, n: Node, ins: list[int]) -> None:
        v = layer_vectors(n, self.dense_per_tensor)
        act = ACTS[n.act]
        if v["affine"] is not None and self.int8:
            raise TbnCompileError(f"{n.where}: BatchNorm after a tiled layer whose p does not divide "
                                  f"its outputs cannot be folded, which INT8 needs; use p dividing "
                                  f"the outputs or alpha='single'")
        if v["affine"] is not None:  # the matmul writes a temporary; AFFINE (+ act) follows
            out = self.tensor(Node(n.kind, n.inputs, n.output + "/pre_bn", n.shape, n.where,
                                   {"conv1d": n.attrs.get("conv1d")}))
        else:
            out = self.tensor(n)
        args: dict[str, int] = {"input": ins[0], "output": out, "bias": NONE_ID}
        o = n.attrs["module"].weight.shape[0]
        if self.int8 and v["bias"] is not None:
            _fit_biases(n, v, o, self.prog.tensors[ins[0]].scale)
        if "tile" in v:
            args["tile"] = self.prog.add_tile(*v["tile"])
        else:
            args["weight"] = self.prog.add_dense(v["dense"])
        if self.int8:
            self._int8_vectors(n, v, o, self.prog.tensors[ins[0]], self.prog.tensors[out], args)
        else:
            args["scale"] = self.float_scale(v["scale"])
            if v["bias"] is not None:
                args["bias"] = self.float_bias(v["bias"])
        if has(n.kind, Trait.CONV):
            args.update(n.attrs["geom"])
        op = Operation(n.kind, act if v["affine"] is None else Act.NONE, args)
        if "tile" in v and self.lookup_tables:
            self._scratch(op)
        self.prog.ops.append(op)
        if v["affine"] is not None:
            self.affine(act, out, self.tensor(n), *v["affine"])

    def _scratch(self, op: Operation) -> None:
        """A scratch tensor for the table kernel, where the cost model says it pays."""
        _, k = weight_count(self.prog, op)
        rows = lut_rows(k, self.prog.tiles[op.args["tile"]].n_bits, op.args.get("groups", 1))
        conv = has(op.opcode, Trait.CONV)
        if rows < (LUT_MIN_ROWS_CONV if conv else LUT_MIN_ROWS_INT8 if self.int8 else LUT_MIN_ROWS):
            return
        dtype = DType.I8 if self.int8 else DType.F32
        out = self.prog.tensors[op.args["output"]].shape
        positions = out[1] * out[2] if conv else int(np.prod(out[:-1], dtype=np.int64))  # or tokens
        count = lut_planned_size(rows, k, conv, self.int8, positions) // DTYPE_SIZE[dtype]
        if count > 0xFFFF:  # a 1-D tensor holds at most 65535 entries: use the direct kernel
            return
        t = Tensor(dtype, (count,))
        if self.int8:
            t.scale, t.zero_point, t.qmin = 1.0, 0, -128
        self.prog.tensors.append(t)
        op.args["scratch"] = len(self.prog.tensors) - 1

    def _int8_vectors(self, n: Node, v: dict[str, Any], o: int, src: Tensor, dst: Tensor,
                      args: dict[str, int]) -> None:
        """Requantisation and integer biases of an INT8 matmul (narrow where they hold)."""
        if len(v["scale"]) not in (1, o) and o % len(v["scale"]) != 0:
            raise TbnCompileError(f"{n.where}: INT8 needs one scale per output; p must divide "
                                  f"the outputs (or use alpha='single')")
        sigma = per_output(v["scale"], o) if len(v["scale"]) != 1 else v["scale"]
        if "dense" in v:  # a row of zero weights outputs its bias alone, right at any scale: the
            # output's rounds that bias to half a step (1.0 rounded it to the input's, many steps)
            zero = ~v["dense"].reshape(o, -1).any(axis=1)
            if zero.all() or (zero.any() and len(sigma) == o):
                sigma = np.where(zero[: len(sigma)], dst.scale / src.scale, sigma)
        real = src.scale * sigma / dst.scale
        peak = 0
        if v["bias"] is not None:
            denom = src.scale * np.broadcast_to(sigma, (o,))
            bq = np.where(denom != 0, np.rint(v["bias"] / np.where(denom != 0, denom, 1.0)), 0)
            bq = np.clip(bq, -BIAS_LIMIT, BIAS_LIMIT).astype(np.int64)
            peak = int(np.abs(bq).max())
            narrow = narrow_bias(bq) if self.narrow else None
            args["bias"] = (self.prog.add_bias(DType.I16, narrow) if isinstance(narrow, np.ndarray)
                            else self.prog.add_bias(DType.I32, bq.astype(np.int32)))
        # the bound tbn.format.validate.accumulator_bound checks, from the weights at hand
        wsum = np.abs(v["dense"].astype(np.int64)).reshape(o, -1).sum(axis=1).max() if "dense" in v \
            else n.attrs["module"].weight.numel() // o
        args["scale"] = self.requant(real, value_bound(int(wsum), src.zero_point, peak), n.where)


def _fit_biases(n: Node, v: dict[str, Any], o: int, src_scale: float) -> None:
    """Outputs whose bias is past BIAS_LIMIT steps of ``src_scale * scale`` (a BatchNorm with
    gamma near 0 makes such a channel a constant): a dense layer's row becomes zeros with a
    scale at which the bias fits, as its weights' part is below the bias' rounding anyway; a
    tiled layer's rows share the tile, so that is a named error."""
    sigma = per_output(v["scale"], o) if len(v["scale"]) != 1 else np.full(o, v["scale"][0])
    need = np.abs(v["bias"]) / (BIAS_LIMIT // 2 * src_scale)  # the scale at which |bias| is 2^29 steps
    over = np.abs(sigma) < need
    if not over.any():
        return
    if "tile" in v:
        raise TbnCompileError(f"{n.where}: {int(over.sum())} outputs have a bias over 2^30 steps of their "
                              f"tiny scale (a BatchNorm with gamma near 0?), which INT8 cannot hold; keep "
                              f"this layer dense (keep_dense) or retrain")
    v["dense"] = v["dense"].copy()
    v["dense"][over.nonzero()[0]] = 0
    v["scale"] = np.where(over, need, sigma)


# each kernel family's lowering: (emitter, node, input tensor ids) -> ops appended
_LOWER: dict[str, Callable[[_Emitter, Node, list[int]], None]] = {
    "matmul": _Emitter.matmul, "pool": _Emitter.pool, "global_avgpool": _Emitter.pool,
    "reshape": _Emitter.pool, "add": _Emitter.add, "activation": _Emitter.activation,
    "softmax": _Emitter.softmax, "argmax": _Emitter.argmax, "affine": _Emitter.bn_affine,
    "unary": _Emitter.unary, "mul": _Emitter.mul, "concat": _Emitter.concat, "layernorm": _Emitter.layernorm,
    "transpose": _Emitter.transpose, "batch_matmul": _Emitter.batch_matmul, "upsample": _Emitter.upsample,
    "pad": _Emitter.pad}
assert set(_LOWER) == set(KERNELS), "a kernel family of tbn.format.spec has no lowering"


_ELEMENTWISE = {"activation", "add", "affine", "mul", "unary"}


def _one_d(nodes: list[Node]) -> set[str]:
    """The (C, L) values stored as (C, 1, L): a 1-D conv's or pool's input and output, and the
    values an elementwise op of that one shape joins to them (a ReLU before a Conv1d)."""
    one = {v for n in nodes if n.attrs.get("conv1d") for v in (n.inputs[0], n.output)}
    shape = {n.output: n.shape for n in nodes}
    joins = [{n.output, *n.inputs} for n in nodes
             if isinstance(n.kind, Op) and OPS[n.kind].kernel in _ELEMENTWISE
             and len(n.shape) == 2 and all(shape.get(i) == n.shape for i in n.inputs)]
    grown = True
    while grown:
        grown = False
        for values in joins:
            if values & one and not values <= one:
                one |= values
                grown = True
    return one


def lower(nodes: list[Node], quant: dict[str, tuple[float, int]] | None = None,
          narrow: bool = True, lookup_tables: bool = True,
          dense_per_tensor: bool = False) -> tuple[Program, dict[str, int]]:
    """The program of ``nodes``, its memory not yet planned; with ``quant`` (value name ->
    calibrated (scale, zero point)) an INT8 program, else F32. ``lookup_tables``: give tiled
    ops a scratch tensor for the table kernel where it pays; ``dense_per_tensor``: see
    :func:`tbn.compiler.weights.layer_vectors`. Also returns each value's tensor id."""
    e = _Emitter(quant, narrow, _one_d(nodes), lookup_tables, dense_per_tensor)
    for n in nodes:
        if n.kind == Kind.INPUT:
            e.tensor(n)
        elif n.kind != Kind.OUTPUT:
            if not isinstance(n.kind, Op):
                raise TbnCompileError(f"{n.where}: internal: no lowering for {n.kind}")
            _LOWER[OPS[n.kind].kernel](e, n, [e.tid[i] for i in n.inputs])
    prog = e.prog
    final = e.tid[nodes[-1].inputs[0]]
    if not prog.ops or prog.ops[-1].args["output"] != final:
        raise TbnCompileError("the model's output must be the result of its last operation")
    return prog, e.tid
