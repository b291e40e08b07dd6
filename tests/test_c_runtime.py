"""The C runtime (firmware/lib/tbn) on the host: golden vectors under sanitizers, parity with
the reference interpreter through ctypes, and the same accept/reject decisions as the
Python reader on fuzzed files."""

from __future__ import annotations

import ctypes
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tbn import compile_model, tile_model
from tbn.capi import CRuntime, _Model, load_library
from tbn.format import TbnFormatError, read
from tbn.parity import matches
from tbn.paths import root
from tbn.runtime import Interpreter
from tbn.train.recipes import mlp

ROOT = root()
VECTORS = sorted((ROOT / "tests" / "vectors").glob("*.tbn"))
CHECK = ROOT / "build" / "host" / "tbn_check"


@pytest.fixture(scope="module")
def lib() -> ctypes.CDLL:
    targets = ["build/host/libtbn.so", "build/host/tbn_check"]
    subprocess.run(["make", "-s", "-C", str(ROOT), *targets], check=True)
    return load_library(ROOT / "build" / "host" / "libtbn.so")


@pytest.mark.parametrize("vector", VECTORS, ids=lambda p: p.stem)
def test_vectors_under_sanitizers(lib: ctypes.CDLL, vector: Path) -> None:
    stem = vector.with_suffix("")
    ok = subprocess.run([CHECK, vector, f"{stem}.input.bin", f"{stem}.output.bin"],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and "samples match" in ok.stdout, ok.stderr
    bad = subprocess.run([CHECK, "--reject", vector], capture_output=True, text=True)
    assert bad.returncode == 0 and "every truncation refused" in bad.stdout, bad.stderr


@pytest.mark.parametrize("vector", VECTORS, ids=lambda p: p.stem)
def test_ctypes_matches_reference(lib: ctypes.CDLL, vector: Path) -> None:
    data = vector.read_bytes()
    x = np.random.default_rng(0).normal(size=(6, *read(data).tensors[0].shape)).astype(np.float32)
    want = Interpreter(data).run(x)
    got = CRuntime(data, lib).run(x)
    if want.dtype == np.float32:
        assert matches(got, want)
    else:
        assert np.array_equal(got, want)


@pytest.mark.parametrize("acts", ["f32", "int8"])
def test_mnist_mlp_c_equals_reference(lib: ctypes.CDLL, acts: str) -> None:
    torch.manual_seed(0)
    model = mlp()
    tile_model(model, p=4)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.normal_(0, 0.5)
                m.running_var.uniform_(0.5, 2)
    x = torch.randn(200, 1, 28, 28)
    calib = x[:64] if acts == "int8" else None
    data = compile_model(model.eval(), x[:1], activations=acts, calibration=calib)
    want = Interpreter(data).run(x.numpy())
    got = CRuntime(data, lib).run(x.numpy())
    if acts == "int8":
        assert np.array_equal(got, want)
    else:
        assert matches(got, want) and np.array_equal(got.argmax(1), want.argmax(1))


def test_c_api_errors(lib: ctypes.CDLL) -> None:
    data = VECTORS[0].read_bytes()
    buf = np.zeros(len(data) // 4 + 2, dtype=np.uint32)
    raw = buf.view(np.uint8)
    raw[:len(data)] = np.frombuffer(data, dtype=np.uint8)
    m = _Model()

    def init(offset: int, size: int) -> str:
        status = lib.tbn_model_init(ctypes.byref(m), buf.ctypes.data + offset, size)
        return lib.tbn_strerror(status).decode()

    assert init(0, len(data)) == "ok"
    assert init(1, len(data)).startswith("bad argument")
    assert init(0, len(data) - 4).startswith("file truncated")
    assert init(0, 12).startswith("file truncated")
    init(0, len(data))
    arena = np.zeros(lib.tbn_arena_size(ctypes.byref(m)) // 4 + 1, dtype=np.uint32)
    n_in, n_out = lib.tbn_input_size(ctypes.byref(m)), lib.tbn_output_size(ctypes.byref(m))
    x, y = np.zeros(n_in, np.uint8), np.zeros(n_out, np.uint8)

    def run(arena_bytes: int, in_bytes: int) -> str:
        status = lib.tbn_run(ctypes.byref(m), arena.ctypes.data, arena_bytes, x.ctypes.data, in_bytes,
                             y.ctypes.data, n_out)
        return lib.tbn_strerror(status).decode()

    assert run(arena.nbytes, n_in) == "ok"
    assert run(4, n_in) == "arena too small for the model"
    assert run(arena.nbytes, n_in - 1) == "input or output buffer of the wrong size"


def _c_accepts(lib: ctypes.CDLL, data: bytes) -> bool:
    buf = np.zeros(len(data) // 4 + 1, dtype=np.uint32)
    buf.view(np.uint8)[:len(data)] = np.frombuffer(data, dtype=np.uint8)
    return lib.tbn_model_init(ctypes.byref(_Model()), buf.ctypes.data, len(data)) == 0


def _py_accepts(data: bytes) -> bool:
    try:
        read(data)
        return True
    except TbnFormatError:
        return False


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=st.sampled_from(VECTORS), flips=st.lists(st.tuples(st.integers(16, 1 << 20), st.integers(1, 255)),
                                                      min_size=1, max_size=3))
def test_c_and_python_readers_agree(lib: ctypes.CDLL, case: Path, flips: list[tuple[int, int]]) -> None:
    data = bytearray(case.read_bytes())
    for pos, xor in flips:
        data[16 + (pos % (len(data) - 16))] ^= xor
    data[12:16] = zlib.crc32(bytes(data[16:])).to_bytes(4, "little")
    assert _c_accepts(lib, bytes(data)) == _py_accepts(bytes(data))
