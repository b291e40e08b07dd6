"""Channels last (Keras, TFLite) to channels first (PyTorch, every ``.tbn``): the one place the
frameworks' input layouts meet."""

from __future__ import annotations

from typing import Any

import numpy as np


def channels_first(x: Any) -> np.ndarray:
    """A channels-last batch, ``(N, H, W, C)`` or ``(N, W, C)``, as a compiled model reads it:
    ``(N, C, H, W)`` or ``(N, C, W)``; flat batches as they are."""
    a = np.asarray(x, dtype=np.float32)
    return np.moveaxis(a, -1, 1).copy() if a.ndim >= 3 else a
