"""Hardware-in-the-loop: the golden vectors, a trained MNIST model, bad frames and a short
soak, on the board named by ``pytest --board X`` (or the device at ``--port URL``)."""

from __future__ import annotations

import fcntl
import json
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tbn.device import DeviceError, DeviceLink
from tbn.device.faults import FaultyPort
from tbn.device.protocol import MAX_BENCH_RUNS, PROTOCOL_VERSION, Command, CostUnit, Status, encode
from tbn.device.runner import DeviceRunner
from tbn.errors import UsageError
from tbn.format import load, read
from tbn.format.spec import VERSION_MAJOR, VERSION_MINOR, DType
from tbn.parity import output_error, within
from tbn.paths import root

pytestmark = pytest.mark.hil
VECTORS = root() / "tests" / "vectors"
MANIFEST = json.loads((VECTORS / "manifest.json").read_text())


def test_info_describes_the_board(tbn_device: DeviceLink, tbn_board) -> None:
    info = tbn_device.info()
    assert info.protocol == PROTOCOL_VERSION
    assert info.frame_timeout_ms > 0 and info.wake_ms > 0
    assert info.format_version == (VERSION_MAJOR, VERSION_MINOR)
    if tbn_board is not None:
        assert info.board == tbn_board.name
        assert (info.arena_bytes, info.slot_bytes, info.clock_hz) == (
            tbn_board.arena_bytes,
            tbn_board.slot_bytes,
            tbn_board.clock_hz,
        )
        assert info.cost_unit.name == tbn_board.cost_unit.upper()


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_golden_vector(tbn_device: DeviceLink, name: str) -> None:
    data = (VECTORS / f"{name}.tbn").read_bytes()
    program = read(data)
    tbn_device.load(data)
    spec = MANIFEST[name]
    x = np.fromfile(VECTORS / f"{name}.input.bin", dtype=spec["input"]["dtype"]).reshape(
        spec["input"]["shape"]
    )
    want = np.fromfile(VECTORS / f"{name}.output.bin", dtype=spec["output"]["dtype"]).reshape(
        spec["output"]["shape"]
    )
    for xi, wi in zip(x, want, strict=False):
        got = tbn_device.infer(np.ascontiguousarray(xi))
        out = np.frombuffer(got.output, dtype=wi.dtype).reshape(wi.shape)
        err = output_error(out, wi)
        assert within(err, program.int8), f"{name}: device differs from the vector by {err}"
        assert got.cost > 0


def test_small_kernel_paths_match_the_reference(tbn_device: DeviceLink) -> None:
    """One INT8 model through each path of the small-core kernel (tbn_matmul_small.c) and, on AVR,
    its assembly (avr_plus4, avr_totals, avr_rq16): a tiled conv on an input whose zero point is
    not -128 (the generic path); a dense conv in two groups and a dense linear op; tile rows that
    start mid-byte, four at a time (k = 108: outputs 2 apart share a bit offset) and one at a time
    (k = 54, 6 distinct rows at p=2); windows clipped on every side; stride 2; a linear op of 200
    taps in 4 + 4 + 2 outputs. Bit-exact with the reference on four inputs."""
    import torch
    from torch import nn

    from tbn.compiler import compile_model
    from tbn.convert import tile_model
    from tbn.runtime import Interpreter

    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
                          nn.Conv2d(8, 6, 3, padding=1, groups=2), nn.ReLU(), nn.Conv2d(6, 12, 3, padding=1),
                          nn.ReLU(), nn.Conv2d(12, 8, 3, padding=1),
                          nn.ReLU(), nn.Flatten(), nn.Linear(200, 10), nn.ReLU(), nn.Linear(10, 6))
    tile_model(model, p=1, min_params=0, per_layer={"0": 2, "4": 2}, keep_dense=["2", "11"])
    x = torch.randn(4, 3, 10, 10)
    data = compile_model(model.eval(), x[:1], activations="int8", calibration=x, lookup_tables=False)
    tbn_device.load(data)
    ref = Interpreter(data)
    xq, _ = ref.prepare(x.numpy())  # int8, as the device takes it
    for xi, want in zip(xq, ref.run(xq), strict=True):
        got = tbn_device.infer(np.ascontiguousarray(xi))
        assert np.array_equal(np.frombuffer(got.output, dtype=want.dtype), want.reshape(-1))


