"""tbn: Tiled Bit Networks for microcontrollers.

Train sub-bit networks in PyTorch (:mod:`tbn.nn`, :func:`tbn.tile_model`,
:mod:`tbn.train`), compile them to ``.tbn`` bytecode (:func:`tbn.compile`) and run them
(:mod:`tbn.runtime`, which needs numpy only: torch is imported on first use of the
training-side names below). Every error tbn raises about its input is a :class:`TbnError`.
"""

from __future__ import annotations

from typing import Any

from tbn.errors import TbnError, UsageError

__version__ = "0.1.0"
_LAZY = {
    "BudgetError": "tbn.convert", "LayerReport": "tbn.convert", "TilingReport": "tbn.convert",
    "plan_tiling": "tbn.convert", "tile_model": "tbn.convert", "compile": "tbn.compiler",
}
__all__ = ["TbnError", "UsageError", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tbn' has no attribute {name!r}")
