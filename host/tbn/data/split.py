"""One split of an image dataset, and how models see it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from tbn.errors import UsageError


@dataclass(frozen=True)
class Split:
    """``images`` uint8 ``(n, C, H, W)`` (or ``(n, H, W)``: one channel), ``labels`` uint8 ``(n,)``."""

    images: np.ndarray
    labels: np.ndarray
    MEAN: ClassVar[tuple[float, ...]] = (0.0,)  # per channel, of pixels scaled to [0, 1]
    STD: ClassVar[tuple[float, ...]] = (1.0,)

    def normalized(self, n: int | None = None) -> np.ndarray:
        """The first ``n`` images as the models see them: float32 ``(n, C, H, W)``, standardised
        per channel."""
        n = len(self.labels) if n is None else n
        if not 1 <= n <= len(self.labels):
            raise UsageError(f"n must lie in 1..{len(self.labels)}, got {n}")
        x = self.images[:n].astype(np.float32) / 255.0
        x = x[:, None] if x.ndim == 3 else x
        mean = np.array(self.MEAN, np.float32)[:, None, None]
        std = np.array(self.STD, np.float32)[:, None, None]
        return (x - mean) / std
