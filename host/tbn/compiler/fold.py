"""Compiler stage 2, fold and fuse: constant padding into the convolution or pool after it,
BatchNorm into the layer before it, ReLU/ReLU6 into the op before it, and flattens in front of
linear layers dropped (they read their input flat)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch

from tbn.compiler.graph import Kind, Node, TbnCompileError
from tbn.format.spec import Op, Trait, has

_LINEAR = (Op.TILED_LINEAR, Op.DENSE_LINEAR)


def _is(kind: Op | Kind, trait: Trait) -> bool:
    return isinstance(kind, Op) and has(kind, trait)


def bn_affine(bn: torch.nn.Module) -> tuple[np.ndarray, np.ndarray]:
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
    AFFINE node), fuse each ReLU/ReLU6 into the op that feeds only it, and drop
    reshapes read only by linear layers (which read their input flat anyway)."""
    nodes = _fold_transposes(_cancel_transposes(_fold_factors(_drop_flattens(_fold_pads(nodes)))))
    uses = Counter(name for n in nodes for name in n.inputs)
    producer = {n.output: n for n in nodes}
    out: list[Node] = []
    for n in nodes:
        src = producer.get(n.inputs[0]) if n.inputs else None
        alone = src is not None and uses[src.output] == 1 and src.act == "none"  # n is its only reader
        if n.kind == Kind.BATCHNORM:
            g, h = bn_affine(n.attrs["module"])
            if not (np.all(np.isfinite(g)) and np.all(np.isfinite(h))):
                raise TbnCompileError(f"{n.where}: BatchNorm parameters or running statistics hold NaN "
                                      f"or infinity (a diverged training run?)")
            if alone and _is(src.kind, Trait.WEIGHTED) and "bn" not in src.attrs:
                src.attrs["bn"] = (g, h)
                src.output, src.shape = n.output, n.shape
                producer[n.output] = src
                continue
            n = Node(Op.AFFINE, n.inputs, n.output, n.shape, n.where, {"g": g, "h": h})
        elif n.kind == Op.ACTIVATION and alone and _is(src.kind, Trait.FUSABLE):
            src.act = n.attrs["act"]
            src.output, src.shape = n.output, n.shape
            producer[n.output] = src
            continue
        producer[n.output] = n
        out.append(n)
    return out


def _drop_flattens(nodes: list[Node]) -> list[Node]:
    readers = _readers(nodes)
    rename: dict[str, str] = {}
    out = []
    for n in nodes:
        n.inputs = [rename.get(i, i) for i in n.inputs]
        users = readers.get(n.output, [])
        if n.kind == Op.RESHAPE and users and all(u.kind in _LINEAR and len(u.shape) == 1 for u in users):
            rename[n.output] = n.inputs[0]
            continue
        out.append(n)
    return out


def _readers(nodes: list[Node]) -> dict[str, list[Node]]:
    readers: dict[str, list[Node]] = {}
    for n in nodes:
        for name in n.inputs:
            readers.setdefault(name, []).append(n)
    return readers


def _fold_factors(nodes: list[Node]) -> list[Node]:
    """Each SCALE (times a constant) taken into the matrix product that feeds it alone, or
    that it alone feeds (either operand: the product is linear in both), as its factor."""
    readers, producer = _readers(nodes), {n.output: n for n in nodes}
    out = []
    for n in nodes:
        if n.kind != Kind.SCALE:
            out.append(n)
            continue
        src, users = producer.get(n.inputs[0]), readers.get(n.output, [])
        alone = src is not None and len(readers[src.output]) == 1 and src.act == "none"
        if alone and src.kind == Op.BATCH_MATMUL:
            src.attrs["factor"] = src.attrs.get("factor", 1.0) * n.attrs["factor"]
            for u in users:
                u.inputs = [src.output if i == n.output else i for i in u.inputs]
            continue
        if len(users) == 1 and users[0].kind == Op.BATCH_MATMUL and users[0].inputs.count(n.output) == 1:
            users[0].attrs["factor"] = users[0].attrs.get("factor", 1.0) * n.attrs["factor"]
            users[0].inputs = [n.inputs[0] if i == n.output else i for i in users[0].inputs]
            readers.setdefault(n.inputs[0], []).append(users[0])
            continue
        raise TbnCompileError(f"{n.where}: multiplying by a constant is supported beside a matrix product of "
                              "two activations (attention's scaling), which takes it as its factor; fold it "
                              "into a layer's weights, or use a layer")
    return out


