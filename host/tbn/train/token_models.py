"""The paper's token models at MNIST scale, for ``tbn train`` (tbn.train.recipes): an
MLP-Mixer and a ViT over 7x7 patches, a ConvMixer over 2x2 ones. Written in what tbn compiles
(patch convolutions, LayerNorm, linear layers over tokens, attention, transposes, GELU, a mean
over the tokens), so that the trained, tiled model reaches a microcontroller unchanged."""

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
                 patch: int = 7, size: int = 28, classes: int = 10, channels: int = 1) -> None:
        super().__init__()
        tokens = (size // patch) ** 2
        self.embed = nn.Conv2d(channels, dim, patch, stride=patch)
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


class SelfAttention(nn.Module):
    """Multi-head self-attention written as four linear layers and the matrix products between
    them, as the authors' ViT writes it (``tile_model`` would split an ``nn.MultiheadAttention``
    the same way: :class:`tbn.nn.SplitAttention`): the query, key, value and output projections
    are tiled like any linear layer. Shapes are fixed at construction (``tokens`` x ``dim``), as
    a compiled model's are."""

    def __init__(self, dim: int, heads: int, tokens: int) -> None:
        super().__init__()
        self.dim, self.heads, self.tokens = dim, heads, tokens
        self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:  # (N, tokens, dim) -> (N, heads, tokens, dim / heads)
        return x.reshape(x.shape[0], self.tokens, self.heads, self.dim // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.query(x)), self._split(self.key(x)), self._split(self.value(x))
        weights = torch.softmax(q @ k.transpose(-2, -1) * (self.dim // self.heads) ** -0.5, dim=-1)
        return self.out((weights @ v).transpose(1, 2).reshape(x.shape[0], self.tokens, self.dim))


class ViTBlock(nn.Module):
    """Pre-norm Transformer encoder block: multi-head self-attention and a GELU MLP, each with
    a residual."""

    def __init__(self, dim: int, heads: int, hidden: int, tokens: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, tokens)
        self.fc1, self.fc2, self.gelu = nn.Linear(dim, hidden), nn.Linear(hidden, dim), nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, tokens, dim)
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(self.gelu(self.fc1(self.norm2(x))))


class ViT(nn.Module):
    """Vision Transformer (Dosovitskiy et al. 2021) on 28x28 digits: 16 patches of 7x7 embedded
    by a stride-7 convolution, positions given by a 3x3 depthwise convolution over the patch
    grid added to it (a conditional position encoding, Chu et al. 2023, in place of a learned
    table: tbn compiles layers, not free parameters), ``depth`` blocks, a LayerNorm, the mean
    over the patches (no class token), a classifier."""

    def __init__(self, dim: int = 64, depth: int = 4, heads: int = 4, hidden: int = 128, patch: int = 7,
                 size: int = 28, classes: int = 10, channels: int = 1) -> None:
        super().__init__()
        self.embed = nn.Conv2d(channels, dim, patch, stride=patch)
        self.position = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        tokens = (size // patch) ** 2
        self.blocks = nn.Sequential(*(ViTBlock(dim, heads, hidden, tokens) for _ in range(depth)))
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        x = x + self.position(x)  # (N, dim, 4, 4)
        x = x.reshape(x.shape[0], x.shape[1], -1).transpose(1, 2)  # (N, 16 patches, dim)
        return self.head(self.norm(self.blocks(x)).mean(dim=1))


def vit() -> nn.Module:
    """MNIST ViT: 7x7 patches as 16 tokens of 64 features, four blocks of 4 heads."""
    return ViT()


class ConvMixer(nn.Module):
    """ConvMixer (Trockman and Kolter 2022): a patch convolution, then ``depth`` blocks of a
    depthwise convolution (with a residual) and a pointwise one, each followed by BatchNorm and
    GELU; a global average pool and a classifier. The paper puts GELU before BatchNorm; here
    BatchNorm comes first, so it folds into the convolution (INT8 runs no BatchNorm alone)."""

    def __init__(self, dim: int = 48, depth: int = 5, kernel: int = 5, patch: int = 2,
                 classes: int = 10, channels: int = 1) -> None:
        super().__init__()

        def act(channels: int) -> list[nn.Module]:
            return [nn.BatchNorm2d(channels), nn.GELU()]
        self.embed = nn.Sequential(nn.Conv2d(channels, dim, patch, stride=patch), *act(dim))
        self.depthwise = nn.ModuleList(
            nn.Sequential(nn.Conv2d(dim, dim, kernel, padding=kernel // 2, groups=dim), *act(dim))
            for _ in range(depth))
        self.pointwise = nn.ModuleList(nn.Sequential(nn.Conv2d(dim, dim, 1), *act(dim)) for _ in range(depth))
        self.pool, self.head = nn.AdaptiveAvgPool2d(1), nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        for depthwise, pointwise in zip(self.depthwise, self.pointwise, strict=True):
            x = pointwise(x + depthwise(x))
        return self.head(self.pool(x).flatten(1))


def convmixer() -> nn.Module:
    """MNIST ConvMixer: 2x2 patches (a 14x14 grid of 48 channels), five blocks with 5x5 depthwise
    convolutions."""
    return ConvMixer()


# The paper's CIFAR-10 runs (tbn-method.md: Adam 1e-4, cosine, 200 epochs, layers under 64K weights
# at p=1). The authors' exact sizes are not in our notes: these are the common CIFAR-10 sizes of
# each family, 4x4 patches (64 tokens) for the Mixer and the ViT, Trockman and Kolter's
# ConvMixer-256/8 (5x5 kernels, 2x2 patches).

def mixer_cifar() -> nn.Module:
    """CIFAR-10 MLP-Mixer: 4x4 patches as 64 tokens of 128 features, eight blocks (token MLP 64,
    channel MLP 512)."""
    return Mixer(dim=128, depth=8, token_hidden=64, channel_hidden=512, patch=4, size=32, channels=3)


def vit_cifar() -> nn.Module:
    """CIFAR-10 ViT: 4x4 patches as 64 tokens of 128 features, six blocks of 4 heads (MLP 256)."""
    return ViT(dim=128, depth=6, heads=4, hidden=256, patch=4, size=32, channels=3)


def convmixer_cifar() -> nn.Module:
    """CIFAR-10 ConvMixer-256/8: 2x2 patches (a 16x16 grid of 256 channels), eight blocks with
    5x5 depthwise convolutions."""
    return ConvMixer(dim=256, depth=8, kernel=5, patch=2, channels=3)
