"""One converter per Keras layer kind: the PyTorch module(s) :mod:`tbn.keras.to_torch` puts in
its graph for the layer (``CONVERTERS``, which is also the list of what converts).

Keras is channels-last, the graph channels-first: a ``(H, W, C)`` map is ``(C, H, W)`` and a
``(W, C)`` sequence ``(C, W)``. Kernels are transposed to PyTorch's order; TensorFlow's
``padding="same"`` becomes the pads it means (an asymmetric one, as with stride 2 on an even
size, a zero pad before the layer, which the compiler folds into it).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import torch
from torch import fx, nn

from tbn.errors import UsageError
from tbn.format.spec import Op
from tbn.keras.layers import SplitAttention, TiledConv1D, TiledConv2D, TiledDense
from tbn.layout import same_pads
from tbn.nn.crop import CroppedConvTranspose1d, CroppedConvTranspose2d
from tbn.nn.layers import TiledConv1d, TiledConv2d, TiledLinear
from tbn.nn.unary import UNARY_MODULES

# Keras activation names (as keras.activations.serialize gives them) -> the module each becomes
ACTIVATIONS: dict[str, Callable[[], nn.Module] | None] = {
    "linear": None, "relu": nn.ReLU, "relu6": nn.ReLU6, "softmax": lambda: nn.Softmax(dim=1),
    "sigmoid": UNARY_MODULES[Op.SIGMOID], "tanh": UNARY_MODULES[Op.TANH],
    "hard_sigmoid": UNARY_MODULES[Op.HARDSIGMOID], "hard_silu": UNARY_MODULES[Op.HARDSWISH],
    "silu": UNARY_MODULES[Op.SILU], "gelu": UNARY_MODULES[Op.GELU],
    "leaky_relu": lambda: nn.LeakyReLU(0.2), "elu": nn.ELU}  # Keras' default slope and scale


class Builder:
    """The fx graph being built: one module per Keras layer (plus fused activations), and the
    ``(C, H, W)`` shape of each flattened feature map (Keras flattens it as ``(H, W, C)``)."""

    def __init__(self) -> None:
        self.root = nn.Module()
        self.graph = fx.Graph()
        self.layout: dict[fx.Node, tuple[int, ...] | None] = {}

    def module(self, name: str, mod: nn.Module, arg: fx.Node) -> fx.Node:
        """``mod`` applied to ``arg``, registered under the Keras layer's name (made a valid,
        unused attribute name, so compile errors still name the layer)."""
        key = "".join(c if c.isalnum() else "_" for c in name) or "layer"
        while hasattr(self.root, key):
            key += "_"
        self.root.add_module(key, mod)
        return self.graph.call_module(key, (arg,))

    def permute(self, x: fx.Node, perm: list[int]) -> fx.Node:
        return x if perm == sorted(perm) else self.graph.call_method("permute", (x, *perm))

    def to_last(self, x: fx.Node, rank: int) -> fx.Node:
        """A channels-first value of ``rank`` axes (batch included) in Keras' channels-last order."""
        return self.permute(x, [0, *range(2, rank), 1] if rank > 2 else [0, 1])

    def to_first(self, x: fx.Node, rank: int) -> fx.Node:
        """A channels-last value back in the graph's channels-first order."""
        return self.permute(x, [0, rank - 1, *range(1, rank - 1)] if rank > 2 else [0, 1])

    def activation(self, layer: Any, node: fx.Node, name: Any = None) -> fx.Node:
        act = keras.activations.serialize(name or layer.activation)
        act = act if isinstance(act, str) else act.get("config", {}).get("name", act.get("class_name"))
        if act not in ACTIVATIONS:
            raise UsageError(f"Keras layer {layer.name!r}: activation {act!r} is not supported "
                             f"(supported: {', '.join(ACTIVATIONS)})")
        make = ACTIVATIONS[act]
        return node if make is None else self.module(f"{layer.name}_{act}", make(), node)


def _tuple(v: Any, n: int) -> tuple[int, ...]:
    return tuple(int(x) for x in v) if isinstance(v, tuple | list) else (int(v),) * n


