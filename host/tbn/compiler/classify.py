"""Which op each supported torch module, tensor method and function is: the capture stage's
vocabulary (:func:`classify`), with the geometry each op takes from its module or call."""

from __future__ import annotations

import operator
from typing import Any

import torch
from torch import fx, nn
from torch.nn import functional as F

from tbn.compiler.geometry import (
    conv_geometry,
    global_max,
    is_one,
    pad,
    pair,
    pool1d,
    pool_geometry,
    spatial_reduce,
)
from tbn.compiler.graph import Kind, TbnCompileError
from tbn.compiler.tokens import constant_factor, layernorm, reduce_axes, token_call, upsample_factors
from tbn.format.spec import Op
from tbn.nn.layers import is_tiled
from tbn.nn.unary import UNARY_MODULES


def _dim(node: fx.Node) -> Any:
    return node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)


_ADD = {operator.add, operator.iadd, torch.add}
_MUL = {operator.mul, operator.imul, torch.mul}
_RELU = {F.relu, torch.relu}
_FLATTEN_METHODS = {"flatten", "view", "reshape"}
_POOL_FUNCTIONS = {F.max_pool2d: Op.MAXPOOL2D, F.avg_pool2d: Op.AVGPOOL2D}


# the unary family's functions and tensor methods (by name); its modules are UNARY_MODULES
UNARY_CALLS: dict[Any, Op] = {torch.sigmoid: Op.SIGMOID, F.sigmoid: Op.SIGMOID, "sigmoid": Op.SIGMOID,
                              torch.tanh: Op.TANH, F.tanh: Op.TANH, "tanh": Op.TANH,
                              F.hardsigmoid: Op.HARDSIGMOID, F.hardswish: Op.HARDSWISH, F.silu: Op.SILU,
                              F.gelu: Op.GELU}


def _unary_key(m: nn.Module) -> tuple[type, Any]:
    return type(m), getattr(m, "approximate", None)


_UNARY_BY_KEY = {_unary_key(make()): op for op, make in UNARY_MODULES.items()}


def _unary_call(target: Any, args: tuple, kwargs: dict) -> Op | None:
    """The unary op a call is (``F.gelu(x, approximate="tanh")`` is GELU_TANH), or None."""
    if target not in UNARY_CALLS or len(args) != 1 or set(kwargs) - {"inplace", "approximate"}:
        return None
    return Op.GELU_TANH if kwargs.get("approximate") == "tanh" else UNARY_CALLS[target]


def classify(node: fx.Node, modules: dict[str, nn.Module], where: str) -> tuple[Op | Kind, dict, list]:
    """(kind, attrs, tensor operands) of one fx node, or a TbnCompileError naming it."""
    if node.op == "call_module":
        return _classify_module(modules[node.target], node, where)
    found = constant_factor(node, where) or token_call(node, where)
    if found is not None:
        return found
    if node.op == "call_method":
        return _classify_method(node, where)
    return _classify_function(node, where)


