"""A TFLite model (:mod:`tbn.tflite.read`) as the equivalent PyTorch graph, reading
channels-first inputs as every ``.tbn`` does, so ``tbn.compile_model`` compiles it like a
PyTorch model.

TFLite is channels-last (``NHWC``): kernels are transposed to PyTorch's order, ``SAME``
padding becomes the pads TensorFlow means (the odd one after, a zero pad before the layer the
compiler folds in), and a fully connected layer reading a flattened map has its inputs
permuted from ``(H, W, C)`` to ``(C, H, W)``. Constants are dequantised, so an int8 model
becomes its float twin (``dequantised``): its int8 rounding and clamping are not in the graph.
Fused activations become modules. :data:`CONVERTERS` is what converts; any other operator is
an error naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import fx, nn

from tbn.errors import UsageError
from tbn.format.spec import Op
from tbn.layout import same_pads
from tbn.nn.unary import UNARY_MODULES
from tbn.tflite.read import Operator, Tensor, TFLiteModel

_FUSED: dict[int, Callable[[], nn.Module] | None] = {
    0: None, 1: nn.ReLU, 2: lambda: nn.Hardtanh(-1.0, 1.0), 3: nn.ReLU6, 4: UNARY_MODULES[Op.TANH]}
_FUSED_NAMES = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
_SAME, _VALID = 0, 1


class Builder:
    """The graph being built: each tensor's node, its channels-last shape, and for a flattened
    map the ``(C, H, W)`` it came from (TFLite flattens ``(H, W, C)``)."""

    def __init__(self, model: TFLiteModel) -> None:
        self.model = model
        self.root = nn.Module()
        self.graph = fx.Graph()
        self.nodes: dict[int, fx.Node] = {}
        self.layout: dict[int, tuple[int, int, int]] = {}

    def fail(self, op: Operator, why: str) -> UsageError:
        return UsageError(f"{self.model.path}: operator {op.index} ({op.name}): {why}")

    def tensor(self, op: Operator, k: int) -> Tensor:
        if k >= len(op.inputs) or op.inputs[k] < 0:
            raise self.fail(op, f"input {k} is missing")
        return self.model.tensors[op.inputs[k]]

    def options(self, op: Operator) -> Any:
        """The operator's options, which a converter that reads them needs the file to hold."""
        if op.options is None:
            raise self.fail(op, "its options are missing from the file")
        return op.options

    def const(self, op: Operator, k: int) -> np.ndarray:
        t = self.tensor(op, k)
        if t.value is None:
            raise self.fail(op, f"input {k} ({t.name}) must be a constant in the file")
        return t.value

    def node(self, op: Operator, k: int = 0) -> fx.Node:
        t = self.tensor(op, k)
        if t.index not in self.nodes:
            why = "is a constant where tbn needs an activation" if t.value is not None else \
                "is computed by nothing before it"
            raise self.fail(op, f"input {k} ({t.name}) {why}")
        return self.nodes[t.index]

    def module(self, op: Operator, mod: nn.Module, arg: fx.Node, suffix: str = "") -> fx.Node:
        key = f"op{op.index}_{op.name.lower()}{suffix}"
        self.root.add_module(key, mod)
        return self.graph.call_module(key, (arg,))

    def fused(self, op: Operator, node: fx.Node) -> fx.Node:
        act = int(getattr(op.options, "fusedActivationFunction", 0) or 0)
        if act not in _FUSED:
            raise self.fail(op, f"fused activation {_FUSED_NAMES.get(act, act)} does not convert")
        make = _FUSED[act]
        return node if make is None else self.module(op, make(), node, f"_{_FUSED_NAMES[act].lower()}")


def _param(value: np.ndarray) -> nn.Parameter:
    return nn.Parameter(torch.from_numpy(np.array(value, dtype=np.float32)), requires_grad=False)


def _pads(padding: int, size: tuple[int, ...], k: tuple[int, ...], s: tuple[int, ...],
          d: tuple[int, ...]) -> list[tuple[int, int]]:
    return [(0, 0)] * len(size) if padding == _VALID else same_pads(size, k, s, d)


