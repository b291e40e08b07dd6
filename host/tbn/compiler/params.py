"""How a lowering stores per-output scale and bias vectors: in the narrowest form that holds
them within tolerance (:mod:`tbn.format.narrow`: int16 requantisation, float16), else wide."""

from __future__ import annotations

import numpy as np

from tbn.compiler.graph import TbnCompileError
from tbn.compiler.quant import quantize_multiplier
from tbn.format import DType, Program, Vector
from tbn.format.narrow import Rq16, narrow_float, narrow_requant


class ParamWriter:
    """Adds scale and bias vectors to ``prog``, narrow where ``narrow`` allows."""

    prog: Program
    narrow: bool

    def floats(self, v: np.ndarray) -> tuple[DType, np.ndarray]:
        """An F32 model's scale or bias vector: F16 where that holds it (tbn.format.narrow)."""
        h = narrow_float(v) if self.narrow else None
        return (DType.F16, h) if isinstance(h, np.ndarray) else (DType.F32, np.asarray(v, dtype=np.float32))

    def float_scale(self, v: np.ndarray) -> int:
        return self.prog.add_scale(*self.floats(v))

    def float_bias(self, v: np.ndarray) -> int:
        return self.prog.add_bias(*self.floats(v))

    def requant(self, real: np.ndarray, bound: int, where: str) -> int:
        """An INT8 requantisation for factors ``real`` on values up to ``bound``: RQ16 where it
        holds them (tbn.format.narrow), else REQUANT. A factor no int8 requantisation holds is a
        :class:`TbnCompileError` naming ``where`` (the layer)."""
        try:
            rq = narrow_requant(real, bound) if self.narrow else None
            if isinstance(rq, Rq16):
                self.prog.scales.append(Vector(DType.RQ16, rq.mult, rq.pre_shift, rq.shift))
                return len(self.prog.scales) - 1
            wide = [quantize_multiplier(float(r)) for r in np.atleast_1d(real)]
        except ValueError as e:
            raise TbnCompileError(f"{where}: cannot run with INT8 activations: {e}; its weights or "
                                  "values span a range int8 cannot hold (a diverged training run?): "
                                  "train again with a lower learning rate, or compile with "
                                  "--activations f32") from None
        return self.prog.add_scale(DType.REQUANT, np.array(wide, dtype=np.int32))
