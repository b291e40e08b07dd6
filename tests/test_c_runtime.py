"""The C runtime (firmware/lib/tbn) on the host: golden vectors under sanitizers, parity with
the reference interpreter through ctypes, and the same accept/reject decisions as the
Python reader on fuzzed files."""

from __future__ import annotations

import ctypes
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from conftest import untrained_mnist_mlp
from tbn import compile_model, tile_model
from tbn.capi import CRuntime, _Model, load_library
from tbn.engines import open_engine
from tbn.format import Program, TbnFormatError, read, serialize, spec
from tbn.format.program import Vector
from tbn.parity import matches
from tbn.paths import root
from tbn.runtime import Interpreter
from tbn.vectors import requant_edge_cases

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
    got = open_engine("c", data, lib=lib).run(x)
    if want.dtype == np.float32:
        assert matches(got, want)
    else:
        assert np.array_equal(got, want)


@pytest.mark.parametrize("acts", ["f32", "int8"])
def test_mnist_mlp_c_equals_reference(lib: ctypes.CDLL, acts: str) -> None:
    model = untrained_mnist_mlp()
    x = torch.randn(200, 1, 28, 28)
    calib = x[:64] if acts == "int8" else None
    data = compile_model(model.eval(), x[:1], activations=acts, calibration=calib)
    want = Interpreter(data).run(x.numpy())
    got = open_engine("c", data, lib=lib).run(x.numpy())
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


def _op_starts(data: bytes) -> list[int]:
    """Byte offset of each op in a .tbn file."""
    prog = read(data)
    pos = 40 + len(prog.tensors) * (20 + (8 if prog.int8 else 0)) \
        + 8 * (len(prog.tiles) + len(prog.scales) + len(prog.biases) + len(prog.dense))
    starts = []
    for op in prog.ops:
        starts.append(pos)
        pos += spec.OP_LAYOUTS[op.opcode].size
    return starts


def _set_scratch(data: bytes, op: int, tensor: int) -> bytes:
    prog = read(data)
    field = dict((n, off) for n, _, off in spec.OP_LAYOUTS[prog.ops[op].opcode].offsets)["scratch"]
    b = bytearray(data)
    struct.pack_into("<H", b, _op_starts(data)[op] + field, tensor)
    b[12:16] = zlib.crc32(bytes(b[16:])).to_bytes(4, "little")
    return bytes(b)


def _tables_case(name: str) -> tuple[bytes, np.ndarray]:
    data = (ROOT / "tests" / "vectors" / f"{name}.tbn").read_bytes()
    x = np.fromfile(ROOT / "tests" / "vectors" / f"{name}.input.bin",
                    dtype=np.int8 if read(data).int8 else np.float32)
    return data, x.reshape(-1, *Interpreter(data).input.shape)


@pytest.mark.parametrize("name", ["mlp_f32", "mlp_int8", "conv_tables_f32", "conv_tables_int8"])
def test_table_and_direct_kernels_agree(lib: ctypes.CDLL, name: str) -> None:
    """The same file without scratch runs the direct kernel: same outputs (INT8 bytes)."""
    data, x = _tables_case(name)
    prog = read(data)
    with_tables = [i for i, op in enumerate(prog.ops) if op.args.get("scratch", spec.NONE_ID) != spec.NONE_ID]
    assert with_tables, "the vector should exercise the table kernel"
    direct = data
    for i in with_tables:
        direct = _set_scratch(direct, i, spec.NONE_ID)
    ref = Interpreter(data).run(x)
    fast, slow = open_engine("c", data, lib=lib).run(x), open_engine("c", direct, lib=lib).run(x)
    assert matches(fast, ref) and matches(slow, ref)
    if prog.int8:
        assert np.array_equal(fast, slow)


def test_scratch_rules_are_enforced_by_both_readers(lib: ctypes.CDLL) -> None:
    data, _ = _tables_case("mlp_f32")
    prog = read(data)
    op1_scratch = prog.ops[1].args["scratch"]
    bad = {
        "the input": 0,
        "an op's output": prog.ops[0].args["output"],
        "out of range": len(prog.tensors),
    }
    for what, tensor in bad.items():
        b = _set_scratch(data, 0, tensor)
        assert not _c_accepts(lib, b), what
        with pytest.raises(TbnFormatError, match="scratch"):
            read(b)
    # a scratch tensor that is too small for the table kernel (the head's, 10 rows, on op 0)
    small = _set_scratch(data, 0, prog.ops[2].args["scratch"])
    assert not _c_accepts(lib, small)
    with pytest.raises(TbnFormatError, match=r"table kernel needs \d+ bytes|overlaps"):
        read(small)
    # another op's scratch is fine when it is large enough and clear of this op's tensors
    shared = _set_scratch(data, 0, op1_scratch)
    assert _c_accepts(lib, shared) == _py_accepts(shared)


