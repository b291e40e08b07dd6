"""Semantic checks of a :class:`Program`: ids, shapes, dtypes, dataflow, arena, quantisation.

The rules are those of docs/bytecode.md; the C runtime's loader applies the same ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from tbn.format.program import Operation, Program, TbnFormatError, Tensor, Vector
from tbn.format.spec import (
    F32_VECTOR_DTYPES,
    INT8_BIAS_DTYPES,
    INT8_SCALE_DTYPES,
    INT32_MAX,
    NONE_ID,
    OPS,
    RQ16_MAX_MULT,
    RQ16_MAX_SHIFT,
    SOFTMAX_OUT_SCALE,
    SOFTMAX_OUT_ZERO,
    SOFTMAX_TABLE_SIZE,
    UNARY_TABLE_SIZE,
    Act,
    DType,
    Flag,
    Op,
    ScaleMode,
    Trait,
    add_bound,
    batch_matmul_bound,
    f32_of_bits,
    has,
    lut_rows,
    lut_scratch_size,
    mul_bound,
    rq16_fits,
    scale_mode,
    value_bound,
)


def conv_out(size: int, k: int, s: int, d: int, pad: int) -> int:
    """Output length of a convolution or pooling window along one axis."""
    return (size + pad - d * (k - 1) - 1) // s + 1


def token_linear(prog: Program, op: Operation) -> bool:
    """Whether ``op`` is a linear op over tokens: weighted, not a conv, and an output of more
    than one axis (format 2.5)."""
    return (has(op.opcode, Trait.WEIGHTED) and not has(op.opcode, Trait.CONV)
            and len(prog.tensors[op.args["output"]].shape) > 1)


def weight_count(prog: Program, op: Operation) -> tuple[int, int]:
    """(output channels or features O, fan-in K) of a linear or conv op. A linear op over
    tokens (:func:`token_linear`) takes its tensors' last axes."""
    a = op.args
    out, src = prog.tensors[a["output"]], prog.tensors[a["input"]]
    if not has(op.opcode, Trait.CONV):
        return (out.shape[-1], src.shape[-1]) if token_linear(prog, op) else (out.numel, src.numel)
    c_in = prog.tensors[a["input"]].shape[0]
    return out.shape[0], c_in // a["groups"] * a["kh"] * a["kw"]


def tiling_factor(prog: Program, op: Operation) -> int:
    """``p`` of a tiled op: weight count over tile bits."""
    o, k = weight_count(prog, op)
    return o * k // prog.tiles[op.args["tile"]].n_bits


def validate(prog: Program) -> None:
    """Raise :class:`TbnFormatError` naming the first rule ``prog`` breaks."""
    _check_tensors(prog)
    _check_vectors(prog)
    produced = {0}
    written = {0, *(op.args["output"] for op in prog.ops)}
    for i, op in enumerate(prog.ops):
        where = f"op {i} ({op.opcode.name})"
        _check_operands(prog, op, where, produced)
        _check_scratch(prog, op, where, written)
        _check_traits(prog, op, where)
        _CHECKS[OPS[op.opcode].kernel](prog, op, _Need(where))
        _check_buffers(prog, op, where)
        produced.add(op.args["output"])


def _check_tensors(prog: Program) -> None:
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


def _check_vectors(prog: Program) -> None:
    for kind, vectors in (("scale", prog.scales), ("bias", prog.biases)):
        for i, v in enumerate(vectors):
            if v.dtype == DType.REQUANT and (np.any(v.data[:, 1] < 0) or np.any(v.data[:, 1] > 62)):
                raise TbnFormatError(f"{kind} {i}: requantisation shift outside [0, 62]")
            if v.dtype in (DType.F32, DType.F16) and not np.all(np.isfinite(v.data)):
                raise TbnFormatError(f"{kind} {i}: holds NaN or infinity")
            if v.dtype == DType.RQ16 and (max(v.pre_shift, v.shift) > RQ16_MAX_SHIFT
                                          or np.any(np.abs(v.data.astype(np.int32)) > RQ16_MAX_MULT)):
                raise TbnFormatError(f"{kind} {i}: RQ16 shifts outside [0, {RQ16_MAX_SHIFT}] or a "
                                     f"multiplier outside ±{RQ16_MAX_MULT}")