def test_per_channel_kernel_paths_match_the_reference(tbn_device: DeviceLink) -> None:
    """The per-channel kernel's 3x3 and 5x5 paths (on DSP cores, pairs of outputs): at stride 1
    two outputs at a time, several rows a call from a resident ring (odd and even widths) and one row a call
    from a ring of three rows (a 60-wide plane), rows past 128 outputs one at a time, stride 2,
    and one input channel with tile reuse; binary weights' 16-bit sums and dense weights' 32-bit
    ones; rows of 3, 5, 8, 11 and 13 bytes copied into the ring; a 5x5 window of odd and even
    widths, binary and dense. Bit-exact with the reference on three inputs."""
    import torch
    from torch import nn

    from tbn.compiler import compile_model
    from tbn.convert import tile_model
    from tbn.runtime import Interpreter

    torch.manual_seed(5)
    shapes = {"odd": (1, 7, 5), "even": (1, 6, 8), "ring of rows": (1, 9, 60), "wide rows": (1, 4, 140),
              "dense, odd": (1, 7, 5), "3 wide": (1, 5, 3), "11 wide": (1, 5, 11), "13 wide": (1, 4, 13),
              "5x5, odd": (1, 6, 9), "5x5, even": (1, 5, 14), "5x5, dense": (1, 5, 14)}
    window = {k: (5, 2) if "5x5" in k else (3, 1) for k in shapes}  # the middle conv's size, padding
    models = {k: nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(),
                               nn.Conv2d(4, 4, window[k][0], padding=window[k][1], groups=4), nn.ReLU(),
                               nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=4), nn.Flatten())
              for k in shapes}
    arena, ran = tbn_device.info().arena_bytes, 0
    for name, model in models.items():
        dense = ("2", "4") if "dense" in name else ()
        tile_model(model, p=1, min_params=0, per_layer={"0": 2}, keep_dense=dense)
        x = torch.randn(3, *shapes[name])
        data = compile_model(model.eval(), x[:1], activations="int8", calibration=x, lookup_tables=False)
        ref = Interpreter(data)
        if read(data).arena_size > arena:
            continue
        tbn_device.load(data)
        xq, _ = ref.prepare(x.numpy())
        for xi, want in zip(xq, ref.run(xq), strict=True):
            got = tbn_device.infer(np.ascontiguousarray(xi))
            assert np.array_equal(np.frombuffer(got.output, dtype=want.dtype), want.reshape(-1)), name
        ran += 1
    if not ran:
        pytest.skip(f"no model's arena fits the board's {arena} bytes")


def test_tall_windows_down_one_wide_planes_match_the_reference(tbn_device: DeviceLink) -> None:
    """(k x 1) windows down an H x 1 plane, as Keras stores a 1-D conv over time (sww01), which the
    runtime turns into (1 x k) windows along a row: depthwise 5 and 10 tall (binary, tiled at p=4),
    7 tall padded (an odd width of sums_wide_pairs on DSP cores), strided, dilated and padded
    above and below, and a standard conv. Bit-exact on three inputs."""
    import torch
    from torch import nn

    from tbn.compiler import compile_model
    from tbn.convert import tile_model

    torch.manual_seed(6)
    model = nn.Sequential(nn.Conv2d(8, 8, (5, 1), groups=8), nn.ReLU(), nn.Conv2d(8, 8, (10, 1), groups=8),
                          nn.ReLU(), nn.Conv2d(8, 8, (7, 1), padding=(3, 0), groups=8), nn.ReLU(),
                          nn.Conv2d(8, 8, (3, 1), (2, 1), (2, 0), (2, 1), groups=8), nn.ReLU(),
                          nn.Conv2d(8, 4, (3, 1), padding=(1, 0)), nn.Flatten())
    tile_model(model, p=1, min_params=0, per_layer={"2": 4})
    x = torch.randn(3, 8, 28, 1)
    data = compile_model(model.eval(), x[:1], activations="int8", calibration=x, lookup_tables=False)
    _runs_as_reference(tbn_device, data, x.numpy(), "tall windows")


def _runs_as_reference(link: DeviceLink, data: bytes, x: np.ndarray, name: str) -> None:
    """Load an INT8 file and check the device's output on each input against the reference."""
    from tbn.runtime import Interpreter

    link.load(data)
    ref = Interpreter(data)
    xq, _ = ref.prepare(x)
    for xi, want in zip(xq, ref.run(xq), strict=True):
        got = link.infer(np.ascontiguousarray(xi))
        assert np.array_equal(np.frombuffer(got.output, dtype=want.dtype), want.reshape(-1)), name


def _models_run_as_reference(link: DeviceLink, models: dict[str, tuple[Any, Any]], opcode: str) -> None:
    """Compile each (model, inputs) to INT8, check it holds ``opcode``, and run those whose arena
    fits the board, each bit-exact with the reference; skip when none fits."""
    from tbn.compiler import compile_model

    arena, ran = link.info().arena_bytes, 0
    for name, (model, x) in models.items():
        data = compile_model(model.eval(), x[:1], activations="int8", calibration=x, lookup_tables=False)
        assert opcode in [op.opcode.name for op in read(data).ops], name
        if read(data).arena_size > arena:
            continue
        _runs_as_reference(link, data, x.numpy(), name)
        ran += 1
    if not ran:
        pytest.skip(f"no model's arena fits the board's {arena} bytes")