def _padded(b: Builder, op: Operator, x: fx.Node, pads: list[tuple[int, int]],
            value: float = 0.0) -> tuple[fx.Node, tuple[int, int]]:
    """``x`` padded before the layer where ``pads`` are asymmetric; else the layer's own padding."""
    if all(a == c for a, c in pads):
        return x, (pads[0][0], pads[1][0])
    flat = (pads[1][0], pads[1][1], pads[0][0], pads[0][1])  # F.pad's order: W, then H
    return b.module(op, nn.ConstantPad2d(flat, value), x, "_pad"), (0, 0)


def _map_shape(b: Builder, op: Operator) -> tuple[int, int, int, int]:
    shape = b.tensor(op, 0).shape
    if len(shape) != 4:
        raise b.fail(op, f"input of shape {shape}; tbn converts this operator on (1, H, W, C) maps")
    return shape  # type: ignore[return-value]


def conv_2d(b: Builder, op: Operator) -> fx.Node:
    """A convolution (grouped where the file's kernel reads fewer channels); a depthwise one for
    DEPTHWISE_CONV_2D, any multiplier. SAME padding as TensorFlow pads."""
    _, h, w, c = _map_shape(b, op)
    o = b.options(op)
    kernel, depthwise = b.const(op, 1), op.name == "DEPTHWISE_CONV_2D"
    weight = kernel.transpose(3, 0, 1, 2) if depthwise else kernel.transpose(0, 3, 1, 2)  # (O, I, KH, KW)
    groups = c if depthwise else c // weight.shape[1]
    if weight.shape[1] * groups != c or (depthwise and weight.shape[0] % c):
        raise b.fail(op, f"a kernel of shape {kernel.shape} does not fit an input of {c} channels")
    s, d = (o.strideH, o.strideW), (o.dilationHFactor, o.dilationWFactor)
    x, pad = _padded(b, op, b.node(op), _pads(o.padding, (h, w), weight.shape[2:], s, d))
    has_bias = len(op.inputs) > 2 and op.inputs[2] >= 0
    mod = nn.Conv2d(c, weight.shape[0], weight.shape[2:], stride=s, padding=pad, dilation=d, groups=groups,
                    bias=has_bias)
    mod.weight = _param(weight)
    if has_bias:
        mod.bias = _param(b.const(op, 2).reshape(-1))
    return b.fused(op, b.module(op, mod, x))


def fully_connected(b: Builder, op: Operator) -> fx.Node:
    """A linear layer (the inputs of a flattened map reordered from (H, W, C) to (C, H, W))."""
    weight = b.const(op, 0 + 1)  # (O, K)
    if weight.ndim != 2:
        raise b.fail(op, f"weights of shape {weight.shape}; tbn converts (outputs, inputs)")
    src = b.tensor(op, 0)
    x = b.node(op)
    if len(src.shape) == 4:  # TFLite flattens whatever it is given
        x = b.module(op, nn.Flatten(), x, "_flatten")
        chw = (src.shape[3], src.shape[1], src.shape[2])
    else:
        chw = b.layout.get(src.index)
    if int(np.prod(src.shape[1:])) != weight.shape[1] or src.shape[0] != 1:
        raise b.fail(op, f"an input of shape {src.shape} for weights of {weight.shape}")
    if chw is not None and chw[1] * chw[2] > 1 and chw[0] > 1:  # read in (C, H, W) order
        c, h, w = chw
        weight = weight[:, np.arange(c * h * w).reshape(h, w, c).transpose(2, 0, 1).reshape(-1)]
    has_bias = len(op.inputs) > 2 and op.inputs[2] >= 0
    mod = nn.Linear(weight.shape[1], weight.shape[0], bias=has_bias)
    mod.weight = _param(weight)
    if has_bias:
        mod.bias = _param(b.const(op, 2).reshape(-1))
    return b.fused(op, b.module(op, mod, x))


