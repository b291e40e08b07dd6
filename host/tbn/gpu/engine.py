"""Run a whole ``.tbn`` on a CUDA GPU: ``tbn run --engine cuda``.

Tiled linear and conv ops run on the kernels of kernels_gpu/ (tile reuse: the distinct
rows once, then scaled per repetition); the other ops (pooling, add, softmax, ...) are a
few lines of torch on the GPU following the reference interpreter op by op. Activations
are float32, float16 or bfloat16 (``dtype``) between ops, accumulation always float32.
INT8 files run with exact integer arithmetic (int32 sums, the spec's requantisation in
int64), so they match the reference bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tbn.errors import UsageError
from tbn.format import Program, read
from tbn.format.expr import evaluate
from tbn.format.program import Operation, Vector
from tbn.format.spec import (
    KERNELS,
    LAYERNORM_FRAC,
    LAYERNORM_RECIP_SHIFT,
    NONE_ID,
    OP_LAYOUTS,
    OPS,
    Act,
    DType,
    Op,
    Trait,
    f32_of_bits,
    has,
)
from tbn.format.validate import token_linear, weight_count
from tbn.gpu.kernels import Kernels
from tbn.gpu.plan import TiledPlan, is_tiled, plan_tiled, tile_words
from tbn.runtime import EngineBase, Interpreter
from tbn.runtime.kernels import NUMPY_OF, pad_value, unary_parameter, weight_matrix

DTYPES = ("float32", "float16", "bfloat16")


class CudaEngine(EngineBase):
    """Same inputs and outputs as :class:`tbn.runtime.Interpreter.run` (output as stored); the
    ``cuda`` engine of :mod:`tbn.engines`."""

    name = "cuda"

    def __init__(
        self,
        model: Program | bytes,
        dtype: str = "float32",
        route: str = "auto",
        kernels: Kernels | None = None,
    ) -> None:
        if dtype not in DTYPES:
            raise UsageError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        self.program = model if isinstance(model, Program) else read(model)
        self.kernels = kernels or Kernels()
        self.torch = self.kernels.torch
        self.dtype = getattr(self.torch, dtype) if not self.program.int8 else self.torch.float32
        self.route = route
        self.reference = Interpreter(self.program)  # input preparation, shapes
        refuse(self.program)
        # each op's method, looked up once (FAMILIES, below the class), not per op per run
        self._methods = [getattr(self, FAMILIES[OPS[op.opcode].kernel]) for op in self.program.ops]
        self._layers: dict[int, dict[str, Any]] = {}
        for i, op in enumerate(self.program.ops):
            if has(op.opcode, Trait.WEIGHTED):
                self._layers[i] = self._upload(op)
            elif OPS[op.opcode].kernel == "unary" and self.program.int8:
                self._layers[i] = {"table": self._gpu(self.program.dense[op.args["table"]].astype(np.int64))}
            elif op.opcode == Op.SOFTMAX_AXIS and self.program.int8:
                table = self.program.dense[op.args["table"]].view("<u2").astype(np.int64)
                self._layers[i] = {"table": self._gpu(table)}
            elif op.opcode == Op.LAYERNORM:
                bias, numeric = op.args["bias"], np.int64 if self.program.int8 else np.float64
                self._layers[i] = {
                    "scale": self._gpu(self.program.scales[op.args["scale"]].data.astype(numeric)),
                    "bias": None if bias == NONE_ID else self._gpu(
                        self.program.biases[bias].data.astype(numeric)),
                }
            elif op.opcode == Op.AFFINE:
                bias = op.args["bias"]
                self._layers[i] = {
                    "scale": self._gpu(self.program.scales[op.args["scale"]].data.astype(np.float64)),
                    "bias": None
                    if bias == NONE_ID
                    else self._gpu(self.program.biases[bias].data.astype(np.float64)),
                }

    # ---- constants, uploaded once -----------------------------------------------------------
    def _gpu(self, a: np.ndarray, dtype: Any = None) -> Any:
        return self.torch.as_tensor(np.ascontiguousarray(a), device="cuda", dtype=dtype)

    def _upload(self, op: Operation) -> dict[str, Any]:
        prog, torch = self.program, self.torch
        scale = prog.scales[op.args["scale"]]
        bias_id = op.args["bias"]
        layer: dict[str, Any] = {}
        if prog.int8:
            layer["requant"] = self._requant_params(scale, weight_count(prog, op)[0])
            layer["bias"] = (
                None if bias_id == NONE_ID else self._gpu(prog.biases[bias_id].data.astype(np.int64))
            )
        else:
            layer["scale"] = self._gpu(scale.data.astype(np.float32))
            layer["bias"] = (
                None if bias_id == NONE_ID else self._gpu(prog.biases[bias_id].data.astype(np.float32))
            )
        if is_tiled(op):
            plan = plan_tiled(prog, op)
            tile = prog.tiles[op.args["tile"]]
            layer["plan"] = plan
            layer["tile"] = self._gpu(tile_words(tile.bits, tile.n_bits).view(np.int32))
            layer["signs"] = {}
            if plan.dense_fallback:
                w, _ = weight_matrix(prog, op)  # the scale is folded into w here
                layer["dense"] = self._gpu(w, torch.float64)
        else:
            w, per_out = weight_matrix(prog, op)
            layer["dense"] = self._gpu(w, torch.float64)
            layer["per_out"] = None if per_out is None else self._gpu(per_out, torch.float64)
        return layer

    # ---- running ----------------------------------------------------------------------------
    def run(self, x: np.ndarray) -> np.ndarray:
        """One input or a batch; returns the output tensor as stored (numpy, on the host)."""
        torch, prog = self.torch, self.program
        xs, batched = self.reference.prepare(x)
        values = {0: self._gpu(xs, torch.int64 if prog.int8 else self.dtype)}
        with torch.no_grad():
            for i, op in enumerate(prog.ops):
                a = op.args
                ins = [values[a[n]] for n in OP_LAYOUTS[op.opcode].inputs]
                values[a["output"]] = self._methods[i](i, op, *ins)
        y = values[prog.output]
        out_t = prog.tensors[prog.output]
        y = y.to(torch.float32) if out_t.dtype.name == "F32" else y
        ys = y.cpu().numpy().astype(NUMPY_OF[out_t.dtype]).reshape(len(xs), *out_t.shape)
        return ys if batched else ys[0]

    def _act(self, y: Any, act: Act) -> Any:
        if act == Act.RELU:
            return y.clamp_min(0)
        if act == Act.RELU6:
            return y.clamp(0, 6)
        return y

    def _clamp_q(self, v: Any, tensor_id: int) -> Any:
        t = self.program.tensors[tensor_id]
        return (t.zero_point + v).clamp(t.qmin, t.qmax)

    def _requant_params(self, scale: Vector, count: int) -> tuple[int, Any, Any]:
        """(pre-shift, multipliers, shifts) of ``count`` outputs: REQUANT has no pre-shift."""
        if scale.dtype == DType.RQ16:
            mult = np.broadcast_to(scale.data.astype(np.int64), (count,))
            shift = np.full(count, scale.shift, dtype=np.int64)
            return scale.pre_shift, self._gpu(mult.copy()), self._gpu(shift)
        rq = np.broadcast_to(scale.data.astype(np.int64).reshape(-1, 2), (count, 2))
        return 0, self._gpu(rq[:, 0].copy()), self._gpu(rq[:, 1].copy())

    def _rescale(self, v: Any, pre: int, mult: Any, shift: Any) -> Any:
        """rshift_round(rshift_round(v, pre) * M, S) in int64 (docs/bytecode.md, INT8 semantics)."""
        if pre:
            v = (v + (1 << (pre - 1))) >> pre
        half = self.torch.where(
            shift > 0, self.torch.ones_like(shift) << (shift - 1).clamp_min(0), self.torch.zeros_like(shift)
        )
        return (v * mult + half) >> shift

    # ---- one method per kernel family of tbn.format.spec (the table below the class) --------
    def _matmul(self, i: int, op: Operation, x: Any) -> Any:
        if token_linear(self.program, op):  # one row per token
            out = self.program.tensors[op.args["output"]]
            k = self.program.tensors[op.args["input"]].shape[-1]
            y = self._linear_or_conv(self._layers[i], op, x.reshape(-1, k), (out.shape[-1],))
            return y.reshape(x.shape[0], *out.shape)
        return self._linear_or_conv(self._layers[i], op, x)

    def _layernorm(self, i: int, op: Operation, x: Any) -> Any:
        """As tbn.runtime.kernels.layernorm (INT8 in int64, its integer square root exact)."""
        prog, torch, a = self.program, self.torch, op.args
        src = prog.tensors[a["input"]]
        scale, bias = self._layers[i]["scale"], self._layers[i]["bias"]
        if not prog.int8:
            eps = f32_of_bits(a["eps"])
            v = x.double()
            var = v.var(-1, unbiased=False, keepdim=True)
            y = (v - v.mean(-1, keepdim=True)) / torch.sqrt(var + eps) * scale
            return (y if bias is None else y + bias).to(self.dtype)
        c = src.shape[-1]
        d = x - src.zero_point
        s1 = d.sum(-1, keepdim=True)
        big = c * (d * d).sum(-1, keepdim=True) - s1 * s1 + a["eps"]
        e = torch.frexp(big.double())[1].long()
        m = (62 - (e - ((torch.ones_like(e) << (e - 1)) > big).long())) // 2
        w = big << (2 * m)
        r = torch.sqrt(w.double()).long()
        r = torch.where(r * r > w, r - 1, r)
        r = torch.where((r + 1) * (r + 1) <= w, r + 1, r)
        inv = (1 << LAYERNORM_RECIP_SHIFT) // r
        sh = LAYERNORM_RECIP_SHIFT - LAYERNORM_FRAC - m
        u = ((c * d - s1) * inv + (torch.ones_like(sh) << (sh - 1))) >> sh
        acc = u * scale[:, 0] + (0 if bias is None else bias)
        return self._clamp_q(self._rescale(acc, 0, 1, scale[:, 1]), a["output"])

    def _transpose(self, i: int, op: Operation, x: Any) -> Any:
        rank = x.ndim - 1
        return x.permute(0, *(1 + op.args[f"perm{k}"] for k in range(rank))).contiguous()

    def _batch_matmul(self, i: int, op: Operation, xa: Any, xb: Any) -> Any:
        prog, a = self.program, op.args
        if prog.int8:
            va = (xa - prog.tensors[a["a"]].zero_point).double()
            vb = (xb - prog.tensors[a["b"]].zero_point).double()
        else:
            va, vb = xa.double(), xb.double()
        va = va.transpose(-1, -2) if a["ta"] else va
        vb = vb.transpose(-1, -2) if a["tb"] else vb
        y = va @ vb  # float64 holds every INT8 sum exactly (prepare bounds it by 2^31)
        if prog.int8:
            pre, mult, shift = self._requant_params(prog.scales[a["scale"]], 1)
            return self._clamp_q(self._rescale(y.round().long(), pre, mult[0], shift[0]), a["output"])
        if a["scale"] != NONE_ID:
            y = y * float(prog.scales[a["scale"]].data.astype(np.float64)[0])
        return self._act(y, op.act).to(self.dtype)

    def _pad(self, i: int, op: Operation, x: Any) -> Any:
        a = op.args
        return self.torch.nn.functional.pad(x, (a["pl"], a["pr"], a["pt"], a["pb"]),
                                            value=pad_value(self.program, op))

    def _upsample(self, i: int, op: Operation, x: Any) -> Any:
        sh, sw = op.args["sh"], op.args["sw"]
        if op.opcode == Op.UPSAMPLE_NEAREST:
            return x.repeat_interleave(sh, dim=2).repeat_interleave(sw, dim=3)
        n, c, h, w = x.shape
        fill = self.program.tensors[op.args["input"]].zero_point if self.program.int8 else 0
        out = self.torch.full((n, c, h * sh, w * sw), fill, dtype=x.dtype, device=x.device)
        out[:, :, ::sh, ::sw] = x
        return out

    def _add(self, i: int, op: Operation, xa: Any, xb: Any) -> Any:
        prog, a = self.program, op.args
        if not prog.int8:
            return self._act(xa.double() + xb.double(), op.act).to(self.dtype)
        za, zb = prog.tensors[a["a"]].zero_point, prog.tensors[a["b"]].zero_point
        pre, mult, shift = self._requant_params(prog.scales[a["scale"]], 2)
        v = self._rescale(xa - za, pre, mult[0], shift[0]) + self._rescale(xb - zb, pre, mult[1], shift[1])
        return self._clamp_q(v, a["output"])

    def _mul(self, i: int, op: Operation, xa: Any, xb: Any) -> Any:
        prog, a = self.program, op.args
        if not prog.int8:
            return self._act(xa.double() * xb.double(), op.act).to(self.dtype)
        za, zb = prog.tensors[a["a"]].zero_point, prog.tensors[a["b"]].zero_point
        pre, mult, shift = self._requant_params(prog.scales[a["scale"]], 1)
        return self._clamp_q(self._rescale((xa - za) * (xb - zb), pre, mult[0], shift[0]), a["output"])

    def _concat(self, i: int, op: Operation, xa: Any, xb: Any) -> Any:
        prog, a = self.program, op.args
        if not prog.int8:
            return self.torch.cat([xa, xb], dim=1 + a["axis"])
        pre, mult, shift = self._requant_params(prog.scales[a["scale"]], 2)
        parts = [self._clamp_q(self._rescale(x - prog.tensors[a[k]].zero_point, pre, mult[j], shift[j]),
                               a["output"]) for j, (x, k) in enumerate(((xa, "a"), (xb, "b")))]
        return self.torch.cat(parts, dim=1 + a["axis"])

    def _pool(self, i: int, op: Operation, x: Any) -> Any:
        prog, f = self.program, self.torch.nn.functional
        a = op.args
        out, src = prog.tensors[a["output"]], prog.tensors[a["input"]]
        pad = (a["pl"], a["pr"], a["pt"], a["pb"])
        k, s = (a["kh"], a["kw"]), (a["sh"], a["sw"])
        if op.opcode == Op.MAXPOOL2D:
            xf = x.double() if prog.int8 else x.float()
            low = -128.0 if prog.int8 else float("-inf")
            y = f.max_pool2d(f.pad(xf, pad, value=low), k, s)
            return y.long() if prog.int8 else y.to(self.dtype)
        cnt = a["kh"] * a["kw"]
        if prog.int8:
            padded = f.pad(x.double(), pad, value=float(src.zero_point))
            total = (f.avg_pool2d(padded, k, s) * cnt).round().long()
            return ((2 * total + cnt) // (2 * cnt)).clamp(out.qmin, out.qmax)
        return f.avg_pool2d(f.pad(x.double(), pad, value=0.0), k, s).to(self.dtype)

    def _global_avgpool(self, i: int, op: Operation, x: Any) -> Any:
        out = self.program.tensors[op.args["output"]]
        n = x.shape[0]
        flat = x.reshape(n, x.shape[1], -1)
        hw = flat.shape[2]
        if self.program.int8:
            y = ((2 * flat.sum(dim=2) + hw) // (2 * hw)).clamp(out.qmin, out.qmax)
        else:
            y = flat.double().mean(dim=2).to(self.dtype)
        return y.reshape(n, *out.shape)

    def _reshape(self, i: int, op: Operation, x: Any) -> Any:
        return x.reshape(x.shape[0], *self.program.tensors[op.args["output"]].shape)

    def _activation(self, i: int, op: Operation, x: Any) -> Any:
        if self.program.int8:
            out = self.program.tensors[op.args["output"]]
            return x.clamp(out.qmin, out.qmax)
        return self._act(x.double(), op.act).to(self.dtype)

    def _softmax(self, i: int, op: Operation, x: Any) -> Any:
        """As tbn.runtime.kernels.softmax: over all elements, or along ``axis``; INT8 in integers."""
        if op.opcode == Op.SOFTMAX:
            flat = x.double().reshape(x.shape[0], -1)
            return self.torch.softmax(flat, dim=1).reshape(x.shape).to(self.dtype)
        axis = 1 + op.args["axis"]
        if not self.program.int8:
            return self.torch.softmax(x.double(), dim=axis).to(self.dtype)
        e = self._layers[i]["table"][x.amax(dim=axis, keepdim=True) - x]
        total = e.sum(dim=axis, keepdim=True)
        return ((e * 256 + total // 2) // total - 128).clamp(max=127)

    def _argmax(self, i: int, op: Operation, x: Any) -> Any:
        n = x.shape[0]
        return x.reshape(n, -1).float().argmax(dim=1).reshape(n, 1)

    def _unary(self, i: int, op: Operation, x: Any) -> Any:
        if self.program.int8:
            return self._layers[i]["table"][x + 128]
        return evaluate(OPS[op.opcode].fn, x.double(), self.torch, unary_parameter(op)).to(self.dtype)

    def _affine(self, i: int, op: Operation, x: Any) -> Any:
        s, bias = self._layers[i]["scale"], self._layers[i]["bias"]
        shape = (1, -1) + (1,) * (x.ndim - 2)
        y = x.double() * (s.reshape(shape) if s.numel() > 1 else s[0])
        if bias is not None:
            y = y + bias.reshape(shape)
        return self._act(y, op.act).to(self.dtype)

    def _linear_or_conv(self, layer: dict[str, Any], op: Operation, x: Any,
                        out_shape: tuple[int, ...] | None = None) -> Any:
        prog, torch = self.program, self.torch
        a = op.args
        out = prog.tensors[a["output"]]
        out_shape = out_shape or out.shape
        src = prog.tensors[a["input"]]
        n = x.shape[0]
        conv = has(op.opcode, Trait.CONV)
        plan: TiledPlan | None = layer.get("plan")
        if prog.int8:
            xi = (x - src.zero_point).to(torch.int32)
            if plan is not None:
                if conv:
                    sums = self.kernels.conv2d_raw(xi, layer["tile"], plan, a, out.shape[1:])
                else:
                    sums = self.kernels.linear_raw(xi.reshape(n, -1), layer["tile"], plan)
                reps = plan.out_features // plan.distinct
                acc = sums.long().repeat(1, reps, *([1] * (sums.ndim - 2)))  # output o reads sums[o % D]
            else:
                acc = self._dense(layer, op, xi.double(), conv).round().long()
            shape = (1, -1) + (1,) * (acc.ndim - 2)
            if layer["bias"] is not None:
                acc = acc + layer["bias"].reshape(shape)
            pre, mult, shift = layer["requant"]
            y = self._clamp_q(self._rescale(acc, pre, mult.reshape(shape), shift.reshape(shape)), a["output"])
            return y.reshape(n, *out_shape)
        if plan is not None and not plan.dense_fallback:
            act = int(op.act)
            if conv:
                return self.kernels.conv2d(
                    x.to(self.dtype),
                    layer["tile"],
                    plan,
                    a,
                    out.shape[1:],
                    layer["scale"],
                    layer["bias"],
                    act,
                )
            y = self.kernels.linear(
                x.reshape(n, -1).to(self.dtype).contiguous(),
                layer["tile"],
                plan,
                layer["scale"],
                layer["bias"],
                act,
                self.route,
                layer["signs"],
            )
            return y.reshape(n, *out_shape)
        y = self._dense(layer, op, x.double(), conv)
        shape = (1, -1) + (1,) * (y.ndim - 2)
        if layer.get("per_out") is not None:
            y = y * layer["per_out"].reshape(shape)
        if layer["bias"] is not None:
            y = y + layer["bias"].double().reshape(shape)
        return self._act(y, op.act).to(self.dtype)

    def _dense(self, layer: dict[str, Any], op: Operation, x: Any, conv: bool) -> Any:
        """Float64 matmul/conv with a dense (O, K) weight (exact for INT8 operands)."""
        w = layer["dense"]
        n = x.shape[0]
        if not conv:
            return x.reshape(n, -1) @ w.t()
        a = op.args
        o = w.shape[0]
        c = x.shape[1]
        w4 = w.reshape(o, c // a["groups"], a["kh"], a["kw"])
        xp = self.torch.nn.functional.pad(x, (a["pl"], a["pr"], a["pt"], a["pb"]))
        return self.torch.nn.functional.conv2d(
            xp, w4, stride=(a["sh"], a["sw"]), dilation=(a["dh"], a["dw"]), groups=a["groups"]
        )


# Each kernel family of tbn.format.spec: the CudaEngine method that runs it, or why the engine
# refuses it (a model with such an op is refused when the engine is made, naming the op).
FAMILIES: dict[str, str] = {"matmul": "_matmul", "pool": "_pool", "global_avgpool": "_global_avgpool",
                            "reshape": "_reshape", "add": "_add", "activation": "_activation",
                            "softmax": "_softmax", "argmax": "_argmax", "affine": "_affine",
                            "unary": "_unary", "mul": "_mul", "concat": "_concat",
                            "layernorm": "_layernorm", "transpose": "_transpose",
                            "batch_matmul": "_batch_matmul", "upsample": "_upsample", "pad": "_pad"}
REFUSED: dict[str, str] = {}
assert set(FAMILIES) | set(REFUSED) == set(KERNELS), \
    f"kernel families with no CUDA method or refusal: {sorted(set(KERNELS) - set(FAMILIES) - set(REFUSED))}"
assert all(callable(getattr(CudaEngine, m, None)) for m in FAMILIES.values())


def refuse(program: Program) -> None:
    """Refuse a program with an op of a family the CUDA engine does not run, naming it."""
    for i, op in enumerate(program.ops):
        why = REFUSED.get(OPS[op.opcode].kernel)
        if why is not None:
            raise UsageError(f"op {i} ({op.opcode.name}) has no CUDA kernel: {why}; run the model with "
                             f"--engine reference or --engine c")
