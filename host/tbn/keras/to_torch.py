"""A trained Keras model as the equivalent PyTorch graph, so ``tbn.compile_model`` compiles it
with everything it does for PyTorch models (BatchNorm folding, fusion, INT8 calibration).

Keras works channels-last, the ``.tbn`` format (and PyTorch) channels-first: the graph built
here reads ``(C, H, W)`` inputs, each kernel is transposed to PyTorch's order, and a Dense
layer that reads a flattened feature map has its inputs permuted from Keras' ``(H, W, C)``
order to ``(C, H, W)``. That permutation keeps a tiled layer a tile only when the tile holds
whole rows (``p`` divides its units); otherwise the conversion says so.

Supported: InputLayer, Dense, Conv2D (``valid``, or ``same`` where its padding is
symmetric), TiledDense, TiledConv2D, BatchNormalization, ReLU (and ReLU6), Activation and
the ``activation`` of Dense/Conv2D (relu, relu6, linear, softmax), MaxPooling2D,
AveragePooling2D (valid), GlobalAveragePooling2D, Flatten, Dropout, Add. Anything else is
an error naming the layer.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import torch
from torch import fx, nn

from tbn.errors import UsageError
from tbn.keras.layers import TiledConv2D, TiledDense
from tbn.nn.layers import TiledConv2d, TiledLinear

SUPPORTED = ("InputLayer", "Dense", "Conv2D", "TiledDense", "TiledConv2D", "BatchNormalization", "ReLU",
             "Activation", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "Flatten", "Dropout",
             "Add")
_ACTIVATIONS: dict[str, Callable[[], nn.Module] | None] = {
    "linear": None, "relu": nn.ReLU, "relu6": nn.ReLU6, "softmax": lambda: nn.Softmax(dim=1)}


class _Builder:
    """The fx graph being built: one module per Keras layer (plus fused activations)."""

    def __init__(self) -> None:
        self.root = nn.Module()
        self.graph = fx.Graph()
        self.layout: dict[fx.Node, tuple[int, ...] | None] = {}  # a flattened (C, H, W) map's shape

    def module(self, name: str, mod: nn.Module, arg: fx.Node) -> fx.Node:
        """``mod`` applied to ``arg``, registered under the Keras layer's name (made a valid,
        unused attribute name, so compile errors still name the layer)."""
        key = re.sub(r"\W", "_", name) or "layer"
        while hasattr(self.root, key):
            key += "_"
        self.root.add_module(key, mod)
        return self.graph.call_module(key, (arg,))

    def activation(self, layer: Any, node: fx.Node, name: Any = None) -> fx.Node:
        act = keras.activations.serialize(name or layer.activation)
        act = act if isinstance(act, str) else act.get("config", {}).get("name", act.get("class_name"))
        if act not in _ACTIVATIONS:
            raise UsageError(f"Keras layer {layer.name!r}: activation {act!r} is not supported "
                             f"(supported: {', '.join(_ACTIVATIONS)})")
        make = _ACTIVATIONS[act]
        return node if make is None else self.module(f"{layer.name}_{act}", make(), node)


def _same_padding(layer: Any, size: tuple[int, int], k: tuple[int, int], s: tuple[int, int],
                  d: tuple[int, int]) -> tuple[int, int]:
    """TensorFlow's 'same' padding as PyTorch's symmetric one, or an error naming the layer."""
    pads = []
    for n, kk, ss, dd in zip(size, k, s, d, strict=True):
        total = max((-(-n // ss) - 1) * ss + (kk - 1) * dd + 1 - n, 0)
        if total % 2:
            raise UsageError(f"Keras layer {layer.name!r}: padding='same' pads {total // 2} and "
                             f"{total - total // 2} on the two sides here, which tbn.keras does not convert; "
                             "use an odd kernel with stride 1, or padding='valid' with ZeroPadding2D")
        pads.append(total // 2)
    return pads[0], pads[1]


def _dense(b: _Builder, layer: Any, x: fx.Node) -> fx.Node:
    kernel = np.asarray(layer.kernel)  # (K, O)
    order = None
    if (chw := b.layout.get(x)) is not None:  # inputs flattened from (H, W, C): reorder to (C, H, W)
        c, h, w = chw
        order = np.arange(c * h * w).reshape(h, w, c).transpose(2, 0, 1).reshape(-1)
    tiled = isinstance(layer, TiledDense)
    if tiled and order is not None and layer.units % layer.p:
        raise UsageError(f"Keras layer {layer.name!r} reads a flattened feature map and is tiled with "
                         f"p={layer.p}, which does not divide its {layer.units} units: its tile cannot "
                         "follow the channels-first order; choose p dividing the units, or pool to 1x1 first")
    k, o = kernel.shape
    mod: nn.Module = (TiledLinear(k, o, bias=layer.bias is not None, tiling=layer.tiling)
                      if tiled else nn.Linear(k, o, bias=layer.bias is not None))

    def torch_weight(v: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray((v[order] if order is not None else v).T))

    with torch.no_grad():
        mod.weight.copy_(torch_weight(kernel))
        if tiled and layer.alpha_kernel is not None:
            mod.alpha_weight.copy_(torch_weight(np.asarray(layer.alpha_kernel)))
        if layer.bias is not None:
            mod.bias.copy_(torch.from_numpy(np.asarray(layer.bias)))
    return b.activation(layer, b.module(layer.name, mod, x))


def _conv(b: _Builder, layer: Any, x: fx.Node, shape: tuple[int, ...]) -> fx.Node:
    cfg = layer.get_config()
    if cfg.get("data_format", "channels_last") != "channels_last":
        raise UsageError(f"Keras layer {layer.name!r}: only channels_last convolutions convert")
    k, s, d = (tuple(cfg[n]) for n in ("kernel_size", "strides", "dilation_rate"))
    pad = (0, 0) if cfg["padding"] == "valid" else _same_padding(layer, shape[1:3], k, s, d)
    kernel = np.asarray(layer.kernel)  # (kh, kw, C/g, O)
    groups, o = cfg.get("groups", 1), kernel.shape[3]
    c = kernel.shape[2] * groups
    tiled = isinstance(layer, TiledConv2D)
    geom = {"stride": s, "padding": pad, "dilation": d, "groups": groups, "bias": layer.bias is not None}
    mod: nn.Module = (TiledConv2d(c, o, k, tiling=layer.tiling, **geom) if tiled
                      else nn.Conv2d(c, o, k, **geom))
    with torch.no_grad():
        mod.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))))
        if tiled and layer.alpha_kernel is not None:
            mod.alpha_weight.copy_(torch.from_numpy(np.ascontiguousarray(
                np.asarray(layer.alpha_kernel).transpose(3, 2, 0, 1))))
        if layer.bias is not None:
            mod.bias.copy_(torch.from_numpy(np.asarray(layer.bias)))
    return b.activation(layer, b.module(layer.name, mod, x))


def _batchnorm(b: _Builder, layer: Any, x: fx.Node, shape: tuple[int, ...]) -> fx.Node:
    if layer.axis not in (-1, len(shape) - 1):
        raise UsageError(f"Keras layer {layer.name!r}: BatchNormalization over axis {layer.axis}; "
                         "only the channels (last) axis converts")
    c = shape[-1]
    mod = (nn.BatchNorm2d if len(shape) == 4 else nn.BatchNorm1d)(c, eps=layer.epsilon)
    with torch.no_grad():
        mod.weight.copy_(torch.from_numpy(np.asarray(layer.gamma)) if layer.scale else torch.ones(c))
        mod.bias.copy_(torch.from_numpy(np.asarray(layer.beta)) if layer.center else torch.zeros(c))
        mod.running_mean.copy_(torch.from_numpy(np.asarray(layer.moving_mean)))
        mod.running_var.copy_(torch.from_numpy(np.asarray(layer.moving_variance)))
    return b.module(layer.name, mod.eval(), x)


def _pool(b: _Builder, layer: Any, x: fx.Node, shape: tuple[int, ...]) -> fx.Node:
    cfg = layer.get_config()
    k, s = tuple(cfg["pool_size"]), tuple(cfg["strides"] or cfg["pool_size"])
    pad = (0, 0) if cfg["padding"] == "valid" else _same_padding(layer, shape[1:3], k, s, (1, 1))
    if isinstance(layer, keras.layers.AveragePooling2D) and pad != (0, 0):
        raise UsageError(f"Keras layer {layer.name!r}: an average pool that pads excludes the padding "
                         "from its mean, the .tbn one counts it; use padding='valid'")
    mod = (nn.MaxPool2d if isinstance(layer, keras.layers.MaxPooling2D) else nn.AvgPool2d)(k, s, pad)
    return b.module(layer.name, mod, x)


def _relu(b: _Builder, layer: Any, x: fx.Node) -> fx.Node:
    top = layer.max_value
    if float(layer.negative_slope) != 0 or float(layer.threshold) != 0 or top not in (None, 6, 6.0):
        raise UsageError(f"Keras layer {layer.name!r}: only ReLU and ReLU6 convert (no slope, threshold 0)")
    return b.module(layer.name, nn.ReLU() if top is None else nn.ReLU6(), x)


def _one(b: _Builder, layer: Any, ins: list[fx.Node], shape: tuple[int, ...]) -> fx.Node:
    """The torch node(s) for one Keras layer applied to ``ins``; ``shape`` is its input's."""
    x = ins[0]
    if any(b.layout.get(i) for i in ins) and not isinstance(
            layer, keras.layers.Dense | TiledDense | keras.layers.Dropout):
        raise UsageError(f"Keras layer {layer.name!r} reads a flattened feature map, whose order differs "
                         "between Keras (channels last) and tbn (channels first); only a Dense layer may")
    if isinstance(layer, keras.layers.Dense | TiledDense):
        return _dense(b, layer, x)
    if isinstance(layer, keras.layers.Conv2D | TiledConv2D):
        return _conv(b, layer, x, shape)
    if isinstance(layer, keras.layers.BatchNormalization):
        return _batchnorm(b, layer, x, shape)
    if isinstance(layer, keras.layers.ReLU):
        return _relu(b, layer, x)
    if isinstance(layer, keras.layers.Activation):
        return b.activation(layer, x)
    if isinstance(layer, keras.layers.MaxPooling2D | keras.layers.AveragePooling2D):
        return _pool(b, layer, x, shape)
    if isinstance(layer, keras.layers.GlobalAveragePooling2D):
        if layer.keepdims:
            raise UsageError(f"Keras layer {layer.name!r}: keepdims=True does not convert")
        pooled = b.module(layer.name, nn.AdaptiveAvgPool2d(1), x)
        return b.module(f"{layer.name}_flatten", nn.Flatten(), pooled)
    if isinstance(layer, keras.layers.Flatten):
        out = b.module(layer.name, nn.Flatten(), x)
        if len(shape) == 4 and shape[3] > 1 and shape[1] * shape[2] > 1:
            b.layout[out] = (shape[3], shape[1], shape[2])
        return out
    if isinstance(layer, keras.layers.Dropout):
        return x
    if isinstance(layer, keras.layers.Add) and len(ins) == 2:
        return b.graph.call_function(operator.add, tuple(ins))
    raise UsageError(f"Keras layer {layer.name!r} ({type(layer).__name__}) has no tbn equivalent; "
                     f"supported: {', '.join(SUPPORTED)}")


