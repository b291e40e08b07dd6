"""A human summary of a ``.tbn`` file: ops, shapes, bytes per section, bits per weight."""

from __future__ import annotations

from typing import Any

import numpy as np

from tbn.format.narrow import narrow_bias, narrow_float, narrow_requant
from tbn.format.program import Operation, Program, Vector
from tbn.format.spec import (
    ARENA,
    DENSE,
    HEADER,
    NONE_ID,
    OP_LAYOUTS,
    QUANT,
    TENSOR,
    TILE,
    VECTOR,
    VERSION_MAJOR,
    DType,
    Op,
    Trait,
    add_bound,
    batch_matmul_bound,
    has,
    mul_bound,
    vector_nbytes,
)
from tbn.format.validate import accumulator_bound, batch_matmul_dims, weight_count

_WIDE = "narrowing would hold: compiled with --params wide"


def _scale_width(prog: Program, op: Operation, v: Vector) -> str:
    """What a scale vector is, and why it is not narrower."""
    if v.dtype == DType.RQ16:
        return f"RQ16 (int16, shifts {v.pre_shift} and {v.shift})"
    if v.dtype == DType.F16:
        return "F16"
    if v.dtype == DType.F32:
        why = narrow_float(v.data)
    elif op.opcode == Op.LAYERNORM:
        return "REQUANT: LayerNorm's own (M, S) per feature, on 64-bit sums"
    else:  # REQUANT: the exact factors, from the wide pairs
        real = v.data[:, 0].astype(np.float64) * np.exp2(-v.data[:, 1].astype(np.float64))
        why = narrow_requant(real, _rescaled_bound(prog, op))
    return f"{v.dtype.name}: {why if isinstance(why, str) else _WIDE}"


def _rescaled_bound(prog: Program, op: Operation) -> int:
    """The largest value an INT8 op's requantisation meets (the bound an RQ16 form must hold)."""
    t = {k: prog.tensors[op.args[k]] for k in ("a", "b") if k in op.args}
    if op.opcode in (Op.ADD, Op.CONCAT):
        return add_bound(t["a"].zero_point, t["b"].zero_point)
    if op.opcode == Op.MUL:
        return mul_bound(t["a"].zero_point, t["b"].zero_point)
    if op.opcode == Op.BATCH_MATMUL:
        return batch_matmul_bound(t["a"].zero_point, t["b"].zero_point, batch_matmul_dims(prog, op)[2])
    return accumulator_bound(prog, op)


def _bias_width(v: Vector) -> str:
    if v.dtype in (DType.I16, DType.F16):
        return v.dtype.name
    why = narrow_bias(v.data) if v.dtype == DType.I32 else narrow_float(v.data)
    return f"{v.dtype.name}: {why if isinstance(why, str) else _WIDE}"


def params_width(prog: Program, op: Operation) -> dict[str, str] | None:
    """The form of an op's per-output scale and bias and why it is not narrower (None when
    the op has neither)."""
    a, out = op.args, {}
    if a.get("scale", NONE_ID) != NONE_ID:
        out["scale"] = _scale_width(prog, op, prog.scales[a["scale"]])
    if a.get("bias", NONE_ID) != NONE_ID:
        out["bias"] = _bias_width(prog.biases[a["bias"]])
    return out or None


