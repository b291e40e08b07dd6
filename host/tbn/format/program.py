"""The decoded form of a ``.tbn`` file: what the writer serialises and the reader returns."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tbn.errors import TbnError
from tbn.format.spec import DTYPE_SIZE, Act, DType, Flag, Op


class TbnFormatError(TbnError, ValueError):
    """A ``.tbn`` file (or a program about to be written) breaks the format."""


@dataclass
class Tensor:
    """An activation tensor (no batch dimension) and its place in the arena."""

    dtype: DType
    shape: tuple[int, ...]
    offset: int = 0
    scale: float = 0.0  # INT8 files: real = scale * (q - zero_point)
    zero_point: int = 0
    qmin: int = -128  # INT8 files: every op clamps its output to [qmin, qmax]
    qmax: int = 127

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * DTYPE_SIZE[self.dtype]


@dataclass
class Vector:
    """A scale or bias vector; REQUANT data has shape ``(count, 2)`` (multiplier, shift), RQ16
    data is the int16 multipliers and ``pre_shift``, ``shift`` the layer's two shifts."""

    dtype: DType
    data: np.ndarray
    pre_shift: int = 0  # RQ16 only
    shift: int = 0  # RQ16 only

    @property
    def count(self) -> int:
        return len(self.data)


@dataclass
class Tile:
    n_bits: int
    bits: np.ndarray  # uint8, ceil(n_bits / 8), LSB first


@dataclass
class Operation:
    opcode: Op
    act: Act = Act.NONE
    args: dict[str, int] = field(default_factory=dict)


@dataclass
class Program:
    """A whole model: tensors (0 is the input; the last op's output is the model's
    output), constants, ops in execution order, and the arena size."""

    flags: int = 0
    tensors: list[Tensor] = field(default_factory=list)
    tiles: list[Tile] = field(default_factory=list)
    scales: list[Vector] = field(default_factory=list)
    biases: list[Vector] = field(default_factory=list)
    dense: list[np.ndarray] = field(default_factory=list)
    ops: list[Operation] = field(default_factory=list)
    arena_size: int = 0
    minor: int = 0

    @property
    def int8(self) -> bool:
        return bool(self.flags & Flag.INT8)

    @property
    def output(self) -> int:
        return self.ops[-1].args["output"]

    def add_tile(self, bits: np.ndarray, n_bits: int) -> int:
        """Add packed tile bits, reusing an identical tile already stored; returns its id."""
        bits = np.ascontiguousarray(bits, dtype=np.uint8)
        for i, t in enumerate(self.tiles):
            if t.n_bits == n_bits and np.array_equal(t.bits, bits):
                return i
        self.tiles.append(Tile(n_bits, bits))
        return len(self.tiles) - 1

    def add_scale(self, dtype: DType, data: np.ndarray) -> int:
        self.scales.append(Vector(dtype, np.asarray(data)))
        return len(self.scales) - 1

    def add_bias(self, dtype: DType, data: np.ndarray) -> int:
        self.biases.append(Vector(dtype, np.asarray(data)))
        return len(self.biases) - 1

    def add_dense(self, weights: np.ndarray) -> int:
        self.dense.append(np.ascontiguousarray(weights, dtype=np.int8).reshape(-1))
        return len(self.dense) - 1