def _cancel_transposes(nodes: list[Node]) -> list[Node]:
    """A transpose that undoes the one before it (channels-last and back around a Keras layer)
    is no op: its readers read the first one's input; the first goes too if nothing else reads it."""
    producer, rename = {n.output: n for n in nodes}, {}
    for n in nodes:
        n.inputs = [rename.get(i, i) for i in n.inputs]
        src = producer.get(n.inputs[0]) if n.kind == Op.TRANSPOSE else None
        if src is not None and src.kind == Op.TRANSPOSE \
                and all(src.attrs["perm"][q] == k for k, q in enumerate(n.attrs["perm"])):
            rename[n.output] = src.inputs[0]
    uses = Counter(name for n in nodes if n.output not in rename for name in n.inputs)
    return [n for n in nodes if n.output not in rename and (n.kind != Op.TRANSPOSE or uses[n.output])]


def _fold_transposes(nodes: list[Node]) -> list[Node]:
    """A transpose of the last two axes read only by matrix products: their operand read
    transposed (BATCH_MATMUL's ta, tb), no copy made."""
    readers = _readers(nodes)
    out = []
    for n in nodes:
        users = readers.get(n.output, [])
        rank = len(n.attrs.get("perm", ()))
        swap = [*range(rank - 2), rank - 1, rank - 2]
        if n.kind != Op.TRANSPOSE or rank < 2 or n.attrs["perm"] != swap or not users \
                or any(u.kind != Op.BATCH_MATMUL for u in users):
            out.append(n)
            continue
        for u in users:
            for pos, name in enumerate(u.inputs):
                if name == n.output:
                    key = "ta" if pos == 0 else "tb"
                    u.attrs[key] = 1 - u.attrs.get(key, 0)
            u.inputs = [n.inputs[0] if i == n.output else i for i in u.inputs]
    return out


def _folded(pad: Node, readers: list[Node]) -> dict[str, int] | None:
    """The geometry of the one reader that takes ``pad`` into its own padding, already added
    to: a convolution or average pool for zeros, a max pool for -inf, within its limits (255 a
    side; a pool pads at most half its window); None where no reader can."""
    reader, value = readers[0] if len(readers) == 1 else None, pad.attrs["value"]
    if reader is None or not ((value == 0 and _is(reader.kind, Trait.CONV))
                              or (reader.kind, value) in ((Op.AVGPOOL2D, 0), (Op.MAXPOOL2D, -np.inf))):
        return None
    geom = reader.attrs["geom"] if _is(reader.kind, Trait.CONV) else reader.attrs
    g = {side: geom[side] + extra for side, extra in pad.attrs["pads"].items()}
    past_half = 2 * max(g["pt"], g["pb"]) > geom["kh"] or 2 * max(g["pl"], g["pr"]) > geom["kw"]
    if max(g.values()) > 255 or (_is(reader.kind, Trait.WINDOW) and past_half):
        return None
    geom.update(g)
    return geom


def _fold_pads(nodes: list[Node]) -> list[Node]:
    """Each PAD added to the padding of the convolution or pool that reads it, and dropped; one
    that none can take stays a PAD op."""
    readers = _readers(nodes)
    out = []
    for n in nodes:
        if n.kind != Kind.PAD:
            out.append(n)
            continue
        pads, value = n.attrs["pads"], n.attrs["value"]
        if len(n.shape) < 3 and (pads["pt"] or pads["pb"]):
            raise TbnCompileError(f"{n.where}: padding a 1-D feature map's channel axis is not supported")
        if np.isnan(value) or max(pads.values()) > 255:
            raise TbnCompileError(f"{n.where}: padding by {max(pads.values())} with {value}; tbn pads at "
                                  "most 255 a side, with a number")
        if _folded(n, readers.get(n.output, [])) is None:
            attrs = {**pads, "value": value, "conv1d": len(n.shape) == 2}
            out.append(Node(Op.PAD, n.inputs, n.output, n.shape, n.where, attrs))
            continue
        reader = readers[n.output][0]
        reader.inputs = [n.inputs[0] if i == n.output else i for i in reader.inputs]
        readers.setdefault(n.inputs[0], []).append(reader)
    return out
