"""Token and layout ops (format 2.5) from PyTorch: LayerNorm, transpose/permute, matrix
products of two activations, linear layers over tokens, mean/amax over any axes, nearest
upsampling and attention's constant factor. Each compiles from its PyTorch spellings; F32 runs
equal PyTorch within 1e-5 (tiled layers: their weights are exact in the file); INT8 stays
within one quantisation step of PyTorch on the op's dequantised inputs; the C runtime equals
the reference; what cannot run is a named error."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from tbn import tile_model
from tbn.capi import CRuntime
from tbn.compiler import TbnCompileError, compile_program
from tbn.compiler.weights import with_stored_weights
from tbn.format import Op, Program, read, serialize
from tbn.format.inspect import summarize
from tbn.format.spec import NONE_ID
from tbn.runtime import Interpreter
from tbn.runtime.steps import int8_op_steps


class _Net(nn.Module):
    """``then`` between a tiled linear over tokens (or a conv) and a tiled head."""

    def __init__(self, then: Callable[..., torch.Tensor], first: nn.Module, head: int,
                 norm: nn.Module | None = None) -> None:
        super().__init__()
        self.first, self.then, self.norm, self.head = first, then, norm or nn.Identity(), nn.Linear(head, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.then(self.norm(self.first(x))).flatten(1))


def _heads(y: torch.Tensor) -> torch.Tensor:  # (B, 6, 8) -> (B, 2, 6, 4)
    return y.view(y.shape[0], 6, 2, 4).transpose(1, 2)


Then = Callable[..., torch.Tensor]
Make = Callable[[], nn.Module]


def _tokens(then: Then, head: int, norm: nn.Module | None = None) -> Make:
    return lambda: _Net(then, nn.Linear(5, 8), head, norm)  # (6, 5) inputs: 6 tokens of 5


def _map(then: Then, first: Make, head: int) -> Make:
    return lambda: _Net(then, first(), head)


def _ident(y: torch.Tensor) -> torch.Tensor:
    return y


T, M, M1 = (6, 5), (2, 6, 6), (2, 6)  # the input shapes: tokens, a map, a 1-D map
CASES: dict[str, tuple[Make, tuple[int, ...], Op]] = {
    "layernorm": (_tokens(_ident, 48, nn.LayerNorm(8)), T, Op.LAYERNORM),
    "layernorm-plain": (_tokens(_ident, 48, nn.LayerNorm(8, elementwise_affine=False)), T, Op.LAYERNORM),
    "transpose": (_tokens(lambda y: y.transpose(1, 2), 48), T, Op.TRANSPOSE),
    "permute": (_tokens(lambda y: _heads(y).permute(0, 3, 1, 2), 48), T, Op.TRANSPOSE),
    "matmul": (_tokens(lambda y: y @ y.transpose(1, 2), 36), T, Op.BATCH_MATMUL),
    "matmul-heads": (_tokens(lambda y: torch.matmul(_heads(y).transpose(-2, -1), _heads(y)) / 2, 32), T,
                     Op.BATCH_MATMUL),
    "bmm": (_tokens(lambda y: torch.bmm(y.transpose(1, 2), y), 64), T, Op.BATCH_MATMUL),
    "attention": (_tokens(lambda y: torch.softmax(0.5 * (y @ y.transpose(-2, -1)), dim=-1) @ y, 48), T,
                  Op.BATCH_MATMUL),
    "mean-tokens": (_tokens(lambda y: y.mean(dim=1), 8), T, Op.GLOBAL_AVGPOOL),
    "mean-keepdim": (_tokens(lambda y: torch.mean(y, 1, keepdim=True), 8), T, Op.GLOBAL_AVGPOOL),
    "amax-tokens": (_tokens(lambda y: torch.amax(y, dim=-2), 8), T, Op.MAXPOOL2D),
    # a max over 600 points: past one pool window's 255, two pools (200, then 3)
    "amax-points": (_map(lambda y: torch.amax(y, dim=-1), lambda: nn.Conv1d(2, 4, 1), 4), (2, 600),
                    Op.MAXPOOL2D),
    "mean-channels": (_map(lambda y: y.mean(1), lambda: nn.Conv2d(2, 4, 3), 16), M, Op.GLOBAL_AVGPOOL),
    "upsample": (_map(nn.Upsample(scale_factor=2), lambda: nn.Conv2d(2, 2, 3), 128), M, Op.UPSAMPLE_NEAREST),
    "interpolate": (_map(lambda y: F.interpolate(y, scale_factor=(3, 1)), lambda: nn.Conv2d(2, 2, 3),
                         96), M, Op.UPSAMPLE_NEAREST),
    "upsample-1d": (_map(nn.Upsample(scale_factor=3), lambda: nn.Conv1d(2, 2, 3), 24), M1,
                    Op.UPSAMPLE_NEAREST),
}


def _case(name: str) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    make, shape, _ = CASES[name]
    model = make()
    tile_model(model, p=2, min_params=0)
    return model.eval(), torch.randn(64, *shape)


@pytest.mark.parametrize("name", sorted(CASES))
def test_f32_is_pytorch_and_c_is_the_reference(name: str) -> None:
    model, x = _case(name)
    prog = compile_program(model, x[:1], params="wide")
    assert CASES[name][2] in [o.opcode for o in prog.ops]
    with torch.no_grad():
        want = model(x).numpy()
    got = Interpreter(prog).run(x.numpy())
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    c = CRuntime(serialize(prog)).run(x.numpy())
    np.testing.assert_allclose(c, got, rtol=1e-5, atol=1e-5 * np.abs(got).max())


@pytest.mark.parametrize("name", sorted(CASES))
def test_int8_is_exact_in_c(name: str) -> None:
    model, x = _case(name)
    prog = compile_program(model, x[:1], activations="int8", calibration=x)
    ref = Interpreter(prog).run(x.numpy())
    np.testing.assert_array_equal(CRuntime(serialize(prog)).run(x.numpy()), ref)


def _dequant(prog: Program, values: dict[int, np.ndarray], tid: int) -> torch.Tensor:
    t = prog.tensors[tid]
    return torch.from_numpy((values[tid].astype(np.float64) - t.zero_point) * t.scale)


def _steps(prog: Program, values: dict[int, np.ndarray], op: Any, real: torch.Tensor) -> int:
    """How many quantisation steps the op's INT8 output is from ``real`` quantised alike."""
    dst = prog.tensors[op.args["output"]]
    q = np.clip(np.rint(real.numpy() / dst.scale) + dst.zero_point, dst.qmin, dst.qmax)
    return int(np.abs(values[op.args["output"]].astype(np.int64) - q).max())


