"""The paper's token models at MNIST scale, for ``tbn train`` (tbn.train.recipes): an
MLP-Mixer over 7x7 patches. Written in what tbn compiles (a patch convolution, LayerNorm,
linear layers over tokens, transposes, GELU, a mean over the tokens), so that the trained,
tiled model reaches a microcontroller unchanged."""

from __future__ import annotations

import torch
from torch import nn


class MixerBlock(nn.Module):
    """Token mixing (an MLP across the patches, on the transposed map), then channel mixing
    (an MLP across the features), each after a LayerNorm and with a residual."""

    def __init__(self, tokens: int, dim: int, token_hidden: int, channel_hidden: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.token1, self.token2 = nn.Linear(tokens, token_hidden), nn.Linear(token_hidden, tokens)
        self.channel1, self.channel2 = nn.Linear(dim, channel_hidden), nn.Linear(channel_hidden, dim)
        self.gelu = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, tokens, dim)
        y = self.norm1(x).transpose(1, 2)
        x = x + self.token2(self.gelu(self.token1(y))).transpose(1, 2)
        return x + self.channel2(self.gelu(self.channel1(self.norm2(x))))


class Mixer(nn.Module):
    """MLP-Mixer (Tolstikhin et al. 2021) on 28x28 digits: 16 patches of 7x7 embedded by a
    stride-7 convolution, ``depth`` blocks, a LayerNorm, the mean over the patches, a classifier."""

    def __init__(self, dim: int = 64, depth: int = 4, token_hidden: int = 32, channel_hidden: int = 128,
                 patch: int = 7, size: int = 28, classes: int = 10) -> None:
        super().__init__()
        tokens = (size // patch) ** 2
        self.embed = nn.Conv2d(1, dim, patch, stride=patch)
        self.blocks = nn.Sequential(*(MixerBlock(tokens, dim, token_hidden, channel_hidden)
                                      for _ in range(depth)))
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)  # (N, dim, 4, 4)
        x = x.reshape(x.shape[0], x.shape[1], -1).transpose(1, 2)  # (N, 16 patches, dim)
        return self.head(self.norm(self.blocks(x)).mean(dim=1))


def mixer() -> nn.Module:
    """MNIST MLP-Mixer: 7x7 patches as 16 tokens of 64 features, four blocks."""
    return Mixer()
