"""PointNet (Qi et al. 2017) at MNIST scale, for ``tbn train --recipe pointnet``: digits as 2-D
point sets (:func:`tbn.data.datasets.mnist_points`), shared per-point MLPs as 1-D convolutions
of kernel 1, the input transform net and its matrix product, a global max pool over the points.
Written in what tbn compiles, so the trained, tiled model reaches a microcontroller unchanged."""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn


def _shared(sizes: tuple[int, ...]) -> nn.Sequential:
    """A per-point MLP: 1x1 convolutions with BatchNorm and ReLU."""
    layers: list[nn.Module] = []
    for cin, cout in pairwise(sizes):
        layers += [nn.Conv1d(cin, cout, 1), nn.BatchNorm1d(cout), nn.ReLU()]
    return nn.Sequential(*layers)


class InputTransform(nn.Module):
    """T-Net: a ``dims`` x ``dims`` matrix per point set, from a per-point MLP, a max over the
    points and two linear layers. The last layer's bias starts as the identity (the original
    adds a constant identity; tbn compiles layers, not free tensors)."""

    def __init__(self, dims: int = 2, width: int = 64) -> None:
        super().__init__()
        self.dims = dims
        self.points = _shared((dims, width // 2, width))
        self.pool = nn.AdaptiveMaxPool1d(1)
        self.fc = nn.Sequential(nn.Linear(width, width // 2), nn.BatchNorm1d(width // 2), nn.ReLU(),
                                nn.Linear(width // 2, dims * dims))
        with torch.no_grad():
            self.fc[-1].weight.zero_()
            self.fc[-1].bias.copy_(torch.eye(dims).flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, dims, points) -> (N, dims, dims)
        return self.fc(self.pool(self.points(x)).flatten(1)).reshape(x.shape[0], self.dims, self.dims)


class PointNet(nn.Module):
    """Classification PointNet on ``(N, 2, points)`` inputs: the input transform applied as a
    matrix product, per-point features of 64, 64 and 128, their max over the points, and a
    128-64-10 classifier."""

    def __init__(self, dims: int = 2, classes: int = 10) -> None:
        super().__init__()
        self.transform = InputTransform(dims)
        self.features = _shared((dims, 64, 64, 128))
        self.pool = nn.AdaptiveMaxPool1d(1)
        self.head = nn.Sequential(nn.Linear(128, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.transform(x) @ x  # (N, dims, dims) @ (N, dims, points)
        return self.head(self.pool(self.features(x)).flatten(1))


def pointnet() -> nn.Module:
    """MNIST PointNet: 128 ink points a digit."""
    return PointNet()
