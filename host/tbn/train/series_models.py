"""A time-series forecaster (the paper reports forecasting beside vision): 1-D convolutions
over a window of past samples, a linear head giving the next ones."""

from __future__ import annotations

from torch import nn

from tbn.data.membrane import HORIZON, WINDOW


def forecaster() -> nn.Sequential:
    """128 samples in, 16 out: three stride-2 1-D convs (16, 32, 32 channels, kernel 5) with
    BatchNorm and ReLU, then a 512-16 linear layer."""
    return nn.Sequential(
        nn.Conv1d(1, 16, 5, stride=2, padding=2), nn.BatchNorm1d(16), nn.ReLU(),
        nn.Conv1d(16, 32, 5, stride=2, padding=2), nn.BatchNorm1d(32), nn.ReLU(),
        nn.Conv1d(32, 32, 5, stride=2, padding=2), nn.BatchNorm1d(32), nn.ReLU(),
        nn.Flatten(), nn.Linear(32 * (WINDOW // 8), HORIZON),
    )
