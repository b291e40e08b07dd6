"""Semantic checks of a :class:`Program`: ids, shapes, dtypes, dataflow, arena, quantisation.

The rules are those of docs/bytecode.md; the C runtime's loader applies the same ones.
"""

from __future__ import annotations

import math

import numpy as np

from tbn.format.program import Operation, Program, TbnFormatError, Tensor
from tbn.format.spec import NONE_ID, OP_LAYOUTS, Act, DType, Op

_FUSABLE = {Op.TILED_LINEAR, Op.TILED_CONV2D, Op.DENSE_LINEAR, Op.DENSE_CONV2D, Op.ADD, Op.AFFINE}
_SAME_QUANT = {Op.MAXPOOL2D, Op.AVGPOOL2D, Op.GLOBAL_AVGPOOL, Op.RESHAPE, Op.ACTIVATION}
_F32_ONLY = {Op.SOFTMAX, Op.AFFINE}


def conv_out(size: int, k: int, s: int, d: int, pad: int) -> int:
    """Output length of a convolution or pooling window along one axis."""
    return (size + pad - d * (k - 1) - 1) // s + 1


def weight_count(prog: Program, op: Operation) -> tuple[int, int]:
    """(output channels or features O, fan-in K) of a linear or conv op."""
    a = op.args
    out = prog.tensors[a["output"]]
    if op.opcode in (Op.TILED_LINEAR, Op.DENSE_LINEAR):
        return out.numel, prog.tensors[a["input"]].numel
    c_in = prog.tensors[a["input"]].shape[0]
    return out.shape[0], c_in // a["groups"] * a["kh"] * a["kw"]


def tiling_factor(prog: Program, op: Operation) -> int:
    """``p`` of a tiled op: weight count over tile bits."""
    o, k = weight_count(prog, op)
    return o * k // prog.tiles[op.args["tile"]].n_bits


def validate(prog: Program) -> None:
    """Raise :class:`TbnFormatError` naming the first rule ``prog`` breaks."""
    n = len(prog.tensors)
    int8 = prog.int8
    act_dtype = DType.I8 if int8 else DType.F32
    for i, t in enumerate(prog.tensors):
        if t.dtype not in (act_dtype, DType.I32):
            raise TbnFormatError(f"tensor {i}: dtype {t.dtype.name} is not allowed in a "
                                 f"{'INT8' if int8 else 'F32'} model")
        if t.offset % 4 or t.offset + t.nbytes > prog.arena_size:
            raise TbnFormatError(f"tensor {i}: arena slot [{t.offset}, {t.offset + t.nbytes}) "
                                 f"does not fit the {prog.arena_size}-byte arena")
        if int8 and t.dtype == DType.I8:
            if not (math.isfinite(t.scale) and t.scale > 0):
                raise TbnFormatError(f"tensor {i}: quantisation scale {t.scale} is not positive and finite")
            if not -128 <= t.qmin <= t.zero_point <= 127 or not t.qmin <= t.qmax <= 127:
                raise TbnFormatError(f"tensor {i}: zero point {t.zero_point} and clamp range "
                                     f"[{t.qmin}, {t.qmax}] are inconsistent")
    if prog.tensors[0].dtype != act_dtype:
        raise TbnFormatError(f"tensor 0 (the input) must be {act_dtype.name}")
    for kind, vectors in (("scale", prog.scales), ("bias", prog.biases)):
        for i, v in enumerate(vectors):
            if v.dtype == DType.REQUANT and (np.any(v.data[:, 1] < 0) or np.any(v.data[:, 1] > 62)):
                raise TbnFormatError(f"{kind} {i}: requantisation shift outside [0, 62]")
            if v.dtype in (DType.F32, DType.F16) and not np.all(np.isfinite(v.data)):
                raise TbnFormatError(f"{kind} {i}: holds NaN or infinity")

    produced = {0}
    for i, op in enumerate(prog.ops):
        where = f"op {i} ({op.opcode.name})"
        layout = OP_LAYOUTS[op.opcode]
        for name, kind in layout.fields:
            if kind.startswith("pad") or kind in ("u8", "u16"):
                continue
            ref = op.args[name]
            limit = {"tensor": n, "tile": len(prog.tiles), "scale": len(prog.scales),
                     "bias": len(prog.biases), "dense": len(prog.dense)}[kind]
            optional = kind == "bias" or (kind == "scale" and op.opcode == Op.ADD and not int8)
            if ref == NONE_ID and optional:
                continue
            if ref >= limit:
                raise TbnFormatError(f"{where}: {name} id {ref} out of range (the file has {limit})")
            if kind == "tensor" and name != "output" and ref not in produced:
                raise TbnFormatError(f"{where}: reads tensor {ref} before any op writes it")
        out = op.args["output"]
        if out in produced:
            raise TbnFormatError(f"{where}: tensor {out} is written twice (or is the input)")
        if op.act != Act.NONE and op.opcode not in _FUSABLE | {Op.ACTIVATION}:
            raise TbnFormatError(f"{where}: cannot carry a fused activation")
        if int8 and op.opcode in _F32_ONLY:
            raise TbnFormatError(f"{where}: not available in INT8 models")
        _check_op(prog, op, where)
        _check_overlap(prog, op, where)
        produced.add(out)


def _check_overlap(prog: Program, op: Operation, where: str) -> None:
    out = prog.tensors[op.args["output"]]
    for name in ("input", "a", "b"):
        if name not in op.args:
            continue
        t = prog.tensors[op.args[name]]
        if op.opcode == Op.RESHAPE and t.offset == out.offset:
            continue  # an aliasing reshape costs nothing
        if t.offset < out.offset + out.nbytes and out.offset < t.offset + t.nbytes:
            raise TbnFormatError(f"{where}: output buffer overlaps its {name} in the arena")


