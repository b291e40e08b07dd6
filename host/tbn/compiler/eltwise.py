"""Compiler stage 3, lower: the lowerings of the kernel families without weights (pooling,
elementwise, softmax, argmax), mixed into :mod:`tbn.compiler.lower`'s emitter, which gives
them ``prog``, ``int8``, ``tensor``, ``same_quant``, ``op``, ``affine`` and ``requant``."""

from __future__ import annotations

from typing import Any

import numpy as np

from tbn.compiler.geometry import MAX_WINDOW, max_windows
from tbn.compiler.graph import Node, TbnCompileError
from tbn.compiler.quant import softmax_table, unary_table
from tbn.format import Act, DType, Op
from tbn.format.spec import (
    NONE_ID,
    OPS,
    SOFTMAX_OUT_SCALE,
    SOFTMAX_OUT_ZERO,
    add_bound,
    bits_of_f32,
    mul_bound,
)

ACTS = {"none": Act.NONE, "relu": Act.RELU, "relu6": Act.RELU6}


class ElementwiseLowerings:
    """Per-family lowerings: (node, input tensor ids) -> ops appended to ``self.prog``."""

    prog: Any
    int8: bool
    tid: dict[str, int]

    def pool(self, n: Node, ins: list[int]) -> None:
        if "axes" in n.attrs:  # mean/amax over axes other than a map's spatial ones
            self.reduce(n, ins)
            return
        if n.kind == Op.MAXPOOL2D and len(n.shape) == 1:  # amax without keepdim: (C, 1, 1), then (C,)
            self.pool(Node(n.kind, n.inputs, n.output + "/pool", (*n.shape, 1, 1), n.where, n.attrs), ins)
            src = self.tid[n.output + "/pool"]
            out = self.same_quant(n, self.prog.tensors[src])
            self.op(Op.RESHAPE, Act.NONE, {"input": src, "output": out})
            return
        if n.kind == Op.MAXPOOL2D and max(n.attrs["kh"], n.attrs["kw"]) > MAX_WINDOW:
            self.max_chain(n, ins[0])
            return
        out = self.same_quant(n, self.prog.tensors[ins[0]])
        geom = {k: n.attrs[k] for k in OPS[n.kind].layout.names[2:]}  # a window's geometry, if any
        self.op(n.kind, Act.NONE, {"input": ins[0], "output": out, **geom})

    def max_chain(self, n: Node, src: int) -> None:
        """A global max pool (window = the whole map, no padding) past one window's side limit,
        as successive max pools of at most 255 a side: PointNet's max over 1,024 points."""
        kh, kw = n.attrs["kh"], n.attrs["kw"]
        hs, ws = max_windows(kh), max_windows(kw)
        if hs is None or ws is None or (n.attrs["sh"], n.attrs["sw"]) != (kh, kw) \
                or any(n.attrs[k] for k in ("pt", "pb", "pl", "pr")):
            raise TbnCompileError(f"{n.where}: a {kh}x{kw} max pool window: past {MAX_WINDOW} a side only a "
                                  "global max pool (no padding) is lowered, as a chain of smaller ones")
        steps = max(len(hs), len(ws))
        hs, ws = hs + [1] * (steps - len(hs)), ws + [1] * (steps - len(ws))
        c, h, w = self.prog.tensors[src].shape
        cur = src
        for i, (a, b) in enumerate(zip(hs, ws, strict=True)):
            h, w = h // a, w // b
            last = i == steps - 1
            step = n if last else Node(Op.MAXPOOL2D, n.inputs, f"{n.output}/max{i}", (c, h, w), n.where)
            out = self.same_quant(step, self.prog.tensors[cur])
            self.op(Op.MAXPOOL2D, Act.NONE, {"input": cur, "output": out, "kh": a, "kw": b, "sh": a, "sw": b,
                                             "pt": 0, "pb": 0, "pl": 0, "pr": 0})
            cur = out

    def activation(self, n: Node, ins: list[int]) -> None:
        out = self.same_quant(Node(n.kind, n.inputs, n.output, n.shape, n.where, act=n.attrs["act"]),
                              self.prog.tensors[ins[0]])
        self.op(Op.ACTIVATION, ACTS[n.attrs["act"]], {"input": ins[0], "output": out})

    def add(self, n: Node, ins: list[int]) -> None:
        out = self.tensor(n)
        args = {"a": ins[0], "b": ins[1], "output": out, "scale": NONE_ID}
        if self.int8:
            a, b, dst = (self.prog.tensors[t] for t in (ins[0], ins[1], out))
            args["scale"] = self.requant(np.array([a.scale / dst.scale, b.scale / dst.scale]),
                                         add_bound(a.zero_point, b.zero_point), n.where)
        self.op(Op.ADD, ACTS[n.act], args)

    def mul(self, n: Node, ins: list[int]) -> None:
        """MUL, the smaller operand (a gate) as ``b``, broadcast over ``a``."""
        ta, tb = (self.prog.tensors[t] for t in ins)
        if ta.numel < tb.numel:
            ins, ta, tb = ins[::-1], tb, ta
        if len(ta.shape) != len(tb.shape) or any(b not in (1, a) for a, b in zip(ta.shape, tb.shape)):  # noqa: B905
            raise TbnCompileError(f"{n.where}: multiplies shapes {ta.shape} and {tb.shape}; tbn "
                                  "broadcasts an operand each of whose axes is the other's or 1 (view a "
                                  "gate as (C, 1, 1))")
        out = self.tensor(n)
        args = {"a": ins[0], "b": ins[1], "output": out, "scale": NONE_ID}
        if self.int8:
            real = np.array([ta.scale * tb.scale / self.prog.tensors[out].scale])
            args["scale"] = self.requant(real, mul_bound(ta.zero_point, tb.zero_point), n.where)
        self.op(Op.MUL, ACTS[n.act], args)

    def concat(self, n: Node, ins: list[int]) -> None:
        """CONCAT along ``dim``, two inputs at a time; the parts between take the output's
        quantisation, so only each input's own rescaling rounds."""
        rank = len(n.shape)
        axis = n.attrs["dim"] % (rank + 1) - 1  # without the batch axis
        if axis < 0:
            raise TbnCompileError(f"{n.where}: concatenation along the batch axis")
        stored = axis + 1 if len(self.prog.tensors[ins[0]].shape) == rank + 1 and axis >= 1 else axis
        done, size = ins[0], self.prog.tensors[ins[0]].shape[stored]
        for k, nxt in enumerate(ins[1:], start=2):
            size += self.prog.tensors[nxt].shape[stored]
            shape = (*n.shape[:axis], size, *n.shape[axis + 1:])
            part = n if k == len(ins) else Node(n.kind, n.inputs, n.output, shape, n.where, n.attrs)
            out = self.tensor(part)
            args = {"a": done, "b": nxt, "output": out, "scale": NONE_ID, "axis": stored}
            if self.int8:
                ta, tb, dst = (self.prog.tensors[t] for t in (done, nxt, out))
                args["scale"] = self.requant(np.array([ta.scale / dst.scale, tb.scale / dst.scale]),
                                             add_bound(ta.zero_point, tb.zero_point), n.where)
            self.op(Op.CONCAT, Act.NONE, args)
            done = out

    def bn_affine(self, n: Node, ins: list[int]) -> None:
        if self.int8:
            raise TbnCompileError(f"{n.where}: a BatchNorm that does not follow a linear or conv "
                                  f"layer cannot run with INT8 activations")
        self.affine(ACTS[n.act], ins[0], self.tensor(n), n.attrs["g"], n.attrs["h"])

    def softmax(self, n: Node, ins: list[int]) -> None:
        """A vector's F32 softmax as SOFTMAX (format 2.0); any other as SOFTMAX_AXIS, whose
        INT8 output has the fixed quantisation of docs/bytecode.md and a table of exp."""
        src = self.prog.tensors[ins[0]]
        if not self.int8 and len(n.shape) == 1:
            self.op(Op.SOFTMAX, Act.NONE, {"input": ins[0], "output": self.tensor(n)})
            return
        out = self.tensor(n)
        axis = n.attrs["dim"] % (len(n.shape) + 1) - 1  # without the batch axis
        if len(src.shape) == len(n.shape) + 1 and axis >= 1:  # a 1-D map stored as (C, 1, W)
            axis += 1
        table = NONE_ID
        if self.int8:
            dst = self.prog.tensors[out]
            dst.scale, dst.zero_point, dst.qmin, dst.qmax = SOFTMAX_OUT_SCALE, SOFTMAX_OUT_ZERO, -128, 127
            table = self.prog.add_dense(softmax_table(src.scale))
        self.op(Op.SOFTMAX_AXIS, Act.NONE, {"input": ins[0], "output": out, "table": table, "axis": axis})

    def argmax(self, n: Node, ins: list[int]) -> None:
        out = self.tensor(Node(n.kind, n.inputs, n.output, (1,), n.where), dtype=DType.I32)
        self.op(Op.ARGMAX, Act.NONE, {"input": ins[0], "output": out})

    def unary(self, n: Node, ins: list[int]) -> None:
        """The op's function; INT8: its table, from the function and both tensors' parameters."""
        out = self.tensor(n)
        src, dst = self.prog.tensors[ins[0]], self.prog.tensors[out]
        a = np.float32(n.attrs.get("alpha", 0.0))  # the parameter as the file stores it
        table = self.prog.add_dense(unary_table(OPS[n.kind].fn, src, dst, float(a))) if self.int8 else NONE_ID
        args = {"input": ins[0], "output": out, "table": table}
        if "alpha" in OPS[n.kind].layout.names:
            args["alpha"] = bits_of_f32(a)
        self.op(n.kind, Act.NONE, args)