def _pads(layer: Any, cfg: dict, size: tuple[int, ...], k: tuple[int, ...], s: tuple[int, ...],
          d: tuple[int, ...]) -> list[tuple[int, int]]:
    """(before, after) padding per spatial axis of a Keras ``padding`` on a map of ``size``."""
    if cfg.get("data_format", "channels_last") != "channels_last":
        raise UsageError(f"Keras layer {layer.name!r}: only channels_last layers convert")
    if cfg["padding"] == "valid":
        return [(0, 0)] * len(size)
    if cfg["padding"] == "causal":  # 1-D: the whole window on the left
        return [(d[0] * (k[0] - 1), 0)]
    return same_pads(size, k, s, d)


def _padded(b: Builder, layer: Any, x: fx.Node, pads: list[tuple[int, int]],
            value: float = 0.0) -> tuple[fx.Node, tuple[int, ...]]:
    """``x`` padded where ``pads`` are asymmetric (and the symmetric padding left to the
    layer, as PyTorch's layers take it)."""
    if all(a == c for a, c in pads):
        return x, tuple(a for a, _ in pads)
    flat = tuple(v for before_after in reversed(pads) for v in before_after)  # F.pad's order
    pad = (nn.ConstantPad1d if len(pads) == 1 else nn.ConstantPad2d)(flat, value)
    return b.module(f"{layer.name}_pad", pad, x), (0,) * len(pads)


def _copy(param: torch.Tensor, value: Any, order: tuple[int, ...] | None = None) -> None:
    v = np.asarray(value)
    param.copy_(torch.from_numpy(np.ascontiguousarray(v.transpose(order) if order else v)))


def dense(b: Builder, layer: Any, ins: list[fx.Node], shape: tuple) -> fx.Node:
    x = ins[0]
    if len(shape) > 2:  # over each position (token): the last axis, channels-last
        return b.to_first(dense(b, layer, [b.to_last(x, len(shape))], (shape[0], shape[-1])), len(shape))
    order = None
    if (chw := b.layout.get(x)) is not None:  # inputs flattened from (H, W, C): reorder to (C, H, W)
        c, h, w = chw
        order = np.arange(c * h * w).reshape(h, w, c).transpose(2, 0, 1).reshape(-1)
    tiled = isinstance(layer, TiledDense)
    if tiled and order is not None and layer.units % layer.p:
        raise UsageError(f"Keras layer {layer.name!r} reads a flattened feature map and is tiled with "
                         f"p={layer.p}, which does not divide its {layer.units} units: its tile cannot "
                         "follow the channels-first order; choose p dividing the units, or pool to 1x1 first")
    return b.activation(layer, b.module(layer.name, _dense_module(layer, order), x))


def _dense_module(layer: Any, order: np.ndarray | None = None) -> nn.Module:
    """A Dense or TiledDense layer as nn.Linear or TiledLinear (its inputs in ``order``)."""
    kernel, tiled = np.asarray(layer.kernel), isinstance(layer, TiledDense)
    k, o = kernel.shape
    mod: nn.Module = (TiledLinear(k, o, bias=layer.bias is not None, tiling=layer.tiling)
                      if tiled else nn.Linear(k, o, bias=layer.bias is not None))
    with torch.no_grad():
        _copy(mod.weight, kernel if order is None else kernel[order], (1, 0))
        if tiled and layer.alpha_kernel is not None:
            alpha = np.asarray(layer.alpha_kernel)
            _copy(mod.alpha_weight, alpha if order is None else alpha[order], (1, 0))
        if layer.bias is not None:
            _copy(mod.bias, layer.bias)
    return mod