def _check_operands(prog: Program, op: Operation, where: str, produced: set[int]) -> None:
    """Every id in range for its table (absent optional ones aside); tensors read once written."""
    limits = {"tensor": len(prog.tensors), "scratch": len(prog.tensors), "tile": len(prog.tiles),
              "scale": len(prog.scales), "bias": len(prog.biases), "dense": len(prog.dense),
              "table": len(prog.dense)}
    scale_optional = has(op.opcode, Trait.SCALE_OPTIONAL_F32) and not prog.int8
    for name, kind, _ in OPS[op.opcode].layout.offsets:
        if kind not in limits:
            continue
        ref = op.args.get(name, NONE_ID) if kind == "scratch" else op.args[name]
        if ref == NONE_ID and (kind in ("bias", "scratch", "table") or (kind == "scale" and scale_optional)):
            continue
        if ref >= limits[kind]:
            raise TbnFormatError(f"{where}: {name} id {ref} out of range (the file has {limits[kind]})")
        if kind == "tensor" and name != "output" and ref not in produced:
            raise TbnFormatError(f"{where}: reads tensor {ref} before any op writes it")
    if op.args["output"] in produced:
        raise TbnFormatError(f"{where}: tensor {op.args['output']} is written twice (or is the input)")


def _check_scratch(prog: Program, op: Operation, where: str, written: set[int]) -> None:
    """A scratch tensor is working memory: no op writes it as an output (so none can read it),
    and it shares no byte with the op's own tensors."""
    ref = op.args.get("scratch", NONE_ID)
    if ref == NONE_ID:
        return
    if ref in written:
        raise TbnFormatError(f"{where}: scratch tensor {ref} is also the input or an op's output")
    for name in (*OPS[op.opcode].layout.inputs, "output"):
        if _overlap(prog.tensors[ref], prog.tensors[op.args[name]]):
            raise TbnFormatError(f"{where}: scratch tensor {ref} overlaps its {name} in the arena")


def _check_traits(prog: Program, op: Operation, where: str) -> None:
    if op.act != Act.NONE and not has(op.opcode, Trait.FUSABLE) and op.opcode != Op.ACTIVATION:
        raise TbnFormatError(f"{where}: cannot carry a fused activation")
    if prog.int8 and has(op.opcode, Trait.F32_ONLY):
        raise TbnFormatError(f"{where}: not available in INT8 models")


def _check_buffers(prog: Program, op: Operation, where: str) -> None:
    """What holds for every op's tensors: dtypes, INT8 quantisation its traits keep, no overlap."""
    src, out = _first_input(prog, op), prog.tensors[op.args["output"]]
    if op.opcode != Op.ARGMAX and out.dtype != src.dtype:
        raise TbnFormatError(f"{where}: output dtype differs from input dtype")
    if prog.int8 and has(op.opcode, Trait.SAME_QUANT) and \
            (src.scale, src.zero_point) != (out.scale, out.zero_point):
        raise TbnFormatError(f"{where}: input and output quantisation must match")
    for name in OPS[op.opcode].layout.inputs:
        t = prog.tensors[op.args[name]]
        if op.opcode == Op.RESHAPE and t.offset == out.offset:
            continue  # an aliasing reshape costs nothing
        if in_place(prog, op, t, out):
            continue  # an elementwise op over its input's exact slot
        if _overlap(t, out):
            raise TbnFormatError(f"{where}: output buffer overlaps its {name} in the arena")


def in_place(prog: Program, op: Operation, src: Tensor, out: Tensor) -> bool:
    """Whether ``op`` legally writes ``out`` over ``src``: the file allows it (Flag.IN_PLACE),
    the op is elementwise (Trait.IN_PLACE) and the two take exactly the same slot."""
    return (bool(prog.flags & Flag.IN_PLACE) and has(op.opcode, Trait.IN_PLACE)
            and src.offset == out.offset and src.nbytes == out.nbytes)