def test_ops_run_one_at_a_time_as_a_profiler_runs_them(lib: ctypes.CDLL) -> None:
    data, x = _tables_case("conv_tables_int8")
    m = CRuntime(data, lib)._model
    whole = open_engine("c", data, lib=lib).run(x[0])
    n = lib.tbn_op_count(ctypes.byref(m))
    assert n == len(read(data).ops)
    arena = np.zeros(lib.tbn_arena_size(ctypes.byref(m)) // 4 + 1, dtype=np.uint32)
    xin = np.ascontiguousarray(Interpreter(data).prepare(x[0])[0][0])
    ctypes.memmove(lib.tbn_input_ptr(ctypes.byref(m), arena.ctypes.data), xin.ctypes.data, xin.nbytes)
    for i in range(n):
        assert lib.tbn_invoke_ops(ctypes.byref(m), arena.ctypes.data, arena.nbytes, i, i + 1) == 0
    out = ctypes.string_at(lib.tbn_output_ptr(ctypes.byref(m), arena.ctypes.data), whole.nbytes)
    assert out == whole.tobytes()
    for first, last in ((2, 1), (0, n + 1)):
        assert lib.tbn_invoke_ops(ctypes.byref(m), arena.ctypes.data, arena.nbytes, first, last) != 0


@pytest.mark.parametrize("case", ["requant", "rq16"])
def test_requantisation_edge_cases_match_the_reference(lib: ctypes.CDLL, case: str) -> None:
    """Both requantisation forms at their edges take the exact path (the same files run on the
    boards in tests/hil)."""
    edited = requant_edge_cases()[case]
    _, x = _tables_case("mlp_int8")
    assert np.array_equal(open_engine("c", edited, lib=lib).run(x), Interpreter(edited).run(x))


class _Residual(torch.nn.Module):
    """a = relu(conv(x)); b = conv(a); relu(a + b) -> linear: the add is a's last reader."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.c2 = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.relu(self.c1(x))
        return self.fc(torch.flatten(torch.relu(a + self.c2(a)), 1))


def _residual(acts: str, lookup_tables: bool = True) -> tuple[bytes, np.ndarray]:
    torch.manual_seed(0)
    model = _Residual().eval()
    tile_model(model, p=4, min_params=1, per_layer={"fc": 1})
    x = torch.randn(6, 1, 8, 8)
    data = compile_model(model, x[:1], activations=acts, calibration=x, lookup_tables=lookup_tables)
    return data, x.numpy()


def _unvalidated(prog: Program, monkeypatch: pytest.MonkeyPatch) -> bytes:
    from tbn.format import writer

    monkeypatch.setattr(writer, "validate", lambda p: None)
    return serialize(prog)


@pytest.mark.parametrize("acts", ["f32", "int8"])
def test_a_residual_add_writes_over_its_input(lib: ctypes.CDLL, acts: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The memory plan gives the add's output its dying input's slot (two feature maps alive,
    not three); both readers accept that only for an elementwise op in a file flagged IN_PLACE."""
    data, x = _residual(acts)
    prog = read(data)
    add = next(op for op in prog.ops if op.opcode == spec.Op.ADD)
    a, out = prog.tensors[add.args["a"]], prog.tensors[add.args["output"]]
    assert prog.flags & spec.Flag.IN_PLACE and out.offset == a.offset and out.nbytes == a.nbytes
    # without the table kernel's scratch (as large as a map here) the arena is the two maps
    assert read(_residual(acts, lookup_tables=False)[0]).arena_size < 3 * out.nbytes
    assert matches(open_engine("c", data, lib=lib).run(x), Interpreter(data).run(x))

    no_flag = read(data)
    no_flag.flags &= ~spec.Flag.IN_PLACE
    conv = read(data)  # the second conv (not elementwise) over its own input's slot
    c2 = next(op for op in conv.ops if op.args.get("output") == add.args["b"])
    conv.tensors[c2.args["output"]].offset = conv.tensors[c2.args["input"]].offset
    shifted = read(data)  # the add's output overlapping its input, but not exactly
    shifted.tensors[add.args["output"]].offset += 4
    for what, bad in (("no flag", no_flag), ("a conv", conv), ("a partial overlap", shifted)):
        encoded = _unvalidated(bad, monkeypatch)
        assert not _c_accepts(lib, encoded), what
        with pytest.raises(TbnFormatError, match="overlaps"):
            read(encoded)


class _IoInfo(ctypes.Structure):
    _fields_ = [("dtype", ctypes.c_uint8), ("ndim", ctypes.c_uint8), ("dims", ctypes.c_uint16 * 4),
                ("numel", ctypes.c_uint32), ("nbytes", ctypes.c_uint32), ("scale", ctypes.c_float),
                ("zero_point", ctypes.c_int32)]


def test_the_runtime_quantises_inputs_as_the_reference(lib: ctypes.CDLL) -> None:
    """tbn_quantize (what a binding runs on the device) equals the interpreter's quantize, ties
    and saturation included; tbn_input_info gives the model's input as the reader does."""
    from tbn.runtime.interpreter import quantize

    data, _ = _residual("int8")
    runtime = open_engine("c", data, lib=lib)  # holds the bytes the model points into
    m = runtime._model
    info = _IoInfo()
    lib.tbn_input_info(ctypes.byref(m), ctypes.byref(info))
    t = Interpreter(data).input
    assert (info.dtype, info.numel, tuple(info.dims[:info.ndim])) == (spec.DType.I8, t.numel, t.shape)
    assert (np.float32(info.scale), info.zero_point) == (np.float32(t.scale), t.zero_point)
    rng = np.random.default_rng(0)
    ties = (np.arange(-300, 300) + 0.5).astype(np.float32) * np.float32(info.scale)
    x = np.concatenate([ties, rng.normal(0, 40, 4000).astype(np.float32) * np.float32(info.scale),
                        np.array([1e30, -1e30, 0.0, -0.0], np.float32)]).astype(np.float32)
    q = np.zeros(len(x), np.int8)
    lib.tbn_quantize.restype = ctypes.c_int32
    lib.tbn_quantize.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32]
    assert lib.tbn_quantize(ctypes.byref(info), x.ctypes.data, q.ctypes.data, len(x)) == -1
    assert np.array_equal(q, quantize(x, t.scale, t.zero_point))
    x[7] = np.nan
    assert lib.tbn_quantize(ctypes.byref(info), x.ctypes.data, q.ctypes.data, len(x)) == 7