def test_dense_window_paths_match_the_reference(tbn_device: DeviceLink) -> None:
    """INT8 dense convs of one group through the window path (on DSP cores, two rows at a time
    by SMLAD over windows padded to quads, each row's sums stored by the per-channel kernel's
    store): a ViT's 7x7 patches at stride 7 and a ConvMixer's 2x2 at stride 2 (one input channel,
    taken from the per-channel kernel), 3 channels 3x3 padded (27 taps: a quad's tail), an odd
    number of outputs (the last row paired with itself), a 5x5 window at stride 2 of 4 channels
    (100 taps: two windows a batch), with and without ReLU. Bit-exact on three inputs."""
    import torch
    from torch import nn

    torch.manual_seed(9)
    cases = {"7x7 patches": (nn.Conv2d(1, 8, 7, stride=7), (1, 28, 28), True),
             "2x2 patches": (nn.Conv2d(1, 6, 2, stride=2), (1, 10, 12), False),
             "27 taps, odd rows": (nn.Conv2d(3, 5, 3, padding=1), (3, 9, 7), True),
             "100 taps": (nn.Conv2d(4, 3, 5, stride=2, padding=2), (4, 11, 9), False)}
    models = {name: (nn.Sequential(conv, nn.ReLU() if relu else nn.Identity(), nn.Flatten()),
                     torch.randn(3, *shape) + 0.2)  # a non-zero input zero point
              for name, (conv, shape, relu) in cases.items()}
    _models_run_as_reference(tbn_device, models, "DENSE_CONV2D")


def test_dense_pointwise_paths_match_the_reference(tbn_device: DeviceLink) -> None:
    """INT8 dense 1x1 convs (PointNet's kept-dense per-point layers; on DSP cores, 8 to 128 inputs
    widened to 16 bits a block of positions at a time and 2x2 output blocks by SMLAD, fewer
    inputs four positions a weight; each row's sums stored by the per-channel kernel's store):
    99 inputs (a quad's tail) to 7 outputs (an odd last row) over 131 points, 8 inputs (the
    threshold) on a 5x7 map, 128 inputs (eight positions a block), 4 inputs. Bit-exact on three
    inputs."""
    import torch
    from torch import nn

    torch.manual_seed(12)
    cases = {"99 to 7": (nn.Conv1d(99, 7, 1), (99, 23)), "8 to 6": (nn.Conv2d(8, 6, 1), (8, 5, 7)),
             "128 to 4": (nn.Conv1d(128, 4, 1), (128, 20)), "4 to 9": (nn.Conv1d(4, 9, 1), (4, 33))}
    models = {name: (nn.Sequential(conv, nn.ReLU(), nn.Flatten()), torch.randn(3, *shape) + 0.2)
              for name, (conv, shape) in cases.items()}
    _models_run_as_reference(tbn_device, models, "DENSE_CONV2D")


def test_matrix_product_paths_match_the_reference(tbn_device: DeviceLink) -> None:
    """INT8 products of two activations (BATCH_MATMUL; on DSP cores, operands widened to 16 bits
    and 2x2 output blocks by SMLAD where the depth is at most 128): attention's q k^T and its
    weights times v over 7 tokens (odd rows and columns), a depth of 5 (a quad's tail), a
    transposed left operand, 40 columns of depth 40 (columns in blocks), and a depth of 130 (the
    byte path). Bit-exact on three inputs."""
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self, width: int, then: Any) -> None:
            super().__init__()
            self.first, self.then = nn.Linear(5, width), then

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.then(self.first(x)).flatten(1)

    torch.manual_seed(11)
    cases = {"attention": (Net(12, lambda y: torch.softmax(y @ y.transpose(1, 2), -1) @ y), (7, 5)),
             "depth 5": (Net(5, lambda y: y @ y.transpose(1, 2)), (6, 5)),
             "transposed a": (Net(6, lambda y: torch.bmm(y.transpose(1, 2), y)), (9, 5)),
             "40 columns": (Net(40, lambda y: y.transpose(1, 2) @ y), (40, 5)),
             "depth 130": (Net(3, lambda y: y.transpose(1, 2) @ y), (130, 5))}
    models = {name: (model, torch.randn(3, *shape)) for name, (model, shape) in cases.items()}
    _models_run_as_reference(tbn_device, models, "BATCH_MATMUL")