def conv(b: Builder, layer: Any, ins: list[fx.Node], shape: tuple) -> fx.Node:
    """Conv1D, Conv2D, TiledConv2D, DepthwiseConv1D/2D and SeparableConv1D/2D."""
    cfg, rank = layer.get_config(), len(shape) - 2
    k, s, d = (_tuple(cfg[n], rank) for n in ("kernel_size", "strides", "dilation_rate"))
    x, pad = _padded(b, layer, ins[0], _pads(layer, cfg, tuple(shape[1:-1]), k, s, d))
    geom = {"stride": s, "padding": pad, "dilation": d}
    c = shape[-1]
    if isinstance(layer, keras.layers.SeparableConv1D | keras.layers.SeparableConv2D):
        depthwise, pointwise = np.asarray(layer.depthwise_kernel), np.asarray(layer.pointwise_kernel)
        x = _conv(b, f"{layer.name}_depthwise", x, _grouped(depthwise), None, geom | {"groups": c}, rank)
        return b.activation(layer, _conv(b, layer.name, x, pointwise, layer.bias, {}, rank))
    if isinstance(layer, keras.layers.DepthwiseConv1D | keras.layers.DepthwiseConv2D):
        return b.activation(layer, _conv(b, layer.name, x, _grouped(np.asarray(layer.kernel)), layer.bias,
                                         geom | {"groups": c}, rank))
    geom["groups"] = cfg.get("groups", 1)
    tiled = layer if isinstance(layer, TiledConv2D) else None  # TiledConv1D too
    node = _conv(b, layer.name, x, np.asarray(layer.kernel), layer.bias, geom, rank, tiled)
    return b.activation(layer, node)


def _grouped(depthwise: np.ndarray) -> np.ndarray:
    """A depthwise kernel (..., C, M) as a grouped one (..., 1, C*M): output c*M + j reads c."""
    return depthwise.reshape(*depthwise.shape[:-2], 1, -1)


def _conv(b: Builder, name: str, x: fx.Node, kernel: np.ndarray, bias: Any, geom: dict, rank: int,
          tiled: Any = None) -> fx.Node:
    """The PyTorch convolution of a channels-last ``kernel`` (..., C/groups, O)."""
    groups = geom.get("groups", 1)
    c, o = kernel.shape[-2] * groups, kernel.shape[-1]
    order = (2, 1, 0) if rank == 1 else (3, 2, 0, 1)
    options = {**geom, "kernel_size": kernel.shape[:-2], "bias": bias is not None}
    mod: nn.Module
    if tiled is not None:
        mod = (TiledConv1d if rank == 1 else TiledConv2d)(c, o, tiling=tiled.tiling, **options)
    else:
        mod = (nn.Conv1d if rank == 1 else nn.Conv2d)(c, o, **options)
    with torch.no_grad():
        _copy(mod.weight, kernel, order)
        if tiled is not None and tiled.alpha_kernel is not None:
            _copy(mod.alpha_weight, tiled.alpha_kernel, order)
        if bias is not None:
            _copy(mod.bias, bias)
    return b.module(name, mod, x)


def conv_transpose(b: Builder, layer: Any, ins: list[fx.Node], shape: tuple) -> fx.Node:
    """Conv1DTranspose and Conv2DTranspose: PyTorch's transposed convolution, cropped as
    TensorFlow crops it (``padding="same"``: the output ``stride`` times the input, the
    extra ``kernel - stride`` taken half before and the rest after; ``output_padding`` sizes)."""
    cfg, rank = layer.get_config(), len(shape) - 2
    k, s, d = (_tuple(cfg[n], rank) for n in ("kernel_size", "strides", "dilation_rate"))
    sized = cfg.get("output_padding") is not None
    extra = _tuple(cfg["output_padding"], rank) if sized else (0,) * rank
    crop = []
    for size, kk, ss, dd, op in zip(shape[1:-1], k, s, d, extra, strict=True):
        full = (size - 1) * ss + (kk - 1) * dd + 1
        pad = (dd * (kk - 1) + 1) // 2 if cfg["padding"] == "same" else 0
        if sized:
            out, before = full - 2 * pad + op, pad
        else:
            out = size * ss if cfg["padding"] == "same" else full
            before = max(full - out, 0) // 2
        crop.append((before, full - out - before))
    kernel = np.asarray(layer.kernel)  # (k.., O, C): PyTorch's is (C, O, k..)
    cls = CroppedConvTranspose1d if rank == 1 else CroppedConvTranspose2d
    mod = cls(kernel.shape[-1], kernel.shape[-2], kernel.shape[:-2], stride=s, dilation=d,
              bias=layer.bias is not None, crop=tuple(crop))
    with torch.no_grad():
        _copy(mod.weight, kernel, (2, 1, 0) if rank == 1 else (3, 2, 0, 1))
        if layer.bias is not None:
            _copy(mod.bias, layer.bias)
    return b.activation(layer, b.module(layer.name, mod, ins[0]))


