"""tbn: Tiled Bit Networks for microcontrollers.

Train sub-bit networks in PyTorch (:mod:`tbn.nn`, :func:`tbn.tile_model`,
:mod:`tbn.train`), compile them to ``.tbn`` bytecode (:func:`tbn.compile_model`) and run
them (:mod:`tbn.runtime`, which needs numpy only). Every error tbn raises about its input
is a :class:`TbnError`.

Importing ``tbn`` needs the standard library only (make runs ``python3 -m tbn.paths``
before any virtual environment exists): the names below that need torch are imported on
first use, and declared for type checkers and IDEs under ``TYPE_CHECKING``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tbn.errors import TbnError, UsageError

if TYPE_CHECKING:
    from tbn.compiler import compile_model
    from tbn.convert import BudgetError, LayerReport, TilingReport, plan_tiling, tile_model

__version__ = "0.1.0"
_LAZY = {
    "BudgetError": ("tbn.convert", "BudgetError"), "LayerReport": ("tbn.convert", "LayerReport"),
    "TilingReport": ("tbn.convert", "TilingReport"), "plan_tiling": ("tbn.convert", "plan_tiling"),
    "tile_model": ("tbn.convert", "tile_model"), "compile_model": ("tbn.compiler", "compile_model"),
    "compile": ("tbn.compiler", "compile_model"),  # the older name, which shadows the builtin
}
# a literal list, so that type checkers and IDEs read it
__all__ = ["BudgetError", "LayerReport", "TbnError", "TilingReport", "UsageError", "__version__",
           "compile_model", "plan_tiling", "tile_model"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'tbn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
