"""The compiler and the reference interpreter: parity with PyTorch, golden vectors, errors,
memory plan, size, and the compile -> inspect -> run path on a trained model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from tbn import compile_model, tile_model
from tbn.compiler import TbnCompileError, compile_program
from tbn.compiler.memory import Buffer, lower_bound, plan
from tbn.compiler.quant import quantize_multiplier
from tbn.compiler.weights import with_stored_weights
from tbn.format import DType, Op, read, serialize, spec
from tbn.format.inspect import summarize
from tbn.nn.unary import UNARY_MODULES
from tbn.runtime import Interpreter
from tbn.runtime.steps import agreement
from tbn.train.models import mlp
from tbn.vectors import CASES, build_case

VECTORS = Path(__file__).parent / "vectors"
MANIFEST = json.loads((VECTORS / "manifest.json").read_text())


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b).max() / max(np.abs(b).max(), 1e-12))


@pytest.mark.parametrize("name", [n for n in CASES if CASES[n][3] == "f32"])
def test_f32_matches_pytorch(name: str) -> None:
    model, data, x = build_case(name)
    with torch.no_grad():
        ref = with_stored_weights(model)(torch.from_numpy(x)).numpy()
    prog = read(data)
    f16 = any(v.dtype == DType.F16 for v in prog.scales + prog.biases)
    # float16 scales and biases round each to 11 significant bits (2^-11 relative); a few layers
    # of them stay within 2e-3 of the float32 model
    assert _rel(Interpreter(data).run(x), ref) <= (2e-3 if f16 else 1e-4)


@pytest.mark.parametrize("name", [n for n in CASES if CASES[n][3] == "int8"])
def test_int8_tracks_pytorch(name: str) -> None:
    model, data, x = build_case(name)
    reference = with_stored_weights(model)
    scores: list[torch.Tensor] = []
    if hasattr(reference, "fc"):  # the scores an argmax model picks from
        reference.fc.register_forward_hook(lambda _m, _i, out: scores.append(out))
    with torch.no_grad():
        ref = reference(torch.from_numpy(x)).numpy()
    y = Interpreter(data).run_float(x)
    if ref.dtype.kind == "i":  # argmax output: the same class, or a near-tie int8 may flip
        s = scores[0].numpy().reshape(len(x), -1)
        got, want = y.reshape(-1).astype(int), ref.reshape(-1)
        gap = s[np.arange(len(x)), want] - s[np.arange(len(x)), got]
        assert np.all(gap <= 0.05 * (s.max(axis=1) - s.min(axis=1))), (got, want, gap)
    else:
        assert _rel(y, ref) <= 0.05


def test_vectors_cover_every_op_and_activation() -> None:
    ops, acts, int8 = set(), set(), set()
    for f in VECTORS.glob("*.tbn"):
        prog = read(f.read_bytes())
        ops |= {o.opcode for o in prog.ops}
        acts |= {o.act for o in prog.ops}
        int8.add(prog.int8)
    assert ops == set(Op) and len(acts) == 3 and int8 == {True, False}


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_golden_vectors_reproduce(name: str) -> None:
    meta = MANIFEST[name]
    x = np.fromfile(VECTORS / f"{name}.input.bin", dtype=meta["input"]["dtype"])
    x = x.reshape(meta["input"]["shape"])
    want = np.fromfile(VECTORS / f"{name}.output.bin", dtype=meta["output"]["dtype"])
    got = Interpreter((VECTORS / f"{name}.tbn").read_bytes()).run(x).reshape(-1)
    if meta["activations"] == "int8":
        assert np.array_equal(got, want)
    else:
        assert _rel(got, want) <= 1e-6


def test_vectors_are_what_the_code_produces() -> None:
    result = subprocess.run([sys.executable, "-m", "tbn.vectors", "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_batchnorm_is_folded_and_activations_fused() -> None:
    model = mlp()
    tile_model(model, p=4)
    prog = compile_program(model.eval(), torch.zeros(1, 1, 28, 28))
    assert [(o.opcode.name, o.act.name) for o in prog.ops] == [
        ("TILED_LINEAR", "RELU"), ("TILED_LINEAR", "RELU"), ("TILED_LINEAR", "NONE")]
    assert [prog.scales[o.args["scale"]].count for o in prog.ops] == [256, 256, 1]


def test_identical_tiles_are_stored_once() -> None:
    model = nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 32))
    model[2].load_state_dict(model[0].state_dict())
    tile_model(model, p=4, min_params=0)
    prog = compile_program(model, torch.zeros(1, 32))
    assert len(prog.tiles) == 1 and {o.args["tile"] for o in prog.ops} == {0}


def test_compile_leaves_training_mode_alone() -> None:
    model = mlp()
    tile_model(model, p=4)
    compile_model(model, torch.zeros(1, 1, 28, 28))
    assert model.training


@pytest.mark.parametrize("p", [4, 8])
def test_mlp_bytecode_size_target(p: int) -> None:
    model = mlp()
    tile_model(model, p=p)
    data = compile_model(model.eval(), torch.zeros(1, 1, 28, 28))
    s = summarize(read(data), len(data))
    # each of the 3 tiled ops names a scratch tensor: a tensor entry, an arena slot, 4 op bytes
    scratch = 3 * (spec.TENSOR.size + spec.ARENA.size + 4)
    # float16 vectors of odd length leave 2 bytes of padding before the next 4-aligned constant
    assert s["overhead_bytes"] - s["sections"]["alignment padding"] == 228 + scratch


class _Cumsum(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cumsum(self.fc(x), 1)


class _RawParam(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.w


def test_unsupported_ops_are_named_with_their_place() -> None:
    where = r"node cumsum at File .*test_compiler.py.*unsupported operation cumsum"
    with pytest.raises(TbnCompileError, match=where):
        compile_model(_Cumsum(), torch.zeros(1, 4))
    with pytest.raises(TbnCompileError, match=r"module '1' \(node _1\): unsupported module Mish"):
        compile_model(nn.Sequential(nn.Linear(4, 4), nn.Mish()), torch.zeros(1, 4))
    with pytest.raises(TbnCompileError, match="reads parameter or buffer 'w' directly"):
        compile_model(_RawParam(), torch.zeros(1, 4))
    with pytest.raises(TbnCompileError, match="needs calibration data"):
        compile_model(nn.Sequential(nn.Linear(4, 4)), torch.zeros(1, 4), activations="int8")
    odd = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6))
    tile_model(odd, p=4, min_params=0)
    with pytest.raises(TbnCompileError, match="cannot be folded, which INT8 needs"):
        compile_model(odd.eval(), torch.zeros(1, 4), activations="int8", calibration=torch.randn(8, 4))


def test_memory_plan_never_overlaps_live_buffers() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        bufs = []
        for _ in range(12):
            first = int(rng.integers(-1, 10))
            bufs.append(Buffer(int(rng.integers(1, 500)), first, first + int(rng.integers(0, 5))))
        size = plan(bufs)
        assert size >= lower_bound(bufs)
        for i, a in enumerate(bufs):
            assert a.offset % 4 == 0 and a.offset + a.size <= size
            for b in bufs[i + 1:]:
                if a.first <= b.last and b.first <= a.last:
                    assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset
    prog = compile_program(_mlp_eval(), torch.zeros(1, 1, 28, 28))
    # input + one hidden (the other reuses the input's) + the first layer's table scratch
    assert prog.arena_size == 784 * 4 + 256 * 4 + spec.lut_scratch_size(64, 784, conv=False, int8=False)
    flat = compile_program(_mlp_eval(), torch.zeros(1, 1, 28, 28), lookup_tables=False)
    assert flat.arena_size == 784 * 4 + 256 * 4 and all("scratch" not in o.args for o in flat.ops)


@pytest.mark.parametrize(("size", "pairs"), [(5, True), (1, False)])
def test_int8_convs_get_scratch_for_positions_in_pairs(size: int, pairs: bool) -> None:
    """An INT8 conv of two or more output positions gets the scratch with which a runtime
    takes them in pairs (tbn.format.spec.lut_pair_scratch_size); one of one position only the
    table kernel's own."""
    model = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(16 * size * size, 4))
    tile_model(model, p=2, min_params=0)
    x = torch.randn(8, 16, size, size)
    prog = read(compile_model(model.eval(), x[:1], activations="int8", calibration=x))
    conv = prog.ops[0]
    scratch = prog.tensors[conv.args["scratch"]].nbytes
    rows = spec.lut_rows(144, prog.tiles[conv.args["tile"]].n_bits, 1)
    assert scratch >= spec.lut_scratch_size(rows, 144, conv=True, int8=True)
    assert (scratch >= spec.lut_pair_scratch_size(rows, 144, conv=True)) == pairs