def test_plane_table_paths_match_the_reference(tbn_device: DeviceLink) -> None:
    """INT8 tiled convs of the plane-table kernel (DSP cores). Pointwise (PLANE_MIN_ROWS rows or
    more): 64 inputs in blocks of 8 positions over 25 (the last block overlapping), 128 inputs
    in blocks of 4 over 15, tile reuse (10 rows for 40 outputs), 16 inputs (one step of four
    groups) on 12 positions (the fewest it takes), 8 and 100 inputs (rows padded to a multiple
    of 16, the padding's tables zero). With a window (PLANE_MIN_ROWS_WINDOW rows
    or more): 3x3 over 16 channels in blocks of 8 (144 taps: chunks of 64, 64, 16), rows 12 wide
    in blocks of 4, 64 channels whose sums leave room for chunks of 48 only, a 5x5 window
    unpadded; at stride 2, 3x3 in blocks of 8 and of 4 (7 input rows: the last window reads
    the padding row) and a 1x1 conv; 3 channels (27 taps, the padding taps reading zeros) at
    stride 1 and 2; 96 channels, too many to stage at once (a chunk's channels staged). Bit-exact
    on three inputs."""
    import torch
    from torch import nn

    from tbn.convert import tile_model
    from tbn.format.spec import PLANE_MIN_POSITIONS

    torch.manual_seed(13)
    cases = {"64 inputs, 8 a block": ((64, 5, 5), 64, 1, 1), "128 inputs, 4 a block": ((128, 3, 5), 24, 1, 1),
             "tile reuse": ((32, 4, 4), 40, 4, 1), "16 inputs": ((16, 3, 4), 8, 1, 1),
             "8 inputs, padded": ((8, 6, 6), 16, 1, 1), "100 inputs, padded": ((100, 4, 4), 30, 1, 1),
             "3x3, 8 a block": ((16, 6, 16), 16, 1, 3), "3x3, 4 a block": ((16, 5, 12), 16, 2, 3),
             "3x3, chunks of 48": ((64, 3, 8), 64, 1, 3), "5x5 unpadded": ((16, 6, 12), 32, 2, 5),
             "3x3 stride 2, 8 a block": ((16, 8, 32), 32, 1, 3),
             "3x3 stride 2, 4 a block": ((16, 7, 24), 16, 2, 3),
             "1x1 stride 2": ((32, 6, 16), 64, 4, 1), "27 taps, padded": ((3, 10, 16), 16, 1, 3),
             "27 taps, padded, stride 2": ((3, 16, 32), 8, 1, 3), "chunks staged": ((96, 4, 16), 64, 8, 3)}
    models = {}
    for name, (shape, out, p, k) in cases.items():
        stride = 2 if "stride 2" in name else 1
        assert shape[1] * shape[2] // stride**2 >= PLANE_MIN_POSITIONS
        conv = nn.Conv2d(shape[0], out, k, stride=stride, padding=1 if k == 3 else 0)
        model = nn.Sequential(conv, nn.BatchNorm2d(out), nn.ReLU(), nn.Flatten())
        tile_model(model, p=p, min_params=0)
        model.train()(torch.randn(16, *shape))  # BatchNorm statistics
        models[name] = (model, torch.randn(3, *shape))
    _models_run_as_reference(tbn_device, models, "TILED_CONV2D")


def _quad_store_applies(prog: Any, op: Any) -> bool:
    """Whether the quad kernel's store (tbn_conv_channel.c, rq16_quads_add) takes an op's outputs
    four at a time: RQ16 with no first shift and a shift of at most 22, outputs -128..127."""
    out, scale = prog.tensors[op.args["output"]], prog.scales[op.args["scale"]]
    return (scale.dtype == DType.RQ16 and scale.pre_shift == 0 and scale.shift <= 22
            and (out.qmin, out.qmax) == (-128, 127))


def test_quad_kernel_paths_match_the_reference(tbn_device: DeviceLink) -> None:
    """INT8 pointwise convs of the quad kernel (DSP cores; others take the tables): an odd and an
    even fan-in, one input, tile reuse (3 rows for 12 outputs), a plane over one block of 128
    positions and a last block not a multiple of 8 (156), a plane of fewer than 8 (6), and
    outputs the four-at-a-time store does not take (a shift over 22 from a large bias; 32-bit
    REQUANT scales). Bit-exact with the reference on three inputs each."""
    import torch
    from torch import nn

    from tbn.compiler import compile_model
    from tbn.convert import tile_model

    torch.manual_seed(7)
    cases = {"two blocks": ((5, 12, 13), "auto", 0.0), "small plane": ((4, 2, 3), "auto", 0.0),
             "one input": ((1, 4, 4), "auto", 0.0), "large bias": ((6, 3, 4), "auto", 4000.0),
             "wide scales": ((5, 12, 13), "wide", 0.0)}
    stores = set()
    for name, (shape, params, bias) in cases.items():
        model = nn.Sequential(nn.Conv2d(shape[0], 12, 1), nn.ReLU(), nn.Conv2d(12, 8, 1), nn.Flatten())
        tile_model(model, p=1, min_params=0, per_layer={"0": 4})
        with torch.no_grad():
            model[2].bias.copy_(torch.linspace(-bias, bias, 8))
        x = torch.randn(3, *shape) + 1.0
        data = compile_model(model.eval(), x[:1], activations="int8", calibration=x, params=params)
        prog = read(data)
        stores |= {_quad_store_applies(prog, op) for op in prog.ops if "tile" in op.args}
        _runs_as_reference(tbn_device, data, x.numpy(), name)
    assert stores == {True, False}  # both stores ran