def pool_2d(b: Builder, op: Operator) -> fx.Node:
    """A max or average pool (an average one that pads is refused: TFLite leaves the padding
    out of its mean, a .tbn counts it)."""
    _, h, w, _ = _map_shape(b, op)
    o = b.options(op)
    k, s = (o.filterHeight, o.filterWidth), (o.strideH, o.strideW)
    pads = _pads(o.padding, (h, w), k, s, (1, 1))
    is_max = op.name == "MAX_POOL_2D"
    if not is_max and any(a or c for a, c in pads):
        raise b.fail(op, "an average pool with SAME padding leaves the padding out of its mean; the .tbn "
                     "one counts it (tbn converts VALID average pools, or SAME ones that pad nothing)")
    x, pad = _padded(b, op, b.node(op), pads, float("-inf"))
    return b.fused(op, b.module(op, (nn.MaxPool2d if is_max else nn.AvgPool2d)(k, s, pad), x))


def mean(b: Builder, op: Operator) -> fx.Node:
    """A global average pool (a mean over a map's H and W)."""
    _map_shape(b, op)
    axes = sorted(int(a) % 4 for a in np.atleast_1d(b.const(op, 1)))
    if axes != [1, 2]:
        raise b.fail(op, f"a mean over axes {axes}; tbn converts the mean over a map's H and W (axes 1, 2)")
    node = b.module(op, nn.AdaptiveAvgPool2d(1), b.node(op))
    keep = op.options is not None and op.options.keepDims
    return node if keep else b.module(op, nn.Flatten(), node, "_flat")


