"""Instructions per element of the elementwise, softmax, MUL and CONCAT ops on an emulated
board (QEMU icount; default mps2_an500, the Cortex-M7), F32 and INT8.

Each op runs alone (or after the small ops that make its operands) on a ``(16, 8, 8)`` map,
1,024 elements; the board measures every op of the model (PROFILE) and the table gives the
op's instructions divided by its output elements. One boot, each model uploaded in turn.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from _table import print_table, write_json
from tbn import compile_model
from tbn.device.session import open_device
from tbn.format import Op, read
from tbn.nn.unary import UNARY_MODULES

SHAPE = (16, 8, 8)


class _Fn(nn.Module):
    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def _gate(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(F.adaptive_avg_pool2d(x, 1))


# name -> (model, the op to measure)
CASES: dict[str, tuple[Callable[[], nn.Module], Op]] = {
    **{op.name.lower(): (UNARY_MODULES[op], op) for op in UNARY_MODULES},
    "softmax over channels": (lambda: nn.Softmax(dim=1), Op.SOFTMAX_AXIS),
    "mul": (lambda: _Fn(lambda x: x * x), Op.MUL),
    "mul (C,1,1) gate": (lambda: _Fn(_gate), Op.MUL),
    "concat channels": (lambda: _Fn(lambda x: torch.cat([x, x], dim=1)), Op.CONCAT),
    "concat width": (lambda: _Fn(lambda x: torch.cat([x, x], dim=-1)), Op.CONCAT),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--board", default="mps2_an500")
    ap.add_argument("--json", help="also write the table here")
    args = ap.parse_args(argv)
    x = torch.randn(64, *SHAPE, generator=torch.Generator().manual_seed(0))
    rows = []
    with open_device(args.board) as link:
        for name, (make, op) in CASES.items():
            row: dict[str, object] = {"op": name}
            for acts in ("f32", "int8"):
                data = compile_model(make().eval(), x[:1], activations=acts, calibration=x)
                prog = read(data)
                link.load(data)
                xin = x[0].numpy() if acts == "f32" else np.clip(
                    np.rint(x[0].numpy() / prog.tensors[0].scale) + prog.tensors[0].zero_point, -128, 127
                ).astype(np.int8)
                costs = link.profile(xin)
                i = max(k for k, o in enumerate(prog.ops) if o.opcode == op)
                row[acts] = round(costs[i] / prog.tensors[prog.ops[i].args["output"]].numel, 1)
            rows.append(row)
    print(f"instructions per output element on {args.board} (QEMU icount), a {SHAPE} map")
    print_table(rows, [("op", "op"), ("f32", "F32"), ("int8", "INT8")])
    write_json(args.json, {"board": args.board, "shape": SHAPE, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