def _vec(prog: Program, kind: str, ref: int) -> np.ndarray | None:
    if ref == NONE_ID:
        return None
    return (prog.scales if kind == "scale" else prog.biases)[ref].data


def _check_op(prog: Program, op: Operation, where: str) -> None:
    a, t, int8 = op.args, prog.tensors, prog.int8
    out: Tensor = t[a["output"]]
    src: Tensor = t[a.get("input", a.get("a", 0))]
    code = op.opcode

    def need(cond: bool, msg: str) -> None:
        if not cond:
            raise TbnFormatError(f"{where}: {msg}")

    if code in (Op.TILED_LINEAR, Op.DENSE_LINEAR, Op.TILED_CONV2D, Op.DENSE_CONV2D):
        need(src.dtype == out.dtype == (DType.I8 if int8 else DType.F32), "activations have the wrong dtype")
        if code in (Op.TILED_CONV2D, Op.DENSE_CONV2D):
            need(len(src.shape) == 3 and len(out.shape) == 3, "conv tensors must be (C, H, W)")
            g = a["groups"]
            need(all(a[k] >= 1 for k in ("kh", "kw", "sh", "sw", "dh", "dw")) and g >= 1,
                 "kernel, stride, dilation and groups must be at least 1")
            need(src.shape[0] % g == 0 and out.shape[0] % g == 0, f"groups {g} do not divide the channels")
            ho = conv_out(src.shape[1], a["kh"], a["sh"], a["dh"], a["pt"] + a["pb"])
            wo = conv_out(src.shape[2], a["kw"], a["sw"], a["dw"], a["pl"] + a["pr"])
            need(out.shape[1:] == (ho, wo), f"output shape {out.shape} does not follow from input "
                 f"{src.shape} (expected spatial size {(ho, wo)})")
        else:
            need(len(out.shape) == 1, "a linear output must be one-dimensional")
        o, k = weight_count(prog, op)
        if code in (Op.TILED_LINEAR, Op.TILED_CONV2D):
            bits = prog.tiles[a["tile"]].n_bits
            need((o * k) % bits == 0, f"the tile's {bits} bits do not tile the {o}x{k} weights")
            p = o * k // bits
        else:
            need(prog.dense[a["weight"]].size == o * k,
                 f"dense weight has {prog.dense[a['weight']].size} entries, the shapes need {o * k}")
            p = 1
        scale = prog.scales[a["scale"]]
        if int8:
            need(scale.dtype == DType.REQUANT and scale.count in (1, o),
                 "INT8 models need a REQUANT scale with 1 or output-channels entries")
        else:
            need(scale.dtype in (DType.F32, DType.F16), "F32 models need F32 or F16 scales")
            need(scale.count in (1, o, p), f"scale has {scale.count} entries; allowed: 1, {o} "
                 f"(per output) or {p} (per repetition)")
        bias = _vec(prog, "bias", a["bias"])
        if bias is not None:
            need(len(bias) == o and prog.biases[a["bias"]].dtype == (DType.I32 if int8 else DType.F32),
                 f"bias must hold {o} {'I32' if int8 else 'F32'} values")
    elif code in (Op.MAXPOOL2D, Op.AVGPOOL2D):
        need(len(src.shape) == 3 and len(out.shape) == 3 and out.shape[0] == src.shape[0],
             "pool tensors must be (C, H, W) with equal C")
        need(all(a[k] >= 1 for k in ("kh", "kw", "sh", "sw")), "kernel and stride must be at least 1")
        need(2 * max(a["pt"], a["pb"]) <= a["kh"] and 2 * max(a["pl"], a["pr"]) <= a["kw"],
             "padding exceeds half the window")
        ho = conv_out(src.shape[1], a["kh"], a["sh"], 1, a["pt"] + a["pb"])
        wo = conv_out(src.shape[2], a["kw"], a["sw"], 1, a["pl"] + a["pr"])
        need(out.shape[1:] == (ho, wo), f"output shape {out.shape} does not follow from {src.shape}")
    elif code == Op.GLOBAL_AVGPOOL:
        need(len(src.shape) == 3 and out.numel == src.shape[0], "needs (C, H, W) in and C values out")
    elif code == Op.RESHAPE:
        need(out.numel == src.numel, f"cannot reshape {src.shape} to {out.shape}")
    elif code == Op.ADD:
        b = t[a["b"]]
        need(src.shape == b.shape == out.shape, f"shapes {src.shape}, {b.shape}, {out.shape} differ")
        if int8:
            sc = prog.scales[a["scale"]]
            need(sc.dtype == DType.REQUANT and sc.count == 2, "INT8 ADD needs a REQUANT scale of 2 entries")
    elif code == Op.ACTIVATION:
        need(op.act != Act.NONE, "ACTIVATION needs RELU or RELU6")
        need(src.shape == out.shape, "input and output shapes differ")
    elif code == Op.SOFTMAX:
        need(src.shape == out.shape, "input and output shapes differ")
    elif code == Op.ARGMAX:
        need(out.dtype == DType.I32 and out.numel == 1, "output must be one I32")
    elif code == Op.AFFINE:
        c = src.shape[0]
        need(src.shape == out.shape, "input and output shapes differ")
        need(prog.scales[a["scale"]].count in (1, c), f"scale must hold 1 or {c} values")
        bias = _vec(prog, "bias", a["bias"])
        need(bias is None or len(bias) == c, f"bias must hold {c} values")
    if code != Op.ARGMAX:
        need(out.dtype == src.dtype, "output dtype differs from input dtype")
    if int8 and code in _SAME_QUANT:
        need((src.scale, src.zero_point) == (out.scale, out.zero_point),
             "input and output quantisation must match")
