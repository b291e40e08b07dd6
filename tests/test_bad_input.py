"""Bad input, the way a user meets it: each case runs a real command and asserts one clear
message, the documented exit code (2), no traceback, no hang, and every input file left
byte-identical. Add a row to CASES for each new kind of bad input."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

from tbn.train import TrainConfig
from tbn.train.model_file import build_model, save_model

TBN = [sys.executable, "-m", "tbn.cli.main"]


@dataclass(frozen=True)
class Case:
    name: str
    setup: Callable[[Path], None]  # makes the files the command meets, in a fresh folder
    argv: list[str]  # after `tbn`, relative to that folder
    message: str  # a fragment of the one error message
    code: int = 2
    unchanged: tuple[str, ...] = field(default=())  # files that must stay byte-identical
    absent: tuple[str, ...] = field(default=())  # files the failed command must not leave


def _model(d: Path, name: str = "model.pt") -> None:
    model, _ = build_model(TrainConfig(p=4))
    save_model(model, TrainConfig(p=4), d / name)


def _tbn(d: Path) -> None:
    (d / "m.tbn").write_bytes((Path(__file__).parent / "vectors" / "mlp_int8.tbn").read_bytes())


def _fifo(d: Path) -> None:
    os.mkfifo(d / "pipe.tbn")


def _truncated_model(d: Path) -> None:
    _model(d)
    data = (d / "model.pt").read_bytes()
    (d / "model.pt").write_bytes(data[: len(data) // 2])


def _run_folder(d: Path) -> None:
    (d / "run").mkdir()
    _model(d / "run")


def _occupied(d: Path) -> None:
    (d / "out").mkdir()
    (d / "out" / "notes.txt").write_text("my notes\n")


def _earlier_run(d: Path) -> None:
    (d / "out").mkdir()
    (d / "out" / "metrics.json").write_text('{"test_accuracy": 0.99}\n')


def _model_and_folder(d: Path) -> None:
    _model(d)
    (d / "dir").mkdir()


def _empty_data(d: Path) -> None:
    _tbn(d)
    (d / "data").mkdir()


def _nan_input(d: Path) -> None:
    _tbn(d)
    x = np.zeros((1, 1, 8, 8), dtype=np.float32)
    x[0, 0, 3, 4] = np.nan
    np.save(d / "x.npy", x)


def _nan_model(d: Path) -> None:
    model, _ = build_model(TrainConfig(p=4))
    with torch.no_grad():
        next(model.parameters())[0] = float("nan")
    save_model(model, TrainConfig(p=4), d / "model.pt")


def _nothing(d: Path) -> None:
    pass


CASES = [
    Case("compile over its own input", _model, ["compile", "model.pt", "-o", "model.pt"],
         "is also the input", unchanged=("model.pt",)),
    Case("compile into a missing folder", _model, ["compile", "model.pt", "-o", "nope/m.tbn"],
         "does not exist", unchanged=("model.pt",)),
    Case("compile onto a folder", _model_and_folder, ["compile", "model.pt", "-o", "dir"], "is a folder",
         unchanged=("model.pt",)),
    Case("compile a run folder", _run_folder, ["compile", "run"], "give the trained model in it",
         unchanged=("run/model.pt",)),
    Case("compile bytecode", _tbn, ["compile", "m.tbn"], "is .tbn bytecode", unchanged=("m.tbn",)),
    Case("compile a truncated model", _truncated_model, ["compile", "model.pt"], "truncated or corrupt",
         unchanged=("model.pt",)),
    Case("inspect a FIFO", _fifo, ["inspect", "pipe.tbn"], "not a regular file"),
    Case("inspect a device", _nothing, ["inspect", "/dev/zero"], "not a regular file"),
    Case("inspect a folder", lambda d: (d / "x.tbn").mkdir(), ["inspect", "x.tbn"], "is a folder"),
    Case("inspect a missing file", _nothing, ["inspect", "missing.tbn"], "no such file"),
    Case("a --data-dir that does not exist", _tbn,
         ["run", "m.tbn", "--data", "mnist", "--data-dir", "nowhere"], "nowhere does not exist",
         unchanged=("m.tbn",)),
    Case("a --data-dir without MNIST", _empty_data, ["run", "m.tbn", "--data", "mnist", "--data-dir", "data"],
         "not found; looked in: data", unchanged=("m.tbn",)),
    Case("NaN in the input", _nan_input, ["run", "m.tbn", "--input", "x.npy"], "NaN or infinity",
         unchanged=("m.tbn", "x.npy")),
    Case("compile NaN weights", _nan_model, ["compile", "model.pt"], "holds NaN or infinity",
         unchanged=("model.pt",)),
    Case("a diverging training run", _nothing,
         ["train", "--optimizer", "sgd", "--lr", "1e12", "--epochs", "1", "--subset", "1024", "--out", "run"],
         "training diverged", absent=("run/model.pt", "run/metrics.json")),
    Case("--dtype without the cuda engine", _tbn, ["run", "m.tbn", "--data", "mnist", "--dtype", "float16"],
         "applies to the cuda engine only", unchanged=("m.tbn",)),
    Case("a negative --interval", _tbn,
         ["monitor", "--port", "socket://127.0.0.1:1", "--model", "m.tbn", "--interval", "-1"],
         "expected 0 or more seconds", unchanged=("m.tbn",)),
    Case("train into a folder holding other files", _occupied, ["train", "--epochs", "1", "--out", "out"],
         "is not empty", unchanged=("out/notes.txt",)),
    Case("train over an earlier run's metrics", _earlier_run, ["train", "--epochs", "1", "--out", "out"],
         "already holds a training run", unchanged=("out/metrics.json",)),
]


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_gets_one_clear_error(case: Case, tmp_path: Path) -> None:
    case.setup(tmp_path)
    before = {f: _digest(tmp_path / f) for f in case.unchanged}
    env = {**os.environ, "TBN_OFFLINE": "1"}  # no case may download anything
    r = subprocess.run([*TBN, *case.argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == case.code, out
    assert case.message in out, out
    assert "Traceback" not in out, out
    assert {f: _digest(tmp_path / f) for f in case.unchanged} == before
    assert not [f for f in case.absent if (tmp_path / f).exists()]