def test_quad_kernel_windows_match_the_reference(tbn_device: DeviceLink) -> None:
    """INT8 tiled convs with a window in the quad kernel (DSP cores): 3x3 at stride 1 and 2 with
    padding on every side and on one (TensorFlow's "same" at stride 2), 2x5 windows at stride 1
    and 2 (a mask byte a tap), widths not a multiple of 8 and over 8 (two groups), two to 32 input
    channels, tile reuse (fan-in 27 at p=2: 4 rows for 8 outputs), 16 rows of fan-in 144,
    fan-in 252 with every weight +1 on inputs at -128 and 127 (16-bit sums at their ends), and
    fan-in past 255 in chunks of channels (15, 15 and 2 channels; stride 2).
    Bit-exact with the reference on three inputs each."""
    import torch
    from torch import nn

    from tbn.compiler import compile_model
    from tbn.convert import tile_model

    torch.manual_seed(9)
    cases = {"stride 1": ((3, 7, 13), nn.Conv2d(3, 8, 3, padding=1)),
             "stride 2": ((3, 9, 19), nn.Conv2d(3, 8, 3, stride=2, padding=1)),
             "same, stride 2": ((3, 8, 18), nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)),
                                                          nn.Conv2d(3, 8, 3, stride=2))),
             "2x5 window": ((2, 6, 17), nn.Conv2d(2, 6, (2, 5), padding=(1, 2))),
             "2x5 window, stride 2": ((2, 6, 21), nn.Conv2d(2, 6, (2, 5), stride=2, padding=(1, 2))),
             "16 rows of 144": ((16, 4, 9), nn.Conv2d(16, 32, 3, padding=1)),
             "fan-in 252": ((28, 3, 10), nn.Conv2d(28, 2, 3)),
             "fan-in 288 in chunks": ((32, 4, 9), nn.Conv2d(32, 16, 3, padding=1)),
             "fan-in 270 in chunks, stride 2": ((30, 5, 17), nn.Conv2d(30, 8, 3, stride=2, padding=1))}
    for name, (shape, conv) in cases.items():
        model = nn.Sequential(conv, nn.ReLU(), nn.Flatten())
        x = torch.randn(3, *shape)
        if name == "fan-in 252":
            with torch.no_grad():
                conv.weight.abs_()
            x = torch.stack([torch.full(shape, -1.0), torch.full(shape, 1.0), x[2].clamp(-1.0, 1.0)])
        tile_model(model, p=2 if name != "fan-in 252" else 1, min_params=0)
        data = compile_model(model.eval(), x[:1], activations="int8", calibration=x)
        _runs_as_reference(tbn_device, data, x.numpy(), name)


def test_conv_pairs_match_the_reference(tbn_device: DeviceLink) -> None:
    """INT8 convs of the table kernel two output positions at a time: one block of packed sums
    requantised straight from them (an I32 bias, 27 inputs; an I16 bias, a 1x1 conv with tile
    reuse), several blocks split first (a 3x3 conv of 144 inputs), an odd last position.
    Bit-exact with the reference on three inputs."""
    import torch
    from torch import nn

    from tbn.compiler import compile_model
    from tbn.convert import tile_model
    from tbn.runtime import Interpreter

    torch.manual_seed(7)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.Conv2d(16, 16, 3, padding=1), nn.ReLU6(),
                          nn.Conv2d(16, 12, 1), nn.BatchNorm2d(12), nn.ReLU(), nn.Flatten())
    with torch.no_grad():
        model[0].bias.uniform_(-400.0, 400.0)  # past int16 in accumulator units: an I32 bias
    tile_model(model, p=1, min_params=0, per_layer={"5": 2})
    x = torch.randn(3, 3, 5, 7)
    model.train()
    model(torch.randn(16, 3, 5, 7))  # BatchNorm statistics
    data = compile_model(model.eval(), x[:1], activations="int8", calibration=x)
    prog = read(data)
    assert [prog.biases[o.args["bias"]].dtype.name for o in prog.ops[:3]] == ["I32", "I16", "I16"]
    if prog.arena_size > tbn_device.info().arena_bytes:
        pytest.skip("the model's arena is larger than the board's")
    tbn_device.load(data)
    ref = Interpreter(data)
    xq, _ = ref.prepare(x.numpy())
    for xi, want in zip(xq, ref.run(xq), strict=True):
        got = tbn_device.infer(np.ascontiguousarray(xi))
        assert np.array_equal(np.frombuffer(got.output, dtype=want.dtype), want.reshape(-1))