@pytest.mark.parametrize("name", ["layernorm", "layernorm-plain"])
def test_int8_layernorm_is_within_one_step(name: str) -> None:
    model, x = _case(name)
    x = x * 3  # a wider input range than the calibration's, and some saturation
    prog = compile_program(model, x[:1], activations="int8", calibration=x[:32])
    _, values = Interpreter(prog).run(x.numpy(), keep=True)
    op = next(o for o in prog.ops if o.opcode == Op.LAYERNORM)
    with torch.no_grad():
        real = model.norm(_dequant(prog, values, op.args["input"]).float()).double()
    assert _steps(prog, values, op, real) <= 1


@pytest.mark.filterwarnings("ignore::tbn.runtime.interpreter.InputWarning")  # the saturated row
@pytest.mark.parametrize("width", [1, 7, 64, 300])
def test_int8_layernorm_in_c_is_the_reference_for_any_entry(width: int) -> None:
    """The C runtime's LayerNorm (32-bit words where the values allow, 64 bits where not)
    equals the reference on rows of every kind (constant, saturated, random) and on REQUANT
    entries a file may hold beyond what the compiler writes: shifts 0 to 62, multipliers
    and biases of any sign and size."""
    torch.manual_seed(width)
    model = _Net(_ident, nn.Linear(5, width), 6 * width, nn.LayerNorm(width)).eval()
    x = torch.randn(16, 6, 5)
    x[0] = 0  # a constant row: V is E alone
    x[1] *= 100  # saturated inputs
    prog = compile_program(model, x[:1], activations="int8", calibration=x[2:])
    op = next(o for o in prog.ops if o.opcode == Op.LAYERNORM)
    rng = np.random.default_rng(width)
    scale = prog.scales[op.args["scale"]]
    scale.data[:, 0] = rng.integers(-2**31, 2**31, width)
    scale.data[:, 1] = rng.integers(0, 63, width)
    if op.args["bias"] != NONE_ID:
        prog.biases[op.args["bias"]].data[:] = rng.integers(-2**31, 2**31, width)
    op.args["eps"] = 2**32 - 1 if width == 1 else 1  # the largest E, and the smallest (the largest |u|)
    ref = Interpreter(prog).run(x.numpy())
    np.testing.assert_array_equal(CRuntime(serialize(prog)).run(x.numpy()), ref)


