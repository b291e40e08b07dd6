"""Keras 3 front end: tiled layers with exactly :mod:`tbn.nn`'s math, ``tile_model`` for
Keras models, and the bridge that lets ``tbn.compile_model`` take a trained Keras model
(docs/keras.md).

TensorFlow stays optional: ``import tbn`` never imports it, and importing this package
without it raises :class:`~tbn.errors.MissingExtraError` naming ``pip install 'tbn[tf]'``.
"""

from __future__ import annotations

from tbn.errors import MissingExtraError

try:
    import keras  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on the install
    raise MissingExtraError(
        f"tbn.keras needs TensorFlow and Keras 3 ({e}): pip install 'tbn[tf]'"
    ) from None

from tbn.keras.convert import tile_model
from tbn.keras.layers import SplitAttention, TiledConv1D, TiledConv2D, TiledDense, is_tiled
from tbn.keras.load import load_model
from tbn.keras.to_torch import channels_first, to_torch

__all__ = ["SplitAttention", "TiledConv1D", "TiledConv2D", "TiledDense", "channels_first", "is_tiled",
           "load_model", "tile_model", "to_torch"]
