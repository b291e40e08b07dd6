"""Graph capture: ``torch.fx`` symbolic tracing plus shape propagation, lowered to a
small list of :class:`Node` (one per supported operation, batch axis dropped)."""

from __future__ import annotations

import operator
import os
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp
from torch.nn import functional as F

from tbn.errors import TbnError
from tbn.nn.layers import is_tiled


class TbnCompileError(TbnError, ValueError):
    """The model cannot be compiled; the message names the operation and where it is."""


@dataclass
class Node:
    kind: str
    inputs: list[str]
    output: str
    shape: tuple[int, ...]
    where: str
    attrs: dict[str, Any] = field(default_factory=dict)
    act: str = "none"


class _Tracer(fx.Tracer):
    def __init__(self) -> None:
        super().__init__()
        self.record_stack_traces = True

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return is_tiled(m) or super().is_leaf_module(m, qualname)


def _where(node: fx.Node) -> str:
    if node.op == "call_module":
        return f"module '{node.target}' (node {node.name})"
    trace = (node.meta.get("stack_trace") or "").strip().splitlines()
    torch_dir = f"{os.sep}torch{os.sep}"
    frames = [ln.strip() for ln in trace if ln.strip().startswith("File ") and torch_dir not in ln]
    return f"node {node.name}" + (f" at {frames[-1]}" if frames else "")


def _pair(v: Any) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _conv_geometry(m: nn.Module, where: str) -> dict[str, int]:
    one_d = isinstance(m, nn.Conv1d)
    if m.padding_mode != "zeros":
        raise TbnCompileError(f"{where}: padding_mode={m.padding_mode!r} is not supported (only 'zeros')")
    k = (1, m.kernel_size[0]) if one_d else _pair(m.kernel_size)
    s = (1, m.stride[0]) if one_d else _pair(m.stride)
    d = (1, m.dilation[0]) if one_d else _pair(m.dilation)
    if isinstance(m.padding, str):
        if m.padding == "valid":
            pads = [(0, 0), (0, 0)]
        else:  # 'same': PyTorch puts the odd extra pixel on the bottom/right
            pads = []
            for kk, dd in zip(k, d, strict=True):
                total = dd * (kk - 1)
                pads.append((total // 2, total - total // 2))
    else:
        p = (0, m.padding[0]) if one_d else _pair(m.padding)
        pads = [(p[0], p[0]), (p[1], p[1])]
    geom = {"kh": k[0], "kw": k[1], "sh": s[0], "sw": s[1], "dh": d[0], "dw": d[1],
            "pt": pads[0][0], "pb": pads[0][1], "pl": pads[1][0], "pr": pads[1][1], "groups": m.groups}
    if any(v > 255 for key, v in geom.items() if key != "groups"):
        raise TbnCompileError(f"{where}: kernel, stride, dilation and padding must be below 256")
    return geom


def _pool_geometry(kernel: Any, stride: Any, padding: Any) -> dict[str, int]:
    k = _pair(kernel)
    s = _pair(stride if stride not in (None, []) else kernel)
    p = _pair(padding)
    return {"kh": k[0], "kw": k[1], "sh": s[0], "sw": s[1], "pt": p[0], "pb": p[0], "pl": p[1], "pr": p[1]}


def _dim(node: fx.Node) -> Any:
    return node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)


_ADD = {operator.add, operator.iadd, torch.add}
_RELU = {F.relu, torch.relu}
_FLATTEN_METHODS = {"flatten", "view", "reshape"}
_POOL_FUNCTIONS = {F.max_pool2d: "maxpool", F.avg_pool2d: "avgpool"}


def capture(model: nn.Module, example_input: torch.Tensor) -> list[Node]:
    """Trace ``model`` (in eval mode) and return its supported operations in order."""
    model = model.eval()
    try:
        graph = _Tracer().trace(model)
    except Exception as e:  # torch.fx raises many types for untraceable code
        raise TbnCompileError(f"torch.fx could not trace the model: {e}") from e
    gm = fx.GraphModule(model, graph)
    with torch.no_grad():
        ShapeProp(gm).propagate(example_input)
    nodes: list[Node] = []
    names: dict[str, str] = {}  # fx node name -> value name (aliases collapse)
    modules = dict(model.named_modules())

    def val(arg: Any, where: str) -> str:
        if not isinstance(arg, fx.Node) or arg.name not in names:
            raise TbnCompileError(f"{where}: an operand is not a tensor computed by the model ({arg!r})")
        return names[arg.name]

    output_seen = False
    for node in gm.graph.nodes:
        where = _where(node)
        meta = node.meta.get("tensor_meta")
        shape = tuple(meta.shape[1:]) if hasattr(meta, "shape") else ()
        if node.op == "placeholder":
            if nodes or names:
                raise TbnCompileError(f"{where}: models with more than one input are not supported")
            names[node.name] = node.name
            nodes.append(Node("input", [], node.name, shape, where))
            continue
        if node.op == "output":
            if not isinstance(node.args[0], fx.Node):
                raise TbnCompileError(f"{where}: the model must return one tensor")
            names["__output__"] = val(node.args[0], where)
            output_seen = True
            continue
        if node.op == "get_attr":
            raise TbnCompileError(f"{where}: reads parameter or buffer '{node.target}' directly; "
                                  f"only layers (modules) may hold weights")
        if (node.op in ("call_method", "call_function") and node.target in ("size", getattr)) \
                or (node.op == "call_function" and node.target is operator.getitem and not shape):
            continue  # shape arithmetic feeding view/reshape: no tensor is produced
        kind, attrs, inputs = _classify(node, modules, where)
        if kind in ("reshape", "softmax") and hasattr(meta, "shape") \
                and (len(meta.shape) == 0 or meta.shape[0] != example_input.shape[0]):
            raise TbnCompileError(f"{where}: {kind} changes the batch axis; keep axis 0 as the batch "
                                  f"(e.g. x.flatten(1) or x.view(x.size(0), -1))")
        if kind in ("softmax", "argmax") and attrs.get("dim") not in (1, -1):
            raise TbnCompileError(f"{where}: {kind} must run over axis 1 (the features), "
                                  f"got dim={attrs.get('dim')}")
        if kind == "alias":
            names[node.name] = val(inputs[0], where)
            continue
        names[node.name] = node.name
        nodes.append(Node(kind, [val(a, where) for a in inputs], node.name, shape, where, attrs))
    if not output_seen:
        raise TbnCompileError("the traced graph has no output")
    nodes.append(Node("output", [names["__output__"]], "__output__", (), "output"))
    return nodes


def _classify(node: fx.Node, modules: dict[str, nn.Module], where: str) -> tuple[str, dict, list]:
    """(kind, attrs, tensor operands) of one fx node, or a TbnCompileError naming it."""
    if node.op == "call_module":
        return _classify_module(modules[node.target], node.args, where)
    if node.op == "call_method":
        return _classify_method(node, where)
    return _classify_function(node, where)


def _classify_module(m: nn.Module, args: tuple, where: str) -> tuple[str, dict, list]:
    if is_tiled(m) or isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d):
        layer = "tiled" if is_tiled(m) else "dense"
        conv = isinstance(m, nn.Conv1d | nn.Conv2d)
        attrs: dict[str, Any] = {"module": m, "conv": conv, "conv1d": isinstance(m, nn.Conv1d)}
        if conv:
            attrs["geom"] = _conv_geometry(m, where)
        return layer, attrs, [args[0]]
    if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
        if m.running_mean is None:
            raise TbnCompileError(f"{where}: BatchNorm without running statistics cannot be folded")
        return "bn", {"module": m}, [args[0]]
    if isinstance(m, nn.ReLU):
        return "act", {"act": "relu"}, [args[0]]
    if isinstance(m, nn.ReLU6):
        return "act", {"act": "relu6"}, [args[0]]
    if isinstance(m, nn.Hardtanh) and (m.min_val, m.max_val) == (0.0, 6.0):
        return "act", {"act": "relu6"}, [args[0]]
    if isinstance(m, nn.MaxPool2d):
        if m.ceil_mode or _pair(m.dilation) != (1, 1) or m.return_indices:
            raise TbnCompileError(f"{where}: MaxPool2d with ceil_mode, dilation or indices "
                                  f"is not supported")
        return "maxpool", _pool_geometry(m.kernel_size, m.stride, m.padding), [args[0]]
    if isinstance(m, nn.AvgPool2d):
        if m.ceil_mode or not m.count_include_pad or m.divisor_override:
            raise TbnCompileError(f"{where}: AvgPool2d needs ceil_mode=False, count_include_pad=True "
                                  f"and no divisor_override")
        return "avgpool", _pool_geometry(m.kernel_size, m.stride, m.padding), [args[0]]
    if isinstance(m, nn.AdaptiveAvgPool2d) and _pair(m.output_size) == (1, 1):
        return "gap", {}, [args[0]]
    if isinstance(m, nn.Flatten):
        return "reshape", {}, [args[0]]
    if isinstance(m, nn.Identity | nn.Dropout):
        return "alias", {}, [args[0]]
    if isinstance(m, nn.Softmax):
        return "softmax", {"dim": m.dim}, [args[0]]
    raise TbnCompileError(f"{where}: unsupported module {type(m).__name__}")


