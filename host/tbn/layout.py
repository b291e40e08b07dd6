"""TensorFlow's conventions (Keras, TFLite) in PyTorch's terms, the one place they meet: channels
last to channels first (every ``.tbn`` is channels first), and ``padding="same"`` as pads."""

from __future__ import annotations

from typing import Any

import numpy as np


def channels_first(x: Any) -> np.ndarray:
    """A channels-last batch, ``(N, H, W, C)`` or ``(N, W, C)``, as a compiled model reads it:
    ``(N, C, H, W)`` or ``(N, C, W)``; flat batches as they are."""
    a = np.asarray(x, dtype=np.float32)
    return np.moveaxis(a, -1, 1).copy() if a.ndim >= 3 else a


def channels_first_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A channels-last sample shape, ``(H, W, C)`` or ``(W, C)``, in the graph's order."""
    return (shape[-1], *shape[:-1]) if len(shape) >= 2 else tuple(shape)


def same_pads(size: tuple[int, ...], k: tuple[int, ...], s: tuple[int, ...],
              d: tuple[int, ...]) -> list[tuple[int, int]]:
    """(before, after) per spatial axis of TensorFlow's ``padding="same"`` on a map of ``size``
    (kernel ``k``, stride ``s``, dilation ``d``): the odd one after."""
    pads = []
    for n, kk, ss, dd in zip(size, k, s, d, strict=True):
        total = max((-(-n // ss) - 1) * ss + (kk - 1) * dd + 1 - n, 0)
        pads.append((total // 2, total - total // 2))
    return pads
