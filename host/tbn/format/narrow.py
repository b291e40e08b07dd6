"""How wide each per-output vector must be: the rule the compiler applies and ``tbn inspect``
explains (docs/bytecode.md, "Narrow per-output parameters").

INT8 layers take an RQ16 requantisation (int16 multipliers, two shifts per layer, 32-bit
arithmetic) when its worst extra deviation from the exact product stays within
NARROW_TOLERANCE output steps, and I16 biases when every bias fits. F32 layers take F16
scales and biases when converting moves no value by more than F16_TOLERANCE of the vector's
largest. Otherwise a vector keeps the wide form (REQUANT, I32, F32) and the reason is said.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tbn.format.spec import RQ16_MAX_MULT, RQ16_MAX_SHIFT, rq16_fits

NARROW_TOLERANCE = 1 / 8  # output steps an RQ16 layer may deviate beyond the wide form's rounding
F16_TOLERANCE = 2.0 ** -11  # of a vector's largest |value|: one f16 rounding of normal numbers
I16_MAX = 0x7FFF
_STEPS = 256  # the int8 range, in output steps: deviation beyond it is clamped away


@dataclass(frozen=True)
class Rq16:
    """An RQ16 requantisation: ``out = zp + rshift_round(rshift_round(v, pre_shift) * mult, shift)``."""

    mult: np.ndarray  # int16, one per output (or one)
    pre_shift: int
    shift: int
    error: float  # worst deviation from the exact product beyond rounding, in output steps


def rq16_error(real: np.ndarray, bound: int, mult: np.ndarray, pre_shift: int, shift: int) -> float:
    """Worst ``|narrow(v) - real * v|`` beyond the final rounding over ``|v| <= bound``, counted
    only where ``real * v`` lies within the int8 range (beyond it both forms clamp)."""
    real = np.abs(np.asarray(real, dtype=np.float64))
    m = np.abs(mult.astype(np.float64))
    reach = np.where(real > 0, np.minimum(bound, _STEPS / np.where(real > 0, real, 1.0)), bound)
    err = np.abs(m * 2.0 ** -(pre_shift + shift) - real) * reach
    if pre_shift:
        err = err + m * 2.0 ** -(shift + 1)  # the pre-shift's rounding, half a step of t
    return float(err.max())


def narrow_requant(real: np.ndarray, bound: int) -> Rq16 | str:
    """The RQ16 form of requantisation factors ``real`` (one per output, or one) for values
    ``|v| <= bound``, or why it cannot hold them within NARROW_TOLERANCE."""
    real = np.atleast_1d(np.asarray(real, dtype=np.float64))
    if not np.all(np.isfinite(real)):
        raise ValueError("requantisation factors are not finite")
    rmax = float(np.abs(real).max())
    if rmax == 0:
        return Rq16(np.zeros(real.size, np.int16), 0, 0, 0.0)
    _, e = math.frexp(rmax)  # rmax * 2^(15 - e) lies in [2^14, 2^15)
    top = min(15 - e, 2 * RQ16_MAX_SHIFT)  # tiny factors: as many bits as the shifts allow
    best: Rq16 | None = None
    # Fewer multiplier bits or a pre-shift both make room in 32 bits; each costs precision
    # differently (a pre-shift rounds v, worth a lot when a unit of v is a large part of a
    # step), so try every split and keep the most exact.
    for total in range(top, max(top - 16, -1), -1):
        mult = np.rint(real * 2.0 ** total)
        mabs = int(np.abs(mult).max())
        if mabs > RQ16_MAX_MULT or mabs == 0:
            continue
        for pre in range(max(0, total - RQ16_MAX_SHIFT), min(total, RQ16_MAX_SHIFT) + 1):
            if rq16_fits(bound, mabs, pre, total - pre):
                err = rq16_error(real, bound, mult, pre, total - pre)
                if best is None or err < best.error:
                    best = Rq16(mult.astype(np.int16), pre, total - pre, err)
                break  # a larger pre-shift for the same multipliers only adds error
    if best is None:
        if 15 - e < 0:
            return f"a requantisation factor of {rmax:.3g} needs more than 15 bits"
        return f"values up to {bound} do not fit 32-bit arithmetic with an int16 multiplier"
    if best.error > NARROW_TOLERANCE:
        spread = rmax / max(float(np.abs(real[real != 0]).min()), 1e-300)
        return (f"int16 with one shift per layer would move outputs by up to {best.error:.3f} steps "
                f"(limit {NARROW_TOLERANCE}); the factors span {spread:.0f}x")
    return best


def narrow_bias(bias: np.ndarray) -> np.ndarray | str:
    """Integer biases as int16 when every one fits, else why not."""
    peak = int(np.abs(bias).max()) if bias.size else 0
    if peak > I16_MAX:
        return f"a bias of {peak} needs {peak.bit_length() + 1} bits"
    return bias.astype(np.int16)


def narrow_float(values: np.ndarray) -> np.ndarray | str:
    """Float scales or biases as float16 when none moves by more than F16_TOLERANCE of the
    largest, else why not."""
    v = np.asarray(values, dtype=np.float64)
    peak = float(np.abs(v).max()) if v.size else 0.0
    if peak > float(np.finfo(np.float16).max):
        return f"|{peak:.3g}| overflows float16"
    h = v.astype(np.float16)
    err = float(np.abs(h.astype(np.float64) - v).max()) if v.size else 0.0
    if err > F16_TOLERANCE * peak:
        return f"float16 would move a value by {err:.3g}, over 2^-11 of the largest ({peak:.3g})"
    return h