def _overlap(a: Tensor, b: Tensor) -> bool:
    """Whether two tensors' arena slots share a byte."""
    return a.offset < b.offset + b.nbytes and b.offset < a.offset + a.nbytes


def _first_input(prog: Program, op: Operation) -> Tensor:
    return prog.tensors[op.args[OPS[op.opcode].layout.inputs[0]]]


def _vec(prog: Program, kind: str, ref: int) -> np.ndarray | None:
    if ref == NONE_ID:
        return None
    return (prog.scales if kind == "scale" else prog.biases)[ref].data


class _Need:
    """``need(cond, msg)``: raise the op's TbnFormatError when ``cond`` fails."""

    def __init__(self, where: str) -> None:
        self.where = where

    def __call__(self, cond: bool, msg: str) -> None:
        if not cond:
            raise TbnFormatError(f"{self.where}: {msg}")


# ---- one check per kernel family (tbn.format.spec.OPS[op].kernel), as the C prepare functions

def _check_matmul(prog: Program, op: Operation, need: _Need) -> None:
    a, int8 = op.args, prog.int8
    src, out = prog.tensors[a["input"]], prog.tensors[a["output"]]
    need(src.dtype == out.dtype == (DType.I8 if int8 else DType.F32), "activations have the wrong dtype")
    if has(op.opcode, Trait.CONV):
        _check_conv_geometry(src, out, a, need)
    elif token_linear(prog, op):  # (.., K) to (.., O), one row per token
        need(src.shape[:-1] == out.shape[:-1], f"a linear over tokens maps (.., K) to (.., O); "
             f"{src.shape} to {out.shape} changes the leading axes")
    o, k = weight_count(prog, op)
    if has(op.opcode, Trait.TILED):
        bits = prog.tiles[a["tile"]].n_bits
        need((o * k) % bits == 0, f"the tile's {bits} bits do not tile the {o}x{k} weights")
        p = o * k // bits
    else:
        need(prog.dense[a["weight"]].size == o * k,
             f"dense weight has {prog.dense[a['weight']].size} entries, the shapes need {o * k}")
        p = 1
    scale = prog.scales[a["scale"]]
    mode = scale_mode(scale.count, o, p)
    if int8:
        need(scale.dtype in INT8_SCALE_DTYPES and mode in (ScaleMode.ONE, ScaleMode.PER_OUTPUT),
             "INT8 models need a REQUANT or RQ16 scale with 1 or output-channels entries")
    else:
        need(scale.dtype in F32_VECTOR_DTYPES, "F32 models need F32 or F16 scales")
        need(mode is not None, f"scale has {scale.count} entries; allowed: 1, {o} "
             f"(per output) or {p} (per repetition)")
    if a.get("scratch", NONE_ID) != NONE_ID:
        _check_lut_scratch(prog, op, o, k, need)
    bias = _vec(prog, "bias", a["bias"])
    if bias is not None:
        kinds = INT8_BIAS_DTYPES if int8 else F32_VECTOR_DTYPES
        need(len(bias) == o and prog.biases[a["bias"]].dtype in kinds,
             f"bias must hold {o} values of {' or '.join(d.name for d in kinds)}")
    if int8:
        acc = accumulator_bound(prog, op, bias=False)
        need(acc <= INT32_MAX, f"the accumulator may reach {acc}, beyond 32 bits")
        bound = accumulator_bound(prog, op)
        if scale.dtype == DType.RQ16:
            need(rq16_fits(bound, _mult_peak(scale), scale.pre_shift, scale.shift),
                 f"RQ16 requantisation of values up to {bound} may overflow 32 bits")


def _mult_peak(v: Vector) -> int:
    """The largest |multiplier| of an RQ16 vector."""
    return int(np.abs(v.data.astype(np.int32)).max())


