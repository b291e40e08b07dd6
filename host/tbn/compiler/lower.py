"""From captured nodes to a :class:`Program`: fold BatchNorm, fuse activations, choose
scale vectors, quantise (INT8), plan memory."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import torch

from tbn.compiler.capture import Node, TbnCompileError
from tbn.compiler.memory import Buffer, plan
from tbn.compiler.quant import BIAS_LIMIT, quantize_multiplier, relu6_qmax
from tbn.format import Act, DType, Flag, Op, Operation, Program, Tensor
from tbn.format.spec import NONE_ID

_MATMUL = ("tiled", "dense")
_FUSE_INTO = ("tiled", "dense", "add", "affine")
_ACTS = {"none": Act.NONE, "relu": Act.RELU, "relu6": Act.RELU6}


def _bn_affine(bn: torch.nn.Module) -> tuple[np.ndarray, np.ndarray]:
    """BatchNorm as ``y = g * x + h`` (float64)."""
    var = bn.running_var.detach().double().numpy()
    mean = bn.running_mean.detach().double().numpy()
    g = 1.0 / np.sqrt(var + bn.eps)
    if bn.weight is not None:
        g = g * bn.weight.detach().double().numpy()
    h = -mean * g
    if bn.bias is not None:
        h = h + bn.bias.detach().double().numpy()
    return g, h


def fold_and_fuse(nodes: list[Node]) -> list[Node]:
    """Fold each BatchNorm into the linear/conv that feeds only it (else make it an
    ``affine`` node), fuse each ReLU/ReLU6 into the op that feeds only it, and drop
    reshapes read only by linear layers (which read their input flat anyway)."""
    nodes = _drop_flattens(nodes)
    uses = Counter(name for n in nodes for name in n.inputs)
    producer = {n.output: n for n in nodes}
    out: list[Node] = []
    for n in nodes:
        src = producer.get(n.inputs[0]) if n.inputs else None
        if n.kind == "bn":
            g, h = _bn_affine(n.attrs["module"])
            if src is not None and src.kind in _MATMUL and uses[src.output] == 1 and src.act == "none" \
                    and "bn" not in src.attrs:
                src.attrs["bn"] = (g, h)
                src.output, src.shape = n.output, n.shape
                producer[n.output] = src
                continue
            n = Node("affine", n.inputs, n.output, n.shape, n.where, {"g": g, "h": h})
        elif n.kind == "act" and src is not None and src.kind in _FUSE_INTO and uses[src.output] == 1 \
                and src.act == "none":
            src.act = n.attrs["act"]
            src.output, src.shape = n.output, n.shape
            producer[n.output] = src
            continue
        producer[n.output] = n
        out.append(n)
    return out


def _drop_flattens(nodes: list[Node]) -> list[Node]:
    readers: dict[str, list[Node]] = {}
    for n in nodes:
        for name in n.inputs:
            readers.setdefault(name, []).append(n)
    rename: dict[str, str] = {}
    out = []
    for n in nodes:
        n.inputs = [rename.get(i, i) for i in n.inputs]
        users = readers.get(n.output, [])
        if n.kind == "reshape" and users and all(u.kind in _MATMUL and not u.attrs["conv"] for u in users):
            rename[n.output] = n.inputs[0]
            continue
        out.append(n)
    return out


def _layer_vectors(n: Node) -> dict[str, Any]:
    """Weights and float scale/bias vectors of a tiled or dense node, BatchNorm folded in.

    Returns: ``tile`` (bits, n_bits) or ``dense`` (int8 weights); ``scale`` (float64 vector
    of 1, p or O entries); ``bias`` (float64, O) or None; ``affine`` (g, h) when BatchNorm
    could not be folded into per-output scales (p does not divide O)."""
    m = n.attrs["module"]
    o = m.weight.shape[0]
    g, h = n.attrs.get("bn", (None, None))
    bias = None if m.bias is None else m.bias.detach().double().numpy()
    res: dict[str, Any] = {"affine": None}
    if n.kind == "tiled":
        e = m.export()
        res["tile"] = (e.tile_bits, e.n_bits)
        alphas = e.alphas.astype(np.float64)
        per_row = len(alphas) == 1 or o % e.p == 0
        if g is None:
            res["scale"], res["bias"] = alphas, bias
            return res
        if not per_row:
            res["scale"], res["bias"] = alphas, None
            res["affine"] = (g, g * (bias if bias is not None else 0.0) + h)
            return res
        sigma = alphas[np.arange(o) * len(alphas) // o] if len(alphas) > 1 else np.full(o, alphas[0])
    else:
        w = m.weight.detach().double().numpy().reshape(o, -1)
        ws = np.abs(w).max(axis=1) / 127.0
        ws[ws == 0] = 1.0
        res["dense"] = np.clip(np.rint(w / ws[:, None]), -127, 127).astype(np.int8)
        sigma = ws
        if g is None:
            res["scale"], res["bias"] = sigma, bias
            return res
    res["scale"] = sigma * g
    res["bias"] = g * (bias if bias is not None else 0.0) + h
    return res


def per_output(scale: np.ndarray, o: int) -> np.ndarray:
    """A scale vector of 1, p (dividing o) or o entries as o per-output values."""
    return scale[np.arange(o) * len(scale) // o] if len(scale) not in (1, o) else np.broadcast_to(scale, (o,))


def emit(nodes: list[Node], quant: dict[str, tuple[float, int]] | None = None,
         scale_dtype: DType = DType.F32) -> tuple[Program, dict[str, int]]:
    """Build the program; with ``quant`` (value name -> calibrated (scale, zero point))
    an INT8 program, else F32. Also returns each value's tensor id."""
    int8 = quant is not None
    prog = Program(flags=int(Flag.INT8) if int8 else 0)
    tid: dict[str, int] = {}
    act_dtype = DType.I8 if int8 else DType.F32
    one_d = {n.inputs[0] for n in nodes if n.attrs.get("conv1d")} | \
            {n.output for n in nodes if n.attrs.get("conv1d")}

    def shape_of(n: Node) -> tuple[int, ...]:
        if (n.output in one_d or n.attrs.get("conv1d")) and len(n.shape) == 2:
            return (n.shape[0], 1, n.shape[1])
        return n.shape or (1,)

    def new_tensor(n: Node, dtype: DType = act_dtype, like: Tensor | None = None) -> int:
        t = Tensor(dtype, shape_of(n))
        if int8 and dtype == DType.I8:
            if like is not None:
                t.scale, t.zero_point, t.qmin, t.qmax = like.scale, like.zero_point, like.qmin, like.qmax
            else:
                t.scale, t.zero_point = quant[n.output]
                t.qmin = -128
            if n.act == "relu":
                t.qmin = max(t.qmin, t.zero_point)
            elif n.act == "relu6":
                t.qmin = max(t.qmin, t.zero_point)
                t.qmax = min(t.qmax, relu6_qmax(t.scale, t.zero_point))
        prog.tensors.append(t)
        tid[n.output] = len(prog.tensors) - 1
        return tid[n.output]

    def add_float_scale(v: np.ndarray) -> int:
        dt = np.float16 if scale_dtype == DType.F16 else np.float32
        return prog.add_scale(scale_dtype, np.asarray(v, dtype=dt))

    for n in nodes:
        if n.kind == "input":
            new_tensor(n)
            continue
        if n.kind == "output":
            continue
        ins = [tid[i] for i in n.inputs]
        act = _ACTS[n.act]
        src = prog.tensors[ins[0]]
        if n.kind in _MATMUL:
            v = _layer_vectors(n)
            if v["affine"] is not None and int8:
                raise TbnCompileError(f"{n.where}: BatchNorm after a tiled layer whose p does not divide "
                                      f"its outputs cannot be folded, which INT8 needs; use p dividing "
                                      f"the outputs or alpha='single'")
            fused_act = act if v["affine"] is None else Act.NONE
            if v["affine"] is not None:
                mid = Node(n.kind, n.inputs, n.output + "/pre_bn", n.shape, n.where,
                           {"conv1d": n.attrs.get("conv1d")})
                out = new_tensor(mid)
            else:
                out = new_tensor(n)
            args: dict[str, int] = {"input": ins[0], "output": out, "bias": NONE_ID}
            if "tile" in v:
                args["tile"] = prog.add_tile(*v["tile"])
            else:
                args["weight"] = prog.add_dense(v["dense"])
            o = n.attrs["module"].weight.shape[0]
            if int8:
                dst = prog.tensors[out]
                if len(v["scale"]) not in (1, o) and o % len(v["scale"]) != 0:
                    raise TbnCompileError(f"{n.where}: INT8 needs one scale per output; p must divide "
                                          f"the outputs (or use alpha='single')")
                sigma = per_output(v["scale"], o) if len(v["scale"]) != 1 else v["scale"]
                real = src.scale * sigma / dst.scale
                rq = np.array([quantize_multiplier(float(r)) for r in np.atleast_1d(real)], dtype=np.int64)
                args["scale"] = prog.add_scale(DType.REQUANT, rq.astype(np.int32))
                if v["bias"] is not None:
                    denom = src.scale * np.broadcast_to(sigma, (o,))
                    bq = np.where(denom != 0, np.rint(v["bias"] / np.where(denom != 0, denom, 1.0)), 0)
                    bq = np.clip(bq, -BIAS_LIMIT, BIAS_LIMIT).astype(np.int32)
                    args["bias"] = prog.add_bias(DType.I32, bq)
            else:
                args["scale"] = add_float_scale(v["scale"])
                if v["bias"] is not None:
                    args["bias"] = prog.add_bias(DType.F32, v["bias"].astype(np.float32))
            if n.attrs["conv"]:
                args.update(n.attrs["geom"])
                opcode = Op.TILED_CONV2D if n.kind == "tiled" else Op.DENSE_CONV2D
            else:
                opcode = Op.TILED_LINEAR if n.kind == "tiled" else Op.DENSE_LINEAR
            prog.ops.append(Operation(opcode, fused_act, args))
            if v["affine"] is not None:
                g, h = v["affine"]
                final = new_tensor(n)
                prog.ops.append(Operation(Op.AFFINE, act, {
                    "input": out, "output": final, "scale": add_float_scale(g),
                    "bias": prog.add_bias(DType.F32, h.astype(np.float32))}))
            continue
        if n.kind in ("maxpool", "avgpool", "gap", "reshape"):
            out = new_tensor(n, like=src if int8 else None)
            code = {"maxpool": Op.MAXPOOL2D, "avgpool": Op.AVGPOOL2D, "gap": Op.GLOBAL_AVGPOOL,
                    "reshape": Op.RESHAPE}[n.kind]
            geom = {k: n.attrs[k] for k in ("kh", "kw", "sh", "sw", "pt", "pl", "pb", "pr")} \
                if n.kind in ("maxpool", "avgpool") else {}
            prog.ops.append(Operation(code, Act.NONE, {"input": ins[0], "output": out, **geom}))
        elif n.kind == "act":
            out = new_tensor(Node("act", n.inputs, n.output, n.shape, n.where, act=n.attrs["act"]),
                             like=src if int8 else None)
            prog.ops.append(Operation(Op.ACTIVATION, _ACTS[n.attrs["act"]], {"input": ins[0], "output": out}))
        elif n.kind == "add":
            out = new_tensor(n)
            args = {"a": ins[0], "b": ins[1], "output": out, "scale": NONE_ID}
            if int8:
                dst, b = prog.tensors[out], prog.tensors[ins[1]]
                rq = [quantize_multiplier(src.scale / dst.scale), quantize_multiplier(b.scale / dst.scale)]
                args["scale"] = prog.add_scale(DType.REQUANT, np.array(rq, dtype=np.int32))
            prog.ops.append(Operation(Op.ADD, act, args))
        elif n.kind == "affine":
            if int8:
                raise TbnCompileError(f"{n.where}: a BatchNorm that does not follow a linear or conv "
                                      f"layer cannot run with INT8 activations")
            out = new_tensor(n)
            prog.ops.append(Operation(Op.AFFINE, act, {
                "input": ins[0], "output": out, "scale": add_float_scale(n.attrs["g"]),
                "bias": prog.add_bias(DType.F32, n.attrs["h"].astype(np.float32))}))
        elif n.kind == "softmax":
            if int8:
                raise TbnCompileError(f"{n.where}: softmax needs F32 activations; end an INT8 model at "
                                      f"its logits or with argmax")
            if len(n.shape) != 1:
                raise TbnCompileError(f"{n.where}: softmax is supported over a vector, got shape {n.shape}")
            out = new_tensor(n)
            prog.ops.append(Operation(Op.SOFTMAX, Act.NONE, {"input": ins[0], "output": out}))
        elif n.kind == "argmax":
            out = new_tensor(Node("argmax", n.inputs, n.output, (1,), n.where), dtype=DType.I32)
            prog.ops.append(Operation(Op.ARGMAX, Act.NONE, {"input": ins[0], "output": out}))
        else:
            raise TbnCompileError(f"{n.where}: internal: no lowering for {n.kind}")
    final = tid[nodes[-1].inputs[0]]
    if not prog.ops or prog.ops[-1].args["output"] != final:
        raise TbnCompileError("the model's output must be the result of its last operation")
    _plan_memory(prog)
    return prog, tid


def _plan_memory(prog: Program) -> None:
    n_ops = len(prog.ops)
    first = {0: -1}
    last = {0: -1}
    alias: dict[int, int] = {}
    for i, op in enumerate(prog.ops):
        out = op.args["output"]
        first[out] = last[out] = i
        for k in ("input", "a", "b"):
            if k in op.args:
                last[op.args[k]] = i
        if op.opcode == Op.RESHAPE:
            alias[out] = op.args["input"]
    last[prog.output] = n_ops

    def root(t: int) -> int:
        while t in alias:
            t = alias[t]
        return t

    groups: dict[int, Buffer] = {}
    for t, tensor in enumerate(prog.tensors):
        r = root(t)
        b = groups.setdefault(r, Buffer(0, first[t], last[t]))
        b.size = max(b.size, tensor.nbytes)
        b.first, b.last = min(b.first, first[t]), max(b.last, last[t])
    prog.arena_size = plan(list(groups.values()))
    for t, tensor in enumerate(prog.tensors):
        tensor.offset = groups[root(t)].offset
