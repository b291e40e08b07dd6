"""The weights, scale and bias vectors of one linear or conv layer, BatchNorm folded in:
what the lowering writes as a tile or dense matrix and its per-output parameters."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from tbn.compiler.graph import Node, TbnCompileError
from tbn.format.spec import Trait, has


def layer_vectors(n: Node, dense_per_tensor: bool = False) -> dict[str, Any]:
    """Weights and float scale/bias vectors of a tiled or dense node, BatchNorm folded in.

    Returns: ``tile`` (bits, n_bits) or ``dense`` (int8 weights); ``scale`` (float64 vector
    of 1, p or O entries); ``bias`` (float64, O) or None; ``affine`` (g, h) when BatchNorm
    could not be folded into per-output scales (p does not divide O). ``dense_per_tensor``:
    one int8 weight scale for the whole matrix (TFLite Micro's per-tensor quantisation)
    instead of one per output row."""
    m = n.attrs["module"]
    o = m.weight.shape[0]
    for name, p in m.named_parameters():
        if not torch.isfinite(p).all():
            raise TbnCompileError(f"{n.where}: its {name} holds NaN or infinity (a diverged training "
                                  f"run?); nothing can be compiled from it")
    g, h = n.attrs.get("bn", (None, None))
    bias = None if m.bias is None else m.bias.detach().double().numpy()
    res: dict[str, Any] = {"affine": None}
    if has(n.kind, Trait.TILED):
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
        if dense_per_tensor and g is not None:  # BatchNorm into the weights, then one scale
            w, bias = w * g[:, None], g * (bias if bias is not None else 0.0) + h
            g = None
        res["dense"], sigma = quantize_dense(w, dense_per_tensor)
        if g is None:
            res["scale"], res["bias"] = sigma, bias
            return res
    res["scale"] = sigma * g
    res["bias"] = g * (bias if bias is not None else 0.0) + h
    return res


def quantize_dense(w: np.ndarray, per_tensor: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 weights of an ``(O, K)`` matrix and their scales: one per row (or one)."""
    ws = np.abs(w).max(axis=None if per_tensor else 1, keepdims=per_tensor).ravel() / 127.0
    ws[ws == 0] = 1.0
    return np.clip(np.rint(w / ws[:, None]), -127, 127).astype(np.int8), ws


def with_stored_weights(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` whose dense (untiled) layers hold the weights a ``.tbn`` stores for
    them, int8 per output row, dequantised: what the reference interpreter computes with."""
    from tbn.compiler.conv_transpose import swap_kernel
    from tbn.nn.layers import is_tiled

    model = copy.deepcopy(model)
    nn = torch.nn
    with torch.no_grad():
        for m in model.modules():
            transposed = isinstance(m, nn.ConvTranspose1d | nn.ConvTranspose2d)  # stored as a convolution's
            if not (transposed or isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d)) or is_tiled(m):
                continue
            kernel = swap_kernel(m.weight.detach(), m.groups) if transposed else m.weight.detach()
            q, ws = quantize_dense(kernel.double().numpy().reshape(kernel.shape[0], -1))
            stored = torch.from_numpy(q * ws[:, None]).reshape(kernel.shape)
            m.weight.copy_(swap_kernel(stored, m.groups) if transposed else stored)
    return model


def per_output(scale: np.ndarray, o: int) -> np.ndarray:
    """A scale vector of 1, p (dividing o) or o entries as o per-output values."""
    return scale[np.arange(o) * len(scale) // o] if len(scale) not in (1, o) else np.broadcast_to(scale, (o,))
