"""INT8 arithmetic the compiler and every runtime share (docs/bytecode.md, "INT8 semantics")."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tbn.format.expr import evaluate
from tbn.format.spec import INT32_MAX, LAYERNORM_FRAC, LAYERNORM_MAX_EPS, SOFTMAX_TABLE_SIZE

BIAS_LIMIT = 1 << 30  # |bias| is clamped here so (acc + bias) * M stays inside int64


def quant_params(lo: float, hi: float) -> tuple[float, int]:
    """Affine int8 parameters covering ``[min(lo, 0), max(hi, 0)]``: (float32 scale, zero point)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-12:  # never left 0 in calibration: as if [0, 1], a scale at which the layers
        hi = 1.0  # reading it keep their biases (a scale of 1 rounded them away)
    scale = float(np.float32((hi - lo) / 255.0))
    zp = int(np.clip(round(-128 - lo / scale), -128, 127))
    return scale, zp


def quantize_multiplier(real: float) -> tuple[int, int]:
    """``(M, S)`` with ``real ~= M * 2^-S``, ``|M| < 2^31``, ``0 <= S <= 62``."""
    if real == 0 or not math.isfinite(real):
        if not math.isfinite(real):
            raise ValueError(f"requantisation factor {real} is not finite")
        return 0, 0
    m, e = math.frexp(abs(real))
    mult = round(m * (1 << 31))
    if mult == 1 << 31:
        mult //= 2
        e += 1
    shift = 31 - e
    if shift < 0:
        raise ValueError(f"requantisation factor {real} is too large for int8 (>= 2^31)")
    if shift > 62:
        mult = (mult + (1 << (shift - 63))) >> (shift - 62)
        shift = 62
    return (mult if real > 0 else -mult), shift


def relu6_qmax(scale: float, zero_point: int) -> int:
    """Largest int8 value at or below real 6.0 (rounded to nearest) for a tensor's parameters."""
    return int(min(127, zero_point + round(6.0 / scale)))


def unary_table(fn: str, src: Any, dst: Any, a: float = 0.0) -> np.ndarray:
    """A unary op's INT8 table: for each input ``q`` (-128..127, at index ``q + 128``) the
    function ``fn`` of its real value ``src.scale * (q - src.zero_point)``, quantised to
    ``dst``'s parameters (rounded half to even, clamped to its range)."""
    q = np.arange(-128, 128)
    real = float(np.float32(src.scale)) * (q - src.zero_point)
    with np.errstate(over="ignore"):  # exp past float64's range is inf, and the functions take it
        y = evaluate(fn, real.astype(np.float64), np, a)
    out = np.rint(y / float(np.float32(dst.scale))) + dst.zero_point
    return np.clip(out, dst.qmin, dst.qmax).astype(np.int8)


def softmax_table(src_scale: float) -> np.ndarray:
    """SOFTMAX_AXIS's INT8 table for an input of scale ``src_scale``: ``round(65535 exp(-d s))``
    for each difference ``d = max q - q`` (0..255), as the 512 bytes of 256 little-endian u16."""
    d = np.arange(SOFTMAX_TABLE_SIZE, dtype=np.float64)
    e = np.rint(65535.0 * np.exp(-d * float(np.float32(src_scale))))
    return e.astype("<u2").view(np.int8)


def layernorm_params(gamma: np.ndarray, beta: np.ndarray, eps: float, src_scale: float,
                     dst_scale: float) -> tuple[np.ndarray, np.ndarray, int]:
    """INT8 LAYERNORM's REQUANT entries ``(M_c, S_c)``, I32 biases ``B_c`` and integer epsilon
    ``E`` (docs/bytecode.md): ``M_c / 2^S_c = gamma_c / (s_out 2^16)`` and ``B_c / 2^S_c =
    beta_c / s_out``, each ``S_c`` the largest in [0, 62] that keeps both under 2^31, and
    ``E = round(C^2 eps / s_in^2)``, at least 1. Raises ValueError where E passes a u32."""
    c = len(gamma)
    real_g = np.asarray(gamma, np.float64) / (float(np.float32(dst_scale)) * (1 << LAYERNORM_FRAC))
    real_b = np.asarray(beta, np.float64) / float(np.float32(dst_scale))
    rq, bias = np.zeros((c, 2), np.int32), np.zeros(c, np.int32)
    for i, (g, b) in enumerate(zip(real_g, real_b, strict=True)):
        peak = max(abs(g), abs(b))
        s = 62 if peak == 0 else min(62, math.floor(math.log2((INT32_MAX - 1) / peak)))
        if s < 0 or not math.isfinite(peak):
            raise ValueError(f"LayerNorm feature {i}: gamma {g:.3g} or beta {b:.3g} over the output scale "
                             "is too large for int8")
        rq[i] = (round(g * 2.0**s), s)
        bias[i] = round(b * 2.0**s)
    e = max(1, round(c * c * eps / float(np.float32(src_scale)) ** 2))
    if e > LAYERNORM_MAX_EPS:
        raise ValueError(f"LayerNorm's epsilon {eps} is {e} in the input's integer units, past a u32: the "
                         f"input's scale {src_scale:.3g} is far below the epsilon's square root")
    return rq, bias, e