def _classify_method(node: fx.Node, where: str) -> tuple[str, dict, list]:
    target, args = node.target, node.args
    if target in _FLATTEN_METHODS:
        return "reshape", {}, [args[0]]
    if target == "relu":
        return "act", {"act": "relu"}, [args[0]]
    if target in ("add", "add_", "__add__") and len(args) == 2 and isinstance(args[1], fx.Node):
        return "add", {}, [args[0], args[1]]
    if target in ("softmax", "argmax"):
        return target, {"dim": _dim(node)}, [args[0]]
    if target in ("contiguous", "clone"):
        return "alias", {}, [args[0]]
    raise TbnCompileError(f"{where}: unsupported tensor method .{target}()")


def _classify_function(node: fx.Node, where: str) -> tuple[str, dict, list]:
    target, args, kwargs = node.target, node.args, node.kwargs
    if target in _ADD and len(args) == 2 and all(isinstance(a, fx.Node) for a in args) and not kwargs:
        return "add", {}, [args[0], args[1]]
    if target in _RELU:
        return "act", {"act": "relu"}, [args[0]]
    if target is F.relu6:
        return "act", {"act": "relu6"}, [args[0]]
    if target in (torch.flatten, torch.reshape):
        return "reshape", {}, [args[0]]
    if target in (torch.softmax, F.softmax):
        return "softmax", {"dim": _dim(node)}, [args[0]]
    if target is torch.argmax:
        return "argmax", {"dim": _dim(node)}, [args[0]]
    if target in _POOL_FUNCTIONS:
        k = args[1] if len(args) > 1 else kwargs["kernel_size"]
        s = args[2] if len(args) > 2 else kwargs.get("stride")
        p = args[3] if len(args) > 3 else kwargs.get("padding", 0)
        return _POOL_FUNCTIONS[target], _pool_geometry(k, s, p), [args[0]]
    if target is F.adaptive_avg_pool2d and _pair(args[1]) == (1, 1):
        return "gap", {}, [args[0]]
    if target is F.dropout:
        return "alias", {}, [args[0]]
    raise TbnCompileError(f"{where}: unsupported operation {getattr(target, '__name__', str(target))}")