def _classify_module(m: nn.Module, node: fx.Node, where: str) -> tuple[Op | Kind, dict, list]:
    args = node.args
    if is_tiled(m) or isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d):
        conv = isinstance(m, nn.Conv1d | nn.Conv2d)
        layer = {(True, True): Op.TILED_CONV2D, (True, False): Op.TILED_LINEAR,
                 (False, True): Op.DENSE_CONV2D, (False, False): Op.DENSE_LINEAR}[is_tiled(m), conv]
        attrs: dict[str, Any] = {"module": m, "conv1d": isinstance(m, nn.Conv1d)}
        if conv:
            attrs["geom"] = conv_geometry(m, where)
        return layer, attrs, [args[0]]
    if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
        if m.running_mean is None:
            raise TbnCompileError(f"{where}: BatchNorm without running statistics cannot be folded")
        return Kind.BATCHNORM, {"module": m}, [args[0]]
    if isinstance(m, nn.ReLU):
        return Op.ACTIVATION, {"act": "relu"}, [args[0]]
    if isinstance(m, nn.ReLU6):
        return Op.ACTIVATION, {"act": "relu6"}, [args[0]]
    if isinstance(m, nn.Hardtanh) and (m.min_val, m.max_val) == (0.0, 6.0):
        return Op.ACTIVATION, {"act": "relu6"}, [args[0]]
    if isinstance(m, nn.MaxPool2d):
        if m.ceil_mode or pair(m.dilation) != (1, 1) or m.return_indices:
            raise TbnCompileError(f"{where}: MaxPool2d with ceil_mode, dilation or indices "
                                  f"is not supported")
        return Op.MAXPOOL2D, pool_geometry(m.kernel_size, m.stride, m.padding), [args[0]]
    if isinstance(m, nn.AvgPool2d):
        if m.ceil_mode or not m.count_include_pad or m.divisor_override:
            raise TbnCompileError(f"{where}: AvgPool2d needs ceil_mode=False, count_include_pad=True "
                                  f"and no divisor_override")
        return Op.AVGPOOL2D, pool_geometry(m.kernel_size, m.stride, m.padding), [args[0]]
    if isinstance(m, nn.MaxPool1d | nn.AvgPool1d):
        if m.ceil_mode or (isinstance(m, nn.MaxPool1d) and (pair(m.dilation)[0] != 1 or m.return_indices)) \
                or (isinstance(m, nn.AvgPool1d) and not m.count_include_pad):
            raise TbnCompileError(f"{where}: {type(m).__name__} with ceil_mode, dilation, indices or "
                                  f"count_include_pad=False is not supported")
        op = Op.MAXPOOL2D if isinstance(m, nn.MaxPool1d) else Op.AVGPOOL2D
        return op, pool1d(m.kernel_size, m.stride, m.padding), [args[0]]
    if isinstance(m, nn.AdaptiveAvgPool2d | nn.AdaptiveAvgPool1d) and is_one(m.output_size):
        return Op.GLOBAL_AVGPOOL, {"conv1d": isinstance(m, nn.AdaptiveAvgPool1d)}, [args[0]]
    if isinstance(m, nn.AdaptiveMaxPool2d | nn.AdaptiveMaxPool1d) and is_one(m.output_size) \
            and not m.return_indices:
        return Op.MAXPOOL2D, global_max(args[0], where, isinstance(m, nn.AdaptiveMaxPool1d)), [args[0]]
    if isinstance(m, nn.Flatten):
        return Op.RESHAPE, {}, [args[0]]
    if isinstance(m, nn.ZeroPad1d | nn.ZeroPad2d | nn.ConstantPad1d | nn.ConstantPad2d):
        kind, attrs = pad(m.padding, m.value, where)
        return kind, attrs, [args[0]]
    if isinstance(m, nn.Identity | nn.Dropout):
        return Kind.ALIAS, {}, [args[0]]
    if isinstance(m, nn.Softmax):
        return Op.SOFTMAX, {"dim": m.dim}, [args[0]]
    if isinstance(m, nn.LayerNorm):
        kind, attrs = layernorm(m, where)
        return kind, attrs, [args[0]]
    if isinstance(m, nn.Upsample):
        return Op.UPSAMPLE_NEAREST, upsample_factors(args[0], node, m.mode, where), [args[0]]
    if isinstance(m, nn.LeakyReLU | nn.ELU):
        alpha = m.negative_slope if isinstance(m, nn.LeakyReLU) else m.alpha
        return (Op.LEAKY_RELU if isinstance(m, nn.LeakyReLU) else Op.ELU), {"alpha": alpha}, [args[0]]
    if _unary_key(m) in _UNARY_BY_KEY:
        return _UNARY_BY_KEY[_unary_key(m)], {}, [args[0]]
    raise TbnCompileError(f"{where}: unsupported module {type(m).__name__}")


def _classify_method(node: fx.Node, where: str) -> tuple[Op | Kind, dict, list]:
    target, args = node.target, node.args
    if target in _FLATTEN_METHODS:
        return Op.RESHAPE, {}, [args[0]]
    if target == "relu":
        return Op.ACTIVATION, {"act": "relu"}, [args[0]]
    if target in ("add", "add_", "__add__") and len(args) == 2 and isinstance(args[1], fx.Node):
        return Op.ADD, {}, [args[0], args[1]]
    if target in ("mul", "mul_", "__mul__") and len(args) == 2 and isinstance(args[1], fx.Node):
        return Op.MUL, {}, [args[0], args[1]]
    if target in ("softmax", "argmax"):
        return Op[target.upper()], {"dim": _dim(node)}, [args[0]]
    if (unary := _unary_call(target, args, node.kwargs)) is not None:
        return unary, {}, [args[0]]
    if target in ("contiguous", "clone"):
        return Kind.ALIAS, {}, [args[0]]
    if target in ("mean", "amax"):
        return _reduce(node, target == "amax", where)
    raise TbnCompileError(f"{where}: unsupported tensor method .{target}()")


