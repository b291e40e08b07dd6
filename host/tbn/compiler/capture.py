"""Compiler stage 1, capture: ``torch.fx`` symbolic tracing plus shape propagation, lowered
to a small list of :class:`~tbn.compiler.graph.Node` (one per supported operation, batch axis
dropped), each classified by :mod:`tbn.compiler.classify`."""

from __future__ import annotations

import operator
import os
from typing import Any

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from tbn.compiler.attention import expand_attention
from tbn.compiler.classify import classify
from tbn.compiler.conv_transpose import expand_conv_transpose
from tbn.compiler.graph import Kind, Node, TbnCompileError
from tbn.format.spec import Op
from tbn.nn.attention import SplitAttention
from tbn.nn.layers import is_tiled


class _Tracer(fx.Tracer):
    def __init__(self) -> None:
        super().__init__()
        self.record_stack_traces = True

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return is_tiled(m) or _expansion(m) is not None or super().is_leaf_module(m, qualname)


# modules that become several nodes (the last one named as the module's call)
EXPANSIONS: dict[type, Any] = {
    nn.MultiheadAttention: expand_attention, SplitAttention: expand_attention,
    nn.ConvTranspose1d: expand_conv_transpose,
    nn.ConvTranspose2d: expand_conv_transpose}


def _expansion(m: nn.Module) -> Any:
    return next((f for kind, f in EXPANSIONS.items() if isinstance(m, kind)), None)


def _where(node: fx.Node) -> str:
    if node.op == "call_module":
        return f"module '{node.target}' (node {node.name})"
    trace = (node.meta.get("stack_trace") or "").strip().splitlines()
    torch_dir = f"{os.sep}torch{os.sep}"
    frames = [ln.strip() for ln in trace if ln.strip().startswith("File ") and torch_dir not in ln]
    return f"node {node.name}" + (f" at {frames[-1]}" if frames else "")


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
    tuples: dict[str, str] = {}  # an expanded module's fx node -> its output's value name (getitem 0)
    for node in gm.graph.nodes:
        where = _where(node)
        meta = node.meta.get("tensor_meta")
        shape = tuple(meta.shape[1:]) if hasattr(meta, "shape") else ()
        if node.op == "placeholder":
            if nodes or names:
                raise TbnCompileError(f"{where}: models with more than one input are not supported")
            names[node.name] = node.name
            nodes.append(Node(Kind.INPUT, [], node.name, shape, where))
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
        expand = _expansion(modules[node.target]) if node.op == "call_module" else None
        if expand is not None:  # a module that is several ops
            nodes += expand(modules[node.target], node, where, val)
            names[node.name] = node.name
            if isinstance(modules[node.target], nn.MultiheadAttention | SplitAttention):  # (output, weights)
                tuples[node.name] = node.name
            continue
        if node.op == "call_function" and node.target is operator.getitem and node.args[0].name in tuples:
            if node.args[1] != 0:
                raise TbnCompileError(f"{where}: uses MultiheadAttention's attention weights; tbn computes "
                                      "its output only (need_weights=False)")
            names[node.name] = tuples[node.args[0].name]
            continue
        kind, attrs, inputs = classify(node, modules, where)
        if kind in (Op.RESHAPE, Op.SOFTMAX) and hasattr(meta, "shape") \
                and (len(meta.shape) == 0 or meta.shape[0] != example_input.shape[0]):
            raise TbnCompileError(f"{where}: {kind.name.lower()} changes the batch axis; keep axis 0 as "
                                  f"the batch (e.g. x.flatten(1) or x.view(x.size(0), -1))")
        if kind == Op.SOFTMAX and (attrs.get("dim") is None or attrs["dim"] % len(meta.shape) == 0):
            raise TbnCompileError(f"{where}: softmax needs dim, an axis other than the batch axis 0 "
                                  f"(got dim={attrs.get('dim')})")
        if kind == Op.ARGMAX and attrs.get("dim") not in (1, -1):
            raise TbnCompileError(f"{where}: argmax must run over axis 1 (the features), "
                                  f"got dim={attrs.get('dim')}")
        if kind == Kind.ALIAS:
            names[node.name] = val(inputs[0], where)
            continue
        names[node.name] = node.name
        nodes.append(Node(kind, [val(a, where) for a in inputs], node.name, shape, where, attrs))
    if not output_seen:
        raise TbnCompileError("the traced graph has no output")
    nodes.append(Node(Kind.OUTPUT, [names["__output__"]], "__output__", (), "output"))
    return nodes
