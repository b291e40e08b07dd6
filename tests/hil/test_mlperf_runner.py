"""MLCommons' MLPerf Tiny runner protocol on an emulated board (``tbn-flash --protocol mlperf``;
docs/mlperf.md): the reference's sequence (download an input, 5 warm-ups, 20 inferences) with
the results equal to the reference interpreter's, every bad command an ``e-[...]`` reply and
never a hang, and MLCommons' own runner code driving the board through a pseudo-terminal."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tbn import compile_model
from tbn.boards import Board
from tbn.device.emulator import Emulator
from tbn.device.runner_protocol import RunnerLink
from tbn.device.session import flash
from tbn.format import load
from tbn.runtime import Interpreter
from tbn.train.mlperf_models import random_model

pytestmark = pytest.mark.hil
TASK = "ad01"  # the smallest of MLPerf Tiny's models: 640 inputs, 0.26 M MACs


@pytest.fixture(scope="module")
def ad01(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """ad01's architecture at p=4, INT8, and a few inputs as the compiled model reads them."""
    model, shape, _ = random_model(TASK, 4)
    x = torch.randn(16, *shape, generator=torch.Generator().manual_seed(1))
    path = tmp_path_factory.mktemp("mlperf") / f"{TASK}.tbn"
    path.write_bytes(compile_model(model, x[:1], activations="int8", calibration=x))
    prog = load(path)
    t = prog.tensors[0]
    q = np.clip(np.rint(x.numpy() / t.scale) + t.zero_point, -128, 127).astype(np.int8)
    return path, q


@pytest.fixture(scope="module")
def board(tbn_board: Board | None, ad01: tuple[Path, np.ndarray],
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Emulator, RunnerLink]]:
    if tbn_board is None or not tbn_board.emulated:
        pytest.skip("the runner protocol test boots an emulated board")
    if tbn_board.arch == "avr":
        pytest.skip(f"{tbn_board.name}: the MLPerf protocol app runs on 32-bit cores")
    elf = flash(tbn_board, ad01[0], mlperf=TASK).firmware.elf
    log = tmp_path_factory.mktemp("mlperf") / "emulator.log"
    with Emulator(tbn_board.emulation, elf, log=log) as emu:
        port = emu.connect()
        link = RunnerLink(port, timeout=60)
        assert link.ready() == ["m-timestamp-mode-performance", "m-init-done"]
        yield emu, link
        port.close()


def _reference(path: Path, q: np.ndarray) -> np.ndarray:
    """The reference interpreter's int8 outputs as the board prints them: scale * (q - zero) in
    float32 (the board's arithmetic; its 9 digits give each float32 back exactly)."""
    prog = load(path)
    out = Interpreter(prog).run(q[None]).reshape(-1)
    o = prog.tensors[prog.ops[-1].args["output"]]
    return np.float32(o.scale) * (out.astype(np.int32) - o.zero_point).astype(np.float32)


def test_the_reference_sequence_gives_the_reference_results(
        board: tuple[Emulator, RunnerLink], ad01: tuple[Path, np.ndarray], tbn_board: Board) -> None:
    _, link = board
    path, q = ad01
    assert link.name() == f"tbn {tbn_board.name}"
    assert link.model() == TASK
    for i in range(2):
        link.load(q[i].tobytes())
        got = link.infer(20, 5)
        want = _reference(path, q[i])
        np.testing.assert_array_equal(got.results.astype(np.float32), want)
        assert got.end_us > got.start_us >= 0
    again = link.send("results")
    assert again[0].startswith("m-results-[") and len(again) == 1


BAD = [
    ("bogus", "e-[Unknown command: bogus]"),
    ("x" * 200, "e-[command longer than 80 characters]"),
    ("db", "e-[Command 'db' requires a subcommand]"),
    ("db load 7", "e-[db load: the model's input is 640 bytes]"),
    ("db load 99999999999999999999", "e-[db load: the model's input is 640 bytes]"),
    ("db load -3", "e-[db load: the model's input is 640 bytes]"),
    ("db abc", "e-[Insufficent number of hex digits]"),
    ("db zz", "e-[Invalid hex digit]"),
    ("infer 0 1", "e-[infer N W: N from 1 and W from 0, at most 1000000]"),
    ("infer 5 x", "e-[infer N W: N from 1 and W from 0, at most 1000000]"),
    ("infer 2000000 0", "e-[infer N W: N from 1 and W from 0, at most 1000000]"),
    ("\x00\xff\x01", "e-[Unknown command: ???]"),
]