def _steps(model: keras.Model) -> tuple[list[tuple[Any, list[int], list[Any]]], list[int], list[int]]:
    """(layer, input tensor ids, output tensors) in order, and the model's input and output
    tensor ids."""
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


def to_torch(model: keras.Model) -> fx.GraphModule:
    """The PyTorch equivalent of a built Keras ``model`` (one input, one output), reading
    channels-first inputs; see the module docstring for what converts."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UsageError(f"Keras model {model.name!r} has {len(model.inputs)} inputs and "
                         f"{len(model.outputs)} outputs; tbn compiles one of each")
    b = _Builder()
    steps, inputs, outputs = _steps(model)
    shapes: dict[int, tuple[int, ...]] = {inputs[0]: tuple(model.inputs[0].shape)}
    nodes = {inputs[0]: b.graph.placeholder("x")}
    for layer, ins, outs in steps:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        node = _one(b, layer, [nodes[i] for i in ins], shapes[ins[0]])
        nodes[id(outs[0])] = node
        shapes[id(outs[0])] = tuple(outs[0].shape)
    out = nodes[outputs[0]]
    if b.layout.get(out) is not None:
        raise UsageError(f"Keras model {model.name!r} ends with a flattened feature map, whose order differs "
                         "between Keras (channels last) and tbn (channels first); end with a Dense layer")
    b.graph.output(out)
    return fx.GraphModule(b.root, b.graph).eval()