def batchnorm(b: Builder, layer: Any, ins: list[fx.Node], shape: tuple) -> fx.Node:
    if layer.axis not in (-1, len(shape) - 1):
        raise UsageError(f"Keras layer {layer.name!r}: BatchNormalization over axis {layer.axis}; "
                         "only the channels (last) axis converts")
    c = shape[-1]
    mod = (nn.BatchNorm2d if len(shape) == 4 else nn.BatchNorm1d)(c, eps=layer.epsilon)
    with torch.no_grad():
        _copy(mod.weight, layer.gamma if layer.scale else np.ones(c, np.float32))
        _copy(mod.bias, layer.beta if layer.center else np.zeros(c, np.float32))
        _copy(mod.running_mean, layer.moving_mean)
        _copy(mod.running_var, layer.moving_variance)
    return b.module(layer.name, mod.eval(), ins[0])


def pool(b: Builder, layer: Any, ins: list[fx.Node], shape: tuple) -> fx.Node:
    """MaxPooling1D/2D and AveragePooling1D/2D."""
    cfg, rank = layer.get_config(), len(shape) - 2
    k = _tuple(cfg["pool_size"], rank)
    s = _tuple(cfg["strides"] or cfg["pool_size"], rank)
    is_max = isinstance(layer, keras.layers.MaxPooling1D | keras.layers.MaxPooling2D)
    pads = _pads(layer, cfg, tuple(shape[1:-1]), k, s, (1,) * rank)
    if not is_max and any(a or c for a, c in pads):
        raise UsageError(f"Keras layer {layer.name!r}: an average pool that pads leaves the padding out "
                         "of its mean, the .tbn one counts it; use padding='valid'")
    x, pad = _padded(b, layer, ins[0], pads, float("-inf"))
    one_d, two_d = (nn.MaxPool1d, nn.MaxPool2d) if is_max else (nn.AvgPool1d, nn.AvgPool2d)
    return b.module(layer.name, (one_d if rank == 1 else two_d)(k, s, pad), x)


def global_pool(b: Builder, layer: Any, ins: list[fx.Node], shape: tuple) -> fx.Node:
    """GlobalAveragePooling1D/2D and GlobalMaxPooling1D/2D: a pool over the map, then flat."""
    if layer.keepdims:
        raise UsageError(f"Keras layer {layer.name!r}: keepdims=True does not convert")
    is_max = isinstance(layer, keras.layers.GlobalMaxPooling1D | keras.layers.GlobalMaxPooling2D)
    kinds = {(False, 3): nn.AdaptiveAvgPool1d, (False, 4): nn.AdaptiveAvgPool2d,
             (True, 3): nn.AdaptiveMaxPool1d, (True, 4): nn.AdaptiveMaxPool2d}
    pooled = b.module(layer.name, kinds[is_max, len(shape)](1), ins[0])
    return b.module(f"{layer.name}_flatten", nn.Flatten(), pooled)


def zero_padding(b: Builder, layer: Any, ins: list[fx.Node], shape: tuple) -> fx.Node:
    """ZeroPadding1D/2D (folded by the compiler into the convolution or pool after it)."""
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise UsageError(f"Keras layer {layer.name!r}: only channels_last layers convert")
    pads = [layer.padding] if len(shape) == 3 else list(layer.padding)
    flat = tuple(int(v) for p in reversed(pads) for v in p)  # F.pad's order: last axis first
    return b.module(layer.name, (nn.ZeroPad1d if len(shape) == 3 else nn.ZeroPad2d)(flat), ins[0])


def relu(b: Builder, layer: Any, ins: list[fx.Node], shape: tuple) -> fx.Node:
    """ReLU (ReLU6 with max_value 6, a leaky ReLU with a negative slope), LeakyReLU and ELU."""
    if isinstance(layer, L.LeakyReLU | L.ELU):
        alpha = float(layer.negative_slope if isinstance(layer, L.LeakyReLU) else layer.alpha)
        mod = nn.LeakyReLU(alpha) if isinstance(layer, L.LeakyReLU) else nn.ELU(alpha)
        return b.module(layer.name, mod, ins[0])
    top, slope = layer.max_value, float(layer.negative_slope)
    if float(layer.threshold) != 0 or top not in (None, 6, 6.0) or (slope and top is not None):
        raise UsageError(f"Keras layer {layer.name!r}: ReLU converts with threshold 0 and either max_value 6 "
                         "or a negative slope, not both")
    mod = nn.LeakyReLU(slope) if slope else nn.ReLU() if top is None else nn.ReLU6()
    return b.module(layer.name, mod, ins[0])


