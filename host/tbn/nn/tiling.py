"""The Tiled Bit Network math as pure functions (arXiv 2407.12075, docs/method.md).

A weight tensor ``W`` with ``N`` entries and tiling factor ``p`` (``p`` divides ``N``) is
flattened row-major, viewed as ``(p, N/p)``, summed over the first axis and binarised
(``> 0`` -> +1, else -1) into one tile of ``N/p`` signs.  The tile repeats ``p`` times along
the flattened weight; repetition ``i`` is scaled by ``alpha[i]`` (or one alpha for all).

Packed bit order (used by every export and by the bytecode): tile element ``j`` is bit
``j % 8`` (least significant first) of byte ``j // 8``; a set bit means +1, a clear bit
-1; unused high bits of the last byte are zero.  Read as little-endian 32-bit words, tile
element ``j`` is bit ``j % 32`` of word ``j // 32``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from tbn.errors import UsageError
from tbn.format.bits import pack_signs, unpack_signs
from tbn.nn.options import ALPHA_MODES, AlphaMode, Ste, check_ste


def divisors(n: int) -> list[int]:
    """All positive divisors of ``n`` in increasing order."""
    if n < 1:
        raise ValueError(f"divisors of {n} are undefined: need a positive integer")
    small, large = [], []
    for d in range(1, math.isqrt(n) + 1):
        if n % d == 0:
            small.append(d)
            if d != n // d:
                large.append(n // d)
    return small + large[::-1]


def check_p(n: int, p: int, what: str = "weight") -> None:
    """Raise :class:`~tbn.errors.UsageError` listing the valid choices unless ``p`` divides ``n``."""
    if not isinstance(p, int) or isinstance(p, bool) or p < 1 or n % p != 0:
        raise UsageError(
            f"tiling factor p={p!r} does not divide the {n} entries of the {what}; "
            f"valid choices: {', '.join(map(str, divisors(n)))}"
        )


def aggregate(w: torch.Tensor, p: int) -> torch.Tensor:
    """Sum the row-major ``(p, N/p)`` view of ``w`` over its first axis: shape ``(N/p,)``,
    in float64 (exact for float32 weights of any usual spread, so every framework that
    sums in float64 gets the same tile, whatever its order; tbn.keras does)."""
    check_p(w.numel(), p)
    return w.reshape(p, -1).double().sum(dim=0)


def binarize(s: torch.Tensor) -> torch.Tensor:
    """Sign with zero mapped to -1: ``+1 if s > 0 else -1`` (same dtype as ``s``)."""
    return torch.where(s > 0, 1.0, -1.0).to(s.dtype)


def make_tile(w: torch.Tensor, p: int) -> torch.Tensor:
    """The ``N/p`` binary tile (+1/-1) of latent weight ``w``."""
    return binarize(aggregate(w, p)).to(w.dtype)


def compute_alphas(a: torch.Tensor, p: int, mode: AlphaMode) -> torch.Tensor:
    """Scale factors from ``a``: mean |a| per repetition chunk (``p`` values) or overall (1),
    summed in float64 and rounded once to ``a``'s dtype (see :func:`aggregate`)."""
    if mode == "per_tile":
        return (a.reshape(p, -1).double().abs().sum(dim=1) / (a.numel() // p)).to(a.dtype)
    if mode == "single":
        return (a.double().abs().sum() / a.numel()).reshape(1).to(a.dtype)
    raise UsageError(f"alpha mode {mode!r} is not one of {', '.join(ALPHA_MODES)}")


def expand(tile: torch.Tensor, alphas: torch.Tensor, shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
    """Full weight ``What[k] = alpha[k // (N/p)] * tile[k % (N/p)]`` in ``shape``.

    ``alphas`` has ``p`` entries, or one entry applied to every repetition.
    """
    n = math.prod(shape)
    p = n // tile.numel()
    if p * tile.numel() != n:
        raise ValueError(f"a tile of {tile.numel()} entries does not tile a weight of shape {tuple(shape)}")
    if alphas.numel() not in (1, p):
        raise ValueError(f"got {alphas.numel()} alphas for {p} repetitions; need {p} or 1")
    return (alphas.reshape(-1, 1) * tile.reshape(1, -1)).expand(p, -1).reshape(shape)


class _TiledWeight(torch.autograd.Function):
    """``What = expand(sign(aggregate(w)), alphas)`` with a straight-through estimator (no
    clipping): ``dL/dw[k] = alpha[k // (N/p)] * dL/dWhat[k]`` (``ste="scaled"``, the authors')
    or ``dL/dw = dL/dWhat`` (``"identity"``); and the exact gradient for ``alphas``
    (``dL/dalpha_i = sum_j dL/dWhat[i, j] * tile[j]``)."""

    @staticmethod
    def forward(ctx, w: torch.Tensor, alphas: torch.Tensor, p: int, ste: str) -> torch.Tensor:  # type: ignore[override]
        tile = make_tile(w.detach(), p)
        ctx.save_for_backward(tile, alphas.detach())
        ctx.p = p
        ctx.ste = ste
        return expand(tile, alphas.detach(), w.shape)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        tile, alphas = ctx.saved_tensors
        grad_alphas = None
        if ctx.needs_input_grad[1]:
            per_rep = (grad.reshape(ctx.p, -1) * tile).sum(dim=1)
            grad_alphas = per_rep if alphas.numel() != 1 else per_rep.sum().reshape(1)
        grad_w = grad
        if ctx.ste == "scaled":
            grad_w = (grad.reshape(ctx.p, -1) * alphas.reshape(-1, 1)).reshape(grad.shape)
        return grad_w, grad_alphas, None, None


def tiled_weight(w: torch.Tensor, alphas: torch.Tensor, p: int, ste: Ste = "scaled") -> torch.Tensor:
    """Differentiable tiled weight of ``w``; see :class:`_TiledWeight` for ``ste``."""
    check_p(w.numel(), p)
    check_ste(ste)
    return _TiledWeight.apply(w, alphas, p, ste)


def pack_bits(tile: torch.Tensor | np.ndarray) -> np.ndarray:
    """Pack a +1/-1 tile into bytes, least significant bit first (module docstring)."""
    t = tile.detach().cpu().numpy() if isinstance(tile, torch.Tensor) else np.asarray(tile)
    return pack_signs(t)


unpack_bits = unpack_signs


def tile_storage_bits(n: int, p: int, n_alphas: int, n_bias: int,
                      alpha_bits: int = 16, bias_bits: int = 32) -> int:
    """Exact storage of one tiled layer: ``N/p`` tile bits + alphas + bias."""
    check_p(n, p)
    return n // p + n_alphas * alpha_bits + n_bias * bias_bits
