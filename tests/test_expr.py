"""tbn.format.expr: the unary family's functions, written once and read by every runtime."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tbn.format.expr import evaluate, parse, to_c
from tbn.format.spec import OPS, Op
from tbn.nn.unary import UNARY_MODULES
from tbn.paths import root

UNARY = [op for op, s in OPS.items() if s.kernel == "unary"]


@pytest.mark.parametrize("fn", ["x ** 2", "pow(x, 2)", "y + 1", "x.real", "__import__('os')", "'a'",
                                "x if x else 1", "exp(x, 2)", "~x", "lambda: 1"])
def test_anything_outside_the_language_is_refused(fn: str) -> None:
    with pytest.raises((ValueError, SyntaxError)):
        parse(fn)


def test_numpy_torch_and_c_read_one_expression_alike() -> None:
    fn = "x * min(max(x + 3, 0), 6) / 6 - exp(-x) + 1.5"
    x = np.linspace(-8, 8, 33)
    want = x * np.clip(x + 3, 0, 6) / 6 - np.exp(-x) + 1.5
    np.testing.assert_allclose(evaluate(fn, x, np), want)
    np.testing.assert_allclose(evaluate(fn, torch.from_numpy(x), torch).numpy(), want)
    assert to_c(fn) == ("(((((x) * tbn_minf(tbn_maxf(((x) + 3.0f), 0.0f), 6.0f)) / 6.0f) - "
                        "tbn_exp_f32((-(x)))) + 1.5f)")


def test_every_unary_op_has_a_pytorch_spelling_and_its_c_in_the_header() -> None:
    """So the unary vectors (built from UNARY_MODULES) run every op of the family."""
    assert Op.SIGMOID in UNARY
    assert sorted(UNARY_MODULES) == sorted(UNARY)
    header = (root() / "firmware/lib/tbn/include/tbn_format.h").read_text()
    for op in UNARY:
        assert f"#define TBN_UNARY_F32_{op.name}(x, a) {to_c(OPS[op].fn)}" in header


@pytest.mark.parametrize("op", UNARY, ids=lambda op: op.name)
def test_each_function_is_pytorchs(op: Op) -> None:
    """The spec's expression is the PyTorch module it compiles from, in float64 over its range."""
    x = torch.linspace(-12, 12, 4801, dtype=torch.float64)
    module = UNARY_MODULES[op]()
    a = float(getattr(module, "negative_slope", getattr(module, "alpha", 0.0)))  # the parameter, if any
    with torch.no_grad():
        want = module(x).numpy()
    with np.errstate(over="ignore"):
        got = evaluate(OPS[op].fn, x.numpy(), np, a)
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(evaluate(OPS[op].fn, x, torch, a).numpy(), want, rtol=1e-7, atol=1e-12)