def test_table_kernel_requantisation_matches_the_reference(tbn_device: DeviceLink) -> None:
    """The table kernel's INT8 requantisation paths (on Thumb-2, its assembly): the 64-bit
    REQUANT of a layer of one input, whose output spans its input (shifts of 30 and 31: the
    two-word path), then of a layer of 16 (shifts of 33), each with I32 biases and with the same
    biases as I16, and the RQ16 form the compiler picks by default. Bit-exact on 16 inputs."""
    import dataclasses

    import torch
    from torch import nn

    from tbn.compiler import compile_program
    from tbn.convert import tile_model
    from tbn.format import DType, Op, serialize
    from tbn.runtime import Interpreter

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 8))
    tile_model(model, p=4, min_params=0)
    x = torch.randn(256, 1)
    model.train()(x)
    model.eval()
    wide = compile_program(model, x[:1], activations="int8", calibration=x, params="wide")
    shifts = [int(s) for s in wide.scales[wide.ops[0].args["scale"]].data[:, 1]]
    assert wide.scales[0].dtype == DType.REQUANT and min(shifts) < 32 and "scratch" in wide.ops[0].args
    i16 = [dataclasses.replace(b, dtype=DType.I16, data=b.data.astype(np.int16)) for b in wide.biases]
    assert all(np.array_equal(a.data, b.data) for a, b in zip(wide.biases, i16, strict=True))  # they fit
    narrow_bias = dataclasses.replace(wide, biases=i16)
    auto = compile_program(model, x[:1], activations="int8", calibration=x)
    for program in (wide, narrow_bias, auto):
        assert all(o.opcode == Op.TILED_LINEAR for o in program.ops)
        data = serialize(program)
        tbn_device.load(data)
        ref = Interpreter(data)
        xq, _ = ref.prepare(x[:16].numpy())
        for xi, want in zip(xq, ref.run(xq), strict=True):
            got = tbn_device.infer(np.ascontiguousarray(xi))
            assert np.array_equal(np.frombuffer(got.output, dtype=want.dtype), want.reshape(-1))


def _compiler_digest() -> str:
    import hashlib

    import tbn

    root = Path(tbn.__file__).parent
    h = hashlib.sha256()
    for path in sorted([*root.glob("compiler/*.py"), *root.glob("format/*.py"), *root.glob("nn/*.py")]):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


# The MNIST models the suite tries, largest first: a board runs the first whose file fits its
# model slot and whose arena fits its arena (the 16 KB-RAM sifive_e takes the tiny CNN; the Uno,
# which has no slot and builds the model in, the tiny recipe)
MNIST_RECIPES = ("mlp", "tiny-cnn", "tiny")
# recipes made for the direct kernels (no table scratch in their arena)
DIRECT = ("tiny",)


@pytest.fixture(scope="session")
def mnist_model(pytestconfig: pytest.Config, shared_mnist: Path) -> Callable[[str, str], Path]:
    """``mnist_model(recipe, activations)``: a briefly trained MNIST model (the MLP at p=4, or
    the tiny CNN), compiled for f32 or int8 activations.

    Cached in pytest's cache (keyed by the compiler's sources), so the runs for each board
    train each recipe once."""

    def get(recipe: str, act: str) -> Path:
        out = pytestconfig.cache.mkdir(f"tbn-hil-mnist-{recipe}-{_compiler_digest()}")
        models = {a: out / f"model-{a}.tbn" for a in ("f32", "int8")}
        # boards tested side by side (make hil-repeat) share the cache: one trains, the others wait
        with open(out / ".lock", "wb") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not all(p.is_file() for p in models.values()):
                _train_and_compile(recipe, out, models, shared_mnist)
        return models[act]

    return get


def _train_and_compile(recipe: str, out: Path, models: dict[str, Path], shared_mnist: Path) -> None:
    tbn = [sys.executable, "-m", "tbn.cli.main"]
    subprocess.run(
        [*tbn, "train", "--recipe", recipe, "--p", "4", "--epochs", "1", "--out", str(out),
         "--data-dir", str(shared_mnist), "--overwrite"],
        check=True,
        capture_output=True,
    )
    for act, path in models.items():
        # written under a temporary name first, so an interrupted run leaves no half model behind
        tmp = path.with_suffix(".partial")
        subprocess.run(
            [*tbn, "compile", str(out / "model.pt"), "-o", str(tmp), "--activations", act,
             "--data-dir", str(shared_mnist), *(["--no-lookup-tables"] if recipe in DIRECT else [])],
            check=True,
            capture_output=True,
        )
        tmp.replace(path)


@pytest.mark.parametrize("activations", ["f32", "int8"])
def test_mnist_model_matches_the_reference(
    tbn_device: DeviceLink, tbn_board, mnist_model: Callable[[str, str], Path], shared_mnist: Path,
    activations: str
) -> None:
    from tbn.data.datasets import mnist_test

    if tbn_board is not None and activations not in tbn_board.activations:
        pytest.skip(f"{tbn_board.name} runs {' and '.join(tbn_board.activations)} models only")
    info = tbn_device.info()
    for recipe in MNIST_RECIPES:
        path = mnist_model(recipe, activations)
        program = load(path)
        slot_ok = path.stat().st_size <= info.slot_bytes or info.slot_bytes == 0  # 0: built in
        if slot_ok and program.arena_size <= info.arena_bytes:
            break
    else:
        pytest.fail(f"no MNIST recipe of {MNIST_RECIPES} fits the device's {info.slot_bytes}-byte "
                    f"slot and {info.arena_bytes}-byte arena")
    tbn_device.load(path.read_bytes())
    # a cycle-accurate simulator (simavr, about 2 s an image on the tiny CNN) runs 10 images
    n = 10 if tbn_board is not None and tbn_board.emulated and tbn_board.cost_unit == "cycles" else 100
    x, labels = mnist_test(tuple(program.tensors[0].shape), n, shared_mnist)
    runner = DeviceRunner(tbn_device, program)
    results = [runner.compare(xi) for xi in x]
    assert all(r.matches for r in results), max(r.error for r in results)
    device_pred = np.array([r.predicted for r in results])
    ref_pred = np.array([r.reference_predicted for r in results])
    assert (device_pred == ref_pred).all()
    assert np.mean(device_pred == labels) > 0.8