def _reduce(node: fx.Node, is_max: bool, where: str) -> tuple[Op | Kind, dict, list]:
    """``mean``/``amax`` over a map's spatial axes: a global average or max pool."""
    dims = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
    if dims is None:
        raise TbnCompileError(f"{where}: {'amax' if is_max else 'mean'} over every axis, the batch's too; "
                              "name the axes (dim=...)")
    keepdim = node.kwargs.get("keepdim", node.args[2] if len(node.args) > 2 else False)
    attrs = spatial_reduce(node.args[0], dims, where, is_max)
    if attrs is None:  # any other axes: a transpose, a global pool and a reshape
        attrs = reduce_axes(node.args[0], dims, keepdim, where)
    return (Op.MAXPOOL2D if is_max else Op.GLOBAL_AVGPOOL), attrs, [node.args[0]]


def _classify_function(node: fx.Node, where: str) -> tuple[Op | Kind, dict, list]:
    target, args, kwargs = node.target, node.args, node.kwargs
    if target in _ADD and len(args) == 2 and all(isinstance(a, fx.Node) for a in args) and not kwargs:
        return Op.ADD, {}, [args[0], args[1]]
    if target in (torch.cat, torch.concat, torch.concatenate):
        parts = args[0] if args else kwargs["tensors"]
        dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
        if len(parts) < 2 or not all(isinstance(p, fx.Node) for p in parts):
            raise TbnCompileError(f"{where}: torch.cat of {len(parts)} tensors; it joins two or more")
        return Op.CONCAT, {"dim": dim}, list(parts)
    if target in _MUL and len(args) == 2 and all(isinstance(a, fx.Node) for a in args) and not kwargs:
        return Op.MUL, {}, [args[0], args[1]]
    if target in _RELU:
        return Op.ACTIVATION, {"act": "relu"}, [args[0]]
    if target is F.relu6:
        return Op.ACTIVATION, {"act": "relu6"}, [args[0]]
    if target in (torch.flatten, torch.reshape):
        return Op.RESHAPE, {}, [args[0]]
    if target in (torch.softmax, F.softmax):
        return Op.SOFTMAX, {"dim": _dim(node)}, [args[0]]
    if target is torch.argmax:
        return Op.ARGMAX, {"dim": _dim(node)}, [args[0]]
    if target in _POOL_FUNCTIONS:
        k = args[1] if len(args) > 1 else kwargs["kernel_size"]
        s = args[2] if len(args) > 2 else kwargs.get("stride")
        p = args[3] if len(args) > 3 else kwargs.get("padding", 0)
        return _POOL_FUNCTIONS[target], pool_geometry(k, s, p), [args[0]]
    if target in (F.max_pool1d, F.avg_pool1d):
        k = args[1] if len(args) > 1 else kwargs["kernel_size"]
        s = args[2] if len(args) > 2 else kwargs.get("stride")
        p = args[3] if len(args) > 3 else kwargs.get("padding", 0)
        return (Op.MAXPOOL2D if target is F.max_pool1d else Op.AVGPOOL2D), pool1d(k, s, p), [args[0]]
    if target in (F.adaptive_avg_pool2d, F.adaptive_avg_pool1d) and is_one(args[1]):
        return Op.GLOBAL_AVGPOOL, {"conv1d": target is F.adaptive_avg_pool1d}, [args[0]]
    if target in (F.adaptive_max_pool2d, F.adaptive_max_pool1d) and is_one(args[1]):
        return Op.MAXPOOL2D, global_max(args[0], where, target is F.adaptive_max_pool1d), [args[0]]
    if (unary := _unary_call(target, args, kwargs)) is not None:
        return unary, {}, [args[0]]
    if target in (F.leaky_relu, F.elu):
        leaky = target is F.leaky_relu
        default = args[1] if len(args) > 1 else (0.01 if leaky else 1.0)
        alpha = kwargs.get("negative_slope" if leaky else "alpha", default)
        return (Op.LEAKY_RELU if leaky else Op.ELU), {"alpha": alpha}, [args[0]]
    if target is F.pad:
        mode = kwargs.get("mode", args[2] if len(args) > 2 else "constant")
        if mode != "constant":
            raise TbnCompileError(f"{where}: F.pad(mode={mode!r}) is not supported (only 'constant')")
        kind, attrs = pad(args[1] if len(args) > 1 else kwargs["pad"],
                           kwargs.get("value", args[3] if len(args) > 3 else None), where)
        return kind, attrs, [args[0]]
    if target in (torch.mean, torch.amax):
        return _reduce(node, target is torch.amax, where)
    if target is F.dropout:
        return Kind.ALIAS, {}, [args[0]]
    raise TbnCompileError(f"{where}: unsupported operation {getattr(target, '__name__', str(target))}")
