"""The functions of the unary family, written once as expressions of ``x``.

A unary op's ``fn`` in :mod:`tbn.format.spec` (``"1 / (1 + exp(-x))"``) is all there is of
it: the reference interpreter and the CUDA engine evaluate it on arrays (:func:`evaluate`),
the C header generator turns it into C (:func:`to_c`), and the compiler computes an INT8
model's 256-entry table from it. The language: numbers, ``x``, the op's parameter ``a`` (its
``alpha`` field: a leaky ReLU's slope), ``+ - * /``, unary minus,
and the calls ``exp(a)``, ``erf(a)``, ``min(a, b)``, ``max(a, b)``; the C runtime has each
without libm.
"""

from __future__ import annotations

import ast
import math
from functools import cache
from typing import Any

# name -> (number of arguments, the C runtime's function)
CALLS = {"exp": (1, "tbn_exp_f32"), "erf": (1, "tbn_erf_f32"), "min": (2, "tbn_minf"), "max": (2, "tbn_maxf")}
_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


@cache
def parse(fn: str) -> ast.expr:
    """The checked syntax tree of ``fn``; a :class:`ValueError` names what the language lacks."""
    tree = ast.parse(fn, mode="eval").body
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else None
            if name not in CALLS or len(node.args) != CALLS[name][0] or node.keywords:
                raise ValueError(f"{fn!r}: calls are {', '.join(f'{n}/{a}' for n, (a, _) in CALLS.items())}")
        elif isinstance(node, ast.Name):
            if node.id not in ("x", "a") and node.id not in CALLS:
                raise ValueError(f"{fn!r}: the variables are x and the parameter a, not {node.id}")
        elif isinstance(node, ast.Constant):
            if not isinstance(node.value, int | float) or isinstance(node.value, bool):
                raise ValueError(f"{fn!r}: {node.value!r} is not a number")
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _BINOPS:
                raise ValueError(f"{fn!r}: the operators are + - * /")
        elif not isinstance(node, ast.UnaryOp | ast.USub | ast.UAdd | ast.Load | ast.operator):
            raise ValueError(f"{fn!r}: {type(node).__name__} is not in the language")
        if isinstance(node, ast.UnaryOp) and not isinstance(node.op, ast.USub | ast.UAdd):
            raise ValueError(f"{fn!r}: the unary operators are - and +")
    return tree


def evaluate(fn: str, x: Any, lib: Any, a: float = 0.0) -> Any:
    """``fn`` on the array ``x`` with ``lib``'s functions (numpy, or torch): elementwise, with
    the parameter ``a``."""
    minimum, maximum = lib.minimum, lib.maximum
    erf = getattr(lib, "erf", None) or _np_erf
    if getattr(lib, "__name__", "") == "torch":  # torch's take tensors only: a number becomes one
        def t(v: Any) -> Any:
            return lib.as_tensor(v, dtype=x.dtype, device=x.device)

        def minimum(a: Any, b: Any) -> Any:
            return lib.minimum(t(a), t(b))

        def maximum(a: Any, b: Any) -> Any:
            return lib.maximum(t(a), t(b))
    return eval(_code(fn), {"__builtins__": {}}, {"x": x, "a": a, "exp": lib.exp, "erf": erf,
                                                    "min": minimum, "max": maximum})


def _np_erf(a: Any) -> Any:
    """erf on a numpy array (numpy has none; math.erf is exact to double precision)."""
    import numpy as np

    return np.vectorize(math.erf, otypes=[np.float64])(a)


@cache
def _code(fn: str) -> Any:
    """``fn`` compiled once (the reference runs it on every op of every inference)."""
    return compile(ast.Expression(parse(fn)), f"<{fn}>", "eval")


def to_c(fn: str) -> str:
    """``fn`` as a C float expression of ``x`` and ``a`` (every number a float literal)."""

    def c(node: ast.expr) -> str:
        if isinstance(node, ast.Constant):
            return f"{float(node.value)!r}f"
        if isinstance(node, ast.Name):
            return f"({node.id})"
        if isinstance(node, ast.UnaryOp):
            return f"({'-' if isinstance(node.op, ast.USub) else '+'}{c(node.operand)})"
        if isinstance(node, ast.BinOp):
            return f"({c(node.left)} {_BINOPS[type(node.op)]} {c(node.right)})"
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        return f"{CALLS[node.func.id][1]}({', '.join(c(a) for a in node.args)})"

    return c(parse(fn))


def uses_parameter(fn: str) -> bool:
    """Whether ``fn`` reads the op's parameter ``a``."""
    return any(isinstance(n, ast.Name) and n.id == "a" for n in ast.walk(parse(fn)))