@pytest.mark.parametrize("edit", ["overflow", "multiplier", "shift"])
def test_both_readers_refuse_an_rq16_that_could_overflow(lib: ctypes.CDLL, edit: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """An RQ16 requantisation whose 32-bit arithmetic could overflow on some input, a
    multiplier of -32768 or a shift past 31 is refused at load, by both readers."""
    prog = read((ROOT / "tests" / "vectors" / "mlp_int8.tbn").read_bytes())
    scale = next(v for v in prog.scales if v.dtype == spec.DType.RQ16)
    scale.data = scale.data.copy()
    if edit == "overflow":  # 32767 * (sum + bias) may pass 2^30
        bias = prog.biases[prog.ops[0].args["bias"]]
        bias.data = bias.data.copy()
        scale.pre_shift, scale.data[0], bias.data[0] = 0, 32767, 32767
    elif edit == "multiplier":
        scale.data[0] = -32768
    else:
        scale.shift = 32
    data = _unvalidated(prog, monkeypatch)
    with pytest.raises(TbnFormatError):
        read(data)
    with pytest.raises(TbnFormatError):
        open_engine("c", data, lib=lib)


def test_every_finite_half_converts_exactly(lib: ctypes.CDLL) -> None:
    """F16 scales are read as floats exactly, subnormals and signed zeros included: an AFFINE
    op scaling ones by every finite float16 gives back each value."""
    from tbn.format.program import Operation, Tensor

    halves = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    halves = halves[np.isfinite(halves)]
    n = len(halves)
    prog = Program(tensors=[Tensor(spec.DType.F32, (n, 1, 1), 0), Tensor(spec.DType.F32, (n, 1, 1), 4 * n)],
                   scales=[Vector(spec.DType.F16, halves)], arena_size=8 * n,
                   ops=[Operation(spec.Op.AFFINE, spec.Act.NONE,
                                  {"input": 0, "output": 1, "scale": 0, "bias": spec.NONE_ID})])
    got = open_engine("c", serialize(prog), lib=lib).run(np.ones((1, n, 1, 1), dtype=np.float32))
    assert np.array_equal(got.reshape(-1), halves.astype(np.float32))  # as values: AFFINE adds +0


def test_wide_requantisation_with_narrow_biases(lib: ctypes.CDLL) -> None:
    """A layer may keep REQUANT while its biases fit int16 (the compiler narrows each vector on
    its own): the same values in I16 give the same bytes as in I32, in both runtimes."""
    data, x = _tables_case("mlp_int8_wide")
    prog = read(data)
    for i, b in enumerate(prog.biases):
        assert b.dtype == spec.DType.I32 and np.abs(b.data).max() < 2**15
        prog.biases[i] = Vector(spec.DType.I16, b.data.astype(np.int16))
    mixed = serialize(prog)
    want = Interpreter(data).run(x)
    assert np.array_equal(Interpreter(mixed).run(x), want)
    assert np.array_equal(open_engine("c", mixed, lib=lib).run(x), want)


def test_a_runtime_built_for_one_model_runs_it_and_refuses_the_rest(tmp_path: Path) -> None:
    """tbn-flash --model-ops: the runtime built with one model's ops, activation type and
    kernels (tbn.device.build.runtime_subset) still matches its golden vector, and names
    what it lacks for any other model."""
    from tbn.device.build import runtime_subset
    from tbn.parity import F32_RTOL
    from tbn.paths import c_runtime

    own = ROOT / "tests" / "vectors" / "conv1d_argmax_int8.tbn"
    defines = runtime_subset(read(own.read_bytes()))
    assert defines["TBN_BUILD_F32"] == "0" and defines["TBN_BUILD_TABLES"] == "0"
    assert defines["TBN_BUILD_REQUANT"] == "0"  # RQ16 scales only
    exe, c = tmp_path / "tbn_check_subset", c_runtime()
    subprocess.run(["cc", *c.flags, f"-I{c.include}", "-O1", "-fsanitize=address,undefined",
                    "-fno-sanitize-recover=all", f"-DTBN_F32_RTOL={F32_RTOL}",
                    *(f"-D{k}={v}" for k, v in defines.items()), *map(str, c.sources),
                    str(ROOT / "tests/c/tbn_check.c"), "-lm", "-o", str(exe)], check=True)
    stem = own.with_suffix("")
    ok = subprocess.run([exe, own, f"{stem}.input.bin", f"{stem}.output.bin"], capture_output=True, text=True)
    assert ok.returncode == 0 and "samples match" in ok.stdout, ok.stderr
    # another activation type, the table kernel, other ops
    for other in ("mlp_f32", "mlp_int8", "misc_int8"):
        stem = ROOT / "tests" / "vectors" / other
        bad = subprocess.run([exe, f"{stem}.tbn", f"{stem}.input.bin", f"{stem}.output.bin"],
                             capture_output=True, text=True)
        assert bad.returncode == 1 and "left out of this build of the runtime" in bad.stderr, (other, bad)
    # its own ops with the wide rescaling (REQUANT: the same multipliers and shifts, pre_shift 0)
    prog = read(own.read_bytes())
    assert all(v.pre_shift == 0 for v in prog.scales)
    prog.scales = [Vector(spec.DType.REQUANT, np.stack([v.data.astype(np.int32), np.full(v.count, v.shift)],
                                                       1)) for v in prog.scales]
    (tmp_path / "requant.tbn").write_bytes(serialize(prog))
    stem = own.with_suffix("")
    bad = subprocess.run([exe, tmp_path / "requant.tbn", f"{stem}.input.bin", f"{stem}.output.bin"],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "left out of this build of the runtime" in bad.stderr, bad


# Convolutions the per-channel kernel (tbn_conv_channel.c) takes: depthwise at strides 1 and 2
# (the 3x3 assembly's two forms), padding on one side, dilation, a depth multiplier, 1-D, dense
# weights, one input channel with tile reuse, padding past the input; and a kernel too large
# for it (the direct kernel). (module, input shape, p, layers kept dense)
_CHANNEL_CASES = {
    "depthwise 3x3": (lambda: nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU()), (8, 9, 7), 1,
                      ()),
    "depthwise 3x3 stride 2, padded after": (lambda: nn.Sequential(
        nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(8, 8, 3, stride=2, groups=8, bias=False), nn.BatchNorm2d(8)),
        (8, 10, 10), 1, ()),
    "depthwise 5x5 dilation 2": (lambda: nn.Conv2d(4, 4, 5, padding=3, dilation=2, groups=4), (4, 12, 11), 1,
                                 ()),
    "depth multiplier 2": (lambda: nn.Conv2d(4, 8, 3, padding=1, groups=4), (4, 6, 6), 2, ()),
    "depthwise 1-D": (lambda: nn.Conv1d(6, 6, 5, padding=2, groups=6), (6, 40), 1, ()),
    "dense depthwise": (lambda: nn.Conv2d(8, 8, 3, padding=1, groups=8), (8, 5, 5), 1, ("0",)),
    "one input channel, tile reuse": (lambda: nn.Conv2d(1, 4, 3, stride=2, padding=1), (1, 9, 9), 2, ()),
    "padding past the input": (lambda: nn.Conv2d(2, 2, 3, padding=2, groups=2), (2, 3, 3), 1, ()),
    # a ring of three padded rows (INT8 here, F32 in the next), and rows too wide for it (F32 here)
    "a plane larger than the ring": (lambda: nn.Conv2d(2, 2, 3, padding=1, groups=2), (2, 10, 150), 1, ()),
    "a plane larger than the ring, narrow": (lambda: nn.Conv2d(2, 2, 3, padding=1, groups=2), (2, 10, 40), 1,
                                             ()),
    "7x7 patches, dense (the Mixer's embedding, 49 taps)": (
        lambda: nn.Conv2d(1, 8, 7, stride=7), (1, 28, 28), 1, ("0",)),
    "9x9, the direct kernel": (lambda: nn.Conv2d(2, 2, 9, padding=4, groups=2), (2, 12, 12), 1, ()),
}


@pytest.mark.parametrize("acts", ["f32", "int8"])
@pytest.mark.parametrize("case", list(_CHANNEL_CASES))
def test_per_channel_convolutions_match_the_reference(lib: ctypes.CDLL, case: str, acts: str) -> None:
    make, shape, p, keep = _CHANNEL_CASES[case]
    torch.manual_seed(0)
    model = nn.Sequential(make())
    tile_model(model, p=p, min_params=0, keep_dense=keep)
    x = torch.randn(6, *shape)
    data = compile_model(model.eval(), x[:1], activations=acts, calibration=x if acts == "int8" else None)
    want, got = Interpreter(data).run(x.numpy()), open_engine("c", data, lib=lib).run(x.numpy())
    assert np.array_equal(got, want) if acts == "int8" else matches(got, want)


# Tiled INT8 ops the small-core kernel (tbn_matmul_small.c) takes when no tables are planned: convs
# with padding on each side, strides, dilation, groups of several channels, tile reuse, 1-D and
# 1x1; linear ops with rows past 255 taps and over tokens; rows that wrap at the tile's end;
# dense int8 weights (p = 0 here). Inputs after a ReLU have the zero point -128 (no set-bit
# count), the rest another. (module, input shape, p)
_SMALL_CORE_CASES = {
    "3x3, tile reuse": (lambda: nn.Conv2d(6, 8, 3, padding=1), (6, 7, 9), 2),
    "3x3 stride 2, padded after": (
        lambda: nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(4, 6, 3, stride=2)), (4, 8, 8), 1),
    "5x5 dilation 2, padding past the input": (
        lambda: nn.Conv2d(3, 4, 5, padding=5, dilation=2), (3, 4, 6), 1),
    "groups of 3 channels": (lambda: nn.Conv2d(6, 4, 3, padding=1, groups=2), (6, 5, 5), 1),
    "1x1": (lambda: nn.Conv2d(16, 8, 1), (16, 3, 3), 4),
    "1-D": (lambda: nn.Conv1d(5, 4, 7, stride=3, padding=3), (5, 29), 1),
    "linear past 255 taps": (lambda: nn.Sequential(nn.Flatten(), nn.Linear(600, 12)), (600,), 3),
    "linear over tokens": (lambda: nn.Linear(10, 6), (7, 10), 2),
    "rows wrapping mid-byte at the tile's end": (lambda: nn.Conv2d(3, 5, 3, padding=1), (3, 5, 6), 3),
    "dense": (lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1), (3, 7, 7), 0),
}