def test_cost_is_repeatable(tbn_device: DeviceLink) -> None:
    tbn_device.load((VECTORS / "mlp_int8.tbn").read_bytes())
    x = np.fromfile(VECTORS / "mlp_int8.input.bin", dtype=np.int8).reshape(
        MANIFEST["mlp_int8"]["input"]["shape"]
    )
    # under QEMU's -icount (1 ns an instruction), runs enough to span two of the firmware's wake
    # ticks: a tick's handler counted inside some inferences made equal runs differ by 71
    # instructions on sifive_e, and SysTick's wrap by 12 on netduinoplus2
    info = tbn_device.info()
    single = tbn_device.infer(x[0]).cost
    span_ns = 2 * info.wake_ms * 1_000_000
    runs = min(-(-span_ns // single), MAX_BENCH_RUNS) if info.cost_unit == CostUnit.INSTRUCTIONS else 20
    bench = tbn_device.bench(x[0], runs)
    assert bench.runs == runs and bench.min > 0
    # equal work, equal count, up to the measurement's resolution
    assert bench.max - bench.min <= info.cost_resolution
    assert (
        bench.min - tbn_device.device.cost_resolution
        <= single
        <= bench.max + tbn_device.device.cost_resolution
    )


@pytest.mark.parametrize("case", ["requant", "rq16"])
def test_requantisation_edge_cases_match_the_reference(tbn_device: DeviceLink, case: str) -> None:
    """Both requantisation forms step aside from the kernels' fast paths where those do not
    cover a case (tbn.vectors.requant_edge_cases) and still match the reference."""
    from tbn.runtime import Interpreter
    from tbn.vectors import requant_edge_cases

    edited = requant_edge_cases()[case]
    tbn_device.load(edited)
    spec = MANIFEST["mlp_int8"]
    x = np.fromfile(VECTORS / "mlp_int8.input.bin", dtype=spec["input"]["dtype"])
    x = x.reshape(spec["input"]["shape"])
    want = Interpreter(edited).run(x)
    for xi, wi in zip(x, want, strict=True):
        got = np.frombuffer(tbn_device.infer(np.ascontiguousarray(xi)).output, dtype=np.int8)
        assert np.array_equal(got, wi.reshape(-1)), (got, wi)


def test_profile_costs_each_op(tbn_device: DeviceLink) -> None:
    """PROFILE measures every op alone; together they cost what one inference costs, give or
    take a tick per op and the stepping over earlier ops."""
    data = (VECTORS / "conv_tables_int8.tbn").read_bytes()
    tbn_device.load(data)
    spec = MANIFEST["conv_tables_int8"]
    x = np.fromfile(VECTORS / "conv_tables_int8.input.bin", dtype=spec["input"]["dtype"]).reshape(
        spec["input"]["shape"]
    )
    costs = tbn_device.profile(x[0])
    n = len(read(data).ops)
    assert len(costs) == n and all(c > 0 for c in costs)
    whole = tbn_device.infer(x[0]).cost
    # per op: a tick at each end, plus the call and the decoding of the earlier ops (measured:
    # under 200 instructions on Cortex-M, about 480 on RV32IMAC, whose C library clears the
    # 60-byte decoded op a byte at a time)
    slack = n * (2 * tbn_device.info().cost_resolution + 500)
    assert abs(sum(costs) - whole) <= slack, (costs, whole)
    with pytest.raises(DeviceError, match="PROFILE"):
        tbn_device.profile(b"\x00" * 3)  # not the input's size


RAW_WAIT_S = 10.0


def raw_exchange(link: DeviceLink, data: bytes):
    """Write bytes as they are and return the first frame that comes back: the link waits
    as long as the device says it may take to give up on a broken frame, plus RAW_WAIT_S. An
    emulator runs at the host's pace and this frame has no retry: on a loaded host (the 20-run
    hil-repeat beside a parallel build) a longest frame took longer than the link's 2 s."""
    wait = max(link.timeout, RAW_WAIT_S)
    reply = link.raw_exchange(data, timeout=wait)
    assert reply is not None, f"the device did not answer within {wait + link.stall_s:.2f} s"
    return reply


def test_malformed_frames_get_error_replies(tbn_device: DeviceLink) -> None:
    good = encode(Command.INFO, 7)
    bad_crc = good[:-1] + bytes([good[-1] ^ 0xFF])
    reply = raw_exchange(tbn_device, bad_crc)
    assert reply.cmd == Command.ERROR | 0x80 and reply.status == Status.ERR_CRC
    too_long = b"\xa5\x5a" + struct.pack("<BBH", Command.INFER, 8, 0xFFFF)
    reply = raw_exchange(tbn_device, too_long)
    assert reply.status == Status.ERR_LENGTH
    truncated = encode(Command.INFER, 9, b"\x00" * 64)[:20]  # stops part-way: the device times out
    reply = raw_exchange(tbn_device, truncated)
    assert reply.status == Status.ERR_TIMEOUT
    reply = raw_exchange(tbn_device, b"\x00\xff garbage \xa5" + encode(0x42, 10))
    assert reply.cmd == 0x42 | 0x80 and reply.status == Status.ERR_COMMAND
    assert tbn_device.info().protocol == PROTOCOL_VERSION  # and it still works


def test_a_longest_frame_sent_at_once_arrives_whole(tbn_device: DeviceLink) -> None:
    """A frame of the most bytes the device takes, written in one go, as the host writes every
    frame: the device must read it all (here to refuse it for a reason of its own, a load
    chunk out of order), not give up part-way. An emulator hands bytes over as fast as the
    firmware reads them, so a receive interrupt that drained the UART until it was empty never
    returned, and its 512-byte ring overflowed within a 3 KB frame (sifive_e)."""
    payload = struct.pack("<I", 10**6) + bytes(tbn_device.device.max_payload - 4)
    for seq in range(5):
        reply = raw_exchange(tbn_device, encode(Command.LOAD_CHUNK, seq, payload))
        assert reply.status == Status.ERR_LOAD_ORDER, Status(reply.status).name
    assert tbn_device.info().protocol == PROTOCOL_VERSION  # and it still works


def test_bad_requests_are_refused(tbn_device: DeviceLink) -> None:
    model = (VECTORS / "mlp_f32.tbn").read_bytes()
    tbn_device.load(model)
    with pytest.raises(DeviceError, match="wrong payload size"):
        tbn_device.infer(b"\x00" * 3)
    too_big = tbn_device.device.max_payload + 1  # refused before it is sent, not retried 8 times
    with pytest.raises(UsageError, match=f"{too_big} bytes of payload, .* takes at most"):
        tbn_device.infer(b"\x00" * too_big)
    with pytest.raises(UsageError, match=r"BENCH runs must lie in 1\.\.100000, got 0"):
        tbn_device.bench(b"\x00" * 3, 0)
    # a corrupt model, sent intact: the runtime's own validation refuses it
    broken = bytearray(model)
    broken[len(broken) // 2] ^= 0x10
    with pytest.raises(DeviceError, match="TBN_ERR_CRC"):
        tbn_device.load(bytes(broken))
    # a model damaged in transit: the upload's CRC32 catches it
    tbn_device.call(Command.LOAD_BEGIN, struct.pack("<II", len(model), zlib.crc32(model) ^ 1))
    tbn_device.call(Command.LOAD_CHUNK, struct.pack("<I", 0) + model)
    with pytest.raises(DeviceError, match="CRC32 does not match"):
        tbn_device.call(Command.LOAD_END)
    with pytest.raises(DeviceError, match="out of order"):
        tbn_device.call(Command.LOAD_CHUNK, struct.pack("<I", 10**6) + b"x")
    with pytest.raises(DeviceError, match="does not fit"):
        tbn_device.call(Command.LOAD_BEGIN, struct.pack("<II", tbn_device.info().slot_bytes + 1, 0))
    with pytest.raises(DeviceError, match="no model"):
        tbn_device.infer(b"\x00" * 256)
    tbn_device.load(model)  # and a good one still loads
    info = tbn_device.info()
    assert info.model_source == "loaded"
    assert info.model is not None and info.model.holds(model)  # size and CRC32 of the file
    assert info.model.crc32 == zlib.crc32(model)


def test_soak_with_corrupted_frames(tbn_device: DeviceLink) -> None:
    """A short soak (benchmarks/soak.py runs the 10,000-inference one): 5% of request frames
    damaged on the way in; every result must still be right."""
    name = "mlp_int8"
    tbn_device.load((VECTORS / f"{name}.tbn").read_bytes())
    shape = MANIFEST[name]["input"]["shape"]
    x = np.fromfile(VECTORS / f"{name}.input.bin", dtype=np.int8).reshape(shape)
    want = np.fromfile(VECTORS / f"{name}.output.bin", dtype=np.int8).reshape(
        MANIFEST[name]["output"]["shape"]
    )
    faulty = FaultyPort(tbn_device.port, rate=0.05, seed=1)
    link = tbn_device.via(faulty, timeout=1.0, retries=10)  # type: ignore[arg-type]
    wrong = 0
    for i in range(300):
        k = i % len(x)
        wrong += link.infer(x[k]).output != want[k].tobytes()
    assert wrong == 0
    assert faulty.damaged > 0
    assert link.stats.retries >= faulty.damaged  # every damaged frame was noticed and sent again
