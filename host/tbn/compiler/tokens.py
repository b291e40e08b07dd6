"""What the capture stage reads from PyTorch's token and layout operations: permutations,
reductions over any axes, nearest upsampling factors, LayerNorm and constant factors; each
as the attributes of the op it becomes, the batch axis (0) taken out."""

from __future__ import annotations

import operator
from typing import Any

from torch import fx, nn

from tbn.compiler.graph import Kind, TbnCompileError
from tbn.format.spec import MAX_DIMS, Op


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(x.meta["tensor_meta"].shape)


def permutation(x: fx.Node, dims: list[int], where: str) -> dict[str, Any]:
    """``x.permute(*dims)`` without the batch axis, which must stay first."""
    rank = len(_shape(x))
    dims = [int(d) % rank for d in dims]
    if sorted(dims) != list(range(rank)):
        raise TbnCompileError(f"{where}: permute{tuple(dims)} is not a permutation of {rank} axes")
    if dims[0] != 0:
        raise TbnCompileError(f"{where}: a transpose or permute moves the batch axis 0; keep it first")
    if rank - 1 > MAX_DIMS:
        raise TbnCompileError(f"{where}: a {rank - 1}-D value; tbn holds at most {MAX_DIMS} axes")
    return {"perm": [d - 1 for d in dims[1:]]}


def swap(x: fx.Node, d0: int, d1: int, where: str) -> dict[str, Any]:
    """``x.transpose(d0, d1)`` as a permutation."""
    rank = len(_shape(x))
    dims = list(range(rank))
    dims[d0 % rank], dims[d1 % rank] = dims[d1 % rank], dims[d0 % rank]
    return permutation(x, dims, where)


def reduce_axes(x: fx.Node, dims: Any, keepdim: bool, where: str) -> dict[str, Any]:
    """``mean``/``amax`` over any axes but the batch's: lowered as a transpose of them to
    the end, a global pool over them, and a reshape (tbn.compiler.eltwise)."""
    rank = len(_shape(x))
    axes = sorted({int(d) % rank for d in (dims if isinstance(dims, tuple | list) else (dims,))})
    if 0 in axes:
        raise TbnCompileError(f"{where}: a reduction over the batch axis 0")
    return {"axes": [a - 1 for a in axes], "keepdim": bool(keepdim)}


def upsample_factors(x: fx.Node, node: fx.Node, mode: str, where: str) -> dict[str, Any]:
    """Integer nearest-upsampling factors of a (N, C, H, W) or (N, C, W) map, from the shapes."""
    if mode != "nearest":
        raise TbnCompileError(f"{where}: upsampling mode {mode!r}; tbn runs 'nearest'")
    src, dst = _shape(x), _shape(node)
    if len(src) not in (3, 4) or any(b % a for a, b in zip(src[2:], dst[2:], strict=True)):
        raise TbnCompileError(f"{where}: upsampling {src[1:]} to {dst[1:]}; tbn repeats each value a whole "
                              "number of times along the spatial axes of a (C, H, W) or (C, W) map")
    f = [b // a for a, b in zip(src[2:], dst[2:], strict=True)]
    sh, sw = (1, f[0]) if len(f) == 1 else f
    if max(sh, sw) > 255:
        raise TbnCompileError(f"{where}: an upsampling factor of {max(sh, sw)}; at most 255")
    return {"sh": sh, "sw": sw, "conv1d": len(f) == 1}


def layernorm(m: nn.LayerNorm, where: str) -> tuple[Op, dict[str, Any]]:
    if len(m.normalized_shape) != 1:
        raise TbnCompileError(f"{where}: LayerNorm over {tuple(m.normalized_shape)}; tbn normalises over the "
                              "last axis only (normalized_shape of one int)")
    return Op.LAYERNORM, {"module": m}


def constant_factor(node: fx.Node, where: str) -> tuple[Kind, dict[str, Any]] | None:
    """``x * c``, ``c * x`` or ``x / c`` with a number ``c``: a factor for the matrix product
    beside it (tbn.compiler.fold), else None."""
    args = node.args
    if len(args) != 2 or node.kwargs:
        return None
    tensor_first = isinstance(args[0], fx.Node)
    value = args[1] if tensor_first else args[0]
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    if node.target in (operator.truediv, "div", "__truediv__") and tensor_first:
        if value == 0:
            raise TbnCompileError(f"{where}: division by zero")
        return Kind.SCALE, {"factor": 1.0 / float(value)}
    if node.target in (operator.mul, "mul", "__mul__", "__rmul__"):
        return Kind.SCALE, {"factor": float(value)}
    return None