def activation(b: Builder, layer: Any, ins: list[fx.Node], shape: tuple) -> fx.Node:
    return b.activation(layer, ins[0])


def flatten(b: Builder, layer: Any, ins: list[fx.Node], shape: tuple) -> fx.Node:
    out = b.module(layer.name, nn.Flatten(), ins[0])
    spatial = {4: tuple(shape[1:3]), 3: (1, shape[1])}.get(len(shape))  # a 1-D map as one row
    if spatial and shape[-1] > 1 and int(np.prod(spatial)) > 1:  # channels-first order differs
        b.layout[out] = (shape[-1], *spatial)
    return out


def dropout(b: Builder, layer: Any, ins: list[fx.Node], shape: tuple) -> fx.Node:
    return ins[0]


def add(b: Builder, layer: Any, ins: list[fx.Node], shape: tuple) -> fx.Node:
    if len(ins) != 2:
        raise UsageError(f"Keras layer {layer.name!r}: Add of {len(ins)} inputs; tbn adds two")
    return b.graph.call_function(torch.add, tuple(ins))


def multiply(b: Builder, layer: Any, ins: list[fx.Node], shape: tuple) -> fx.Node:
    if len(ins) != 2:
        raise UsageError(f"Keras layer {layer.name!r}: Multiply of {len(ins)} inputs; tbn multiplies two")
    return b.graph.call_function(torch.mul, tuple(ins))


def concatenate(b: Builder, layer: Any, ins: list[fx.Node], shape: tuple) -> fx.Node:
    """Concatenate along a Keras axis, as the channels-first graph numbers it."""
    dim = _channels_first_axis(layer, layer.axis, len(shape))
    return b.graph.call_function(torch.cat, (tuple(ins),), {"dim": dim})


def _channels_first_axis(layer: Any, axis: int, rank: int) -> int:
    """A Keras axis of a ``rank``-axis value (batch included) as the channels-first graph numbers it."""
    axis %= rank
    if axis == 0:
        raise UsageError(f"Keras layer {layer.name!r}: an operation along the batch axis")
    return 1 if axis == rank - 1 else axis + 1


def _linear(kernel: np.ndarray, bias: Any) -> nn.Linear:
    """``nn.Linear`` holding a Keras ``(K, O)`` kernel and its bias (O values, any shape)."""
    lin = nn.Linear(*kernel.shape, bias=bias is not None)
    with torch.no_grad():
        _copy(lin.weight, kernel, (1, 0))
        if bias is not None:
            _copy(lin.bias, np.asarray(bias).reshape(-1))
    return lin


def multi_head_attention(b: Builder, layer: Any, ins: list[fx.Node], shape: tuple) -> fx.Node:
    """MultiHeadAttention (and tbn's SplitAttention, its projections tiled or not) over a
    sequence's positions: the projections as linear layers over tokens, the heads split by a
    reshape and a transpose, ``softmax(q k^T / sqrt(key_dim)) v`` as matrix products, the heads
    joined and projected (no mask, gate or window)."""
    split = isinstance(layer, SplitAttention)
    cfg = layer.get_config()
    if len(shape) != 3 or cfg.get("use_gate") or cfg.get("sliding_window") \
            or tuple(cfg.get("attention_axes") or (1,)) != (1,) or cfg.get("output_shape") is not None:
        raise UsageError(f"Keras layer {layer.name!r}: MultiHeadAttention converts over the positions of a "
                         "(sequence, features) input, without use_gate, sliding_window or output_shape")
    query, value = ins[0], ins[1] if len(ins) > 1 else ins[0]
    key = ins[2] if len(ins) > 2 else value
    heads, g = cfg["num_heads"], b.graph

    parts = {} if split else {proj: (k, b) for proj, k, b in SplitAttention.parts_of(layer)}

    def module(name: str) -> nn.Module:  # a projection as a linear layer over tokens
        return _dense_module(getattr(layer, f"{name}_dense")) if split else _linear(*parts[name])

    def project(name: str, x: fx.Node) -> fx.Node:  # (N, C, T) -> (N, heads, T, d)
        y = b.module(f"{layer.name}_{name}", module(name), b.to_last(x, 3))
        y = g.call_method("reshape", (y, g.call_method("size", (y, 0)), -1, heads,
                                      cfg["value_dim" if name == "value" else "key_dim"] or cfg["key_dim"]))
        return b.permute(y, [0, 2, 1, 3])

    q, k, v = (project(n, x) for n, x in (("query", query), ("key", key), ("value", value)))
    scores = g.call_function(operator.mul, (g.call_function(operator.matmul, (q, g.call_method(
        "transpose", (k, -2, -1)))), 1.0 / float(np.sqrt(cfg["key_dim"]))))
    mixed = g.call_function(operator.matmul, (g.call_function(torch.softmax, (scores,), {"dim": -1}), v))
    mixed = b.permute(mixed, [0, 2, 1, 3])
    out = module("output")
    joined = g.call_method("reshape", (mixed, g.call_method("size", (mixed, 0)), -1, out.in_features))
    return b.to_first(b.module(f"{layer.name}_output", out, joined), 3)