@pytest.mark.parametrize("name", ["matmul", "matmul-heads", "bmm", "attention"])
def test_int8_matrix_products_are_within_one_step(name: str) -> None:
    model, x = _case(name)
    prog = compile_program(model, x[:1], activations="int8", calibration=x)
    _, values = Interpreter(prog).run(x.numpy(), keep=True)
    products = [o for o in prog.ops if o.opcode == Op.BATCH_MATMUL]
    factors = {"matmul-heads": [0.5], "attention": [0.5, 1.0]}.get(name, [1.0])  # the model's constants
    for op, factor in zip(products, factors, strict=True):
        a, b = (_dequant(prog, values, op.args[k]) for k in ("a", "b"))
        a = a.transpose(-1, -2) if op.args["ta"] else a
        b = b.transpose(-1, -2) if op.args["tb"] else b
        assert _steps(prog, values, op, (a @ b) * factor) <= 1


def test_transposes_feeding_products_are_read_in_place() -> None:
    """``k.transpose(-2, -1)`` before ``@`` costs no op: the product reads k transposed."""
    model, x = _case("attention")
    ops = compile_program(model, x[:1]).ops
    assert Op.TRANSPOSE not in [o.opcode for o in ops]
    first = next(o for o in ops if o.opcode == Op.BATCH_MATMUL)
    assert (first.args["ta"], first.args["tb"]) == (0, 1)


def test_a_linear_over_tokens_shares_its_tile_across_tokens() -> None:
    model, x = _case("layernorm")
    prog = compile_program(model, x[:1])
    first = prog.ops[0]
    assert first.opcode == Op.TILED_LINEAR and prog.tensors[first.args["output"]].shape == (6, 8)
    assert prog.tiles[first.args["tile"]].n_bits == 5 * 8 // 2  # one tile for all six tokens
    assert serialize(prog)[6] == 5  # format 2.5: older readers refuse it by its version


