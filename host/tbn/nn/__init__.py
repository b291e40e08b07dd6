"""Tiled Bit Network layers and the pure tiling math they are built on."""

from tbn.nn.layers import (
    TILED_TYPES,
    TiledConv1d,
    TiledConv2d,
    TiledLinear,
    TileExport,
    is_tiled,
)
from tbn.nn.tiling import divisors, pack_bits, unpack_bits

__all__ = [
    "TILED_TYPES",
    "TileExport",
    "TiledConv1d",
    "TiledConv2d",
    "TiledLinear",
    "divisors",
    "is_tiled",
    "pack_bits",
    "unpack_bits",
]