def layer_normalization(b: Builder, layer: Any, ins: list[fx.Node], shape: tuple) -> fx.Node:
    """LayerNormalization over the last (channels) axis: LAYERNORM, on the channels-last order."""
    axes = [a % len(shape) for a in (layer.axis if isinstance(layer.axis, list | tuple) else [layer.axis])]
    if axes != [len(shape) - 1]:
        raise UsageError(f"Keras layer {layer.name!r}: LayerNormalization over axes {layer.axis}; tbn "
                         "normalises over the last axis only")
    mod = nn.LayerNorm(shape[-1], eps=layer.epsilon, elementwise_affine=layer.scale or layer.center)
    with torch.no_grad():
        if mod.weight is not None:
            _copy(mod.weight, layer.gamma if layer.scale else np.ones(shape[-1]))
            _copy(mod.bias, layer.beta if layer.center else np.zeros(shape[-1]))
    return b.to_first(b.module(layer.name, mod, b.to_last(ins[0], len(shape))), len(shape))


def softmax(b: Builder, layer: Any, ins: list[fx.Node], shape: tuple) -> fx.Node:
    axes = layer.axis if isinstance(layer.axis, list | tuple) else [layer.axis]
    if len(axes) != 1:
        raise UsageError(f"Keras layer {layer.name!r}: Softmax over axes {layer.axis}; tbn takes one axis")
    return b.module(layer.name, nn.Softmax(dim=_channels_first_axis(layer, axes[0], len(shape))), ins[0])


def upsampling(b: Builder, layer: Any, ins: list[fx.Node], shape: tuple) -> fx.Node:
    """UpSampling1D/2D, nearest: UPSAMPLE_NEAREST."""
    if getattr(layer, "interpolation", "nearest") != "nearest":
        raise UsageError(f"Keras layer {layer.name!r}: {layer.interpolation!r} interpolation; tbn upsamples "
                         "by 'nearest'")
    size = tuple(float(v) for v in _tuple(layer.size, len(shape) - 2))
    return b.module(layer.name, nn.Upsample(scale_factor=size, mode="nearest"), ins[0])


def permute(b: Builder, layer: Any, ins: list[fx.Node], shape: tuple) -> fx.Node:
    """Permute: Keras' permutation of the channels-last axes, composed with the two layout changes."""
    rank = len(shape)
    keras_perm = [0, *(int(d) for d in layer.dims)]
    return b.to_first(b.permute(b.to_last(ins[0], rank), keras_perm), rank)