def test_memory_plan_reaches_the_bound_on_a_chain() -> None:
    """A 4-conv chain (16x16 input; 12x8x8, 32x4x4, 32x4x4, 40x4x4, 10): the most bytes
    alive at once are 1,280, where largest-first placement at the lowest offset took 1,792."""
    sizes = [256, 768, 512, 512, 640, 10]
    bufs = [Buffer(size, i - 1, i) for i, size in enumerate(sizes)]
    assert lower_bound(bufs) == 1280
    assert plan(bufs) == 1280


def _mlp_eval() -> nn.Module:
    model = mlp()
    tile_model(model, p=4)
    return model.eval()


@pytest.mark.parametrize("real", [1.0, 0.5, 0.3, 1e-3, 3.7e-9, -0.25, 1234.5, 1e-30])
def test_quantize_multiplier(real: float) -> None:
    m, s = quantize_multiplier(real)
    assert abs(m) < 2**31 and 0 <= s <= 62
    assert m * 2.0**-s == pytest.approx(real, rel=1e-6, abs=2**-62)


@pytest.mark.usefixtures("shared_mnist")
def test_trained_model_compile_inspect_run(tmp_path: Path) -> None:
    from tbn.train import TrainConfig, load_model, mnist_tensors, train

    train(TrainConfig(p=4, epochs=1, train_subset=6000), tmp_path, progress=False)
    model, _ = load_model(tmp_path / "model.pt")
    x, y = mnist_tensors("test")
    with torch.no_grad():
        torch_acc = float((model(x).argmax(1) == y).float().mean())
    tbn = [sys.executable, "-m", "tbn.cli.main"]

    def cli(*args: str) -> str:
        r = subprocess.run([*tbn, *args], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return r.stdout

    out = cli("compile", str(tmp_path / "model.pt"), "-o", str(tmp_path / "m.tbn"))
    assert "TILED_LINEAR" in out
    info = cli("inspect", str(tmp_path / "m.tbn"))
    assert "arena 4928 bytes" in info and "768 B scratch" in info
    assert "bits/weight" in info and "as float32: 1075200 bytes" in info
    f32 = cli("run", str(tmp_path / "m.tbn"), "--data", "mnist")
    # float16 scales and biases (the default) may move a near-tie: within 0.05 points of PyTorch
    assert abs(float(f32.split("accuracy ")[1].split()[0]) - torch_acc) <= 0.0005
    cli("compile", str(tmp_path / "model.pt"), "-o", str(tmp_path / "w.tbn"), "--params", "wide")
    assert f"accuracy {torch_acc:.4f}" in cli("run", str(tmp_path / "w.tbn"), "--data", "mnist")
    out = cli("compile", str(tmp_path / "model.pt"), "-o", str(tmp_path / "q.tbn"), "--activations", "int8")
    assert "INT8 against its F32 twin on the 8 calibration inputs: the same top-1 output on" in out
    q = cli("run", str(tmp_path / "q.tbn"), "--data", "mnist")
    int8_acc = float(q.split("accuracy ")[1].split()[0])
    assert abs(int8_acc - torch_acc) <= 0.003
    bad = subprocess.run([*tbn, "run", str(tmp_path / "model.pt"), "--data", "mnist"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "bad magic" in bad.stderr


class _BadFlatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x.view(-1))


def test_batch_axis_must_survive() -> None:
    with pytest.raises(TbnCompileError, match="changes the batch axis"):
        compile_model(_BadFlatten(), torch.zeros(1, 4))
    with pytest.raises(TbnCompileError, match=r"an axis other than the batch axis 0 \(got dim=0\)"):
        compile_model(nn.Sequential(nn.Linear(4, 4), nn.Softmax(dim=0)), torch.zeros(1, 4))


def test_dense_weights_per_tensor_fold_batchnorm_into_one_scale() -> None:
    """TFLite Micro's per-tensor quantisation: BatchNorm folded into the int8 weights, one
    REQUANT entry per layer; the result still tracks the float model."""
    torch.manual_seed(0)
    model = mlp()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    model.eval()
    x = torch.randn(32, 1, 28, 28)
    prog = compile_program(model, x[:1], activations="int8", calibration=x, dense_weights="per_tensor")
    assert [prog.scales[o.args["scale"]].count for o in prog.ops] == [1, 1, 1]
    assert all(o.opcode == Op.DENSE_LINEAR for o in prog.ops)
    got = Interpreter(prog).run_float(x.numpy())
    want = model(x).detach().numpy()
    assert np.mean(got.argmax(1) == want.argmax(1)) >= 0.9
    with pytest.raises(TbnCompileError, match="dense_weights="):
        compile_program(model, x[:1], dense_weights="per_row")  # type: ignore[arg-type]


class _Sigmoids(nn.Module):
    """SIGMOID as a module, a function and a tensor method."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.act = nn.Linear(6, 8), nn.Linear(8, 8), nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.b(self.act(self.a(x))).sigmoid())


def test_a_unary_op_compiles_from_each_spelling() -> None:
    f32 = compile_program(_Sigmoids().eval(), torch.randn(1, 6), params="wide")
    assert [op.opcode for op in f32.ops].count(Op.SIGMOID) == 3

    def functions(x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.gelu(x, approximate="tanh") + nn.functional.gelu(x)
        return nn.functional.hardswish(nn.functional.silu(nn.functional.hardsigmoid(x)))

    model = _Wrap(nn.Linear(6, 8), functions)
    ops = [op.opcode for op in compile_program(model, torch.randn(1, 6)).ops]
    assert ops == [Op.DENSE_LINEAR, Op.GELU_TANH, Op.GELU, Op.ADD, Op.HARDSIGMOID, Op.SILU, Op.HARDSWISH]


class _Wrap(nn.Module):
    def __init__(self, layer: nn.Module, then: Any) -> None:
        super().__init__()
        self.layer, self.then = layer, then

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.then(self.layer(x))


@pytest.mark.parametrize("op", sorted(UNARY_MODULES), ids=lambda op: op.name)
def test_each_unary_op_is_pytorchs_f32_and_int8(op: Op) -> None:
    """F32 (wide parameters): the reference equals PyTorch within 1e-5 relative. INT8: the op's
    256-entry table gives the PyTorch function of its dequantised input, requantised: within
    one quantisation step (rounding) of the float model run through the same quantisation."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), UNARY_MODULES[op](), nn.Linear(8, 8), UNARY_MODULES[op]())
    tile_model(model, p=2, min_params=0)  # tiled: its weights exact in the file, unlike int8 dense ones
    model.eval()
    x = torch.randn(256, 6) * 2
    with torch.no_grad():
        want = model(x).numpy()
    f32 = compile_program(model, x[:1], params="wide")
    assert [o.opcode for o in f32.ops].count(op) == 2
    got = Interpreter(f32).run(x.numpy())
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    int8 = compile_program(model, x[:1], activations="int8", calibration=x)
    got, values = Interpreter(int8).run(x.numpy(), keep=True)
    last = int8.ops[-1]
    src, dst = int8.tensors[last.args["input"]], int8.tensors[last.args["output"]]
    with torch.no_grad():
        real = UNARY_MODULES[op]()(torch.from_numpy(
            (values[last.args["input"]].astype(np.float64) - src.zero_point) * src.scale)).numpy()
    q = np.clip(np.rint(real / dst.scale) + dst.zero_point, dst.qmin, dst.qmax)
    assert np.abs(got.astype(np.int64) - q).max() <= 1
    assert all(len(int8.dense[o.args["table"]]) == 256 for o in int8.ops if o.opcode == op)


def test_a_factor_int8_cannot_hold_is_a_named_error_naming_the_layer() -> None:
    """A diverged model's requantisation past 2^31 (issue: the faults left) says which layer."""
    from tbn.compiler.params import ParamWriter
    from tbn.format import Program

    writer = ParamWriter()
    writer.prog, writer.narrow = Program(), True
    with pytest.raises(TbnCompileError, match=r"module 'fc' \(node fc\): cannot run with INT8 .*too large "
                                              r"for int8.*--activations f32"):
        writer.requant(np.array([2.0**40]), 1000, "module 'fc' (node fc)")
    assert writer.requant(np.array([0.5]), 1000, "module 'fc' (node fc)") == 0


@pytest.mark.parametrize("then", [
    lambda x: F.pad(x, (1, 1, 1, 1)).flatten(1),
    lambda x: F.max_pool2d(F.pad(x, (1, 1, 1, 1)), 2),
    lambda x: F.avg_pool2d(F.pad(x, (0, 3, 0, 0)), 2),
    lambda x: F.max_pool2d(F.pad(x, (1, 1, 1, 1), value=2.0), 2),
    lambda x: F.pad(x, (2, 0, 0, 1), value=-0.5) + F.pad(x, (2, 0, 0, 1)),
], ids=["flatten", "zeros-before-max", "past-half-window", "value-2", "two-readers"])
def test_padding_no_layer_can_take_is_a_pad_op(then: Any) -> None:
    """Constant padding folds into the convolution or pool it feeds (the padded_* vectors);
    where none can take it, it is a PAD op, F32 equal to PyTorch and INT8 equal in C."""
    torch.manual_seed(0)
    model = _Wrap(nn.Conv2d(2, 3, 1), then)
    tile_model(model, p=1, min_params=0)
    model.eval()
    x = torch.randn(32, 2, 6, 6)
    prog = compile_program(model, x[:1], params="wide")
    assert Op.PAD in [o.opcode for o in prog.ops]
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(Interpreter(prog).run(x.numpy()).reshape(want.shape), want, rtol=1e-5,
                               atol=1e-5 * np.abs(want).max())
    int8 = compile_program(model, x[:1], activations="int8", calibration=x)
    from tbn.capi import CRuntime
    np.testing.assert_array_equal(CRuntime(serialize(int8)).run(x.numpy()), Interpreter(int8).run(x.numpy()))


def test_padding_tbn_cannot_hold_is_a_named_error() -> None:
    with pytest.raises(TbnCompileError, match=r"F.pad\(mode='reflect'\) is not supported"):
        compile_program(_Wrap(nn.Conv2d(2, 3, 1), lambda x: F.pad(x, (1, 1, 1, 1), mode="reflect")),
                        torch.randn(1, 2, 6, 6))


def test_a_product_that_does_not_broadcast_is_a_named_error() -> None:
    """MUL broadcasts one operand whose every axis is the other's or 1 (tested by the gated_*
    vectors); PyTorch's trailing-axis broadcast of a (4,) vector over a (3, 4, 4) map is not
    that: view it first."""

    class Trailing(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.fc = nn.Conv2d(2, 3, 1), nn.Linear(48, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x)
            return y * self.fc(y.flatten(1))

    with pytest.raises(TbnCompileError, match=r"multiplies shapes \(3, 4, 4\) and \(4,\)"):
        compile_program(Trailing(), torch.randn(1, 2, 4, 4))


def test_concatenation_along_the_batch_axis_is_a_named_error() -> None:
    model = _Wrap(nn.Conv2d(2, 3, 1), lambda y: torch.cat([y, y], dim=0))
    with pytest.raises(TbnCompileError, match="concatenation along the batch axis"):
        compile_program(model, torch.randn(1, 2, 4, 4))


def test_int8_agreement_names_an_op_far_from_its_f32_twin() -> None:
    """tbn compile's INT8 report (tbn.runtime.steps.agreement): a table moved by 5 steps is named."""
    from tbn.runtime.steps import STEP_BOUND, agreement

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 4))
    tile_model(model, p=2, min_params=0)
    x = torch.randn(64, 6)
    f32 = compile_program(model.eval(), x[:1])
    int8 = compile_program(model, x[:1], activations="int8", calibration=x)
    good = agreement(f32, int8, x.numpy())
    assert good.far == () and good.top1 is not None and good.top1 > 0.9 and good.error < 0.05
    table = int8.dense[int8.ops[1].args["table"]]
    table[:] = np.clip(table.astype(np.int64) + 5, -128, 127)
    far = agreement(f32, int8, x.numpy()).far
    assert [(i, name) for i, name, _ in far] == [(1, "TANH")] and far[0][2] > STEP_BOUND


def test_a_one_channel_1d_input_is_one_input_not_a_batch() -> None:
    """A time series of one channel, ``(1, L)``, is the model's one ``(C, L)`` input (stored as
    ``(1, 1, L)``), as the device runner needs; ``(N, 1, L)`` stays a batch."""
    model = nn.Sequential(nn.Conv1d(1, 2, 3), nn.Flatten(), nn.Linear(24, 3)).eval()
    interp = Interpreter(compile_program(model, torch.randn(1, 1, 14)))
    x = np.random.default_rng(0).standard_normal((4, 1, 14)).astype(np.float32)
    assert interp.prepare(x[0])[1] is False and interp.prepare(x)[1] is True
    np.testing.assert_array_equal(interp.run(x[0]), interp.run(x)[0])


def test_a_dense_int8_row_of_zero_weights_outputs_its_bias_to_a_step() -> None:
    """A PointNet's input transform starts with zero weights and the identity as its bias: the
    INT8 layer outputs that bias within a step of F32 (it was 13 steps off: the bias rounded at
    the input's resolution)."""
    from tbn.runtime.steps import int8_op_steps

    torch.manual_seed(0)
    fc = nn.Linear(16, 9)
    with torch.no_grad():
        fc.weight.zero_()
        fc.bias.copy_(torch.tensor([1.0, 0.3, 0.1, -0.27, 1.0, 0.05, 0.6, 0.77, 1.0]))
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), fc).eval()
    x = torch.randn(64, 8) * 20
    f32 = compile_program(model, x[:1])
    int8 = compile_program(model, x[:1], activations="int8", calibration=x)
    _, values = Interpreter(int8).run(x.numpy(), keep=True)
    assert int8_op_steps(f32, int8, x.numpy(), values)[-1] <= 1


