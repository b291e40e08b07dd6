"""Link faults injected between the host and an emulated board, through a local TCP peer
(:class:`tbn.device.faults.FaultProxy`): a link that drops, corrupts and delays bytes still
gives every result right; one that closes, or an emulator that dies, ends the command with
one clear message and the results gathered so far kept."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tbn.boards import Board
from tbn.device.emulator import Emulator
from tbn.device.faults import FaultProxy, Faults
from tbn.device.link import DeviceLink
from tbn.device.session import flash, open_device
from tbn.paths import root

pytestmark = pytest.mark.hil
VECTORS = root() / "tests" / "vectors"
MANIFEST = json.loads((VECTORS / "manifest.json").read_text())
TBN = [sys.executable, "-m", "tbn.cli.main"]


@pytest.fixture(scope="module")
def model(tbn_board: Board | None) -> Path:
    """The golden vector embedded in the firmware these tests boot: the MLP, or on a board that
    builds in its model's ops alone (the Uno's 32 KB of flash), one whose ops take less room."""
    name = "conv1d_argmax_int8" if tbn_board is not None and tbn_board.model_ops else "mlp_int8"
    return VECTORS / f"{name}.tbn"


@pytest.fixture(scope="module")
def emulated(tbn_board: Board | None, model: Path,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """A second emulator of the board under test, with ``model`` in flash, for these tests alone."""
    if tbn_board is None or not tbn_board.emulated:
        pytest.skip("link faults are injected in front of an emulated board")
    elf = flash(tbn_board, model).firmware.elf
    log = tmp_path_factory.mktemp("faults") / "emulator.log"
    with Emulator(tbn_board.emulation, elf, log=log) as emu:
        emu.connect().close()  # boots the board (QEMU waits for its first client)
        yield emu


def _inputs(model: Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    spec = MANIFEST[model.stem]
    x = np.fromfile(model.with_suffix(".input.bin"), dtype=spec["input"]["dtype"])
    x = x.reshape(spec["input"]["shape"])
    want = np.fromfile(model.with_suffix(".output.bin"), dtype=spec["output"]["dtype"]).reshape(len(x), -1)
    k = np.arange(n) % len(x)
    return x[k], want[k]


@pytest.mark.parametrize(
    ("faults", "n", "timeout"),
    [(Faults(drop=0.0005, corrupt=0.001), 40, 0.3), (Faults(delay_s=0.01), 20, 2.0)],
    ids=["drops and corruption", "delays"],
)
def test_a_damaged_link_still_gives_every_result(emulated: Emulator, model: Path, faults: Faults, n: int,
                                                 timeout: float) -> None:
    x, want = _inputs(model, n)
    with FaultProxy(emulated.url, to_device=faults, to_host=faults, seed=7) as proxy:
        with DeviceLink(proxy.url, timeout=timeout, retries=12) as link:
            link.sync()
            got = [link.infer(xi).output for xi in x]
            stats = link.stats
    assert got == [w.tobytes() for w in want]
    damaged = sum(c.dropped + c.corrupted for c in proxy.sent.values())
    if faults.delay_s:
        assert stats.retries == 0  # slow is not broken: the waits come from the device
    else:
        assert damaged > 0 and stats.retries > 0


def _infer(model: Path, args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([*TBN, "infer", "--model", str(model), "--input", "x.npy", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _partial(path: Path, n: int) -> dict:
    doc = json.loads(path.read_text())
    assert doc["complete"] is False and doc["error"]
    assert doc["requested"] == n and doc["done"] == len(doc["results"])
    assert all(r["matches"] for r in doc["results"])
    return doc


def test_infer_keeps_its_results_when_the_link_closes(emulated: Emulator, model: Path,
                                                      tmp_path: Path) -> None:
    x, _ = _inputs(model, 200)
    np.save(tmp_path / "x.npy", x)
    # INFO replies are under 100 bytes and each INFER reply of these models under 40: some get through
    with FaultProxy(emulated.url, to_host=Faults(close_after=1500)) as proxy:
        proc = _infer(model, ["--port", proxy.url, "--n", "200", "--json", "r.json"], tmp_path)
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2, out
    assert f"{proxy.url}: the serial link to the device closed" in out and "Traceback" not in out
    doc = _partial(tmp_path / "r.json", 200)
    assert 0 < doc["done"] < 200
    assert f"the device failed after {doc['done']} of 200 inputs" in out


def _emulator_child(pid: int, board: Board, timeout: float = 60.0) -> int:
    """The emulator (QEMU, or tbn-simavr) that process ``pid`` started."""
    name = board.emulator[0][:15]  # pgrep matches the kernel's 15-character process name
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = subprocess.run(["pgrep", "-P", str(pid), name], capture_output=True, text=True)
        if found.stdout.split():
            return int(found.stdout.split()[0])
        time.sleep(0.1)
    raise AssertionError(f"process {pid} started no {name} within {timeout} s")


def test_an_emulator_that_dies_is_named_and_the_results_kept(tbn_board: Board | None, emulated: Emulator,
                                                             model: Path, tmp_path: Path) -> None:
    assert tbn_board is not None
    x, _ = _inputs(model, 3000)
    np.save(tmp_path / "x.npy", x)
    proc = _infer(model, ["--board", tbn_board.name, "--n", "3000", "--json", "r.json"], tmp_path)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:  # "model: ..." comes once the link is up and inference begins
        lines.append(line)
        if line.startswith("model:"):
            break
    time.sleep(1.0)
    emulator = _emulator_child(proc.pid, tbn_board)
    subprocess.run(["kill", f"-{signal.SIGKILL.value}", str(emulator)], check=True)
    out = "".join(lines) + proc.communicate(timeout=60)[0]
    assert proc.returncode == 2, out
    assert f"{tbn_board.emulator[0]} ({tbn_board.name}) exited with status -9 during the session" in out, out
    assert "Traceback" not in out
    assert _partial(tmp_path / "r.json", 3000)["done"] > 0


def test_port_uploads_only_a_model_the_device_lacks(tbn_board: Board | None, emulated: Emulator,
                                                    model: Path) -> None:
    if tbn_board is not None and tbn_board.slot_bytes == 0:
        pytest.skip(f"{tbn_board.name} has no RAM slot to upload a model to")
    with open_device(port=emulated.url, model=model) as link:
        assert link.info().model_source == "embedded"  # it already holds the model: nothing sent
    with open_device(port=emulated.url, model=VECTORS / "mlp_f32.tbn") as link:
        assert link.info().model_source == "loaded"
    with open_device(port=emulated.url, model=VECTORS / "mlp_f32.tbn") as link:
        assert link.stats.requests == 1  # held now: one INFO, no LOAD
    with open_device(port=emulated.url, model=model, embed=False) as link:  # --load: always
        assert link.info().model_source == "loaded"


def test_flash_refuses_a_busy_serial_port(tbn_board: Board | None, emulated: Emulator, model: Path) -> None:
    assert tbn_board is not None
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        flash_cmd = [sys.executable, "-m", "tbn.cli.flash", "--board", tbn_board.name, "--model", str(model),
                     "--serial-port", str(port), "--detach"]
        r = subprocess.run(flash_cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"TCP port {port} on 127.0.0.1 cannot be listened on" in r.stderr
    assert "running" not in r.stdout


def test_flash_says_running_once_the_emulator_answers(tbn_board: Board | None, emulated: Emulator,
                                                     model: Path) -> None:
    assert tbn_board is not None
    flash_cmd = [sys.executable, "-m", "tbn.cli.flash", "--board", tbn_board.name, "--model", str(model),
                 "--detach"]
    r = subprocess.run(flash_cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    line = next(ln for ln in r.stdout.splitlines() if " running (pid " in ln)
    pid = int(line.split("(pid ")[1].split(")")[0])
    url = line.split("its UART is ")[1].split(",")[0]
    try:
        assert "answered INFO (firmware" in line and f"model {model.stat().st_size} bytes" in line
        with DeviceLink(url) as link:  # the printed port is the one that answers
            assert link.sync().model is not None
    finally:
        subprocess.run(["kill", str(pid)], check=False)