def summarize(prog: Program, file_size: int) -> dict[str, Any]:
    """Per-op rows and size accounting of a decoded program."""
    rows = []
    n_weights = 0
    for i, op in enumerate(prog.ops):
        a = op.args
        src = prog.tensors[a[OP_LAYOUTS[op.opcode].inputs[0]]]
        out = prog.tensors[a["output"]]
        detail = ""
        if has(op.opcode, Trait.WEIGHTED):
            o, k = weight_count(prog, op)
            n_weights += o * k
            if has(op.opcode, Trait.TILED):
                bits = prog.tiles[a["tile"]].n_bits
                detail = f"p={o * k // bits} tile#{a['tile']} {bits} bits"
            else:
                detail = f"int8 weights {o * k}"
            detail += f", {prog.scales[a['scale']].count} scales"
            if a.get("scratch", NONE_ID) != NONE_ID:
                detail += f", tables in {prog.tensors[a['scratch']].nbytes} B scratch"
        rows.append({"index": i, "op": op.opcode.name, "act": op.act.name, "input": src.shape,
                     "output": out.shape, "detail": detail, "params": params_width(prog, op)})
    tiles = sum(len(t.bits) for t in prog.tiles)
    scales = sum(vector_nbytes(v.dtype, v.count) for v in prog.scales)
    biases = sum(vector_nbytes(v.dtype, v.count) for v in prog.biases)
    dense = sum(w.size for w in prog.dense)
    ops_size = sum(OP_LAYOUTS[op.opcode].size for op in prog.ops)
    n_t = len(prog.tensors)
    sections = {
        "header": HEADER.size,
        "tensor table + arena plan": n_t * (TENSOR.size + ARENA.size),
        "quantisation": n_t * QUANT.size if prog.int8 else 0,
        "tile/scale/bias/dense tables": (len(prog.tiles) * TILE.size + (len(prog.scales) + len(prog.biases))
                                         * VECTOR.size + len(prog.dense) * DENSE.size),
        "ops": ops_size,
        "tile bits": tiles,
        "scales": scales,
        "biases": biases,
        "dense int8 weights": dense,
    }
    sections["alignment padding"] = file_size - sum(sections.values())
    payload = tiles + scales + biases + dense
    return {
        "format": f"{VERSION_MAJOR}.{prog.minor}", "activations": "int8" if prog.int8 else "f32",
        "file_bytes": file_size, "arena_bytes": prog.arena_size, "ops": rows, "sections": sections,
        "n_weights": n_weights, "payload_bytes": payload, "overhead_bytes": file_size - payload,
        "weight_bits_per_weight": 8 * (tiles + dense + scales) / max(1, n_weights),
        "file_bits_per_weight": 8 * file_size / max(1, n_weights),
        "as_float32_bytes": 4 * n_weights, "as_int8_bytes": n_weights,
        "as_1bit_bytes": (n_weights + 7) // 8,
        "distinct_tiles": len(prog.tiles),
    }


def render(s: dict[str, Any]) -> str:
    """The summary as text."""
    lines = [f"tbn bytecode {s['format']}, {s['activations']} activations, {s['file_bytes']} bytes, "
             f"arena {s['arena_bytes']} bytes", ""]
    w = max(len(r["op"]) for r in s["ops"])
    lines.append(f"{'#':>3}  {'op':<{w}}  {'act':<5}  {'input':<16} {'output':<16} detail")
    for r in s["ops"]:
        shape_in = "x".join(map(str, r["input"]))
        shape_out = "x".join(map(str, r["output"]))
        lines.append(f"{r['index']:>3}  {r['op']:<{w}}  {r['act']:<5}  {shape_in:<16} {shape_out:<16} "
                     f"{r['detail']}")
    params = [(r, p) for r in s["ops"] if (p := r.get("params"))]
    if params:
        lines += ["", "per-output parameters (narrowest form that holds; docs/bytecode.md):"]
        lines += [f"  #{r['index']:<3} " + "; ".join(f"{k} {v}" for k, v in p.items()) for r, p in params]
    lines += ["", "bytes per section:"]
    lines += [f"  {k:<30} {v:>9}" for k, v in s["sections"].items() if v]
    n = s["n_weights"]
    lines += ["", f"{n} weights in {s['distinct_tiles']} distinct tiles: "
              f"{s['weight_bits_per_weight']:.3f} bits/weight (tiles, scales, dense), "
              f"{s['file_bits_per_weight']:.3f} bits/weight for the whole file",
              f"the same weights as float32: {s['as_float32_bytes']} bytes, as int8: "
              f"{s['as_int8_bytes']} bytes, as 1-bit: {s['as_1bit_bytes']} bytes",
              f"payload {s['payload_bytes']} bytes + structure {s['overhead_bytes']} bytes"]
    return "\n".join(lines)
