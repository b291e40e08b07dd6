"""How close a runtime must come to the reference interpreter: one definition for every
runtime, test and benchmark (the C checker gets ``F32_RTOL`` from ``python -m tbn.parity``).

INT8 outputs must match bit for bit. F32 outputs may differ by ``F32_RTOL`` of the largest
``|reference|``: float sums in another order round differently, and that is all.
"""

from __future__ import annotations

import sys

import numpy as np

F32_RTOL = 1e-5
# the CUDA engine's activation dtypes (accumulation is float32 in all three)
GPU_RTOL = {"float32": F32_RTOL, "float16": 1e-2, "bfloat16": 5e-2}


def output_error(got: np.ndarray, want: np.ndarray) -> float:
    """INT8: the largest ``|got - want|``; otherwise that over the largest ``|want|`` (or 1)."""
    got, want = np.asarray(got), np.asarray(want)
    if got.dtype == np.int8:
        return float(np.abs(got.astype(np.int32) - want.astype(np.int32)).max(initial=0))
    scale = float(np.abs(want).max(initial=0.0)) or 1.0
    return float(np.abs(got.astype(np.float64) - want).max(initial=0.0) / scale)


def within(error: float, int8: bool, rtol: float = F32_RTOL) -> bool:
    """Whether an :func:`output_error` passes: 0 for INT8, at most ``rtol`` otherwise."""
    return error == 0 if int8 else error <= rtol


def matches(got: np.ndarray, want: np.ndarray, rtol: float = F32_RTOL) -> bool:
    """``got`` is the reference's ``want`` as the rules above allow."""
    return within(output_error(got, want), np.asarray(got).dtype == np.int8, rtol)


def describe(int8: bool) -> str:
    """The rule in words, as the golden vectors' manifest states it."""
    return "exact" if int8 else f"{F32_RTOL:.0e}".replace("e-0", "e-") + " relative to max |output|"


if __name__ == "__main__":
    print(repr(F32_RTOL))
    sys.exit(0)
