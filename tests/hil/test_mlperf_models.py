"""MLPerf Tiny's published reference models (the pinned mlcommons/tiny copy), each loaded as
tbn loads it (Keras .h5, float .tflite, or an int8 .tflite's float twin), compiled to INT8 and
run on the Cortex-M4 and M7 boards with every output equal to the reference interpreter's, bit
for bit. No dataset is here: the calibration and test inputs are uniform over the range the
published int8 file's input quantisation covers (the inputs that file was built for)."""

from __future__ import annotations

import fcntl
import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from tbn import compile_model
from tbn.boards import Board
from tbn.device.link import DeviceLink
from tbn.device.runner import DeviceRunner
from tbn.format import read
from tbn.layout import channels_first
from tbn.mlperf import TASKS, reference_file
from tbn.paths import build_dir, root
from tbn.third_party import SourceNotFoundError

pytestmark = pytest.mark.hil
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
BOARDS = ("mps2_an500", "mps2_an386")  # the M7 and M4 that MLPerf Tiny's results are quoted on
# each task's float model as tbn takes it: the Keras file, else the float .tflite, else the int8
# .tflite's float twin (ic02 is published only as int8)
SOURCES = {t: ("keras" if s.keras else "float_tflite" if s.float_tflite else "int8")
           for t, s in TASKS.items()}


def _inputs(task: str, n: int, seed: int) -> np.ndarray:
    """``n`` channels-last inputs uniform over the published int8 file's input range."""
    from tbn.tflite import read_tflite

    t = read_tflite(reference_file(task, "int8"))
    inp = t.tensors[t.inputs[0]]
    s, z = float(inp.scale[0]), int(inp.zero_point[0])
    lo, hi = (-128 - z) * s, (127 - z) * s
    return np.random.default_rng(seed).uniform(lo, hi, size=(n, *inp.shape[1:])).astype(np.float32)


def _compiled(task: str, path: Path) -> bytes:
    """``task``'s INT8 file, compiled once for the M4 and M7 runs that `make test` runs side by side
    (a lock, and a copy keyed by the model file and every host source, so a change recompiles)."""
    from tbn.foreign import load_foreign

    key = hashlib.sha256(path.read_bytes())
    for src in sorted((root() / "host" / "tbn").rglob("*.py")):
        key.update(src.read_bytes())
    cache = build_dir() / "test-cache" / f"mlperf-{task}-{key.hexdigest()[:16]}.tbn"
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not cache.is_file():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                graph = load_foreign(path, dequantise=SOURCES[task] == "int8")
            x = torch.from_numpy(channels_first(_inputs(task, 8, 0)))
            tmp = cache.with_suffix(".part")
            tmp.write_bytes(compile_model(graph, x[:1], activations="int8", calibration=x))
            tmp.replace(cache)
        return cache.read_bytes()


@pytest.mark.parametrize("task", list(TASKS))
@pytest.mark.filterwarnings("ignore::tbn.runtime.interpreter.InputWarning")  # ic01/ic02 read 0-255 pixels
def test_a_published_model_runs_bit_exactly(tbn_device: DeviceLink, tbn_board: Board | None,
                                            task: str) -> None:
    pytest.importorskip("keras", reason="the tf extra is not installed (pip install 'tbn[tf]')")
    if tbn_board is None or tbn_board.name not in BOARDS:
        pytest.skip(f"the published models run on {' and '.join(BOARDS)}")
    try:
        path = reference_file(task, SOURCES[task])
    except SourceNotFoundError as e:
        pytest.skip(str(e))
    data = _compiled(task, path)
    program = read(data)
    tbn_device.load(data)
    runner = DeviceRunner(tbn_device, program)
    result = runner.compare(channels_first(_inputs(task, 1, 1))[0])
    assert result.matches, f"{task}: device and reference differ by {result.error}"