def accumulator_bound(prog: Program, op: Operation, bias: bool = True) -> int:
    """The largest ``|acc + bias|`` (``|acc|`` without ``bias``) an INT8 linear or conv op can
    reach on any int8 input: the largest row sum of ``|weight|`` times the input's
    :func:`q_span`, plus the largest bias."""
    a = op.args
    o, k = weight_count(prog, op)
    if has(op.opcode, Trait.TILED):
        wsum = k
    else:
        wsum = int(np.abs(prog.dense[a["weight"]].astype(np.int64)).reshape(o, k).sum(axis=1).max())
    b = _vec(prog, "bias", a["bias"]) if bias else None
    peak = int(np.abs(b.astype(np.int64)).max()) if b is not None else 0
    return value_bound(wsum, prog.tensors[a["input"]].zero_point, peak)


def _check_lut_scratch(prog: Program, op: Operation, o: int, k: int, need: _Need) -> None:
    """A tiled op with scratch runs the table kernel: its tile must hold whole rows."""
    a = op.args
    rows = lut_rows(k, prog.tiles[a["tile"]].n_bits, a.get("groups", 1))
    need(rows > 0, "a scratch tensor is given but the tile does not hold whole rows of one group, "
         "so the table kernel cannot run")
    s = prog.tensors[a["scratch"]]
    size = lut_scratch_size(rows, k, has(op.opcode, Trait.CONV), prog.int8)
    need(s.dtype == prog.tensors[a["input"]].dtype and s.nbytes >= size,
         f"scratch tensor {a['scratch']} holds {s.nbytes} bytes of {s.dtype.name}; the table kernel "
         f"needs {size} bytes of {prog.tensors[a['input']].dtype.name}")


def _check_conv_geometry(src: Tensor, out: Tensor, a: dict[str, int], need: _Need) -> None:
    need(len(src.shape) == 3 and len(out.shape) == 3, "conv tensors must be (C, H, W)")
    g = a["groups"]
    need(all(a[k] >= 1 for k in ("kh", "kw", "sh", "sw", "dh", "dw")) and g >= 1,
         "kernel, stride, dilation and groups must be at least 1")
    need(src.shape[0] % g == 0 and out.shape[0] % g == 0, f"groups {g} do not divide the channels")
    ho = conv_out(src.shape[1], a["kh"], a["sh"], a["dh"], a["pt"] + a["pb"])
    wo = conv_out(src.shape[2], a["kw"], a["sw"], a["dw"], a["pl"] + a["pr"])
    need(out.shape[1:] == (ho, wo), f"output shape {out.shape} does not follow from input "
         f"{src.shape} (expected spatial size {(ho, wo)})")


def _check_pool(prog: Program, op: Operation, need: _Need) -> None:
    a = op.args
    src, out = prog.tensors[a["input"]], prog.tensors[a["output"]]
    need(len(src.shape) == 3 and len(out.shape) == 3 and out.shape[0] == src.shape[0],
         "pool tensors must be (C, H, W) with equal C")
    need(all(a[k] >= 1 for k in ("kh", "kw", "sh", "sw")), "kernel and stride must be at least 1")
    need(2 * max(a["pt"], a["pb"]) <= a["kh"] and 2 * max(a["pl"], a["pr"]) <= a["kw"],
         "padding exceeds half the window")
    ho = conv_out(src.shape[1], a["kh"], a["sh"], 1, a["pt"] + a["pb"])
    wo = conv_out(src.shape[2], a["kw"], a["sw"], 1, a["pl"] + a["pr"])
    need(out.shape[1:] == (ho, wo), f"output shape {out.shape} does not follow from {src.shape}")


def _check_global_avgpool(prog: Program, op: Operation, need: _Need) -> None:
    src, out = prog.tensors[op.args["input"]], prog.tensors[op.args["output"]]
    need(len(src.shape) == 3 and out.numel == src.shape[0], "needs (C, H, W) in and C values out")


def _check_reshape(prog: Program, op: Operation, need: _Need) -> None:
    src, out = prog.tensors[op.args["input"]], prog.tensors[op.args["output"]]
    need(out.numel == src.numel, f"cannot reshape {src.shape} to {out.shape}")


