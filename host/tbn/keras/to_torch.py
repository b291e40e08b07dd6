"""A trained Keras model as the equivalent PyTorch graph, so ``tbn.compile_model`` compiles it
with everything it does for PyTorch models (padding and BatchNorm folding, fusion, INT8
calibration).

Keras works channels-last, the ``.tbn`` format (and PyTorch) channels-first: the graph built
here reads ``(C, H, W)`` maps and ``(C, W)`` sequences, each kernel is transposed to PyTorch's
order, and a Dense layer that reads a flattened feature map has its inputs permuted from
Keras' ``(H, W, C)`` order to ``(C, H, W)``. That permutation keeps a tiled layer a tile only
when the tile holds whole rows (``p`` divides its units); otherwise the conversion says so.

What converts, layer by layer, is :data:`tbn.keras.converters.CONVERTERS` (docs/layers.md
lists it); anything else is an error naming the layer.
"""

from __future__ import annotations

from typing import Any

import keras
from torch import fx

from tbn.errors import UsageError
from tbn.keras.converters import SUPPORTED, Builder, convert
from tbn.layout import channels_first

__all__ = ["SUPPORTED", "channels_first", "to_torch"]


def _steps(model: keras.Model) -> tuple[list[tuple[Any, list[int], list[Any]]], list[int], list[int]]:
    """(layer, input tensor ids, output tensors) in order, and the model's input and output
    tensor ids. A nested model (a block a user wrote as its own Sequential or Model, or a
    SeparableConv that tile_model split) contributes its own layers, in place."""
    if isinstance(model, keras.Sequential):
        steps, prev = [], id(model.inputs[0])
        for layer in model.layers:
            out = layer.output
            steps.append((layer, [prev], [out]))
            prev = id(out)
        return steps, [id(model.inputs[0])], [prev]
    steps = []
    for op in model.operations:
        for node in op._inbound_nodes:
            if node.input_tensors or not isinstance(op, keras.layers.InputLayer):
                steps.append((op, [id(t) for t in node.input_tensors], list(node.output_tensors)))
    return steps, [id(t) for t in model.inputs], [id(t) for t in model.outputs]


def _flat(model: keras.Model) -> tuple[list[tuple[Any, list[int], list[Any]]], list[int], list[int]]:
    """:func:`_steps` with every nested model's steps in its place: its input renamed to the
    tensor that feeds it, its output to the tensor it gives."""
    steps, inputs, outputs = _steps(model)
    flat = []
    for layer, ins, outs in steps:
        if not isinstance(layer, keras.Model):
            flat.append((layer, ins, outs))
            continue
        inner, inner_in, inner_out = _flat(layer)
        if len(inner_in) != 1 or len(inner_out) != 1 or len(ins) != 1:
            raise UsageError(f"nested Keras model {layer.name!r} has {len(inner_in)} inputs and "
                             f"{len(inner_out)} outputs; tbn converts nested models of one of each")
        rename = {inner_in[0]: ins[0], inner_out[0]: id(outs[0])}
        for lay, lins, louts in inner:
            last = id(louts[0]) == inner_out[0]
            flat.append((lay, [rename.get(i, i) for i in lins], outs if last else louts))
    return flat, inputs, outputs


def to_torch(model: keras.Model) -> fx.GraphModule:
    """The PyTorch equivalent of a built Keras ``model`` (one input, one output), reading
    channels-first inputs; see the module docstring for what converts."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UsageError(f"Keras model {model.name!r} has {len(model.inputs)} inputs and "
                         f"{len(model.outputs)} outputs; tbn compiles one of each")
    b = Builder()
    steps, inputs, outputs = _flat(model)
    shapes: dict[int, tuple[int, ...]] = {inputs[0]: tuple(model.inputs[0].shape)}
    nodes = {inputs[0]: b.graph.placeholder("x")}
    for layer, ins, outs in steps:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        node = convert(b, layer, [nodes[i] for i in ins], shapes[ins[0]])
        nodes[id(outs[0])] = node
        shapes[id(outs[0])] = tuple(outs[0].shape)
    out = nodes[outputs[0]]
    if b.layout.get(out) is not None:
        raise UsageError(f"Keras model {model.name!r} ends with a flattened feature map, whose order differs "
                         "between Keras (channels last) and tbn (channels first); end with a Dense layer")
    b.graph.output(out)
    return fx.GraphModule(b.root, b.graph).eval()
