"""Instructions per element of the elementwise, softmax, MUL, CONCAT and token ops on an
emulated board (QEMU icount; default mps2_an500, the Cortex-M7), F32 and INT8.

Each op runs alone (or after the small ops that make its operands) on a ``(16, 8, 8)`` map,
1,024 elements (as 128 tokens of 8 features for the token ops); the board measures every op
of the model (PROFILE) and the table gives the op's instructions divided by its output
elements, or by its multiply-accumulates for the matrix products. One boot, each model
uploaded in turn.
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
from tbn import compile_model, tile_model
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


def _tiled_tokens() -> nn.Module:
    """A binary linear layer (p=2) over the map's 128 rows of 8, as a Mixer's channel MLP."""
    layer = nn.Sequential(nn.Linear(8, 8))
    tile_model(layer, p=2, min_params=0)
    return layer


# name -> (model, the op to measure[, MACs per output element: the table divides by them])
CASES: dict[str, tuple[Callable[[], nn.Module], Op] | tuple[Callable[[], nn.Module], Op, int]] = {
    **{op.name.lower(): (UNARY_MODULES[op], op) for op in UNARY_MODULES},
    "softmax over channels": (lambda: nn.Softmax(dim=1), Op.SOFTMAX_AXIS),
    "mul": (lambda: _Fn(lambda x: x * x), Op.MUL),
    "mul (C,1,1) gate": (lambda: _Fn(_gate), Op.MUL),
    "concat channels": (lambda: _Fn(lambda x: torch.cat([x, x], dim=1)), Op.CONCAT),
    "concat width": (lambda: _Fn(lambda x: torch.cat([x, x], dim=-1)), Op.CONCAT),
    "layernorm over 8 features": (lambda: _Fn(lambda x: F.layer_norm(x, (8,))), Op.LAYERNORM),
    "transpose of the last two axes": (lambda: _Fn(lambda x: x.transpose(-2, -1).contiguous()), Op.TRANSPOSE),
    "batch_matmul 16 x (8x8 @ 8x8), per MAC": (lambda: _Fn(lambda x: x @ x), Op.BATCH_MATMUL, 8),
    "tiled linear over 128 tokens (8 to 8, p=2), per MAC": (_tiled_tokens, Op.TILED_LINEAR, 8),
    "upsample nearest x2": (lambda: nn.Upsample(scale_factor=2), Op.UPSAMPLE_NEAREST),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--board", default="mps2_an500")
    ap.add_argument("--json", help="also write the table here")
    args = ap.parse_args(argv)
    x = torch.randn(64, *SHAPE, generator=torch.Generator().manual_seed(0))
    rows = []
    with open_device(args.board) as link:
        for name, (make, op, *per) in CASES.items():
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
                work = prog.tensors[prog.ops[i].args["output"]].numel * (per[0] if per else 1)
                row[acts] = round(costs[i] / work, 2 if per else 1)
            rows.append(row)
    print(f"instructions per output element on {args.board} (QEMU icount), a {SHAPE} map")
    print_table(rows, [("op", "op"), ("f32", "F32"), ("int8", "INT8")])
    write_json(args.json, {"board": args.board, "shape": SHAPE, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
