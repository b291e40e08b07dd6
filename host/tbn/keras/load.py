"""Loading a Keras model file as data: ``.keras`` (Keras 3) and the HDF5 files TensorFlow 2.x
wrote (``.h5``), such as MLPerf Tiny's reference models.

A model file from elsewhere must not run code when loaded. Keras 3 loads with ``safe_mode``
(it refuses a ``Lambda`` layer's marshalled bytecode); tbn also reads an HDF5 file's layer
classes from its JSON config first and refuses the file, before Keras deserialises anything,
when one is not a built-in Keras layer or a class the caller names in ``custom_objects``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import keras

from tbn.errors import UsageError

# built-in layers that hold code rather than configuration
_CODE_LAYERS = ("Lambda", "TFOpLambda", "SlicingOpLambda")
_CONTAINERS = ("Functional", "Sequential", "Model")


class _DepthwiseConv2D(keras.layers.DepthwiseConv2D):
    """DepthwiseConv2D reading TensorFlow 2.x's config, which also states ``groups`` (always 1
    there; Keras 3 refuses the key)."""

    def __init__(self, *args: Any, groups: int = 1, **kwargs: Any) -> None:
        if groups != 1:
            raise ValueError(f"DepthwiseConv2D with groups={groups} (TensorFlow 2.x config) is not a "
                             f"depthwise convolution Keras 3 knows")
        super().__init__(*args, **kwargs)


_LEGACY = {"DepthwiseConv2D": _DepthwiseConv2D}


def _layer_classes(config: Mapping[str, Any]) -> Iterator[str]:
    """Every layer class named in a model config, nested models included."""
    for layer in config.get("config", {}).get("layers", []):
        yield layer.get("class_name", "?")
        if layer.get("class_name") in _CONTAINERS:
            yield from _layer_classes(layer)


def _h5_config(path: Path) -> dict[str, Any]:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
    except OSError as e:
        raise UsageError(f"{path}: not an HDF5 Keras model ({e})") from None
    if raw is None:
        raise UsageError(f"{path}: an HDF5 file without a model config (weights only?); tbn needs the "
                         "whole model, as model.save('model.h5') or model.save('model.keras') writes it")
    try:
        return json.loads(raw if isinstance(raw, str) else raw.decode())
    except (ValueError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: its model config is not JSON ({e})") from None


def load_model(path: str | Path, custom_objects: Mapping[str, Any] | None = None) -> keras.Model:
    """The Keras model in ``path`` (``.keras`` or ``.h5``), without its training config, and
    without running code from the file: layers outside Keras' built-in ones (and never
    ``Lambda``) load only when named in ``custom_objects``."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such file (expected a .keras or .h5 Keras model)")
    objects = dict(custom_objects or {})
    if path.suffix.lower() in (".h5", ".hdf5"):
        for name in _layer_classes(_h5_config(path)):
            if name in objects or name in _CONTAINERS:
                continue
            if name in _CODE_LAYERS or not isinstance(getattr(keras.layers, name, None), type):
                raise UsageError(f"{path}: layer class {name!r} is not a built-in Keras layer"
                                 + (" (it holds Python code)" if name in _CODE_LAYERS else "")
                                 + "; tbn loads it only when you name it in custom_objects")
        objects = {**_LEGACY, **objects}
    elif path.suffix.lower() != ".keras":
        raise UsageError(f"{path}: a Keras model is a .keras or .h5 file")
    try:
        return keras.models.load_model(path, compile=False, custom_objects=objects, safe_mode=True)
    except (ValueError, TypeError, OSError, KeyError) as e:
        raise UsageError(f"{path}: Keras could not load the model ({type(e).__name__}: {e})") from None
