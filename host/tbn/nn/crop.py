"""Transposed convolutions cropped unevenly, as TensorFlow's ``padding="same"`` makes them:
PyTorch's ``padding`` crops both ends alike, TensorFlow's the end one more where the kernel
passes the stride by an odd amount. The Keras front end builds these; the compiler reads
``crop`` as the padding it takes away (tbn.compiler.conv_transpose)."""

from __future__ import annotations

import torch
from torch import nn


class _Cropped:
    """``crop``: (before, after) per spatial axis, taken off the full transposed convolution."""

    crop: tuple[tuple[int, int], ...]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)  # type: ignore[misc]
        for axis, (before, after) in enumerate(self.crop, start=2):
            y = y.narrow(axis, before, y.shape[axis] - before - after)
        return y


class CroppedConvTranspose1d(_Cropped, nn.ConvTranspose1d):
    def __init__(self, *args: object, crop: tuple[tuple[int, int], ...], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.crop = crop


class CroppedConvTranspose2d(_Cropped, nn.ConvTranspose2d):
    def __init__(self, *args: object, crop: tuple[tuple[int, int], ...], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.crop = crop
