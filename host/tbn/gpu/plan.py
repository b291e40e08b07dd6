"""How a tiled op maps onto the CUDA kernels: pure host-side arithmetic, no GPU needed.

The kernels compute ``D`` distinct sign dot products per input and write each to the
``O / D`` outputs that share it (``o = c + r*D``), scaled by ``scale[o]``,
``scale[r]`` or ``scale[0]``. ``D = O / p`` when ``p`` divides ``O`` (and, for a
convolution, there is one group); otherwise ``D = O`` and each row reads the tile from
its own offset. The one case the kernels do not cover is a per-repetition scale whose
repetition changes inside a row (``p`` does not divide ``O``): that layer runs as a
dense matrix, expanded once on the GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tbn.format.program import Operation, Program
from tbn.format.spec import ScaleMode, Trait, has, scale_mode
from tbn.format.validate import weight_count


@dataclass(frozen=True)
class TiledPlan:
    out_features: int  # O
    fan_in: int  # K
    n_bits: int  # T
    p: int
    distinct: int  # D
    scale_mode: ScaleMode  # the kernels take its value (tbn_format.h: TBN_SCALE_*)
    dense_fallback: bool

    @property
    def aligned(self) -> bool:
        """Rows start on tile-word boundaries and never wrap: the shared-memory GEMM applies."""
        return self.fan_in % 32 == 0 and self.distinct * self.p == self.out_features


def plan_tiled(prog: Program, op: Operation) -> TiledPlan:
    o, k = weight_count(prog, op)
    t = prog.tiles[op.args["tile"]].n_bits
    p = o * k // t
    count = prog.scales[op.args["scale"]].count
    groups = op.args.get("groups", 1)
    shared = o % p == 0 and groups == 1
    d = o // p if shared else o
    # INT8: REQUANT is applied after the sums, per output
    mode = ScaleMode.PER_OUTPUT if prog.int8 else scale_mode(count, o, p)
    fallback = mode == ScaleMode.PER_REPETITION and not shared
    return TiledPlan(o, k, t, p, d, mode, fallback)


def tile_words(bits: np.ndarray, n_bits: int) -> np.ndarray:
    """The packed tile as little-endian uint32 words (ceil(T/32) of them, zero-padded)."""
    words = (n_bits + 31) // 32
    raw = np.zeros(words * 4, dtype=np.uint8)
    raw[: len(bits)] = bits
    return raw.view("<u4").astype(np.uint32)


def is_tiled(op: Operation) -> bool:
    return has(op.opcode, Trait.TILED)
