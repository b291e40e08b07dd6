"""TFLite models in: a ``.tflite`` file as the PyTorch graph tbn compiles, trains from or
distils from (``pip install 'tbn[tf]'``; docs/keras.md).

>>> graph = tbn.tflite.load("kws_ref_model_float32.tflite")   # reads (N, C, H, W) inputs
>>> data = tbn.compile_model(graph, torch.zeros(1, 1, 49, 10))

A float model converts exactly. An int8 model converts to its float twin, its constants
dequantised (``graph.meta["tflite"]["dequantised"]`` is True, with the int8 input and output
parameters beside it): that graph is what tbn tiles, compiles and calibrates, not the int8
arithmetic of the file. Reading a file runs nothing from it: the flatbuffer is data.
"""

from __future__ import annotations

from pathlib import Path

from torch import fx

from tbn.errors import UsageError
from tbn.tflite.read import TFLiteModel, read_tflite
from tbn.tflite.to_torch import CONVERTERS, describe, to_torch

__all__ = ["CONVERTERS", "TFLiteModel", "load", "read_tflite", "to_torch"]


def load(path: str | Path, dequantise: bool = False) -> fx.GraphModule:
    """The PyTorch graph of the ``.tflite`` model in ``path``, reading channels-first inputs.

    An int8 model is refused unless ``dequantise`` asks for its float twin. ``graph.meta
    ["tflite"]`` holds :func:`tbn.tflite.to_torch.describe`'s facts (dequantised or not, the
    input's channels-last shape and quantisation, hybrid ops)."""
    model = read_tflite(path)
    if model.quantised and not dequantise:
        raise UsageError(f"{path}: an int8 model (its activations are int8), where a float model is needed; "
                         "tbn can take its float twin, its weights dequantised: dequantise=True "
                         "(tbn compile --dequantise)")
    graph = to_torch(model)
    graph.meta["tflite"] = describe(model)
    return graph
