"""``nn.MultiheadAttention`` (``batch_first=True``) and tbn's :class:`~tbn.nn.attention.SplitAttention`
(its projections as four layers, tiled or not) as the capture stage's nodes: the three input
projections as linear layers over tokens, the heads split by a reshape and a transpose,
``q k^T / sqrt(d)`` and ``softmax(.) v`` as matrix products of two activations (the key read
transposed), the heads joined, and the output projection."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import fx, nn

from tbn.compiler.graph import Node, TbnCompileError
from tbn.format.spec import Op
from tbn.nn.attention import SplitAttention
from tbn.nn.layers import is_tiled


def _projections(m: nn.MultiheadAttention | SplitAttention) -> list[nn.Module]:
    """The query, key and value projections as linear layers (PyTorch packs them into one
    weight when the three have the model's width)."""
    if isinstance(m, SplitAttention):
        return [m.q_proj, m.k_proj, m.v_proj]
    e, out = m.embed_dim, []
    weights = ([m.in_proj_weight[i * e:(i + 1) * e] for i in range(3)] if m._qkv_same_embed_dim
               else [m.q_proj_weight, m.k_proj_weight, m.v_proj_weight])
    for i, w in enumerate(weights):
        lin = nn.Linear(w.shape[1], e, bias=m.in_proj_bias is not None)
        with torch.no_grad():
            lin.weight.copy_(w)
            if m.in_proj_bias is not None:
                lin.bias.copy_(m.in_proj_bias[i * e:(i + 1) * e])
        out.append(lin.eval())
    return out


def _check(m: nn.MultiheadAttention | SplitAttention, node: fx.Node, where: str) -> None:
    if isinstance(m, nn.MultiheadAttention) and not m.batch_first:
        raise TbnCompileError(f"{where}: MultiheadAttention with batch_first=False reads (tokens, batch, "
                              "features); build it with batch_first=True")
    if isinstance(m, nn.MultiheadAttention) and (m.bias_k is not None or m.add_zero_attn):
        raise TbnCompileError(f"{where}: MultiheadAttention with add_bias_kv or add_zero_attn: not supported")
    extra = {k: v for k, v in node.kwargs.items() if k not in ("query", "key", "value", "need_weights")}
    if any(v not in (None, False) for v in (*node.args[3:], *extra.values())):
        raise TbnCompileError(f"{where}: MultiheadAttention with a mask or is_causal is not supported; tbn "
                              "attends over every token")


def expand_attention(m: nn.MultiheadAttention | SplitAttention, node: fx.Node, where: str,
                     val: Callable[[object, str], str]) -> list[Node]:
    """The nodes of one attention call; the last one's output is named ``node.name``."""
    _check(m, node, where)
    args = [node.kwargs.get(k, node.args[i] if i < len(node.args) else None)
            for i, k in enumerate(("query", "key", "value"))]
    ins = [val(a, where) for a in args]
    shapes = [tuple(a.meta["tensor_meta"].shape[1:]) for a in args]
    h, d, e = m.num_heads, m.head_dim, m.embed_dim
    t, s = shapes[0][0], shapes[1][0]
    base, nodes = node.name, []

    def add(kind: Op, inputs: list[str], tag: str, shape: tuple[int, ...], **attrs: object) -> str:
        nodes.append(Node(kind, inputs, f"{base}/{tag}", shape, where, dict(attrs)))
        return nodes[-1].output

    heads = []
    for lin, x, tag, n in zip(_projections(m), ins, "qkv", (t, s, s), strict=True):
        y = add(_linear_op(lin), [x], tag, (n, e), module=lin)
        y = add(Op.RESHAPE, [y], f"{tag}_split", (n, h, d))
        heads.append(add(Op.TRANSPOSE, [y], f"{tag}_heads", (h, n, d), perm=[1, 0, 2]))
    scores = add(Op.BATCH_MATMUL, heads[:2], "scores", (h, t, s), tb=1, factor=1.0 / math.sqrt(d))
    weights = add(Op.SOFTMAX, [scores], "weights", (h, t, s), dim=-1)
    mixed = add(Op.BATCH_MATMUL, [weights, heads[2]], "mixed", (h, t, d))
    y = add(Op.TRANSPOSE, [mixed], "tokens", (t, h, d), perm=[1, 0, 2])
    y = add(Op.RESHAPE, [y], "joined", (t, e))
    nodes.append(Node(_linear_op(m.out_proj), [y], base, (t, e), where, {"module": m.out_proj}))
    return nodes


def _linear_op(lin: nn.Module) -> Op:
    return Op.TILED_LINEAR if is_tiled(lin) else Op.DENSE_LINEAR