@pytest.fixture(scope="module")
def lib_walk(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    """The runtime with the small-core kernel as AVR builds it: each window row read where it
    lies (no gathered window), and the only INT8 kernel, dense weights included."""
    from tbn.paths import c_runtime

    c, so = c_runtime(), tmp_path_factory.mktemp("walk") / "libtbn_walk.so"
    subprocess.run(["cc", *c.flags, f"-I{c.include}", "-O1", "-fPIC", "-shared", "-DTBN_SMALL_COL_BYTES=0",
                    "-DTBN_SMALL_ALL=1", *map(str, c.sources), "-lm", "-o", str(so)], check=True)
    return load_library(so)


@pytest.mark.parametrize("form", ["im2col", "walk"])
@pytest.mark.parametrize("relu", [False, True], ids=["zp", "relu"])
@pytest.mark.parametrize("case", list(_SMALL_CORE_CASES))
def test_small_core_kernel_matches_the_reference(lib: ctypes.CDLL, lib_walk: ctypes.CDLL, case: str,
                                                 relu: bool, form: str) -> None:
    make, shape, p = _SMALL_CORE_CASES[case]
    torch.manual_seed(1)
    model = nn.Sequential(*([nn.ReLU()] if relu else []), make())
    if p:
        tile_model(model, p=p, min_params=0, alpha="single")
    x = torch.randn(6, *shape)
    data = compile_model(model.eval(), x[:1], activations="int8", calibration=x, lookup_tables=False)
    engine = open_engine("c", data, lib=lib if form == "im2col" else lib_walk)
    assert np.array_equal(engine.run(x.numpy()), Interpreter(data).run(x.numpy()))


def test_the_small_core_kernel_alone_refuses_an_op_past_its_counts(lib_walk: ctypes.CDLL) -> None:
    """As on AVR: an INT8 op past the kernel's 16-bit counts (81,000 inputs here) is refused at load."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1000, 2, 9))
    tile_model(model, p=1, min_params=0)
    x = torch.randn(2, 1000, 9, 9)
    data = compile_model(model.eval(), x[:1], activations="int8", calibration=x, lookup_tables=False)
    with pytest.raises(Exception, match="left out of this build"):
        open_engine("c", data, lib=lib_walk)


def test_the_small_core_kernel_alone_leaves_f32_to_the_direct_kernel(lib_walk: ctypes.CDLL) -> None:
    """A build where it is the only INT8 kernel (AVR's) runs F32 convs with the direct kernel."""
    data, x = _tables_case("convnet_f32")
    assert matches(open_engine("c", data, lib=lib_walk).run(x), Interpreter(data).run(x))


@pytest.mark.parametrize(("zero_point", "value"), [(127, -1e9), (-128, 1e9)])
def test_conv_pairs_hold_the_largest_input_differences(lib: ctypes.CDLL, zero_point: int,
                                                       value: float) -> None:
    """The pair tables hold two positions' sums in the halves of a word, biased to stay
    positive: with every weight +1 and inputs 255 from the zero point (each lookup at its
    extreme, -1020 or +1020, five chunks a row) the outputs are still the reference's."""
    prog = read((root() / "tests" / "vectors" / "conv_pairs_int8.tbn").read_bytes())
    conv = prog.ops[0]
    assert prog.tensors[conv.args["scratch"]].nbytes >= spec.lut_pair_scratch_size(8, 144, conv=True)
    prog.tensors[conv.args["input"]].zero_point = zero_point
    tile = prog.tiles[conv.args["tile"]]
    tile.bits = np.full_like(tile.bits, 0xFF)
    data = serialize(prog)
    x = np.full((2, *prog.tensors[conv.args["input"]].shape), value, np.float32)
    x[1, :, ::2] *= -1  # and a mix of both extremes
    assert matches(open_engine("c", data, lib=lib).run(x), Interpreter(data).run(x))


@pytest.mark.parametrize("tokens", [5, 8])
def test_token_pairs_match_the_reference(lib: ctypes.CDLL, tokens: int) -> None:
    """A tiled INT8 linear op over tokens takes them two at a time (pair tables; an odd last
    token alone): 40 inputs (a chunk and a part), 24 outputs from 12 distinct rows."""
    torch.manual_seed(tokens)
    model = nn.Sequential(nn.Linear(40, 24), nn.ReLU(), nn.Linear(24, 6))
    tile_model(model, p=2, min_params=0, per_layer={"2": 1})
    x = torch.randn(6, tokens, 40)
    data = compile_model(model.eval(), x[:1], activations="int8", calibration=x)
    prog = read(data)
    op = prog.ops[0]
    assert prog.tensors[op.args["scratch"]].nbytes >= spec.lut_pair_scratch_size(12, 40, conv=False)
    want, got = Interpreter(data).run(x.numpy()), open_engine("c", data, lib=lib).run(x.numpy())
    assert np.array_equal(got, want)


class _AddPool(nn.Module):
    """relu(a + b) of two convs of x, then an average pool. ``cancel`` makes b nearly -a (dense
    weights), so the sum's range is about 2,000 times under its inputs' and each input's
    rescaled term passes 16 bits."""

    def __init__(self, pool: nn.Module, cancel: bool) -> None:
        super().__init__()
        self.a, self.b, self.pool = nn.Conv2d(2, 4, 3, padding=1), nn.Conv2d(2, 4, 3, padding=1), pool
        if cancel:
            with torch.no_grad():
                self.a.weight.mul_(300.0)
                self.b.weight.copy_(-self.a.weight + 0.01 * torch.randn_like(self.a.weight))
                self.b.bias.copy_(-self.a.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(torch.relu(self.a(x) + self.b(x))), 1)


@pytest.mark.parametrize("params", ["auto", "wide"])
@pytest.mark.parametrize(("case", "shape", "pool", "cancel"), [
    ("a pool as wide as the map", (2, 25, 5), nn.AvgPool2d((25, 5)), False),
    ("a global pool over 1,600 values", (2, 40, 40), nn.AdaptiveAvgPool2d(1), False),
    ("windows of 10 in rows of 24", (2, 8, 24), nn.AvgPool2d((2, 10), stride=(2, 7)), False),
    ("an add whose terms pass 16 bits", (2, 16, 16), nn.AvgPool2d(2), True),
])
def test_int8_add_and_average_pool_paths_match_the_reference(lib: ctypes.CDLL, case: str,
                                                             shape: tuple[int, ...], pool: nn.Module,
                                                             cancel: bool, params: str) -> None:
    """ADD of 512 values or more by two 256-entry tables where both terms fit 16 bits (the loop
    where not), RQ16 and REQUANT; average pools summing four values a word (a window as wide as
    the input as one run, runs over 128 words, windows narrower than the input)."""
    torch.manual_seed(3)
    model = _AddPool(pool, cancel).eval()
    if not cancel:
        tile_model(model, p=2, min_params=0)
    x = torch.randn(4, *shape)
    data = compile_model(model, x[:1], activations="int8", calibration=x, params=params)
    got, want = open_engine("c", data, lib=lib).run(x.numpy()), Interpreter(data).run(x.numpy())
    assert np.array_equal(got, want), case


@pytest.mark.parametrize("params", ["auto", "wide"])
def test_int8_add_tables_hold_any_entry(lib: ctypes.CDLL, params: str) -> None:
    """ADD's tables, built one q from the next (quotient and remainder carried), equal the
    reference for rescaling entries past what the compiler writes: REQUANT multipliers of any
    sign with shifts 0 to 40 (some terms past 16 bits: the loop), RQ16 with and without a first
    shift."""
    torch.manual_seed(4)
    model = _AddPool(nn.AvgPool2d(2), False).eval()
    x = torch.randn(4, 2, 16, 16)
    prog = read(compile_model(model, x[:1], activations="int8", calibration=x, params=params))
    scale = prog.scales[next(op for op in prog.ops if op.opcode == spec.Op.ADD).args["scale"]]
    scale.data = scale.data.copy()  # read() returns views of the file
    rng = np.random.default_rng(len(params))
    for _ in range(12):
        if scale.dtype == spec.DType.REQUANT:
            scale.data[:, 0] = rng.integers(-2**31, 2**31, 2)
            scale.data[:, 1] = rng.integers(0, 41, 2)
        else:
            scale.data[:] = rng.integers(-2**15, 2**15, 2)
            scale.pre_shift, scale.shift = int(rng.integers(0, 3)), int(rng.integers(0, 16))
        data = serialize(prog)
        got, want = open_engine("c", data, lib=lib).run(x.numpy()), Interpreter(data).run(x.numpy())
        assert np.array_equal(got, want), (scale.data, scale.pre_shift, scale.shift)


@pytest.mark.parametrize("acts", ["f32", "int8"])
@pytest.mark.parametrize(("cin", "cout", "groups", "k", "stride", "dilation", "pad", "p"), [
    (8, 8, 8, 5, 1, 1, 0, 1),  # sww01's depthwise convs over time, binary
    (8, 8, 8, 10, 1, 1, 0, 4),  # ... tiled
    (8, 8, 8, 3, 2, 2, 2, 1),  # strided, dilated, padded above and below
    (4, 8, 1, 3, 1, 1, 1, 2),  # a standard conv
    (8, 8, 8, 1, 1, 1, 0, 1),  # a 1x1 window (nothing to turn)
])
def test_tall_windows_down_one_wide_planes_match_the_reference(lib: ctypes.CDLL, acts: str, cin: int,
                                                               cout: int, groups: int, k: int, stride: int,
                                                               dilation: int, pad: int, p: int) -> None:
    """A (k x 1) window down an H x 1 plane (a 1-D conv as Keras stores it) runs as a (1 x k) one
    along a row in the C runtime; its outputs stay the reference's."""
    torch.manual_seed(k + stride)
    model = nn.Sequential(nn.Conv2d(cin, cout, (k, 1), (stride, 1), (pad, 0), (dilation, 1), groups=groups,
                                    bias=False), nn.BatchNorm2d(cout), nn.ReLU()).eval()
    tile_model(model, p=p, min_params=0)
    x = torch.randn(8, cin, 24, 1)
    with torch.no_grad():
        model.train()(x)
    model.eval()
    data = compile_model(model, x[:1], activations=acts, calibration=x if acts == "int8" else None,
                         params="wide")
    got, want = open_engine("c", data, lib=lib).run(x.numpy()), Interpreter(data).run(x.numpy())
    if acts == "int8":
        assert np.array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("acts", ["f32", "int8"])
@pytest.mark.parametrize(("cin", "cout", "shape", "tiled_next"), [
    (2, 16, (1, 130), True),  # PointNet's first per-point layer over 130 points (a tail of 2)
    (16, 8, (1, 128), False),  # a kept-dense 16 -> 8 layer, positions in fours
    (8, 8, (5, 3), False),  # a 2-D map of 15 positions
    (3, 5, (1, 1), False),  # one position: the tail alone
])
def test_dense_pointwise_convs_match_the_reference(lib: ctypes.CDLL, acts: str, cin: int, cout: int,
                                                   shape: tuple[int, int], tiled_next: bool) -> None:
    """A dense 1x1 conv (a kept-dense per-point layer) runs four positions a weight in the C
    runtime; its outputs stay the reference's, the input's zero point taken off once a row."""
    torch.manual_seed(cin + cout)
    model = nn.Sequential(nn.Conv2d(cin, cout, 1), nn.BatchNorm2d(cout), nn.ReLU(), nn.Conv2d(cout, 8, 1))
    if tiled_next:
        tile_model(model, p=2, min_params=0, keep_dense=["0"])
    x = torch.randn(8, cin, *shape) + 0.5  # off-centre: a non-zero input zero point
    with torch.no_grad():
        model.train()(x)
    model.eval()
    data = compile_model(model, x[:1], activations=acts, calibration=x if acts == "int8" else None)
    assert read(data).ops[0].opcode.name == "DENSE_CONV2D"
    got, want = open_engine("c", data, lib=lib).run(x.numpy()), Interpreter(data).run(x.numpy())
    if acts == "int8":
        assert np.array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("case", [
    (lambda: nn.Conv2d(4, 6, 3, padding=1), (4, 7, 9)),  # padded on every side
    (lambda: nn.Conv2d(3, 5, 5, stride=2, padding=(1, 2), dilation=(1, 2)), (3, 11, 13)),
    (lambda: nn.Conv1d(16, 8, 5, stride=2), (16, 40)),  # the forecaster's twin's 1-D convs
    (lambda: nn.Conv2d(8, 4, (2, 3)), (8, 5, 5)),
])
def test_dense_windowed_convs_match_the_reference(lib: ctypes.CDLL, case: tuple) -> None:
    """An INT8 dense conv of one group takes each position's window gathered once (x - zp, padding
    0) and a dot product a row; its outputs stay the reference's."""
    make, shape = case
    torch.manual_seed(len(shape))
    model = nn.Sequential(make(), nn.ReLU()).eval()
    x = torch.randn(8, *shape) + 0.3  # a non-zero input zero point
    data = compile_model(model, x[:1], activations="int8", calibration=x)
    assert read(data).ops[0].opcode.name == "DENSE_CONV2D"
    got, want = open_engine("c", data, lib=lib).run(x.numpy()), Interpreter(data).run(x.numpy())
    assert np.array_equal(got, want)