def _check_add(prog: Program, op: Operation, need: _Need) -> None:
    a, b, out = (prog.tensors[op.args[k]] for k in ("a", "b", "output"))
    need(a.shape == b.shape == out.shape, f"shapes {a.shape}, {b.shape}, {out.shape} differ")
    _check_rescale(prog, op, need, 2, add_bound(a.zero_point, b.zero_point))


def _check_rescale(prog: Program, op: Operation, need: _Need, count: int, bound: int) -> None:
    """An INT8 two-input op's rescaling: REQUANT or RQ16 of ``count`` entries, RQ16 only where
    its products of values up to ``bound`` stay in 32 bits."""
    if not prog.int8:
        return
    sc = prog.scales[op.args["scale"]]
    need(sc.dtype in INT8_SCALE_DTYPES and sc.count == count,
         f"INT8 {Op(op.opcode).name} needs a REQUANT or RQ16 scale of {count} entries")
    if sc.dtype == DType.RQ16:
        need(rq16_fits(bound, _mult_peak(sc), sc.pre_shift, sc.shift),
             "RQ16 requantisation may overflow 32 bits")


def _check_mul(prog: Program, op: Operation, need: _Need) -> None:
    a, b, out = (prog.tensors[op.args[k]] for k in ("a", "b", "output"))
    need(a.shape == out.shape and len(b.shape) == len(a.shape)
         and all(db in (1, da) for da, db in zip(a.shape, b.shape, strict=True)),
         f"b {b.shape} must broadcast to a {a.shape} (each dim equal or 1), the output a's {out.shape}")
    _check_rescale(prog, op, need, 1, mul_bound(a.zero_point, b.zero_point))


def _check_concat(prog: Program, op: Operation, need: _Need) -> None:
    a, b, out = (prog.tensors[op.args[k]] for k in ("a", "b", "output"))
    axis = op.args["axis"]
    ranks = len(a.shape) == len(b.shape) == len(out.shape)
    need(ranks and axis < len(a.shape), f"axis {axis} of {a.shape}, {b.shape} into {out.shape}")
    if ranks and axis < len(a.shape):
        pairs = list(enumerate(zip(a.shape, b.shape, strict=True)))
        want = tuple(da + db if d == axis else da for d, (da, db) in pairs)
        same = all(da == db for d, (da, db) in pairs if d != axis)
        need(same and out.shape == want, f"{a.shape}, {b.shape} joined along axis {axis} are not {out.shape}")
    _check_rescale(prog, op, need, 2, add_bound(a.zero_point, b.zero_point))


FLOAT32_MIN_NORMAL = float(np.finfo(np.float32).tiny)


def _check_layernorm(prog: Program, op: Operation, need: _Need) -> None:
    _check_same_shape(prog, op, need)
    src = prog.tensors[op.args["input"]]
    c = src.shape[-1]
    scale, bias = prog.scales[op.args["scale"]], op.args["bias"]
    if prog.int8:
        need(scale.dtype == DType.REQUANT and scale.count == c,
             f"INT8 needs a REQUANT scale of {c} entries (one per feature)")
        need(bias == NONE_ID or (prog.biases[bias].dtype == DType.I32 and prog.biases[bias].count == c),
             f"INT8 bias must hold {c} I32 values")
        need(op.args["eps"] >= 1, "INT8 epsilon E must be at least 1")
    else:
        need(scale.dtype in F32_VECTOR_DTYPES and scale.count in (1, c), f"scale must hold 1 or {c} values")
        b = prog.biases[bias] if bias != NONE_ID else None
        need(b is None or (b.dtype in F32_VECTOR_DTYPES and b.count == c), f"bias must hold {c} values")
        eps = f32_of_bits(op.args["eps"])
        need(math.isfinite(eps) and eps >= FLOAT32_MIN_NORMAL, f"epsilon {eps} is not a normal float > 0")


def _perm(op: Operation) -> tuple[int, ...]:
    return tuple(op.args[f"perm{k}"] for k in range(4))


