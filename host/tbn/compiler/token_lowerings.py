"""Compiler stage 3, lower: the lowerings of the token and layout families (LayerNorm,
transpose, matrix products of two activations, nearest upsampling) and of reductions over
any axes, mixed into :mod:`tbn.compiler.lower`'s emitter like
:mod:`tbn.compiler.eltwise`'s."""

from __future__ import annotations

from typing import Any

import numpy as np

from tbn.compiler.eltwise import ACTS
from tbn.compiler.geometry import MAX_WINDOW, max_windows
from tbn.compiler.graph import Node, TbnCompileError
from tbn.compiler.quant import layernorm_params
from tbn.format import Act, DType, Op
from tbn.format.spec import MAX_DIMS, NONE_ID, batch_matmul_bound, bits_of_f32
from tbn.runtime.interpreter import quantize


class TokenLowerings:
    """Per-family lowerings: (node, input tensor ids) -> ops appended to ``self.prog``."""

    prog: Any
    int8: bool
    tid: dict[str, int]
    torch_shape: dict[str, tuple[int, ...]]

    def operand(self, n: Node, k: int, ins: list[int]) -> int:
        """Input ``k`` in the shape PyTorch gives it: a (C, W) value stored as the (C, 1, W)
        map a 1-D convolution reads gets a RESHAPE (free: it aliases)."""
        name, t = n.inputs[k], self.prog.tensors[ins[k]]
        want = self.torch_shape.get(name, t.shape) or (1,)
        if t.shape == want:
            return ins[k]
        out = self.same_quant(Node(Op.RESHAPE, [name], f"{name}/as{want}", want, n.where), t)
        self.op(Op.RESHAPE, Act.NONE, {"input": ins[k], "output": out})
        return out

    def written(self, n: Node, like: Any = None) -> tuple[int, Node | None]:
        """The tensor an op of ``n`` writes in PyTorch's shape: ``n``'s own, or, where ``n``'s value
        is stored as the (C, 1, W) map a 1-D convolution reads, one that :meth:`settle` reshapes."""
        if self.shape_of(n) == (n.shape or (1,)):
            return (self.same_quant(n, like) if like is not None else self.tensor(n)), None
        tmp = Node(n.kind, n.inputs, n.output + "/flat", n.shape, n.where, n.attrs, n.act)
        return (self.same_quant(tmp, like) if like is not None else self.tensor(tmp)), tmp

    def settle(self, n: Node, tmp: Node | None) -> None:
        if tmp is not None:
            src = self.tid[tmp.output]
            out = self.same_quant(n, self.prog.tensors[src])
            self.op(Op.RESHAPE, Act.NONE, {"input": src, "output": out})

    def layernorm(self, n: Node, ins: list[int]) -> None:
        m = n.attrs["module"]
        src_id = self.operand(n, 0, ins)
        out, tmp = self.written(n)
        src, dst = self.prog.tensors[src_id], self.prog.tensors[out]
        c = src.shape[-1]
        gamma = np.ones(c) if m.weight is None else m.weight.detach().double().numpy()
        beta = None if m.bias is None else m.bias.detach().double().numpy()
        args = {"input": src_id, "output": out, "bias": NONE_ID}
        if self.int8:
            try:
                rq, bias, e = layernorm_params(gamma, np.zeros(c) if beta is None else beta, m.eps,
                                               src.scale, dst.scale)
            except ValueError as err:
                raise TbnCompileError(f"{n.where}: cannot run with INT8 activations: {err}") from None
            args.update(scale=self.prog.add_scale(DType.REQUANT, rq), eps=e)
            if beta is not None:
                args["bias"] = self.prog.add_bias(DType.I32, bias)
        else:
            args.update(scale=self.float_scale(gamma if m.weight is not None else np.ones(1)),
                        eps=bits_of_f32(m.eps))
            if beta is not None:
                args["bias"] = self.float_bias(beta)
        self.op(Op.LAYERNORM, Act.NONE, args)
        self.settle(n, tmp)

    def transpose(self, n: Node, ins: list[int]) -> None:
        src = self.operand(n, 0, ins)
        out, tmp = self.written(n, self.prog.tensors[src])
        self._permute(src, n.attrs["perm"], out)
        self.settle(n, tmp)

    def _permute(self, src: int, perm: list[int], out: int) -> None:
        full = [*perm, *range(len(perm), MAX_DIMS)]
        perm_args = {f"perm{k}": p for k, p in enumerate(full)}
        self.op(Op.TRANSPOSE, Act.NONE, {"input": src, "output": out, **perm_args})

    def batch_matmul(self, n: Node, ins: list[int]) -> None:
        a, b = self.operand(n, 0, ins), self.operand(n, 1, ins)
        ta, tb = (self.prog.tensors[t] for t in (a, b))
        if len(ta.shape) != len(tb.shape) or len(ta.shape) < 2 or ta.shape[:-2] != tb.shape[:-2]:
            raise TbnCompileError(f"{n.where}: a matrix product of {ta.shape} and {tb.shape}; tbn multiplies "
                                  "operands of one rank (2 to 4) with equal batch axes, no broadcasting")
        out, tmp = self.written(n)
        factor = float(n.attrs.get("factor", 1.0))
        args = {"a": a, "b": b, "output": out, "scale": NONE_ID, "ta": n.attrs.get("ta", 0),
                "tb": n.attrs.get("tb", 0)}
        if self.int8:
            k = ta.shape[-2] if args["ta"] else ta.shape[-1]
            real = np.array([ta.scale * tb.scale * factor / self.prog.tensors[out].scale])
            args["scale"] = self.requant(real, batch_matmul_bound(ta.zero_point, tb.zero_point, k), n.where)
        elif factor != 1.0:
            args["scale"] = self.float_scale(np.array([factor]))
        self.op(Op.BATCH_MATMUL, ACTS[n.act], args)
        self.settle(n, tmp)

    def pad(self, n: Node, ins: list[int]) -> None:
        """PAD: its value as the file holds it (INT8: quantised with the input's parameters,
        -inf the lowest int8)."""
        src = self.prog.tensors[ins[0]]
        value = n.attrs["value"]
        bits = int(quantize(value, src.scale, src.zero_point)) & 0xFF if self.int8 else bits_of_f32(value)
        pads = {k: n.attrs[k] for k in ("pt", "pl", "pb", "pr")}
        self.op(Op.PAD, Act.NONE, {"input": ins[0], "output": self.same_quant(n, src), **pads, "value": bits})

    def upsample(self, n: Node, ins: list[int]) -> None:
        out = self.same_quant(n, self.prog.tensors[ins[0]])
        self.op(n.kind, Act.NONE, {"input": ins[0], "output": out, "sh": n.attrs["sh"], "sw": n.attrs["sw"]})

    def reduce(self, n: Node, ins: list[int]) -> None:
        """``mean``/``amax`` over ``axes``: those axes moved last (TRANSPOSE), the value seen as a
        (rest, 1, R) map, a global average pool or a (1, R) max pool, and the result reshaped."""
        src_id = self.operand(n, 0, ins)
        src = self.prog.tensors[src_id]
        axes, shape = n.attrs["axes"], src.shape
        keep = [d for d in range(len(shape)) if d not in axes]
        rest, r = int(np.prod([shape[d] for d in keep])), int(np.prod([shape[d] for d in axes]))
        if n.kind == Op.MAXPOOL2D and max_windows(r) is None:
            raise TbnCompileError(f"{n.where}: a max over {r} values: {r} has a prime factor past "
                                  f"{MAX_WINDOW}, one pool window's limit, so no chain of pools covers it")
        cur = src_id
        if keep + axes != list(range(len(shape))):
            moved = tuple(shape[d] for d in (*keep, *axes))
            cur = self.same_quant(Node(Op.TRANSPOSE, n.inputs, n.output + "/moved", moved, n.where), src)
            self._permute(src_id, keep + axes, cur)
        cur = self._reshaped(n, cur, (rest, 1, r), "/rows")
        pooled_shape = (rest,) if n.kind == Op.GLOBAL_AVGPOOL else (rest, 1, 1)
        geom = {"kh": 1, "kw": r, "sh": 1, "sw": r, "pt": 0, "pl": 0, "pb": 0, "pr": 0}
        pool = Node(n.kind, n.inputs, n.output + "/pooled", pooled_shape, n.where, geom)
        if n.kind == Op.MAXPOOL2D and r > MAX_WINDOW:
            self.max_chain(pool, cur)
            pooled = self.tid[pool.output]
        else:
            pooled = self.same_quant(pool, src)
            window = geom if n.kind == Op.MAXPOOL2D else {}
            self.op(n.kind, Act.NONE, {"input": cur, "output": pooled, **window})
        out = self.same_quant(n, src)
        self.op(Op.RESHAPE, Act.NONE, {"input": pooled, "output": out})

    def _reshaped(self, n: Node, tid: int, shape: tuple[int, ...], tag: str) -> int:
        node = Node(Op.RESHAPE, n.inputs, n.output + tag, shape, n.where)
        out = self.same_quant(node, self.prog.tensors[tid])
        self.op(Op.RESHAPE, Act.NONE, {"input": tid, "output": out})
        return out
