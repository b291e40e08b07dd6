"""Narrow per-output parameters (tbn.format.narrow): the rule's promises, and what compiling
with it gives (docs/bytecode.md, "Narrow per-output parameters")."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import untrained_mnist_mlp
from tbn import compile_model
from tbn.format import DType, read, spec
from tbn.format.inspect import summarize
from tbn.format.narrow import (
    NARROW_TOLERANCE,
    Rq16,
    narrow_bias,
    narrow_float,
    narrow_requant,
    rq16_error,
)
from tbn.format.program import Vector
from tbn.runtime.kernels import rescale


@settings(max_examples=200, deadline=None)
@given(st.floats(1e-6, 4.0), st.lists(st.floats(0.5, 1.0), min_size=1, max_size=8),
       st.integers(1, 1 << 24), st.integers(0, 2**32 - 1))
def test_rq16_keeps_its_promise(top: float, spread: list[float], bound: int, seed: int) -> None:
    """Where it is chosen, RQ16 fits 32 bits for every |v| <= bound and deviates from the
    exact product by at most half a step (rounding) plus its stated error, within the int8
    range; the stated error is within the tolerance."""
    real = top * np.array(spread) * np.where(np.arange(len(spread)) % 2, -1, 1)
    rq = narrow_requant(real, bound)
    if isinstance(rq, str):
        return
    assert rq.error <= NARROW_TOLERANCE
    assert spec.rq16_fits(bound, int(np.abs(rq.mult.astype(int)).max()), rq.pre_shift, rq.shift)
    v = np.random.default_rng(seed).integers(-bound, bound + 1, size=(512, len(real)))
    v[0], v[1] = bound, -bound
    got = rescale(v.astype(np.int64), Vector(DType.RQ16, rq.mult, rq.pre_shift, rq.shift), len(real))
    exact = v * real
    inside = np.abs(exact) <= 256
    assert np.all(np.abs(got - exact)[inside] <= 0.5 + rq.error + 1e-9)


def test_factors_too_far_apart_keep_the_wide_form() -> None:
    why = narrow_requant(np.array([1e-2, 1e-5]), 1 << 22)  # the small one reaches 42 steps
    assert isinstance(why, str) and "span" in why
    ok = narrow_requant(np.array([1e-2, 0.6e-2]), 200_000)
    assert isinstance(ok, Rq16) and ok.error <= NARROW_TOLERANCE
    assert isinstance(narrow_requant(np.array([1e6]), 10), str)  # too large for int16 and 31 shifts


def test_error_counts_the_pre_shift() -> None:
    real, mult = np.array([0.1]), np.array([round(0.1 * 2**17)], dtype=np.int16)
    assert rq16_error(real, 1000, mult, 2, 15) > rq16_error(real, 1000, mult, 0, 17)


def test_biases_and_floats() -> None:
    assert narrow_bias(np.array([32767, -32767])).dtype == np.int16
    assert "bits" in narrow_bias(np.array([40000]))
    assert narrow_float(np.array([1.0, 1e-3, -3.5])).dtype == np.float16
    assert "overflows" in narrow_float(np.array([1e6]))
    assert "2^-11" in narrow_float(np.array([1e-8, 3e-8]))  # under float16's smallest step


@pytest.mark.parametrize("acts", ["f32", "int8"])
def test_mlp_file_is_sub_bit_and_per_output_cost_falls(acts: str) -> None:
    """The MNIST MLP at p=4: narrow parameters cost at most 4 bytes an output in INT8 and F32
    (from 12 and 8), each layer says its form, and files state format 2.2 (wide: 2.0)."""
    model = untrained_mnist_mlp()
    x = torch.randn(64, 1, 28, 28)
    kw = {"activations": acts, "calibration": x if acts == "int8" else None}
    narrow, wide = (read(compile_model(model, x[:1], params=p, **kw)) for p in ("auto", "wide"))
    outputs = 256 + 256 + 10
    cost = {p: sum(spec.vector_nbytes(v.dtype, v.count) for v in prog.scales + prog.biases)
            for p, prog in (("auto", narrow), ("wide", wide))}
    assert cost["auto"] <= 4 * outputs + 4 * 3 < cost["wide"] / (1.9 if acts == "f32" else 2.9)
    assert (narrow.minor, wide.minor) == (2, 0)
    params = [r["params"] for r in summarize(wide, 0)["ops"]]
    assert all("--params wide" in p["scale"] or ":" in p["scale"] for p in params)
    rows = [r["params"] for r in summarize(narrow, 0)["ops"]]
    assert all(p["scale"].startswith(("RQ16", "F16", "REQUANT:", "F32:")) for p in rows)