def _check_transpose(prog: Program, op: Operation, need: _Need) -> None:
    src, out = prog.tensors[op.args["input"]], prog.tensors[op.args["output"]]
    rank, perm = len(src.shape), _perm(op)
    need(len(out.shape) == rank and sorted(perm[:rank]) == list(range(rank))
         and perm[rank:] == tuple(range(rank, 4)), f"perm {perm} is not a permutation of {rank} axes")
    if sorted(perm[:rank]) == list(range(rank)) and len(out.shape) == rank:
        want = tuple(src.shape[perm[k]] for k in range(rank))
        need(out.shape == want, f"{src.shape} permuted by {perm[:rank]} is {want}, not {out.shape}")


def batch_matmul_dims(prog: Program, op: Operation) -> tuple[int, int, int, int]:
    """(batch, M, K, N) of a BATCH_MATMUL from its checked tensors."""
    a = prog.tensors[op.args["a"]].shape
    m, k = (a[-1], a[-2]) if op.args["ta"] else (a[-2], a[-1])
    n = prog.tensors[op.args["output"]].shape[-1]
    return int(np.prod(a[:-2], dtype=np.int64)), m, k, n


def _check_batch_matmul(prog: Program, op: Operation, need: _Need) -> None:
    a, b, out = (prog.tensors[op.args[x]] for x in ("a", "b", "output"))
    ranks = 2 <= len(a.shape) == len(b.shape) == len(out.shape)
    need(ranks and a.shape[:-2] == b.shape[:-2] == out.shape[:-2],
         f"a {a.shape}, b {b.shape} and output {out.shape} need the same rank (2 to 4) and batch axes")
    need(op.args["ta"] in (0, 1) and op.args["tb"] in (0, 1), "ta and tb are 0 or 1")
    if len(a.shape) < 2 or len(a.shape) != len(b.shape):
        return
    m, k = (a.shape[-1], a.shape[-2]) if op.args["ta"] else a.shape[-2:]
    kb, n = (b.shape[-1], b.shape[-2]) if op.args["tb"] else b.shape[-2:]
    need(k == kb and out.shape[-2:] == (m, n),
         f"({m}, {k}) @ ({kb}, {n}) does not give the output's {out.shape[-2:]}")
    if prog.int8:
        bound = batch_matmul_bound(a.zero_point, b.zero_point, k)
        need(bound <= INT32_MAX, f"a depth of {k} may take the sum to {bound}, beyond 32 bits")
        _check_rescale(prog, op, need, 1, bound)
    elif op.args["scale"] != NONE_ID:
        sc = prog.scales[op.args["scale"]]
        need(sc.dtype in F32_VECTOR_DTYPES and sc.count == 1, "an F32 scale holds one F32 or F16 value")


def _check_upsample(prog: Program, op: Operation, need: _Need) -> None:
    src, out = prog.tensors[op.args["input"]], prog.tensors[op.args["output"]]
    sh, sw = op.args["sh"], op.args["sw"]
    need(len(src.shape) == 3 and sh >= 1 and sw >= 1, "needs a (C, H, W) input and factors of at least 1")
    if len(src.shape) == 3:
        want = (src.shape[0], src.shape[1] * sh, src.shape[2] * sw)
        need(out.shape == want, f"{src.shape} upsampled by ({sh}, {sw}) is {want}, not {out.shape}")


def _check_pad(prog: Program, op: Operation, need: _Need) -> None:
    src, out, a = prog.tensors[op.args["input"]], prog.tensors[op.args["output"]], op.args
    need(len(src.shape) == 3, "needs a (C, H, W) input")
    if len(src.shape) == 3:
        want = (src.shape[0], src.shape[1] + a["pt"] + a["pb"], src.shape[2] + a["pl"] + a["pr"])
        need(out.shape == want, f"{src.shape} padded ({a['pt']}, {a['pl']}, {a['pb']}, {a['pr']}) is {want}, "
             f"not {out.shape}")
    if prog.int8:
        need(a["value"] <= 0xFF, "an INT8 model's value is one int8, in the low byte")
    else:
        need(not math.isnan(f32_of_bits(a["value"])), "the value is NaN")