class _Bad(nn.Module):
    def __init__(self, then: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.fc, self.then = nn.Linear(4, 4), then

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.then(self.fc(x))


@pytest.mark.parametrize(("then", "tokens", "message"), [
    (lambda y: F.layer_norm(y, (3, 4)), 3, r"LayerNorm over \(3, 4\); tbn normalises over the last axis"),
    (lambda y: y.transpose(0, 1), 3, r"moves the batch axis 0; keep it first"),
    (lambda y: y.view(-1, 3, 2, 2) @ y.view(-1, 3, 2, 2).mean(1, keepdim=True), 3,
     r"a matrix product of \(3, 2, 2\) and \(1, 2, 2\); tbn multiplies .* no broadcasting"),
    (lambda y: y * 3.0, 3, r"multiplying by a constant is supported beside a matrix product"),
    (lambda y: y.mean(0), 3, r"a reduction over the batch axis 0"),
    (lambda y: F.interpolate(y, scale_factor=2, mode="linear"), 3, r"mode 'linear'; tbn runs 'nearest'"),
    (lambda y: torch.amax(y, dim=1), 257, r"a max over 257 values: 257 has a prime factor past 255"),
], ids=["layernorm-2d", "transpose-batch", "matmul-broadcast", "constant", "mean-batch", "linear", "max-257"])
def test_what_cannot_run_is_a_named_error(then: Any, tokens: int, message: str) -> None:
    with pytest.raises(TbnCompileError, match=message):
        compile_program(_Bad(then), torch.randn(1, tokens, 4))


class _PointMax(nn.Module):
    def __init__(self, amax: bool) -> None:
        super().__init__()
        self.conv, self.amax, self.pool = nn.Conv1d(3, 8, 1), amax, nn.AdaptiveMaxPool1d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x))
        return y.amax(2) if self.amax else self.pool(y).flatten(1)


@pytest.mark.parametrize("points", [1024, 600, 255])
@pytest.mark.parametrize("amax", [False, True], ids=["pool", "amax"])
def test_a_max_past_one_windows_limit_runs_as_a_chain_of_pools(points: int, amax: bool) -> None:
    """PointNet's max over 1,024 points: pools of 128 then 8 (600: 200 then 3), each within the
    bytecode's 255 a side; F32 equal to PyTorch, INT8 within a step."""
    model = _PointMax(amax).eval()
    x = torch.randn(6, 3, points)
    with torch.no_grad():
        want = with_stored_weights(model)(x).numpy()
    f32 = compile_program(model, x[:1], params="wide")
    pools = [(o.args["kh"], o.args["kw"]) for o in f32.ops if o.opcode == Op.MAXPOOL2D]
    assert pools == {1024: [(1, 128), (1, 8)], 600: [(1, 200), (1, 3)], 255: [(1, 255)]}[points]
    got = np.stack([Interpreter(f32).run(xi.numpy()).reshape(-1) for xi in x])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    int8 = compile_program(model, x[:1], activations="int8", calibration=x, params="wide")
    assert max(int8_op_steps(f32, int8, x.numpy())) <= 1


def test_layer_norm_without_parameters_compiles_from_its_function() -> None:
    model = _Bad(lambda y: F.layer_norm(y, (4,), eps=1e-3))
    x = torch.randn(8, 3, 4)
    prog = compile_program(model, x[:1], params="wide")
    assert [o.opcode for o in prog.ops] == [Op.DENSE_LINEAR, Op.LAYERNORM]


class _Attention(nn.Module):
    def __init__(self, kdim: int | None = None) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True, kdim=kdim, vdim=kdim)
        self.kv, self.head = nn.Linear(8, kdim or 8), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kv = x if self.attn._qkv_same_embed_dim else self.kv(x)  # keys and values of another width
        y, _ = self.attn(x, kv, kv, need_weights=False)
        return self.head((x + y).amax(1))


def _int8_exact(model: nn.Module) -> None:
    """Every weight a multiple of 1/64 with a row peak of 127/64: the int8 dense rows hold it exactly."""
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.copy_(torch.randint(-127, 128, p.shape) / 64.0)
                p[:, 0] = 127 / 64.0


@pytest.mark.parametrize("kdim", [None, 4], ids=["self", "other-width"])
def test_multihead_attention_is_pytorchs(kdim: int | None) -> None:
    torch.manual_seed(0)
    model = _Attention(kdim).eval()
    _int8_exact(model)
    x = torch.randn(32, 6, 8)
    prog = compile_program(model, x[:1], params="wide")
    ops = [o.opcode for o in prog.ops]
    assert ops.count(Op.BATCH_MATMUL) == 2 and ops.count(Op.DENSE_LINEAR) == (5 if kdim is None else 6)
    with torch.no_grad():
        want = model(x).numpy()
    got = Interpreter(prog).run(x.numpy())
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    int8 = compile_program(model, x[:1], activations="int8", calibration=x)
    np.testing.assert_array_equal(CRuntime(serialize(int8)).run(x.numpy()), Interpreter(int8).run(x.numpy()))


