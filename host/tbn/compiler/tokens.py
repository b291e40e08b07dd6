"""What the capture stage reads from PyTorch's token and layout operations: permutations,
reductions over any axes, nearest upsampling factors, LayerNorm and constant factors; each
as the attributes of the op it becomes, the batch axis (0) taken out."""

from __future__ import annotations

import operator
from typing import Any

import torch
from torch import fx, nn
from torch.nn import functional as F

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


def constant_factor(node: fx.Node, where: str) -> tuple[Kind, dict[str, Any], list] | None:
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
        return Kind.SCALE, {"factor": 1.0 / float(value)}, [args[0]]
    if node.target in (operator.mul, "mul", "__mul__", "__rmul__"):
        return Kind.SCALE, {"factor": float(value)}, [args[0] if tensor_first else args[1]]
    return None


_MATMUL = (operator.matmul, torch.matmul, torch.bmm, "matmul", "__matmul__", "bmm")


def token_call(node: fx.Node, where: str) -> tuple[Op, dict[str, Any], list] | None:
    """The token or layout op a function call or tensor method is (``@``, ``transpose``,
    ``permute``, ``F.layer_norm``, ``F.interpolate``), or None."""
    target, args, kwargs = node.target, node.args, node.kwargs
    if target in _MATMUL and len(args) == 2 and all(isinstance(a, fx.Node) for a in args):
        return Op.BATCH_MATMUL, {}, [args[0], args[1]]
    if target in (torch.transpose, "transpose"):
        d0 = kwargs.get("dim0", args[1] if len(args) > 1 else 0)
        d1 = kwargs.get("dim1", args[2] if len(args) > 2 else 0)
        return Op.TRANSPOSE, swap(args[0], d0, d1, where), [args[0]]
    if target in (torch.permute, "permute"):
        listed = len(args) == 2 and isinstance(args[1], tuple | list)  # x.permute((0, 2, 1)) or (0, 2, 1)
        dims = kwargs.get("dims", args[1] if listed else args[1:])
        return Op.TRANSPOSE, permutation(args[0], list(dims), where), [args[0]]
    if target is F.layer_norm:
        if any(v is not None for v in (*args[2:4], kwargs.get("weight"), kwargs.get("bias"))):
            raise TbnCompileError(f"{where}: F.layer_norm with a weight or bias; use nn.LayerNorm, whose "
                                  "parameters the compiler stores")
        shape = args[1] if len(args) > 1 else kwargs["normalized_shape"]
        eps = kwargs.get("eps", args[4] if len(args) > 4 else 1e-5)
        return (*layernorm(nn.LayerNorm(shape, eps=eps, elementwise_affine=False), where), [args[0]])
    if target is F.interpolate:
        if kwargs.get("align_corners") or kwargs.get("recompute_scale_factor"):
            raise TbnCompileError(f"{where}: interpolate with align_corners or recompute_scale_factor")
        mode = kwargs.get("mode", args[3] if len(args) > 3 else "nearest")
        return Op.UPSAMPLE_NEAREST, upsample_factors(args[0], node, mode, where), [args[0]]
    return None