@pytest.mark.parametrize(("command", "error"), BAD, ids=[b[1][3:-1] + f"-{i}" for i, b in enumerate(BAD)])
def test_a_bad_command_is_an_error_reply_never_a_hang(board: tuple[Emulator, RunnerLink], command: str,
                                                      error: str) -> None:
    _, link = board
    link.port.write(command.encode("latin-1") + b"%")
    assert link.ready() == [error]
    assert link.name()  # still answering


def test_a_truncated_line_joins_the_next_and_is_refused(board: tuple[Emulator, RunnerLink]) -> None:
    """A command that lost its '%' runs into the next one: one line, refused whole."""
    _, link = board
    link.port.write(b"db lo")  # the rest of "db load 640%" never came
    reply = link.send("name", check=False)  # "db loname": bytes before any load, or not hex
    assert len(reply) == 1
    assert reply[0] in ("e-[db: no 'db load N' before the bytes]", "e-[Invalid hex digit]")
    assert link.name()


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=120).filter(lambda b: b"%" not in b))
def test_any_line_gets_a_reply_ending_m_ready(board: tuple[Emulator, RunnerLink], line: bytes) -> None:
    """Whatever bytes a line holds, the board answers it and stays up (the runner's own device
    side truncates overlong lines silently; tbn refuses them)."""
    _, link = board
    link.port.write(line + b"%")
    reply = link.ready()
    assert all(r.startswith(("m-", "e-[", "tbn ")) for r in reply), reply
    assert link.name()


def test_infer_before_the_input_is_loaded_is_an_error(board: tuple[Emulator, RunnerLink]) -> None:
    _, link = board
    assert link.send("db load 640") == ["m-[Expecting 640 bytes]"]
    assert link.send("db 00112233", check=False) == []  # part of the input: no reply but m-ready
    assert link.send("infer 1 0", check=False) == [
        "e-[infer: load the input first (db load N, then its bytes)]"]
    assert link.send("db print", check=False) == ["m-buffer-00-11-22-33"]


def _bridge(sock: socket.socket) -> tuple[str, threading.Event]:
    """A pseudo-terminal whose other end is ``sock``: the runner opens the board by a device
    path, as it would a USB serial port."""
    master, slave = os.openpty()
    stop = threading.Event()

    def pump() -> None:
        while not stop.is_set():
            ready, _, _ = select.select([master, sock], [], [], 0.1)
            try:
                if master in ready:
                    sock.sendall(os.read(master, 4096))
                if sock in ready:
                    data = sock.recv(4096)
                    if not data:
                        return
                    os.write(master, data)
            except OSError:
                return

    threading.Thread(target=pump, daemon=True).start()
    return os.ttyname(slave), stop


# Run in a process of its own: the runner's script module redirects sys.stdout and sys.stderr
# to its log, and writes a sessions/ folder where it runs.
DRIVER = """
import json, sys
runner, tty, data, out = sys.argv[1:]
sys.path.insert(0, runner)
from datasets import DataSet
from device_under_test import DUT
from script import Script
with DUT(tty, 115200) as dut:
    found = {"name": dut.get_name(), "model": dut.get_model()}
    script = Script({"name": "anomaly_detection", "model": found["model"], "truth_file": "y_labels.csv",
                     "script": [{"loop 5": ["download", "infer 20 5"]}]})
    found["result"] = script.run(None, dut, DataSet(data, "y_labels.csv"), "p")
json.dump(found, open(out, "w"))
"""


