"""docs/supported.md: every PyTorch row's example compiles, F32 and (unless it says not)
INT8; every refusal is the named error the page quotes; the page is what the tables make."""

from __future__ import annotations

import pytest
import torch

from tbn.compiler import TbnCompileError, compile_program
from tbn.supported import PYTORCH, REFUSED, Refusal, Row, main


@pytest.mark.parametrize("row", PYTORCH, ids=lambda r: r.spelling.split(",")[0])
def test_each_row_compiles_f32_and_int8(row: Row) -> None:
    model, x = row.example().eval(), torch.randn(16, *row.shape)
    assert compile_program(model, x[:1]).ops
    assert compile_program(model, x[:1], activations="int8", calibration=x).ops


@pytest.mark.parametrize("refusal", REFUSED, ids=lambda r: r.spelling.split(",")[0])
def test_each_refusal_is_the_named_error_quoted(refusal: Refusal) -> None:
    with pytest.raises(TbnCompileError, match=refusal.message):
        compile_program(refusal.example().eval(), torch.randn(1, *refusal.shape))


def test_the_page_is_current() -> None:
    pytest.importorskip("keras", reason="the Keras half of the page needs the tf extra")
    assert main(["--check"]) == 0, "docs/supported.md is stale: run python -m tbn.supported"