def _check_same_shape(prog: Program, op: Operation, need: _Need) -> None:
    src, out = prog.tensors[op.args["input"]], prog.tensors[op.args["output"]]
    need(src.shape == out.shape, "input and output shapes differ")


def _check_activation(prog: Program, op: Operation, need: _Need) -> None:
    need(op.act != Act.NONE, "ACTIVATION needs RELU or RELU6")
    _check_same_shape(prog, op, need)


def _check_argmax(prog: Program, op: Operation, need: _Need) -> None:
    out = prog.tensors[op.args["output"]]
    need(out.dtype == DType.I32 and out.numel == 1, "output must be one I32")


def _check_affine(prog: Program, op: Operation, need: _Need) -> None:
    _check_same_shape(prog, op, need)
    c = prog.tensors[op.args["input"]].shape[0]
    count = prog.scales[op.args["scale"]].count
    need(scale_mode(count, c, 1) is not None, f"scale must hold 1 or {c} values")
    need(prog.scales[op.args["scale"]].dtype in F32_VECTOR_DTYPES, "scale must be F32 or F16")
    bias = _vec(prog, "bias", op.args["bias"])
    need(bias is None or (len(bias) == c and prog.biases[op.args["bias"]].dtype in F32_VECTOR_DTYPES),
         f"bias must hold {c} F32 or F16 values")


def _check_unary(prog: Program, op: Operation, need: _Need) -> None:
    _check_same_shape(prog, op, need)
    a = f32_of_bits(op.args.get("alpha", 0))
    need(math.isfinite(a), f"the parameter alpha ({a}) is not finite")
    ref = op.args["table"]
    if prog.int8:
        need(ref != NONE_ID and prog.dense[ref].size == UNARY_TABLE_SIZE,
             f"INT8 needs a table of {UNARY_TABLE_SIZE} int8 entries")
    else:
        need(ref == NONE_ID, "an F32 model's unary op takes no table")


def _check_softmax(prog: Program, op: Operation, need: _Need) -> None:
    _check_same_shape(prog, op, need)
    if op.opcode == Op.SOFTMAX:
        return
    src, out, ref = prog.tensors[op.args["input"]], prog.tensors[op.args["output"]], op.args["table"]
    need(op.args["axis"] < len(src.shape), f"axis {op.args['axis']} of a {len(src.shape)}-D tensor")
    need(src.shape[op.args["axis"]] <= 0xFFFF, "an axis of at most 65535 elements")
    if prog.int8:
        need(ref != NONE_ID and prog.dense[ref].size == 2 * SOFTMAX_TABLE_SIZE,
             f"INT8 needs a table of {SOFTMAX_TABLE_SIZE} u16 entries ({2 * SOFTMAX_TABLE_SIZE} bytes)")
        need(ref == NONE_ID or prog.dense[ref].size < 2 or prog.dense[ref][:2].view("<u2")[0] > 0,
             "the table's entry 0 (exp 0) must not be 0: a line's sum would be")
        need((out.scale, out.zero_point) == (SOFTMAX_OUT_SCALE, SOFTMAX_OUT_ZERO),  # 1/256: exact in float32
             f"INT8 output quantisation must be scale 1/256, zero point {SOFTMAX_OUT_ZERO}")
    else:
        need(ref == NONE_ID, "an F32 model's softmax takes no table")


_CHECKS: dict[str, Callable[[Program, Operation, _Need], None]] = {
    "matmul": _check_matmul, "pool": _check_pool, "global_avgpool": _check_global_avgpool,
    "reshape": _check_reshape, "add": _check_add, "activation": _check_activation,
    "softmax": _check_softmax, "argmax": _check_argmax, "affine": _check_affine, "unary": _check_unary,
    "mul": _check_mul, "concat": _check_concat, "layernorm": _check_layernorm, "transpose": _check_transpose,
    "batch_matmul": _check_batch_matmul, "upsample": _check_upsample, "pad": _check_pad,
}
