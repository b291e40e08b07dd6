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
    """Classification PointNet on ``(N, dims, points)`` inputs: the input transform (of
    ``transform`` features) applied as a matrix product, per-point ``features``, their max over
    the points, and a classifier through ``head`` (dropout ``dropout`` before its last layer)."""

    def __init__(self, dims: int = 2, classes: int = 10, features: tuple[int, ...] = (64, 64, 128),
                 head: tuple[int, ...] = (64,), transform: int = 64, dropout: float = 0.0) -> None:
        super().__init__()
        self.transform = InputTransform(dims, transform)
        self.features = _shared((dims, *features))
        self.pool = nn.AdaptiveMaxPool1d(1)
        layers: list[nn.Module] = []
        for cin, cout in pairwise((features[-1], *head)):
            layers += [nn.Linear(cin, cout), nn.BatchNorm1d(cout), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        self.head = nn.Sequential(*layers, nn.Linear(head[-1], classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.transform(x) @ x  # (N, dims, dims) @ (N, dims, points)
        return self.head(self.pool(self.features(x)).flatten(1))


def pointnet() -> nn.Module:
    """MNIST PointNet: 128 ink points a digit, per-point features of 128, 128, 256 and a head of
    128 (twice the float model's usual widths: at p=4 a layer has a quarter as many distinct
    filters, and the max over points keeps only what the filters tell apart)."""
    return PointNet(features=(128, 128, 256), head=(128,))


def pointnet_modelnet40() -> nn.Module:
    """ModelNet40 PointNet (Qi et al.'s classification network without the 64x64 feature
    transform): 1,024 points of (x, y, z), an input transform of 1,024 features, per-point
    features of 64, 64, 64, 128 and 1,024, a 512-256-40 classifier with dropout 0.3."""
    return PointNet(dims=3, classes=40, features=(64, 64, 64, 128, 1024), head=(512, 256), transform=1024,
                    dropout=0.3)
