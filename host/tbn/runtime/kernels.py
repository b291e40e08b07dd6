"""One function per op: the golden semantics of docs/bytecode.md, in numpy.

Every function takes batched arrays (a leading batch axis the format itself does not
have) and the decoded op. F32 ops compute in float64 and round to float32 once; INT8 ops
are exact integer arithmetic in int64, as the spec writes them.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tbn.format.bits import unpack_signs
from tbn.format.expr import evaluate
from tbn.format.program import Operation, Program, Tensor, Vector
from tbn.format.spec import KERNELS as FAMILIES
from tbn.format.spec import (
    LAYERNORM_FRAC,
    LAYERNORM_RECIP_SHIFT,
    NONE_ID,
    OPS,
    Act,
    DType,
    Op,
    ScaleMode,
    Trait,
    f32_of_bits,
    has,
    scale_mode,
)
from tbn.format.validate import token_linear, weight_count


def rshift_round(v: np.ndarray, shift: np.ndarray | int) -> np.ndarray:
    """``(v + 2^(shift-1)) >> shift`` (arithmetic), and ``v`` where ``shift`` is 0."""
    v = np.asarray(v, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    half = np.where(shift > 0, np.left_shift(np.int64(1), np.maximum(shift - 1, 0)), 0)
    return np.right_shift(v + half, shift)


def rescale(v: np.ndarray, scale: Vector, count: int, expand: tuple = (slice(None),)) -> np.ndarray:
    """The requantised value before the zero point: REQUANT ``rshift_round(v * M, S)``, RQ16
    ``rshift_round(rshift_round(v, pre_shift) * M, shift)``; ``v`` is int64, its axis 1 runs
    over the ``count`` entries (a one-entry vector broadcasts), ``expand`` indexes a vector of
    them to broadcast against ``v``'s trailing axes."""
    if scale.dtype == DType.RQ16:
        mult = np.broadcast_to(scale.data.astype(np.int64), (count,))[expand]
        return rshift_round(rshift_round(v, scale.pre_shift) * mult, scale.shift)
    rq = np.broadcast_to(scale.data.astype(np.int64), (count, 2))
    return rshift_round(v * rq[:, 0][expand], rq[:, 1][expand])


def requantize(acc: np.ndarray, scale: Vector, out: Tensor, expand: tuple = (slice(None),)) -> np.ndarray:
    """``clamp(zero_point + rescale(acc), qmin, qmax)`` as int8 (acc is int64, axis 1 outputs)."""
    v = rescale(acc, scale, acc.shape[1], expand)
    return np.clip(out.zero_point + v, out.qmin, out.qmax).astype(np.int8)


