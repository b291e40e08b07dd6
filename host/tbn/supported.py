"""What the front ends compile: the table of docs/supported.md, generated from the front ends
themselves so that it cannot drift.

PyTorch: :data:`PYTORCH`, one row per module or function with a small example model; the ops
each row becomes are those its example compiles to (tests/test_supported.py compiles every
example, F32 and INT8, and checks each refusal's message). Keras: the converters' own table,
:data:`tbn.keras.converters.CONVERTERS`. ``python -m tbn.supported`` writes the page
(``--check``: exit 1 where it is stale)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from tbn.format.spec import OPS, Trait, has
from tbn.paths import root

PAGE = root() / "docs" / "supported.md"


class _Fn(nn.Module):
    """``fn`` after an optional first layer, as a model."""

    def __init__(self, fn: Callable[..., torch.Tensor], first: nn.Module | None = None) -> None:
        super().__init__()
        self.first, self.fn = first or nn.Identity(), fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.first(x))


@dataclass(frozen=True)
class Row:
    """A PyTorch spelling, an example model and its input (batch aside); ``note``: limits."""

    spelling: str
    example: Callable[[], nn.Module]
    shape: tuple[int, ...]
    note: str = ""


@dataclass(frozen=True)
class Refusal:
    """A spelling tbn refuses, an example of it, and the message's key words (and why)."""

    spelling: str
    example: Callable[[], nn.Module]
    shape: tuple[int, ...]
    message: str


Make = Callable[[], nn.Module]


def _mod(make: Make) -> Make:
    """The module inside a model (a bare one's forward would be traced through, its weights too)."""
    return lambda: nn.Sequential(make())


def _fn(fn: Callable[..., torch.Tensor], first: Make | None = None) -> Make:
    return lambda: _Fn(fn, first() if first else None)


_TOKENS, _MAP, _SEQ, _VEC = (4, 6), (2, 6, 6), (2, 8), (6,)


class _Attn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(6, 2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x, need_weights=False)[0]


PYTORCH: tuple[Row, ...] = (
    Row("nn.Linear, TiledLinear", _mod(lambda: nn.Linear(6, 4)), _VEC, "reads a map flat, with no reshape"),
    Row("nn.Linear over tokens", _mod(lambda: nn.Linear(6, 4)), _TOKENS, "each token alike, one tile"),
    Row("nn.Conv2d, TiledConv2d", _mod(lambda: nn.Conv2d(2, 3, 3, stride=2, padding=1, groups=1)), _MAP,
        "any stride, dilation, padding ('same' too), groups (depthwise)"),
    Row("nn.Conv1d, TiledConv1d", _mod(lambda: nn.Conv1d(2, 3, 3, padding="same")), _SEQ,
        "stored as a one-row 2-D convolution"),
    Row("nn.BatchNorm1d/2d", _mod(lambda: nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3))), _MAP,
        "folded into the layer before; else AFFINE (F32 only)"),
    Row("nn.ReLU, F.relu, nn.ReLU6, F.relu6", _mod(lambda: nn.Sequential(nn.Linear(6, 4), nn.ReLU6())), _VEC,
        "fused into the op before where it can be"),
    Row("nn.MaxPool1d/2d, nn.AvgPool1d/2d, F.max_pool*, F.avg_pool*", _mod(lambda: nn.MaxPool2d(2)), _MAP,
        "no ceil_mode or dilation; average pools count the padding"),
    Row("nn.AdaptiveAvgPool1d/2d(1), nn.AdaptiveMaxPool1d/2d(1)", _mod(lambda: nn.AdaptiveAvgPool2d(1)), _MAP,
        "output size 1; a max past 255 a side runs as several max pools (PointNet's 1,024 points)"),
    Row("x.mean(dims), torch.amax(x, dims)", _fn(lambda x: x.mean(1)), _TOKENS,
        "any axes but the batch's; a max over more than 255 values runs as several max pools "
        "(a count with a prime factor past 255 is refused)"),
    Row("nn.ZeroPad1d/2d, nn.ConstantPad1d/2d, F.pad",
        _mod(lambda: nn.Sequential(nn.ZeroPad2d((1, 0, 1, 0)), nn.Conv2d(2, 3, 3))), _MAP,
        "folded into the convolution or pool it feeds (zeros, or -inf before a max pool); else PAD"),
    Row("nn.Flatten, x.view, x.reshape, torch.flatten", _fn(lambda x: x.reshape(x.shape[0], 3, 8)), _TOKENS,
        "the batch axis stays first"),
    Row("x.transpose, x.permute, torch.transpose, torch.permute", _fn(lambda x: x.transpose(1, 2)), _TOKENS,
        "up to 4 axes; read in place by a matrix product that follows"),
    Row("x + y, torch.add", _fn(lambda x: x + x), _VEC, "equal shapes"),
    Row("x * y, torch.mul", _fn(lambda x: x * torch.sigmoid(x.mean((2, 3), keepdim=True))), _MAP,
        "one operand may broadcast (each axis equal or 1)"),
    Row("x @ y, torch.matmul, torch.bmm", _fn(lambda x: x @ x.transpose(1, 2) * 0.5), _TOKENS,
        "equal batch axes; a constant factor beside it is folded in"),
    Row("torch.cat", _fn(lambda x: torch.cat([x, x], dim=1)), _MAP, "any axis but the batch's"),
    Row("nn.Softmax, torch.softmax, F.softmax", _fn(lambda x: torch.softmax(x, dim=-1)), _TOKENS,
        "any axis but the batch's"),
    Row("nn.LayerNorm, F.layer_norm", _mod(lambda: nn.LayerNorm(6)), _TOKENS, "over the last axis"),
    Row("nn.MultiheadAttention", _mod(_Attn), _TOKENS, "batch_first=True, no mask; output only; tile_model "
        "splits it into tbn.nn.SplitAttention, whose four projections tile"),
    Row("nn.ConvTranspose1d/2d", _mod(lambda: nn.ConvTranspose2d(2, 3, 3, 2, 1, output_padding=1)), _MAP,
        "dense: zeros spread by the stride, then a convolution (stride^2 the multiplies)"),
    Row("nn.Upsample, F.interpolate", _mod(lambda: nn.Upsample(scale_factor=2)), _MAP,
        "mode 'nearest', whole factors"),
    Row("nn.Sigmoid, nn.Tanh, nn.Hardsigmoid, nn.Hardswish, nn.SiLU, nn.GELU (both forms), nn.LeakyReLU, "
        "nn.ELU and their functions", _mod(lambda: nn.GELU(approximate="tanh")), _VEC,
        "INT8 by a 256-entry table"),
    Row("torch.argmax", _fn(lambda x: torch.argmax(x, dim=1)), _VEC, "over the features; the output is I32"),
    Row("nn.Identity, nn.Dropout, x.contiguous", lambda: nn.Sequential(nn.Linear(6, 4), nn.Dropout(0.1)),
        _VEC, "nothing at inference"),
)

