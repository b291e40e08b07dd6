"""Tiled Bit Network layers and the pure tiling math they are built on.

The names below load on first use (PEP 562), so that ``tbn.nn.options`` (the tiling options,
which the command line's parsers read) is importable without importing torch."""

from __future__ import annotations

from importlib import import_module
from typing import Any

_HOME = {
    "TILED_TYPES": "layers", "TiledConv1d": "layers", "TiledConv2d": "layers", "TiledLinear": "layers",
    "TileExport": "layers", "is_tiled": "layers", "SplitAttention": "attention",
    "divisors": "tiling", "pack_bits": "tiling", "unpack_bits": "tiling",
}
__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'tbn.nn' has no attribute {name!r}")
    value = getattr(import_module(f"tbn.nn.{_HOME[name]}"), name)
    globals()[name] = value  # found once
    return value
