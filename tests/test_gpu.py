"""The CUDA path. The tiling plan is checked everywhere (no GPU needed); parity with the
reference runs on a machine with a CUDA GPU and CuPy, and is skipped, with the reason,
elsewhere. Compiling the kernels is `make gpu-kernels` (part of `make test`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tbn.engines import open_engine
from tbn.format import read
from tbn.format.bits import unpack_signs
from tbn.format.spec import ScaleMode
from tbn.gpu import available
from tbn.gpu.plan import is_tiled, plan_tiled, tile_words
from tbn.parity import GPU_RTOL, matches, output_error
from tbn.runtime import Interpreter
from tbn.runtime.kernels import weight_matrix

VECTORS = Path(__file__).resolve().parent / "vectors"
MANIFEST = json.loads((VECTORS / "manifest.json").read_text())
GPU, WHY_NOT = available()
needs_gpu = pytest.mark.skipif(not GPU, reason=f"no CUDA GPU here: {WHY_NOT}")
# Relative to max |reference output|. F32 as for every runtime; the half formats round every
# stored activation (2^-11 for float16, 2^-8 for bfloat16 relative) while sums stay float32.


def tiled_ops():
    for name in sorted(MANIFEST):
        prog = read((VECTORS / f"{name}.tbn").read_bytes())
        for op in prog.ops:
            if is_tiled(op):
                yield pytest.param(prog, op, id=f"{name}-{op.opcode.name}-{op.args['output']}")


@pytest.mark.parametrize(("prog", "op"), list(tiled_ops()))
def test_plan_rebuilds_the_reference_weight(prog, op) -> None:
    """What the kernels compute -- D distinct sign rows, row o reading row o % D, scaled for
    (o, o // D) -- is exactly the spec's weight."""
    plan = plan_tiled(prog, op)
    tile = prog.tiles[op.args["tile"]]
    signs = unpack_signs(tile.bits, tile.n_bits)
    o, k, t = plan.out_features, plan.fan_in, plan.n_bits
    rows = np.stack([signs[(c * k + np.arange(k)) % t] for c in range(plan.distinct)])
    w_ref, per_out = weight_matrix(prog, op)
    if per_out is not None:
        w_ref = w_ref * per_out[:, None]
    if plan.dense_fallback:
        pytest.skip("runs as a dense matrix by design (per-repetition scale, p does not divide O)")
    s = prog.scales[op.args["scale"]].data.astype(np.float64)
    got = np.empty((o, k))
    for out in range(o):
        sigma = (
            1.0
            if prog.int8
            else (
                s[out]
                if plan.scale_mode == ScaleMode.PER_OUTPUT
                else s[out // plan.distinct]
                if plan.scale_mode == ScaleMode.PER_REPETITION
                else s[0]
            )
        )
        got[out] = rows[out % plan.distinct] * sigma
    np.testing.assert_allclose(got, w_ref, rtol=1e-6)


def test_tile_words_are_the_little_endian_packing() -> None:
    bits = np.array([0b1000_0001, 0xFF, 0x00, 0x01, 0x02], dtype=np.uint8)
    words = tile_words(bits, 40)
    assert words.tolist() == [0x0100FF81, 0x02]


def test_launcher_grid_matches_the_kernel() -> None:
    """The host sizes tbn_scale_expand's grid by the outputs each thread owns in the kernel."""
    import re

    from tbn.gpu import kernels
    from tbn.gpu.build import sources

    found = re.search(r"constexpr int EXPAND = (\d+);", (sources() / "tiled_linear.cu").read_text())
    assert found and int(found.group(1)) == kernels.EXPAND


def _vector(name: str):
    spec = MANIFEST[name]
    x = np.fromfile(VECTORS / f"{name}.input.bin", dtype=spec["input"]["dtype"]).reshape(
        spec["input"]["shape"]
    )
    y = np.fromfile(VECTORS / f"{name}.output.bin", dtype=spec["output"]["dtype"]).reshape(
        spec["output"]["shape"]
    )
    return (VECTORS / f"{name}.tbn").read_bytes(), x, y


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_golden_vector_parity(name: str, dtype: str) -> None:
    data, x, want = _vector(name)
    engine = open_engine("cuda", data, dtype=dtype)
    got = engine.run(x)
    if engine.program.int8:
        np.testing.assert_array_equal(got, want)  # INT8: bit-exact whatever dtype says
    elif want.dtype == np.int32:
        assert (got == want).mean() >= (1.0 if dtype == "float32" else 0.5)  # argmax outputs
    else:
        assert output_error(got, want) <= GPU_RTOL[dtype]


@needs_gpu
@pytest.mark.parametrize("route", ["gemv", "gemm", "tensorcore"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_every_linear_route_matches_the_reference(route: str, dtype: str) -> None:
    data, x, _ = _vector("mlp_f32")
    batch = np.random.default_rng(0).standard_normal((300, *x.shape[1:])).astype(np.float32)
    want = Interpreter(data).run(batch)
    engine = open_engine("cuda", data, dtype=dtype, route=route)
    plans = [plan_tiled(engine.program, op) for op in engine.program.ops if is_tiled(op)]
    if route == "gemm" and not all(p.aligned for p in plans):
        pytest.skip("a layer is not aligned for the shared-memory GEMM")
    assert output_error(engine.run(batch), want) <= GPU_RTOL[dtype]


@needs_gpu
@pytest.mark.parametrize("activations", ["f32", "int8"])
def test_mnist_model_parity(tmp_path: Path, shared_mnist: Path, activations: str) -> None:
    import subprocess
    import sys

    from tbn.data import load_mnist
    tbn = [sys.executable, "-m", "tbn.cli.main"]
    subprocess.run(
        [*tbn, "train", "--p", "4", "--epochs", "1", "--out", str(tmp_path), "--data-dir", str(shared_mnist)],
        check=True,
        capture_output=True,
    )
    model = tmp_path / "m.tbn"
    subprocess.run(
        [
            *tbn,
            "compile",
            str(tmp_path / "model.pt"),
            "-o",
            str(model),
            "--activations",
            activations,
            "--data-dir",
            str(shared_mnist),
        ],
        check=True,
        capture_output=True,
    )
    x = load_mnist("test", shared_mnist).normalized(1000)
    want = Interpreter(model.read_bytes()).run(x)
    got = open_engine("cuda", model).run(x)
    if activations == "int8":
        np.testing.assert_array_equal(got, want)
    else:
        assert matches(got, want)
        assert (got.argmax(1) == want.argmax(1)).all()