@pytest.mark.parametrize(("make", "call", "message"), [
    (lambda: nn.MultiheadAttention(8, 2), lambda m, x: m(x, x, x)[0], r"batch_first=False"),
    (lambda: nn.MultiheadAttention(8, 2, batch_first=True), lambda m, x: m(x, x, x)[1],
     r"attention weights; tbn computes its output only"),
], ids=["batch-second", "weights"])
def test_attention_tbn_cannot_run_is_a_named_error(make: Make, call: Any, message: str) -> None:
    class Wrap(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = make()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return call(self.attn, x)

    with pytest.raises(TbnCompileError, match=message):
        compile_program(Wrap(), torch.randn(1, 3, 8))


@pytest.mark.parametrize(("layer", "shape"), [
    (lambda: nn.ConvTranspose2d(3, 4, 2, stride=2), (3, 4, 5)),
    (lambda: nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1, groups=2), (4, 5, 5)),
    (lambda: nn.ConvTranspose2d(2, 3, 3, padding=1), (2, 4, 4)),
    (lambda: nn.ConvTranspose2d(2, 2, (4, 3), stride=(2, 3), padding=(1, 0), dilation=(1, 2)), (2, 3, 4)),
    (lambda: nn.ConvTranspose1d(2, 3, 4, stride=2, padding=1), (2, 7)),
], ids=["2x2-stride-2", "groups-output-padding", "stride-1", "dilated", "1d"])
def test_transposed_convolutions_are_pytorchs(layer: Make, shape: tuple[int, ...]) -> None:
    """Zeros spread by the stride, then a convolution of the flipped kernel: PyTorch's output
    (its weights exact in int8 rows), and C equal to the reference in F32 and INT8."""
    torch.manual_seed(0)
    model = nn.Sequential(layer()).eval()
    with torch.no_grad():  # weights that int8 rows hold exactly: multiples of 1/64, each row's peak 127/64
        w = model[0].weight
        w.copy_(torch.randint(-127, 128, w.shape) / 64.0)
        w[:, :, 0] = 127 / 64.0  # in every row of the flipped kernel
    x = torch.randn(16, *shape)
    with torch.no_grad():
        want = model(x).numpy()
    prog = compile_program(model, x[:1], params="wide")
    assert prog.ops[-1].opcode == Op.DENSE_CONV2D
    got = Interpreter(prog).run(x.numpy()).reshape(want.shape)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    c = CRuntime(serialize(prog)).run(x.numpy()).reshape(want.shape)
    np.testing.assert_allclose(c, got, rtol=1e-5, atol=1e-5 * np.abs(got).max())
    int8 = compile_program(model, x[:1], activations="int8", calibration=x)
    np.testing.assert_array_equal(CRuntime(serialize(int8)).run(x.numpy()), Interpreter(int8).run(x.numpy()))


def test_a_transposed_convolution_tbn_cannot_pad_is_a_named_error() -> None:
    with pytest.raises(TbnCompileError, match=r"a kernel smaller than its stride"):
        compile_program(nn.Sequential(nn.ConvTranspose2d(2, 2, 1, stride=2)), torch.randn(1, 2, 3, 3))


@pytest.mark.parametrize("path", sorted((Path(__file__).parent / "vectors").glob("*.tbn")),
                         ids=lambda p: p.stem)
def test_inspect_describes_every_vector(path: Path) -> None:
    """tbn inspect (and compile's summary) explains every op's parameters, the new families' too."""
    data = path.read_bytes()
    summary = summarize(read(data), len(data))
    assert len(summary["ops"]) == len(read(data).ops)