class _Reduce(nn.Module):
    """mean and amax over a map's spatial axes (a PointNet's global max pool over its points)."""

    def __init__(self, conv: nn.Module, reduce: Any) -> None:
        super().__init__()
        self.conv, self.reduce, self.fc = conv, reduce, nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.reduce(self.conv(x)))


@pytest.mark.parametrize(("conv", "reduce", "shape", "ops"), [
    (nn.Conv2d(2, 4, 3), lambda y: y.mean(dim=(2, 3)), (2, 6, 6), [Op.GLOBAL_AVGPOOL]),
    (nn.Conv2d(2, 4, 3), lambda y: torch.amax(y, dim=(-2, -1)), (2, 6, 6), [Op.MAXPOOL2D, Op.RESHAPE]),
    (nn.Conv1d(3, 4, 1), lambda y: y.amax(-1), (3, 20), [Op.MAXPOOL2D, Op.RESHAPE]),
    (nn.Conv2d(2, 4, 3), lambda y: y.mean((2, 3)) + y.amax((2, 3)), (2, 6, 6),
     [Op.GLOBAL_AVGPOOL, Op.MAXPOOL2D, Op.RESHAPE, Op.ADD]),
], ids=["mean", "amax", "amax-1d", "both"])
def test_mean_and_amax_over_the_map_are_global_pools(conv: nn.Module, reduce: Any, shape: tuple,
                                                     ops: list[Op]) -> None:
    torch.manual_seed(0)
    model = _Reduce(conv, reduce)
    tile_model(model, p=2, min_params=0)
    model.eval()
    x = torch.randn(16, *shape)
    prog = compile_program(model, x[:1], params="wide")
    assert [o.opcode for o in prog.ops][1:-1] == ops
    with torch.no_grad():
        want = model(x).numpy()
    got = Interpreter(prog).run(x.numpy())
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    int8 = compile_program(model, x[:1], activations="int8", calibration=x)
    assert agreement(compile_program(model, x[:1]), int8, x.numpy()).far == ()


def test_mean_over_every_axis_names_the_axes_it_needs() -> None:
    """Over other axes it is a transpose, a pool and a reshape (tests/test_token_ops.py)."""
    with pytest.raises(TbnCompileError, match=r"mean over every axis, the batch's too; name the axes"):
        compile_program(_Wrap(nn.Conv2d(2, 4, 1), lambda y: y.mean()), torch.randn(1, 2, 4, 4))
