"""Float models from other frameworks' files: a Keras ``.keras``/``.h5`` or a ``.tflite`` as the
PyTorch graph tbn compiles, trains beside or distils from (``pip install 'tbn[tf]'``)."""

from __future__ import annotations

from pathlib import Path

from torch import fx

SUFFIXES = (".keras", ".h5", ".hdf5", ".tflite")


def is_foreign(path: str | Path) -> bool:
    """Whether ``path`` names a Keras or TFLite model file (by its suffix)."""
    return Path(path).suffix.lower() in SUFFIXES


def load_foreign(path: str | Path, dequantise: bool = False) -> fx.GraphModule:
    """The model in a Keras or TFLite file as a PyTorch graph reading channels-first inputs,
    with the channels-last input shape the file states (batch left out) in
    ``graph.meta["input_shape"]``. ``dequantise``: take an int8 ``.tflite``'s float twin."""
    if Path(path).suffix.lower() == ".tflite":
        from tbn.tflite import load

        graph = load(path, dequantise=dequantise)
        graph.meta["input_shape"] = tuple(graph.meta["tflite"]["input_shape"][1:])
        return graph
    from tbn.keras import load_model, to_torch

    keras_model = load_model(path)
    graph = to_torch(keras_model)
    graph.meta["input_shape"] = tuple(keras_model.inputs[0].shape[1:])
    return graph


def logits(graph: fx.GraphModule) -> fx.GraphModule:
    """``graph`` without a softmax that ends it (distillation softens the logits itself; the
    published classifiers end in one). The graph is changed in place and returned."""
    from torch import nn

    out = next(n for n in graph.graph.nodes if n.op == "output")
    last = out.args[0]
    if isinstance(last, fx.Node) and last.op == "call_module" and isinstance(
            graph.get_submodule(str(last.target)), nn.Softmax):
        out.args = (last.args[0],)
        graph.graph.erase_node(last)
        graph.recompile()
    return graph