def _f32(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _activate(y: np.ndarray, act: Act) -> np.ndarray:
    if act == Act.RELU:
        return np.maximum(y, 0.0)
    if act == Act.RELU6:
        return np.clip(y, 0.0, 6.0)
    return y


def weight_matrix(prog: Program, op: Operation) -> tuple[np.ndarray, np.ndarray | None]:
    """The (O, K) weight of a linear/conv op and its per-output scale (None if folded in).

    Tiled: ``w[c, k] = sigma(f) * t[f mod T]`` with ``f = c*K + k``; sigma is the scale
    vector's value for output ``c`` (count O), repetition ``f div T`` (count p) or the one
    value (count 1). INT8 files: ``w`` is the tile's +1/-1 or the dense int8 weights, and
    the scale is the REQUANT vector, returned separately.
    """
    o, k = weight_count(prog, op)
    a = op.args
    if has(op.opcode, Trait.TILED):
        tile = prog.tiles[a["tile"]]
        p = o * k // tile.n_bits
        w = np.tile(unpack_signs(tile.bits, tile.n_bits), p).astype(np.float64)
    else:
        w = prog.dense[a["weight"]].astype(np.float64)
        p = 1
    scale = prog.scales[a["scale"]]
    if prog.int8:
        return w.reshape(o, k), None
    s = scale.data.astype(np.float64)
    mode = scale_mode(scale.count, o, p)
    if mode == ScaleMode.PER_OUTPUT:
        return w.reshape(o, k), s
    if mode == ScaleMode.PER_REPETITION:
        w = w * np.repeat(s, w.size // p)
        return w.reshape(o, k), None
    return w.reshape(o, k) * s[0], None


def _bias(prog: Program, op: Operation) -> np.ndarray | None:
    ref = op.args["bias"]
    return None if ref == NONE_ID else prog.biases[ref].data.astype(np.float64 if not prog.int8 else np.int64)


def _im2col(x: np.ndarray, a: dict[str, int], pad_value: float | int) -> np.ndarray:
    """(N, C, Ho, Wo, kh, kw) windows of x (N, C, H, W) with padding and dilation."""
    xp = np.pad(x, ((0, 0), (0, 0), (a["pt"], a["pb"]), (a["pl"], a["pr"])), constant_values=pad_value)
    kh, kw, dh, dw = a["kh"], a["kw"], a.get("dh", 1), a.get("dw", 1)
    win = sliding_window_view(xp, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3))
    return win[:, :, ::a["sh"], ::a["sw"], ::dh, ::dw]


def _matmul_op(prog: Program, op: Operation, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Linear or conv with the (O, K) weight ``w``: (N, ...) -> (N, O[, Ho, Wo]) as float64
    (F32) or int64 accumulators."""
    a = op.args
    src = prog.tensors[a["input"]]
    n = x.shape[0]
    xin = x.astype(np.int64) - src.zero_point if prog.int8 else _f32(x)
    w = w.astype(np.int64) if prog.int8 else w
    if not has(op.opcode, Trait.CONV):
        return xin.reshape(n, -1) @ w.T
    g = a["groups"]
    cols = _im2col(xin, a, 0)  # INT8: padded entries are the zero point, i.e. 0 after offset
    _, c, ho, wo, kh, kw = cols.shape
    o = w.shape[0]
    cols = cols.reshape(n, g, c // g, ho, wo, kh, kw)
    wg = w.reshape(g, o // g, c // g, kh, kw)
    y = np.einsum("ngchwij,gocij->ngohw", cols, wg, optimize=True)
    return y.reshape(n, o, ho, wo)


def matmul(prog: Program, op: Operation, x: np.ndarray) -> np.ndarray:
    """Tiled or dense, linear or conv (the ``matmul`` family); a linear op over tokens maps
    each ``(K,)`` row of its ``(.., K)`` input alike."""
    if token_linear(prog, op):
        rows = x.reshape(-1, prog.tensors[op.args["input"]].shape[-1])
        return _matmul_rows(prog, op, rows).reshape(len(x), *prog.tensors[op.args["output"]].shape)
    return _matmul_rows(prog, op, x)


def _matmul_rows(prog: Program, op: Operation, x: np.ndarray) -> np.ndarray:
    w, per_out = weight_matrix(prog, op)
    acc = _matmul_op(prog, op, x, w)
    out = prog.tensors[op.args["output"]]
    bias = _bias(prog, op)
    expand = (slice(None),) + (None,) * (acc.ndim - 2)
    if prog.int8:
        if bias is not None:
            acc = acc + bias[expand]
        return requantize(acc, prog.scales[op.args["scale"]], out, expand)
    if per_out is not None:
        acc = acc * per_out[expand]
    if bias is not None:
        acc = acc + bias[expand]
    return _activate(acc, op.act).astype(np.float32)


def pool(prog: Program, op: Operation, x: np.ndarray) -> np.ndarray:
    a = op.args
    src = prog.tensors[a["input"]]
    if op.opcode == Op.MAXPOOL2D:
        low = np.iinfo(np.int8).min if prog.int8 else -np.inf
        cols = _im2col(x.astype(np.float64) if not prog.int8 else x.astype(np.int64), a, low)
        y = cols.max(axis=(-2, -1))
        return y.astype(np.int8 if prog.int8 else np.float32)
    n = a["kh"] * a["kw"]
    if prog.int8:
        s = _im2col(x.astype(np.int64), a, src.zero_point).sum(axis=(-2, -1))
        out = prog.tensors[a["output"]]
        return np.clip((2 * s + n) // (2 * n), out.qmin, out.qmax).astype(np.int8)
    return (_im2col(_f32(x), a, 0.0).sum(axis=(-2, -1)) / n).astype(np.float32)


def global_avgpool(prog: Program, op: Operation, x: np.ndarray) -> np.ndarray:
    out = prog.tensors[op.args["output"]]
    nb, c = x.shape[0], x.shape[1]
    flat = x.reshape(nb, c, -1)
    hw = flat.shape[2]
    if prog.int8:
        s = flat.astype(np.int64).sum(axis=2)
        y = np.clip((2 * s + hw) // (2 * hw), out.qmin, out.qmax).astype(np.int8)
    else:
        y = (_f32(flat).sum(axis=2) / hw).astype(np.float32)
    return y.reshape(nb, *out.shape)


def reshape(prog: Program, op: Operation, x: np.ndarray) -> np.ndarray:
    return x.reshape(x.shape[0], *prog.tensors[op.args["output"]].shape).copy()


def add(prog: Program, op: Operation, xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
    a, b, out = (prog.tensors[op.args[k]] for k in ("a", "b", "output"))
    if prog.int8:
        both = np.stack([xa.astype(np.int64) - a.zero_point, xb.astype(np.int64) - b.zero_point], axis=1)
        scale = prog.scales[op.args["scale"]]
        v = rescale(both.reshape(both.shape[0], 2, -1), scale, 2, (slice(None), None)).sum(axis=1)
        return np.clip(out.zero_point + v.reshape(xa.shape), out.qmin, out.qmax).astype(np.int8)
    return _activate(_f32(xa) + _f32(xb), op.act).astype(np.float32)


def mul(prog: Program, op: Operation, xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
    """``a * b``, b broadcast; INT8: ``clamp(z_o + rescale((q_a - z_a) (q_b - z_b)))``."""
    a, b, out = (prog.tensors[op.args[k]] for k in ("a", "b", "output"))
    if prog.int8:
        v = (xa.astype(np.int64) - a.zero_point) * (xb.astype(np.int64) - b.zero_point)
        v = rescale(v.reshape(v.shape[0], 1, -1), prog.scales[op.args["scale"]], 1, (slice(None), None))
        return np.clip(out.zero_point + v.reshape(xa.shape), out.qmin, out.qmax).astype(np.int8)
    return _activate(_f32(xa) * _f32(xb), op.act).astype(np.float32)


def concat(prog: Program, op: Operation, xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
    """``a`` then ``b`` along ``axis``; INT8: each input rescaled to the output's parameters,
    ``clamp(z_o + rescale(q - z, its entry))``."""
    a, b, out = (prog.tensors[op.args[k]] for k in ("a", "b", "output"))
    if not prog.int8:
        return np.concatenate([xa, xb], axis=1 + op.args["axis"]).astype(np.float32)
    scale = prog.scales[op.args["scale"]]
    parts = []
    for k, (x, t) in enumerate(((xa, a), (xb, b))):
        entry = Vector(scale.dtype, scale.data[k:k + 1], scale.pre_shift, scale.shift)
        v = rescale((x.astype(np.int64) - t.zero_point).reshape(len(x), 1, -1), entry, 1, (slice(None), None))
        parts.append(np.clip(out.zero_point + v, out.qmin, out.qmax).reshape(x.shape))
    return np.concatenate(parts, axis=1 + op.args["axis"]).astype(np.int8)


def activation(prog: Program, op: Operation, x: np.ndarray) -> np.ndarray:
    if prog.int8:
        out = prog.tensors[op.args["output"]]
        return np.clip(x, out.qmin, out.qmax).astype(np.int8)
    return _activate(_f32(x), op.act).astype(np.float32)


def softmax(prog: Program, op: Operation, x: np.ndarray) -> np.ndarray:
    """SOFTMAX over all elements; SOFTMAX_AXIS along ``axis``. INT8 (SOFTMAX_AXIS): with
    ``d = max q - q`` along the axis and ``E`` the file's u16 table, ``S = sum E[d]`` and
    ``out = min(127, (E[d] * 256 + S // 2) // S - 128)``, all in integers."""
    shape, axis = x.shape, 1 + op.args["axis"] if op.opcode == Op.SOFTMAX_AXIS else 1
    if op.opcode == Op.SOFTMAX:
        x = x.reshape(shape[0], -1)
    if prog.int8:
        table = prog.dense[op.args["table"]].view("<u2").astype(np.int64)
        e = table[x.max(axis=axis, keepdims=True).astype(np.int64) - x]
        total = e.sum(axis=axis, keepdims=True)
        return np.minimum((e * 256 + total // 2) // total - 128, 127).astype(np.int8).reshape(shape)
    e = np.exp(_f32(x) - _f32(x).max(axis=axis, keepdims=True))
    return (e / e.sum(axis=axis, keepdims=True)).astype(np.float32).reshape(shape)


def isqrt(v: np.ndarray) -> np.ndarray:
    """``floor(sqrt(v))`` of int64 values under 2^62, exactly."""
    r = np.sqrt(v.astype(np.float64)).astype(np.int64)
    r = np.where(r * r > v, r - 1, r)
    return np.where((r + 1) * (r + 1) <= v, r + 1, r)


def layernorm(prog: Program, op: Operation, x: np.ndarray) -> np.ndarray:
    """Over the last axis (C features). F32: ``(x - mean) / sqrt(var + eps) * scale + bias``.
    INT8, in integers (docs/bytecode.md): with ``d = q - z``, ``V = C sum d^2 - (sum d)^2 + E``
    and ``t = C d - sum d``, ``m = (62 - bitlen V) // 2``, ``R = isqrt(V << 2m)`` and
    ``inv = 2^61 // R``: ``u = rshift_round(t inv, 45 - m)`` is the normalised value with 16
    fraction bits, and ``out = clamp(z_o + rshift_round(u M_c + B_c, S_c))`` with the REQUANT
    entry ``(M_c, S_c)`` and bias ``B_c`` of feature ``c``."""
    src, out = prog.tensors[op.args["input"]], prog.tensors[op.args["output"]]
    scale, bias = prog.scales[op.args["scale"]], _bias(prog, op)
    c = src.shape[-1]
    if not prog.int8:
        v = _f32(x)
        eps = f32_of_bits(op.args["eps"])
        y = (v - v.mean(-1, keepdims=True)) / np.sqrt(v.var(-1, keepdims=True) + eps)
        y = y * scale.data.astype(np.float64)
        return (y if bias is None else y + bias).astype(np.float32)
    d = x.astype(np.int64) - src.zero_point
    s1 = d.sum(-1, keepdims=True)
    big = c * (d * d).sum(-1, keepdims=True) - s1 * s1 + op.args["eps"]
    m = (62 - _bitlen(big)) // 2
    inv = (np.int64(1) << LAYERNORM_RECIP_SHIFT) // isqrt(big << (2 * m))
    u = rshift_round((c * d - s1) * inv, LAYERNORM_RECIP_SHIFT - LAYERNORM_FRAC - m)
    rq = scale.data.astype(np.int64)
    v = rshift_round(u * rq[:, 0] + (0 if bias is None else bias), rq[:, 1])
    return np.clip(out.zero_point + v, out.qmin, out.qmax).astype(np.int8)


def _bitlen(v: np.ndarray) -> np.ndarray:
    """The bit length of positive int64 values: float64's exponent, one less where rounding
    to float64 carried ``v`` up to the next power of 2."""
    e = np.frexp(v.astype(np.float64))[1].astype(np.int64)
    return e - ((np.int64(1) << (e - 1)) > v)


def transpose(prog: Program, op: Operation, x: np.ndarray) -> np.ndarray:
    rank = x.ndim - 1
    return np.ascontiguousarray(x.transpose(0, *(1 + op.args[f"perm{k}"] for k in range(rank))))


def batch_matmul(prog: Program, op: Operation, xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
    """``a @ b`` over the last two axes, either operand transposed first (``ta``, ``tb``).
    F32: times the optional one-entry scale; INT8: ``clamp(z_o + rescale(sum (q_a - z_a)
    (q_b - z_b)))`` with the one requantisation entry."""
    a, b, out = (prog.tensors[op.args[k]] for k in ("a", "b", "output"))
    if prog.int8:
        va, vb = xa.astype(np.int64) - a.zero_point, xb.astype(np.int64) - b.zero_point
    else:
        va, vb = _f32(xa), _f32(xb)
    va = np.swapaxes(va, -1, -2) if op.args["ta"] else va
    vb = np.swapaxes(vb, -1, -2) if op.args["tb"] else vb
    y = va @ vb
    if prog.int8:
        v = rescale(y.reshape(len(y), 1, -1), prog.scales[op.args["scale"]], 1, (slice(None), None))
        return np.clip(out.zero_point + v.reshape(y.shape), out.qmin, out.qmax).astype(np.int8)
    if op.args["scale"] != NONE_ID:
        y = y * float(prog.scales[op.args["scale"]].data.astype(np.float64)[0])
    return _activate(y, op.act).astype(np.float32)


def upsample(prog: Program, op: Operation, x: np.ndarray) -> np.ndarray:
    """Nearest: ``out[c, y, x] = in[c, y // sh, x // sw]``; zeros: ``in[c, y / sh, x / sw]``
    where both divide, else 0 (the zero point in INT8)."""
    sh, sw = op.args["sh"], op.args["sw"]
    if op.opcode == Op.UPSAMPLE_NEAREST:
        return np.repeat(np.repeat(x, sh, axis=2), sw, axis=3)
    n, c, h, w = x.shape
    out = np.full((n, c, h * sh, w * sw), prog.tensors[op.args["input"]].zero_point if prog.int8 else 0,
                  dtype=x.dtype)
    out[:, :, ::sh, ::sw] = x
    return out


def pad_value(prog: Program, op: Operation) -> float | int:
    """PAD's constant: the float32 its bits hold, or the int8 in the low byte."""
    if prog.int8:
        return int(np.array(op.args["value"] & 0xFF, dtype=np.uint8).view(np.int8))
    return f32_of_bits(op.args["value"])


def pad(prog: Program, op: Operation, x: np.ndarray) -> np.ndarray:
    a = op.args
    widths = ((0, 0), (0, 0), (a["pt"], a["pb"]), (a["pl"], a["pr"]))
    return np.pad(x, widths, constant_values=pad_value(prog, op))


def argmax(prog: Program, op: Operation, x: np.ndarray) -> np.ndarray:
    return x.reshape(x.shape[0], -1).argmax(axis=1).astype(np.int32).reshape(x.shape[0], 1)


def affine(prog: Program, op: Operation, x: np.ndarray) -> np.ndarray:
    s = prog.scales[op.args["scale"]].data.astype(np.float64)
    bias = _bias(prog, op)
    expand = (slice(None),) + (None,) * (x.ndim - 2)
    y = _f32(x) * (s[expand] if s.size > 1 else s[0])
    if bias is not None:
        y = y + bias[expand]
    return _activate(y, op.act).astype(np.float32)


def unary_parameter(op: Operation) -> float:
    """A unary op's parameter ``a``: its ``alpha`` field's float32 (0 for ops without one)."""
    return f32_of_bits(op.args.get("alpha", 0))


def unary(prog: Program, op: Operation, x: np.ndarray) -> np.ndarray:
    """The op's function (its ``fn`` in the spec) on each element: F32 in float64, rounded
    once; INT8 by the file's table, ``table[q + 128]``."""
    if prog.int8:
        return prog.dense[op.args["table"]][x.astype(np.int64) + 128]
    with np.errstate(over="ignore"):  # exp past float64's range is inf, and the functions take it
        return evaluate(OPS[op.opcode].fn, _f32(x), np, unary_parameter(op)).astype(np.float32)


# every op's function, by its kernel family in tbn.format.spec (a family needs a function here)
_FAMILY = {"matmul": matmul, "pool": pool, "global_avgpool": global_avgpool, "reshape": reshape, "add": add,
           "activation": activation, "softmax": softmax, "argmax": argmax, "affine": affine, "unary": unary,
           "mul": mul, "concat": concat, "layernorm": layernorm, "transpose": transpose,
           "batch_matmul": batch_matmul, "upsample": upsample, "pad": pad}
assert set(_FAMILY) == set(FAMILIES), "a kernel family of tbn.format.spec has no reference function"
KERNELS = {op: _FAMILY[s.kernel] for op, s in OPS.items()}
NUMPY_OF = {DType.F32: np.float32, DType.I8: np.int8, DType.I32: np.int32}
