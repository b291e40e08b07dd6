"""The geometry the capture stage reads from PyTorch's modules and calls: convolution and
pooling windows (1-D ones as a one-row 2-D window, as Conv1d is stored), constant padding."""

from __future__ import annotations

from typing import Any

from torch import fx, nn

from tbn.compiler.graph import Kind, TbnCompileError


def pair(v: Any) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def first(v: Any) -> int:
    return int(v[0]) if isinstance(v, tuple | list) else int(v)


def is_one(size: Any) -> bool:
    """Whether an adaptive pool's output_size is 1 on every axis."""
    return all(v == 1 for v in (size if isinstance(size, tuple | list) else (size,)))


def conv_geometry(m: nn.Module, where: str) -> dict[str, int]:
    one_d = isinstance(m, nn.Conv1d)
    if m.padding_mode != "zeros":
        raise TbnCompileError(f"{where}: padding_mode={m.padding_mode!r} is not supported (only 'zeros')")
    k = (1, m.kernel_size[0]) if one_d else pair(m.kernel_size)
    s = (1, m.stride[0]) if one_d else pair(m.stride)
    d = (1, m.dilation[0]) if one_d else pair(m.dilation)
    if isinstance(m.padding, str):
        if m.padding == "valid":
            pads = [(0, 0), (0, 0)]
        else:  # 'same': PyTorch puts the odd extra pixel on the bottom/right
            pads = []
            for kk, dd in zip(k, d, strict=True):
                total = dd * (kk - 1)
                pads.append((total // 2, total - total // 2))
    else:
        p = (0, m.padding[0]) if one_d else pair(m.padding)
        pads = [(p[0], p[0]), (p[1], p[1])]
    geom = {"kh": k[0], "kw": k[1], "sh": s[0], "sw": s[1], "dh": d[0], "dw": d[1],
            "pt": pads[0][0], "pb": pads[0][1], "pl": pads[1][0], "pr": pads[1][1], "groups": m.groups}
    if any(v > 255 for key, v in geom.items() if key != "groups"):
        raise TbnCompileError(f"{where}: kernel, stride, dilation and padding must be below 256")
    return geom


def pool_geometry(kernel: Any, stride: Any, padding: Any) -> dict[str, int]:
    k = pair(kernel)
    s = pair(stride if stride not in (None, []) else kernel)
    p = pair(padding)
    return {"kh": k[0], "kw": k[1], "sh": s[0], "sw": s[1], "pt": p[0], "pb": p[0], "pl": p[1], "pr": p[1]}


def pad(pads: Any, value: Any, where: str) -> tuple[Kind, dict[str, Any]]:
    """A constant pad of the last one or two axes, in F.pad's (left, right[, top, bottom]) order."""
    pads = [int(v) for v in pads]
    if len(pads) not in (2, 4) or min(pads) < 0:
        raise TbnCompileError(f"{where}: padding {pads}: only non-negative padding of the last one or two "
                              f"axes is supported")
    left, right, top, bottom = (*pads, 0, 0)[:4]
    return Kind.PAD, {"pads": {"pt": top, "pb": bottom, "pl": left, "pr": right},
                      "value": float(0.0 if value is None else value)}


def pool1d(kernel: Any, stride: Any, padding: Any) -> dict[str, Any]:
    """A 1-D pool as the 2-D one over a (C, 1, W) map (as Conv1d is stored)."""
    k = first(kernel)
    s, p = first(stride if stride not in (None, []) else k), first(padding)
    return {**pool_geometry((1, k), (1, s), (0, p)), "conv1d": True}


MAX_WINDOW = 255  # a pool's window side in the bytecode


def max_windows(side: int) -> list[int] | None:
    """Windows, each at most :data:`MAX_WINDOW`, whose product is ``side``: a max over more
    values than one pool's window holds, as successive max pools (a max of maxes is the max).
    The largest divisor first; None when ``side`` has a prime factor past the limit."""
    windows = []
    while side > MAX_WINDOW:
        k = next((d for d in range(MAX_WINDOW, 1, -1) if side % d == 0), None)
        if k is None:
            return None
        windows.append(k)
        side //= k
    return [*windows, side] if side > 1 or not windows else windows


def global_max(x: fx.Node, where: str, one_d: bool) -> dict[str, Any]:
    """A max pool whose window is the whole (C, H, W) or (C, W) map (lowered as several where a
    side is past one window's limit: :func:`max_windows`)."""
    h, w = (1, *spatial(x)) if one_d else spatial(x)
    for side in (h, w):
        if max_windows(side) is None:
            raise TbnCompileError(f"{where}: a global max pool over {h}x{w}: {side} has a prime factor past "
                                  f"{MAX_WINDOW}, one pool window's limit, so no chain of pools covers it")
    return {**pool_geometry((h, w), (h, w), 0), "conv1d": one_d}


def spatial(x: fx.Node) -> tuple[int, ...]:
    return tuple(x.meta["tensor_meta"].shape[2:])


def spatial_reduce(x: fx.Node, dims: Any, where: str, is_max: bool) -> dict[str, Any] | None:
    """``mean``/``amax`` over every spatial axis of a (N, C, H, W) or (N, C, W) map: the
    attributes of GLOBAL_AVGPOOL, or of a max pool over the whole map; None for other axes."""
    rank = len(x.meta["tensor_meta"].shape)
    axes = {d % rank for d in (dims if isinstance(dims, tuple | list) else (dims,))}
    if rank not in (3, 4) or axes != set(range(2, rank)):
        return None
    return global_max(x, where, rank == 3) if is_max else {"conv1d": rank == 3}
