"""tbn: Tiled Bit Networks for microcontrollers.

Train sub-bit networks in PyTorch (:mod:`tbn.nn`, :func:`tbn.tile_model`,
:mod:`tbn.train`) and deploy them to small devices.
"""

from tbn.convert import BudgetError, LayerReport, TilingReport, plan_tiling, tile_model

__version__ = "0.1.0"
__all__ = ["BudgetError", "LayerReport", "TilingReport", "__version__", "plan_tiling", "tile_model"]