def test_mlcommons_runner_drives_the_board(board: tuple[Emulator, RunnerLink], ad01: tuple[Path, np.ndarray],
                                           tmp_path: Path) -> None:
    """MLCommons' own runner code (the pinned copy's ``runner/``: DUT, SerialDevice, Script,
    DataSet) runs the reference's performance script (5 loops of: download an input, 5
    warm-ups, 20 inferences) on the board. The shim: no USB device discovery (the runner finds
    boards by USB ids), so its DUT is given a pseudo-terminal bridged to the emulator's UART."""
    from tbn.third_party import MLPERF_TINY, SourceNotFoundError, locate

    try:
        runner = locate(MLPERF_TINY) / "runner"
    except SourceNotFoundError as e:
        pytest.skip(str(e))
    emu, link = board
    path, q = ad01
    data = tmp_path / TASK
    data.mkdir()
    for i in range(5):  # the runner's dataset layout: the input files and y_labels.csv
        (data / f"in{i}.bin").write_bytes(q[i].tobytes())
    (data / "y_labels.csv").write_text("".join(f"in{i}.bin,10,0,640,640\n" for i in range(5)))
    link.port.close()  # the runner's turn: QEMU takes the next connection
    sock = socket.create_connection(("127.0.0.1", emu.port))
    tty, stop = _bridge(sock)
    try:
        argv = [sys.executable, "-c", DRIVER, str(runner), tty, str(data), str(tmp_path / "out.json")]
        proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    finally:
        stop.set()
        sock.close()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    found = json.loads((tmp_path / "out.json").read_text())
    assert found["name"] == f"tbn {emu.spec.board}" and found["model"] == TASK
    loops = [r for r in found["result"] if "infer" in r]
    assert len(loops) == 5 and not [r for r in found["result"] if r.get("error") == "error 1"]
    for i, r in enumerate(loops):
        infer = r["infer"]
        np.testing.assert_array_equal(np.float32(infer["results"]), _reference(path, q[i]))
        assert infer["iterations"] == 20 and infer["warmups"] == 5 and infer["elapsed_time"] > 0


# Energy mode seen from outside the emulated core: QEMU's trace events (or its log of writes
# to devices it does not model) for each board's timestamp pin and, where QEMU says it, the
# UART's rate. board -> (QEMU arguments, a pin write's pattern, its level from the match,
# the rate's pattern or None)
PIN_WATCH = {
    "mps2_an386": (("-trace", "mps2_fpgaio_write", "-trace", "cmsdk_apb_uart_set_params"),
                   r"FPGAIO write: offset 0x0 data 0x([0-9a-f]+)", lambda v: v & 1,
                   r"params set to (\d+) 8N1"),
    "sifive_e": (("-trace", "sifive_gpio_write"), r"sifive_gpio_write offset 0xc value 0x([0-9a-f]+)",
                 lambda v: (v >> 19) & 1, None),
    "netduinoplus2": (("-d", "unimp"), r"GPIOA: unimplemented device write \(size 4, offset 0x018, "
                      r"value 0x([0-9a-f]+)\)", lambda v: 1 if v & (1 << 8) else 0 if v & (1 << 24) else None,
                      None),
}
PIN_WATCH["mps2_an500"] = PIN_WATCH["mps2_an386"]


def test_energy_mode_pulses_the_timestamp_pin(tbn_board: Board, ad01: tuple[Path, np.ndarray],
                                              tmp_path: Path) -> None:
    """``tbn-flash --protocol mlperf --energy``: the banner says energy mode, the UART runs at 9600
    baud, and each timestamp (one ``timestamp%``, two around ``infer 20 5%``) is a pulse low on
    the board's timestamp pin instead of an m-lap-us line; the results stay the reference's."""
    import dataclasses
    import itertools
    import re
    import shutil

    if tbn_board is None or tbn_board.name not in PIN_WATCH:
        pytest.skip(f"no way to watch {getattr(tbn_board, 'name', None)}'s pins from outside: an emulated "
                    f"board of {', '.join(PIN_WATCH)}")
    args, pin, level, rate = PIN_WATCH[tbn_board.name]
    path, q = ad01
    elf = tmp_path / "energy.elf"  # a copy: the next build overwrites the build folder's
    shutil.copy(flash(tbn_board, path, mlperf=TASK, energy=True).firmware.elf, elf)
    spec = dataclasses.replace(tbn_board.emulation, command=(*tbn_board.emulation.command, *args))
    log = tmp_path / "emulator.log"
    with Emulator(spec, elf, log=log) as emu:
        link = RunnerLink(emu.connect(), timeout=60)
        assert link.ready() == ["m-timestamp-mode-energy", "m-init-done"]
        assert link.send("timestamp") == []
        link.load(q[0].tobytes())
        lines = link.send("infer 20 5")
        link.port.close()
    assert not [ln for ln in lines if ln.startswith("m-lap-us")], lines
    results = [m[1] for ln in lines if (m := re.fullmatch(r"m-results-\[(.*)\]", ln))]
    got = np.float32([float(v) for v in results[0].split(",")])
    np.testing.assert_array_equal(got, _reference(path, q[0]))
    text = log.read_text(errors="replace")
    levels = [v for m in re.finditer(pin, text) if (v := level(int(m[1], 16))) is not None]
    edges = [b for a, b in itertools.pairwise(levels) if a != b]
    assert levels[0] == 1 and edges == [0, 1] * 3, levels  # idle high, then three pulses
    if rate is not None:
        assert re.findall(rate, text)[-1] == "9600"