def reshape(b: Builder, layer: Any, ins: list[fx.Node], shape: tuple) -> fx.Node:
    """Reshape in Keras' channels-last order: the value made channels-last, reshaped, and the result
    made channels-first again (the transposes vanish where the layouts agree)."""
    target = tuple(int(v) for v in layer.target_shape)
    if -1 in target:
        known = int(np.prod([v for v in target if v != -1]))
        target = tuple(int(np.prod(shape[1:])) // known if v == -1 else v for v in target)
    y = b.graph.call_method("reshape", (b.to_last(ins[0], len(shape)), -1, *target))
    return b.to_first(y, len(target) + 1)


@dataclass(frozen=True)
class Converter:
    """What a Keras layer kind converts to (for the docs) and the function that does it."""

    kinds: tuple[type, ...]
    becomes: str
    fn: Callable[[Builder, Any, list[fx.Node], tuple], fx.Node]


L = keras.layers
# In order: the first whose kinds the layer is an instance of converts it.
CONVERTERS: tuple[Converter, ...] = (
    Converter((L.Dense, TiledDense), "linear (TILED_LINEAR or DENSE_LINEAR; over tokens on a sequence), "
              "+ its activation", dense),
    Converter((L.Conv1D, L.Conv2D, TiledConv1D, TiledConv2D, L.DepthwiseConv1D, L.DepthwiseConv2D,
               L.SeparableConv1D, L.SeparableConv2D),
              "convolution (grouped for depthwise; separable: two), + its activation",
              conv),
    Converter((L.Conv1DTranspose, L.Conv2DTranspose), "UPSAMPLE_ZEROS (the stride), then a convolution, "
              "+ its activation", conv_transpose),
    Converter((L.BatchNormalization,), "folded into the layer before, else AFFINE (F32)", batchnorm),
    Converter((L.ReLU, L.LeakyReLU, L.ELU), "ACTIVATION (ReLU, ReLU6; fused where it can), LEAKY_RELU, ELU",
              relu),
    Converter((L.Activation,), "by name: " + ", ".join(n for n in ACTIVATIONS if n != "linear"), activation),
    Converter((L.MaxPooling1D, L.MaxPooling2D, L.AveragePooling1D, L.AveragePooling2D),
              "MAXPOOL2D / AVGPOOL2D (1-D as a 1-row map)", pool),
    Converter((L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalMaxPooling1D,
               L.GlobalMaxPooling2D), "GLOBAL_AVGPOOL, or MAXPOOL2D over the whole map", global_pool),
    Converter((L.ZeroPadding1D, L.ZeroPadding2D), "folded into the convolution or pool after it",
              zero_padding),
    Converter((L.Flatten,), "RESHAPE (dropped before a linear layer)", flatten),
    Converter((L.Dropout,), "nothing (inference)", dropout),
    Converter((L.Add,), "ADD", add),
    Converter((L.Concatenate,), "CONCAT (two at a time)", concatenate),
    Converter((L.Multiply,), "MUL (one operand may broadcast: a (1, 1, C) gate)", multiply),
    Converter((L.Reshape,), "RESHAPE, with TRANSPOSE where channels-last and channels-first orders differ",
              reshape),
    Converter((L.Permute,), "TRANSPOSE", permute),
    Converter((L.LayerNormalization,), "LAYERNORM over the last axis", layer_normalization),
    Converter((L.MultiHeadAttention, SplitAttention), "linear layers over tokens (tiled in a "
              "SplitAttention), TRANSPOSE, BATCH_MATMUL, SOFTMAX_AXIS", multi_head_attention),
    Converter((L.Softmax,), "SOFTMAX_AXIS (SOFTMAX for a vector in F32)", softmax),
    Converter((L.UpSampling1D, L.UpSampling2D), "UPSAMPLE_NEAREST", upsampling),
)
SUPPORTED = ("InputLayer", *(k.__name__ for c in CONVERTERS for k in c.kinds))


def convert(b: Builder, layer: Any, ins: list[fx.Node], shape: tuple) -> fx.Node:
    """The torch node(s) for one Keras layer applied to ``ins``; ``shape`` is its input's
    (Keras order, batch axis first)."""
    if any(b.layout.get(i) for i in ins) and not isinstance(layer, L.Dense | TiledDense | L.Dropout):
        raise UsageError(f"Keras layer {layer.name!r} reads a flattened feature map, whose order differs "
                         "between Keras (channels last) and tbn (channels first); only a Dense layer may")
    for c in CONVERTERS:
        if isinstance(layer, c.kinds):
            return c.fn(b, layer, ins, tuple(shape))
    raise UsageError(f"Keras layer {layer.name!r} ({type(layer).__name__}) has no tbn equivalent; "
                     f"supported: {', '.join(SUPPORTED)}")