def _sample(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape without its leading 1s (TFLite's converter drops the batch axis of some vectors)."""
    i = 0
    while i < len(shape) - 1 and shape[i] == 1:
        i += 1
    return shape[i:]


def add(b: Builder, op: Operator) -> fx.Node:
    """The sum of two activations of one shape (a batch axis the converter dropped aside)."""
    shapes = [b.tensor(op, k).shape for k in (0, 1)]
    if _sample(shapes[0]) != _sample(shapes[1]):
        raise b.fail(op, f"adds shapes {shapes[0]} and {shapes[1]}; tbn converts an ADD of two equal shapes")
    return b.fused(op, b.graph.call_function(torch.add, (b.node(op, 0), b.node(op, 1))))


def reshape(b: Builder, op: Operator) -> fx.Node:
    """A flatten of a map to one vector per sample (in TFLite's (H, W, C) order), or nothing
    where a vector only gains or loses its batch axis."""
    src, dst = b.tensor(op, 0), b.model.tensors[op.outputs[0]]
    if len(src.shape) <= 2 and len(dst.shape) <= 2 and _sample(src.shape) == _sample(dst.shape):
        if src.index in b.layout:
            b.layout[dst.index] = b.layout[src.index]
        return b.node(op)
    if len(dst.shape) != 2 or dst.shape[0] != 1 or int(np.prod(src.shape)) != dst.shape[1]:
        raise b.fail(op, f"reshapes {src.shape} to {dst.shape}; tbn converts a reshape of one sample "
                     "to a vector (1, N)")
    node = b.module(op, nn.Flatten(), b.node(op)) if len(src.shape) > 2 else b.node(op)
    if len(src.shape) == 4:
        b.layout[dst.index] = (src.shape[3], src.shape[1], src.shape[2])
    return node


def softmax(b: Builder, op: Operator) -> fx.Node:
    """Softmax over a vector, beta 1."""
    beta = float(b.options(op).beta)
    if abs(beta - 1.0) > 1e-6 or len(b.tensor(op, 0).shape) != 2:
        raise b.fail(op, f"a softmax with beta {beta} on shape {b.tensor(op, 0).shape}; tbn "
                     "converts beta 1 over a vector")
    return b.module(op, nn.Softmax(dim=1), b.node(op))


def pad(b: Builder, op: Operator) -> fx.Node:
    """Zeros around a map's H and W."""
    _map_shape(b, op)
    p = b.const(op, 1).astype(int).reshape(4, 2)
    if p[0].any() or p[3].any():
        raise b.fail(op, f"pads {p.tolist()}; tbn converts padding of H and W only")
    return b.module(op, nn.ZeroPad2d((int(p[2, 0]), int(p[2, 1]), int(p[1, 0]), int(p[1, 1]))), b.node(op))


def passthrough(b: Builder, op: Operator) -> fx.Node:
    """Nothing: between activations, the float twin has no int8 values (a DEQUANTIZE of a
    constant gives the constant's float value)."""
    if op.inputs[0] in b.layout:  # a flattened map stays one
        b.layout[op.outputs[0]] = b.layout[op.inputs[0]]
    return b.node(op)


def unary(make: Callable[[], nn.Module]) -> Callable[[Builder, Operator], fx.Node]:
    def convert(b: Builder, op: Operator) -> fx.Node:
        """The activation, elementwise."""
        return b.module(op, make(), b.node(op))
    return convert


def leaky_relu(b: Builder, op: Operator) -> fx.Node:
    """A leaky ReLU of the file's slope."""
    return b.module(op, nn.LeakyReLU(float(b.options(op).alpha)), b.node(op))


CONVERTERS: dict[str, Callable[[Builder, Operator], fx.Node]] = {
    "CONV_2D": conv_2d, "DEPTHWISE_CONV_2D": conv_2d, "FULLY_CONNECTED": fully_connected,
    "AVERAGE_POOL_2D": pool_2d, "MAX_POOL_2D": pool_2d, "MEAN": mean, "ADD": add, "RESHAPE": reshape,
    "SOFTMAX": softmax, "PAD": pad, "QUANTIZE": passthrough, "DEQUANTIZE": passthrough,
    "RELU": unary(nn.ReLU), "RELU6": unary(nn.ReLU6), "LOGISTIC": unary(UNARY_MODULES[Op.SIGMOID]),
    "TANH": unary(UNARY_MODULES[Op.TANH]), "HARD_SWISH": unary(UNARY_MODULES[Op.HARDSWISH]),
    "LEAKY_RELU": leaky_relu,
}


def to_torch(model: TFLiteModel) -> fx.GraphModule:
    """The PyTorch graph of ``model`` (one input, one output), reading channels-first inputs."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UsageError(f"{model.path}: {len(model.inputs)} inputs and {len(model.outputs)} outputs; tbn "
                         "compiles one of each")
    b = Builder(model)
    b.nodes[model.inputs[0]] = b.graph.placeholder("x")
    for op in model.operators:
        if op.name not in CONVERTERS:
            raise b.fail(op, f"not an operator tbn converts (it converts {', '.join(sorted(CONVERTERS))})")
        if op.name == "DEQUANTIZE" and b.tensor(op, 0).value is not None:  # a constant's float form
            b.model.tensors[op.outputs[0]].value = b.tensor(op, 0).value
            continue
        try:
            b.nodes[op.outputs[0]] = CONVERTERS[op.name](b, op)
        except UsageError:
            raise
        except (ValueError, ZeroDivisionError, RuntimeError, IndexError, TypeError, AttributeError) as e:
            why = f"{type(e).__name__}: {e}"  # a corrupt file: options of another op, impossible shapes
            raise b.fail(op, f"its shapes or options do not make a valid layer ({why})") from None
    out = model.outputs[0]
    if out not in b.nodes:
        raise UsageError(f"{model.path}: its output {model.tensors[out].name} is computed by no operator")
    b.graph.output(b.nodes[out])
    return fx.GraphModule(b.root, b.graph).eval()


def describe(model: TFLiteModel) -> dict[str, Any]:
    """What the graph's user needs to know of the file: whether it was int8 (then dequantised),
    its input's channels-last shape, the int8 input and output parameters (scale, zero point)
    where it was, and the ops of a float model whose weights are int8 ("hybrid": TFLite
    quantises their inputs at run time, the graph keeps them float)."""
    def quant(i: int) -> tuple[float, int] | None:
        t = model.tensors[i]
        if not t.quantised:
            return None
        return float(t.scale[0]), int(t.zero_point[0]) if t.zero_point is not None else 0
    hybrid = [] if model.quantised else [
        op.index for op in model.operators if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
        and model.tensors[op.inputs[1]].quantised]
    return {"dequantised": model.quantised, "input_shape": model.tensors[model.inputs[0]].shape,
            "input_quantization": quant(model.inputs[0]), "output_quantization": quant(model.outputs[0]),
            "hybrid_ops": hybrid}
