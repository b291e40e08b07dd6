"""Tiled Bit Network layers and the pure tiling math they are built on.

The names below load on first use (PEP 562), so that ``tbn.nn.options`` (the tiling options,
which the command line's parsers read) is importable without importing torch."""

from __future__ import annotations

from tbn.lazy import lazy_exports

_HOME = {
    "TILED_TYPES": "layers", "TiledConv1d": "layers", "TiledConv2d": "layers", "TiledLinear": "layers",
    "TileExport": "layers", "is_tiled": "layers", "SplitAttention": "attention",
    "divisors": "tiling", "pack_bits": "tiling", "unpack_bits": "tiling",
}
__all__ = sorted(_HOME)

__getattr__ = lazy_exports(__name__, _HOME)