REFUSED: tuple[Refusal, ...] = (
    Refusal("nn.ConvTranspose1d/2d with a kernel smaller than its stride",
            _mod(lambda: nn.ConvTranspose2d(2, 2, 1, stride=2)), _MAP, "a kernel smaller than its stride"),
    Refusal("F.interpolate other than nearest", _fn(lambda x: F.interpolate(x, scale_factor=2.0,
                                                                             mode="area")),
            _MAP, "tbn runs 'nearest'"),
    Refusal("nn.LayerNorm over several axes", _mod(lambda: nn.LayerNorm((4, 6))), _TOKENS,
            "normalises over the last axis only"),
    Refusal("operations on the batch axis", _fn(lambda x: x.transpose(0, 1)), _TOKENS, "batch axis 0"),
    Refusal("a constant factor away from a matrix product", _fn(lambda x: x * 2.0), _VEC,
            "multiplying by a constant is supported beside a matrix product"),
    Refusal("nn.LSTM, nn.GRU and other recurrent layers", _mod(lambda: nn.GRU(6, 4, batch_first=True)),
            _TOKENS, "unsupported module GRU"),
)


def _ops(row: Row | Refusal) -> str:
    from tbn.compiler import compile_program

    prog = compile_program(row.example().eval(), torch.randn(2, *row.shape))
    return ", ".join(dict.fromkeys(o.opcode.name for o in prog.ops))


def _int8(ops: str) -> str:
    return "no" if any(has(op, Trait.F32_ONLY) for op in OPS if op.name in ops.split(", ")) else "yes"


def generate() -> str:
    """The page's text."""
    from tbn.keras.converters import CONVERTERS
    from tbn.tflite import CONVERTERS as TFLITE

    lines = ["# What compiles", "", "Generated by `python -m tbn.supported` from the front ends' own tables "
             "(`tbn.supported.PYTORCH`, whose examples tests/test_supported.py compiles, and "
             "`tbn.keras.converters.CONVERTERS`, `tbn.tflite.CONVERTERS`); do not edit.", "",
             "## PyTorch", "", "| module or function | ops (its example compiles to) | INT8 | limits |",
             "|---|---|---|---|"]
    for row in PYTORCH:
        ops = _ops(row)
        lines.append(f"| {row.spelling} | {ops} | {_int8(ops)} | {row.note} |")
    lines += ["", "AFFINE (a BatchNorm no layer takes) and the whole-vector SOFTMAX are F32 only; INT8 "
              "models use SOFTMAX_AXIS.", "", "### Refused, with the error's words", "",
              "| spelling | the error says |", "|---|---|"]
    lines += [f"| {r.spelling} | {r.message} |" for r in REFUSED]
    lines += ["", "## Keras", "", "Channels-last values are converted to tbn's channels-first order "
              "(docs/keras.md).", "", "| layers | become |", "|---|---|"]
    lines += [f"| {', '.join(k.__name__ for k in c.kinds)} | {c.becomes} |" for c in CONVERTERS]
    lines += ["", "Any other layer is refused, naming it and listing these.", ""]
    lines += ["## TFLite", "", "The operators of a `.tflite` file (`tbn.tflite.CONVERTERS`, docs/keras.md), "
              "and the fused activations NONE, RELU, RELU6, RELU_N1_TO_1 and TANH.", "",
              "| operator | converts as |", "|---|---|"]
    lines += [f"| {name} | {' '.join((fn.__doc__ or '').split())} |"
              for name, fn in sorted(TFLITE.items())]
    lines += ["", "Any other operator is refused, naming its index and name.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from tbn.format.cheader import write_or_check

    return write_or_check(generate(), PAGE, "tbn.supported", argv)


if __name__ == "__main__":
    sys.exit(main())
