"""Bad input, the way a user meets it: each case runs a real command and asserts one clear
message, the documented exit code (2), no traceback, no hang, and every input file left
byte-identical. Add a row to CASES for each new kind of bad input."""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import struct
import subprocess
import sys
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

from tbn.data.cifar10 import write_synthetic
from tbn.device.faults import FaultProxy, Faults
from tbn.train import TrainConfig
from tbn.train.model_file import build_model, save_model

PROGRAMS = {"tbn": "tbn.cli.main", "tbn-flash": "tbn.cli.flash"}

# The kinds of bad input and fault the suite covers; tests/hil/test_faults.py covers 1-3 on an
# emulated device too (a link damaged per byte, a QEMU killed mid-run, a busy --serial-port,
# "running" only once INFO answers, --port uploading only a model the device lacks).
KINDS = {
    1: "link and port faults",
    2: "tbn-flash and impossible ports",
    3: "--port uploads only when needed",  # needs a device: tests/hil/test_faults.py only
    4: "silent nonsense (non-finite, raw pixels, config vs weights, divergence)",
    5: "data lost (outputs over inputs, occupied folders)",
    6: "paths not honoured",
    7: "unbounded reads",
    8: "unclear messages",
}


@dataclass(frozen=True)
class Case:
    name: str
    kind: int  # which class of issue 17's list it belongs to: a key of KINDS
    setup: Callable[[Path], None]  # makes the files the command meets, in a fresh folder
    argv: list[str]  # after `tbn`, relative to that folder
    message: str  # a fragment of the one error message
    code: int = 2
    unchanged: tuple[str, ...] = field(default=())  # files that must stay byte-identical
    absent: tuple[str, ...] = field(default=())  # files the failed command must not leave
    written: tuple[str, ...] = field(default=())  # files it must write all the same (partial results)
    peer: Callable[[], FaultProxy] | None = None  # a TCP peer on 127.0.0.1; "{peer}" in argv is its URL
    program: str = "tbn"
    path: str | None = None  # the path option given a path of the wrong kind (PATH_CASES)
    fault: str = ""  # the class of issue 40's faults it shows (FAULTS), where it is one


def _model(d: Path, name: str = "model.pt") -> None:
    model, _ = build_model(TrainConfig(p=4))
    save_model(model, TrainConfig(p=4), d / name)


def _tbn(d: Path) -> None:
    (d / "m.tbn").write_bytes((Path(__file__).parent / "vectors" / "mlp_int8.tbn").read_bytes())


def _model_and_tbn(d: Path) -> None:
    _model(d)
    _tbn(d)


def _model_and_fifo(d: Path) -> None:
    _model(d)
    _fifo(d)


def _fifo(d: Path) -> None:
    os.mkfifo(d / "pipe.tbn")


def _truncated_model(d: Path) -> None:
    _model(d)
    data = (d / "model.pt").read_bytes()
    (d / "model.pt").write_bytes(data[: len(data) // 2])


def _run_folder(d: Path) -> None:
    (d / "run").mkdir()
    _model(d / "run")


def _short_run(d: Path) -> None:
    """A finished one-epoch run in run/ (its checkpoint is what --resume reads)."""
    from tbn.train import train

    train(TrainConfig(p=4, epochs=1, train_subset=256), d / "run", progress=False)


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


def _config_edited(d: Path) -> None:
    """Weights trained at p=4 under a config that says p=8: shapes alone cannot tell."""
    _model(d)
    obj = torch.load(d / "model.pt", weights_only=True)
    obj["config"]["p"] = 8
    torch.save(obj, d / "model.pt")


def _raw_pixels(d: Path) -> None:
    _tbn(d)
    np.save(d / "x.npy", np.random.default_rng(0).integers(0, 256, (2, 1, 8, 8)).astype(np.uint8))


def _saturating(d: Path) -> None:
    _tbn(d)
    np.save(d / "x.npy", np.full((2, 1, 8, 8), 40.5, dtype=np.float32))


def _truncated_gzip(d: Path) -> None:
    """A --data-dir whose test images stop half-way (a download cut short): IDX files of 100
    random images, made here so the case needs no MNIST copy."""
    _tbn(d)
    (d / "data").mkdir()
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, 100 * 784, np.uint8).tobytes()
    images = struct.pack(">BBBBIII", 0, 0, 0x08, 3, 100, 28, 28) + pixels
    labels = struct.pack(">BBBBI", 0, 0, 0x08, 1, 100) + rng.integers(0, 10, 100, np.uint8).tobytes()
    gz = gzip.compress(images)
    (d / "data" / "t10k-images-idx3-ubyte.gz").write_bytes(gz[: len(gz) // 2])
    (d / "data" / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels))


def _nothing(d: Path) -> None:
    pass


def _keras_model(d: Path, layer: str = "dense") -> None:
    """A small Keras model file; with ``layer="lambda"`` one that holds Python code."""
    import keras

    middle = keras.layers.Lambda(lambda x: x) if layer == "lambda" else keras.layers.Dense(4)
    keras.Sequential([keras.Input((6,)), middle, keras.layers.Dense(2)]).save(
        d / ("model.h5" if layer == "lambda" else "model.keras"))


def _tflite(d: Path, kind: str = "float") -> None:
    """A small .tflite file (``t.tflite``) of input (6,): float, or int8 as TFLite's converter makes it."""
    import keras
    import tensorflow as tf

    model = keras.Sequential([keras.Input((6,), batch_size=1), keras.layers.Dense(4, activation="relu"),
                              keras.layers.Dense(2)])
    if kind == "int8":
        from tbn.keras.tflite import to_tflite_int8

        data = to_tflite_int8(model, np.random.default_rng(0).normal(size=(8, 6)).astype(np.float32))
    else:
        data = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    (d / "t.tflite").write_bytes(data)


def _keras_and_inputs(d: Path) -> None:
    _keras_model(d)
    np.save(d / "x.npy", np.zeros((3, 5), dtype=np.float32))


def _tbn_and_inputs(d: Path) -> None:
    _tbn(d)
    np.save(d / "x.npy", np.zeros((3, 1, 8, 8), dtype=np.float32))


def _model_tbn_and_inputs(d: Path) -> None:
    _model(d)
    _tbn_and_inputs(d)


def _tiny_weights_huge_bias(d: Path) -> None:
    """A model.pt whose first layer's weights are tiny and biases huge (what a diverged run
    leaves): INT8 would need biases past 2^31 of the layer's scale."""
    model, _ = build_model(TrainConfig(p=4))
    with torch.no_grad():
        model[1].weight.mul_(1e-7)
        model[1].alpha_weight.mul_(1e-7)
        model[1].bias.fill_(1e6)
    save_model(model, TrainConfig(p=4), d / "model.pt")


def _empty_batch(d: Path) -> None:
    _tbn(d)
    np.save(d / "x.npy", np.zeros((0, 1, 8, 8), dtype=np.float32))


def _tbn_inputs_and_folder(d: Path) -> None:
    _tbn_and_inputs(d)
    (d / "dir").mkdir()


def _tbn_inputs_and_pipe(d: Path) -> None:
    _tbn_and_inputs(d)
    os.mkfifo(d / "pipe.log")


def _wrong_shape(d: Path) -> None:
    _tbn(d)
    np.save(d / "x.npy", np.zeros((2, 3, 8, 8), dtype=np.float32))


def _json_as_model(d: Path) -> None:
    (d / "metrics.json").write_text('{"test_accuracy": 0.99}\n')


def _not_npy(d: Path) -> None:
    _tbn(d)
    (d / "x.npy").write_text("1, 2, 3\n")


def _fifo_inputs(d: Path) -> None:
    _tbn(d)
    os.mkfifo(d / "x.npy")


# Peers that are not a tbn device: one that says nothing, one that babbles, one that hangs up.
def _silent() -> FaultProxy:
    return FaultProxy()


def _junk() -> FaultProxy:
    return FaultProxy(junk=True, seed=3)


def _hangs_up() -> FaultProxy:
    return FaultProxy(to_host=Faults(close_after=0))


INFER = ["infer", "--model", "m.tbn", "--input", "x.npy"]


CASES = [
    Case("compile over its own input", 5, _model, ["compile", "model.pt", "-o", "model.pt"],
         "is also the input", unchanged=("model.pt",)),
    Case("compile into a missing folder", 8, _model, ["compile", "model.pt", "-o", "nope/m.tbn"],
         "does not exist", unchanged=("model.pt",)),
    Case("compile onto a folder", 8, _model_and_folder, ["compile", "model.pt", "-o", "dir"], "is a folder",
         unchanged=("model.pt",)),
    Case("compile a run folder", 8, _run_folder, ["compile", "run"], "give the trained model in it",
         unchanged=("run/model.pt",)),
    Case("compile bytecode", 8, _tbn, ["compile", "m.tbn"], "is .tbn bytecode", unchanged=("m.tbn",)),
    Case("compile a truncated model", 8, _truncated_model, ["compile", "model.pt"], "truncated or corrupt",
         unchanged=("model.pt",)),
    Case("compare against a bytecode teacher", 8, _model_and_tbn,
         ["compare", "model.pt", "--teacher", "m.tbn"], "this needs the trained model it was compiled from",
         unchanged=("model.pt", "m.tbn")),
    Case("report a folder that is no run", 8, _run_folder, ["report", "run", "-o", "out"],
         "not a tbn train output folder with metrics.json", unchanged=("run/model.pt",), absent=("out",)),
    Case("report a forecast run (scored by RMSE, not accuracy)", 8,
         lambda d: ((d / "run").mkdir(), (d / "run" / "metrics.json").write_text(
             '{"metric": "rmse", "test_rmse": 0.3, "p": 4, "bits_per_weight": 0.7}\n')),
         ["report", "run", "-o", "out"], "a run scored by rmse (a forecast)", absent=("out",)),
    Case("report a profile that is not JSON", 8, _tbn, ["report", "--profile", "m.tbn", "-o", "out"],
         "m.tbn: not a tbn infer --profile --json file", unchanged=("m.tbn",), absent=("out",)),
    Case("report into a folder of other files", 5, lambda d: (_occupied(d), _tbn(d)),
         ["report", "--model", "m.tbn", "-o", "out"],
         "holds other files and no earlier report", unchanged=("out/notes.txt",)),
    Case("compare into a missing folder", 6, _model, ["compare", "model.pt", "--json", "nope/c.json"],
         "nope does not exist", unchanged=("model.pt",)),
    Case("compare a folder as its .tbn", 8, _model_and_folder, ["compare", "model.pt", "--tbn", "dir"],
         "dir is a folder, not a .tbn model", unchanged=("model.pt",)),
    Case("compare a FIFO as its .tbn", 7, _model_and_fifo, ["compare", "model.pt", "--tbn", "pipe.tbn"],
         "not a regular file", unchanged=("model.pt",)),
    Case("compare a missing .tbn", 8, _model, ["compare", "model.pt", "--tbn", "nope/m.tbn"],
         "no such file (expected a .tbn model)", unchanged=("model.pt",)),
    Case("inspect a FIFO", 7, _fifo, ["inspect", "pipe.tbn"], "not a regular file"),
    Case("inspect a device", 7, _nothing, ["inspect", "/dev/zero"], "not a regular file"),
    Case("inspect a folder", 8, lambda d: (d / "x.tbn").mkdir(), ["inspect", "x.tbn"], "is a folder"),
    Case("inspect a missing file", 8, _nothing, ["inspect", "missing.tbn"], "no such file"),
    Case("inspect metrics.json", 8, _json_as_model, ["inspect", "metrics.json"], "it looks like JSON text",
         unchanged=("metrics.json",)),
    Case("run a PyTorch model as bytecode", 8, _model, ["run", "model.pt", "--data", "mnist"],
         "it looks like a PyTorch file (model.pt or checkpoint.pt): compile it first",
         unchanged=("model.pt",)),
    Case("flash a PyTorch model", 8, _model, ["--board", "mps2_an500", "--model", "model.pt"],
         "compile it first", unchanged=("model.pt",), program="tbn-flash"),
    Case("a --data-dir that does not exist", 6, _tbn,
         ["run", "m.tbn", "--data", "mnist", "--data-dir", "nowhere"], "nowhere does not exist",
         unchanged=("m.tbn",)),
    Case("a --data-dir without MNIST", 6, _empty_data,
         ["run", "m.tbn", "--data", "mnist", "--data-dir", "data"],
         "not found; looked in: data", unchanged=("m.tbn",)),
    Case("a truncated MNIST download", 6, _truncated_gzip,
         ["run", "m.tbn", "--data", "mnist", "--data-dir", "data"], "truncated or corrupt",
         unchanged=("data/t10k-images-idx3-ubyte.gz",)),
    Case("run an empty batch", 4, _empty_batch, ["run", "m.tbn", "--input", "x.npy"],
         "holds no inputs", unchanged=("m.tbn", "x.npy"), fault="empty batch"),
    Case("infer an empty batch", 4, _empty_batch, [*INFER, "--board", "mps2_an500"],
         "holds no inputs", unchanged=("m.tbn", "x.npy"), fault="empty batch"),
    Case("monitor an empty batch", 4, _empty_batch,
         ["monitor", "--model", "m.tbn", "--input", "x.npy", "--port", "socket://127.0.0.1:1"],
         "holds no inputs", unchanged=("m.tbn", "x.npy"), fault="empty batch"),
    Case("run an empty batch under MicroPython", 4, _empty_batch,
         ["micropython", "run", "--target", "mpy_unix", "--model", "m.tbn", "--input", "x.npy"],
         "holds no inputs", unchanged=("m.tbn", "x.npy"), fault="empty batch"),
    Case("infer --log naming a folder", 6, _tbn_inputs_and_folder,
         [*INFER, "--board", "mps2_an500", "--log", "dir"], "dir is a folder", unchanged=("m.tbn", "x.npy")),
    Case("monitor --log naming a pipe", 6, _tbn_inputs_and_pipe,
         ["monitor", "--model", "m.tbn", "--input", "x.npy", "--port", "socket://127.0.0.1:1", "--log",
          "pipe.log"], "is not a regular file", unchanged=("m.tbn", "x.npy")),
    Case("compile over a run's checkpoint", 5, _short_run,
         ["compile", "run/model.pt", "-o", "run/checkpoint.pt"],
         "is not a .tbn model: writing a .tbn model there would destroy it",
         unchanged=("run/checkpoint.pt",), fault="output over a file of another kind"),
    Case("infer --json over a model", 5, _model_tbn_and_inputs,
         [*INFER, "--board", "mps2_an500", "--json", "model.pt"], "is not a JSON file",
         unchanged=("model.pt", "m.tbn"), fault="output over a file of another kind"),
    Case("compare --json over a .tbn", 5, _model_and_tbn, ["compare", "model.pt", "--json", "m.tbn"],
         "m.tbn exists and is not a JSON file", unchanged=("model.pt", "m.tbn"),
         fault="output over a file of another kind"),
    Case("compile a model whose biases INT8 cannot hold", 4, _tiny_weights_huge_bias,
         ["compile", "model.pt", "--activations", "int8", "--calibration", "64", "-o", "m.tbn"],
         "module '1' (node _1): 256 outputs have a bias over 2^30 steps", unchanged=("model.pt",),
         absent=("m.tbn",), fault="compile range check"),
    Case("compile over a pipe", 6, _model_and_fifo, ["compile", "model.pt", "-o", "pipe.tbn"],
         "is not a regular file", unchanged=("model.pt",)),
    Case("NaN in the input", 4, _nan_input, ["run", "m.tbn", "--input", "x.npy"], "NaN or infinity",
         unchanged=("m.tbn", "x.npy")),
    Case("compile weights under another config", 4, _config_edited, ["compile", "model.pt"],
         "its config disagrees with its weights", unchanged=("model.pt",)),
    Case("raw 0-255 pixels", 4, _raw_pixels, ["run", "m.tbn", "--input", "x.npy"],
         "tbn run: warning: the input holds whole numbers 0..255: raw 0-255 pixels?", code=0,
         unchanged=("x.npy",)),
    Case("inputs an int8 model saturates", 4, _saturating, ["run", "m.tbn", "--input", "x.npy"],
         "100% of the input values lie outside", code=0),
    Case("compile NaN weights", 4, _nan_model, ["compile", "model.pt"], "holds NaN or infinity",
         unchanged=("model.pt",)),
    Case("a training run that explodes without NaN", 4, _nothing,
         ["train", "--lr", "100", "--epochs", "1", "--subset", "1024", "--out", "run"],
         "training diverged: the loss is", absent=("run/model.pt", "run/metrics.json"), fault="divergence"),
    Case("a diverging training run", 4, _nothing,
         ["train", "--optimizer", "sgd", "--lr", "1e12", "--epochs", "1", "--subset", "1024", "--out", "run"],
         "training diverged", absent=("run/model.pt", "run/metrics.json"), fault="divergence"),
    Case("--dtype without the cuda engine", 4, _tbn,
         ["run", "m.tbn", "--data", "mnist", "--dtype", "float16"],
         "applies to the cuda engine only", unchanged=("m.tbn",)),
    Case("a negative --interval", 8, _tbn,
         ["monitor", "--port", "socket://127.0.0.1:1", "--model", "m.tbn", "--interval", "-1"],
         "expected 0 or more seconds", unchanged=("m.tbn",)),
    Case("train into a folder holding other files", 5, _occupied, ["train", "--epochs", "1", "--out", "out"],
         "is not empty", unchanged=("out/notes.txt",)),
    Case("resume a run under other options", 4, _short_run,
         ["train", "--resume", "--out", "run", "--p", "8", "--epochs", "1"], "p was 4, now 8",
         unchanged=("run/model.pt", "run/checkpoint.pt", "run/metrics.json")),
    Case("resume where no run was", 8, _nothing, ["train", "--resume", "--out", "run"],
         "no checkpoint at run/checkpoint.pt", absent=("run",)),
    Case("a teacher that is bytecode", 8, _tbn, ["train", "--teacher", "m.tbn", "--out", "run"],
         "this needs the trained model it was compiled from", unchanged=("m.tbn",), absent=("run",)),
    Case("a teacher of another task (an MNIST model for the forecast)", 8, _model,
         ["train", "--recipe", "forecast", "--teacher", "model.pt", "--out", "run"],
         "cannot read the forecast recipe's inputs of shape (1, 128)", unchanged=("model.pt",),
         absent=("run/model.pt",)),
    Case("a p that divides no layer", 8, _nothing, ["train", "--p", "3", "--out", "run"],
         "p=3 does not divide the 200704 entries of the layer '1'", absent=("run",)),
    Case("a CIFAR-10 recipe where CIFAR-10 is not", 6, lambda d: (d / "data").mkdir(),
         ["train", "--recipe", "resnet18", "--data-dir", "data", "--out", "run"],
         "CIFAR-10 not found; looked in: data, data/cifar10", absent=("run",)),
    Case("CIFAR-10 that is not the release", 8, lambda d: write_synthetic(d / "data", 10, 10),
         ["train", "--recipe", "vgg-small", "--data-dir", "data", "--out", "run"],
         "expected c58f30108f718f92721af3b95e74349a", unchanged=("data/cifar-10-python.tar.gz",),
         absent=("run",)),
    Case("the ad recipe where ToyCar is not", 6, lambda d: (d / "data").mkdir(),
         ["train", "--recipe", "ad", "--data-dir", "data", "--out", "run"],
         "ToyCar (dev_data_ToyCar.zip) not found; looked in: data, data/toycar", absent=("run",)),
    Case("ToyCar whose archive is cut short", 8, lambda d: (d / "data").mkdir() or (
         d / "data" / "dev_data_ToyCar.zip").write_bytes(b"PK\x03\x04 cut"),
         ["train", "--recipe", "ad", "--data-dir", "data", "--out", "run"],
         "not a complete zip archive", unchanged=("data/dev_data_ToyCar.zip",), absent=("run",)),
    Case("train from a --data-dir that does not exist", 6, _nothing,
         ["train", "--data-dir", "nowhere", "--out", "run"], "nowhere does not exist", absent=("run",)),
    Case("calibrate from a --data-dir that does not exist", 6, _model,
         ["compile", "model.pt", "--activations", "int8", "--data-dir", "nowhere", "-o", "m.tbn"],
         "nowhere does not exist", unchanged=("model.pt",), absent=("m.tbn",)),
    Case("compile a Keras model to INT8 without calibration inputs", 8, _keras_model,
         ["compile", "model.keras", "--activations", "int8"],
         "--calibration-data X.npy, a batch of shape (N, 6)",
         unchanged=("model.keras",), absent=("model.tbn",)),
    Case("calibrate a Keras model on inputs of another shape", 8, _keras_and_inputs,
         ["compile", "model.keras", "--activations", "int8", "--calibration-data", "x.npy"],
         "x.npy holds an array of shape (3, 5); the model takes inputs of shape (6,)",
         unchanged=("model.keras", "x.npy"), absent=("model.tbn",)),
    Case("compile a Keras file that holds code", 4, lambda d: _keras_model(d, "lambda"),
         ["compile", "model.h5"], "layer class 'Lambda' is not a built-in Keras layer",
         unchanged=("model.h5",), absent=("model.tbn",)),
    Case("compile an .h5 that is not a Keras model", 8, lambda d: (d / "model.h5").write_bytes(b"junk"),
         ["compile", "model.h5"], "not an HDF5 Keras model", unchanged=("model.h5",), absent=("model.tbn",)),
    Case("compile a .tflite that is not one", 8,
         lambda d: (d / "t.tflite").write_bytes(b"\x10\0\0\0TFL2junk"),
         ["compile", "t.tflite"], "not a TFLite flatbuffer", unchanged=("t.tflite",), absent=("t.tbn",)),
    Case("compile an int8 .tflite as if it were float", 8, lambda d: _tflite(d, "int8"),
         ["compile", "t.tflite"], "an int8 model (its activations are int8), where a float model is needed",
         unchanged=("t.tflite",), absent=("t.tbn",)),
    Case("distil from a .tflite of another input", 8, _tflite,
         ["train", "--teacher", "t.tflite", "--out", "run"],
         "reads inputs of shape (6,) (channels first), the mlp recipe's are (1, 28, 28)",
         unchanged=("t.tflite",), absent=("run",)),
    Case("flash for MLCommons' runner without naming the model it runs", 8, _tbn,
         ["--board", "mps2_an500", "--model", "m.tbn", "--protocol", "mlperf"],
         "--protocol mlperf and --mlperf-model go together", program="tbn-flash"),
    Case("flash for MLCommons' runner without a model", 8, _nothing,
         ["--board", "mps2_an500", "--protocol", "mlperf", "--mlperf-model", "ad01"],
         "the MLPerf runner protocol has no upload: give the model to build in", program="tbn-flash"),
    Case("flash in MLPerf's energy mode without its protocol", 8, _tbn,
         ["--board", "mps2_an500", "--model", "m.tbn", "--energy"],
         "--energy is MLPerf Tiny's energy mode: it goes with --protocol mlperf", program="tbn-flash"),
    Case("flash an unknown board", 8, _tbn, ["--board", "nucleo_f999", "--model", "m.tbn"],
         "unknown board 'nucleo_f999'", program="tbn-flash"),
    Case("train over an earlier run's metrics", 5, _earlier_run, ["train", "--epochs", "1", "--out", "out"],
         "already holds a training run", unchanged=("out/metrics.json",)),
]


LINK_CASES = [
    Case("a serial port that does not exist", 1, _tbn_and_inputs, [*INFER, "--port", "/dev/ttyNOPE"],
         "cannot open the serial port /dev/ttyNOPE", unchanged=("m.tbn", "x.npy")),
    Case("a TCP port nobody listens on", 1, _tbn_and_inputs, [*INFER, "--port", "socket://127.0.0.1:1"],
         "cannot open the serial port socket://127.0.0.1:1: [Errno 111] Connection refused"),
    Case("a port URL pyserial does not know", 1, _tbn_and_inputs, [*INFER, "--port", "nope://x"],
         "cannot open the serial port nope://x"),
    Case("a peer that hangs up", 1, _tbn_and_inputs, [*INFER, "--port", "{peer}", "--json", "r.json"],
         "the serial link to the device closed", unchanged=("m.tbn", "x.npy"), written=("r.json",),
         peer=_hangs_up),
    Case("a peer that never answers", 1, _tbn_and_inputs, [*INFER, "--port", "{peer}"],
         "INFO got no valid reply after 40 attempts (40 timeouts; 0 bytes received", peer=_silent),
    Case("a peer that sends junk", 1, _tbn_and_inputs, ["monitor", "--input", "x.npy", "--port", "{peer}"],
         "requests the device rejected as damaged: none); is the device running the tbn firmware?",
         peer=_junk),
    Case("monitor on a peer that hangs up", 1, _tbn_and_inputs,
         ["monitor", "--model", "m.tbn", "--input", "x.npy", "--port", "{peer}"],
         "the serial link to the device closed", peer=_hangs_up),
    Case("results over the model", 5, _tbn_and_inputs, [*INFER, "--port", "{peer}", "--json", "m.tbn"],
         "is also the input", unchanged=("m.tbn",), peer=_hangs_up),
    Case("inputs from a FIFO", 7, _fifo_inputs, [*INFER, "--port", "socket://127.0.0.1:1"],
         "x.npy is not a regular file"),
    # the shape is checked before any device is opened: the port here refuses connections
    Case("inputs of the wrong shape", 8, _wrong_shape, [*INFER, "--port", "socket://127.0.0.1:1"],
         "x.npy holds an array of shape (2, 3, 8, 8); the model takes a batch of inputs of shape (1, 8, 8)",
         unchanged=("x.npy",)),
    Case("monitor inputs of the wrong shape", 8, _wrong_shape,
         ["monitor", "--model", "m.tbn", "--input", "x.npy", "--port", "socket://127.0.0.1:1"],
         "give an array of shape (N, 1, 8, 8)"),
    Case("inputs that are not .npy", 8, _not_npy, [*INFER, "--port", "socket://127.0.0.1:1"],
         "x.npy is not a .npy array of inputs", unchanged=("x.npy",)),
    Case("no inputs at all", 8, _tbn_and_inputs, [*INFER, "--port", "socket://127.0.0.1:1", "--n", "0"],
         "argument --n: expected 1 or more, got 0"),
    Case("MicroPython: a model that is not there", 8, _nothing,
         ["micropython", "run", "--target", "mpy_unix", "--model", "missing.tbn"],
         "missing.tbn: no such file"),
    Case("MicroPython: an architecture tbn does not build", 8, _nothing,
         ["micropython", "build", "--arch", "z80"], "unknown architecture 'z80'"),
    Case("MicroPython: boot a target that is not emulated", 8, _tbn,
         ["micropython", "boot", "--target", "mpy_unix", "--model", "m.tbn"], "mpy_unix is not emulated",
         unchanged=("m.tbn",)),
    Case("MicroPython: deploy to a port nobody listens on", 1, _tbn,
         ["micropython", "deploy", "--port", "socket://127.0.0.1:1", "--model", "m.tbn"],
         "socket://127.0.0.1:1: cannot open", unchanged=("m.tbn",)),
    Case("a TCP port beyond 65535", 2, _nothing, ["--board", "mps2_an500", "--serial-port", "99999"],
         "argument --serial-port: expected a TCP port in 1..65535, got 99999", program="tbn-flash"),
    Case("a negative TCP port", 2, _nothing, ["--board", "mps2_an500", "--serial-port=-1"],
         "expected a TCP port in 1..65535, got -1", program="tbn-flash"),
]


def _everything(d: Path) -> None:
    """A model, a .tbn, inputs it takes, a folder and a plain file: a path option's neighbours."""
    _model(d)
    _tbn_and_inputs(d)
    (d / "dir").mkdir()
    (d / "file.txt").write_text("notes\n")


_NO_PORT = "socket://127.0.0.1:9"  # refused at once: each command checks its paths before it connects
# Each option that names a file or folder, given one of the wrong kind: an input file a folder,
# an output file a folder, a folder (to read or write) a file. (argv, the option, message)
_PATHS = [
    (["train", "--teacher", "dir"], "--teacher", "dir is a folder"),
    (["train", "--data-dir", "file.txt"], "--data-dir", "is not a folder"),
    (["train", "--out", "file.txt"], "--out", "not a folder for the run's outputs"),
    (["compile", "dir"], "model", "dir is a folder"),
    (["compile", "model.pt", "-o", "dir"], "--output", "dir is a folder: give a file name"),
    (["compile", "model.pt", "--activations", "int8", "--data-dir", "file.txt"], "--data-dir",
     "is not a folder"),
    (["compile", "model.pt", "--activations", "int8", "--calibration-data", "dir"], "--calibration-data",
     "--calibration-data is for Keras and TFLite models"),
    (["inspect", "dir"], "model", "dir is a folder"),
    (["run", "dir", "--input", "x.npy"], "model", "dir is a folder"),
    (["run", "m.tbn", "--input", "dir"], "--input", "dir is a folder"),
    (["run", "m.tbn", "--data", "mnist", "--data-dir", "file.txt"], "--data-dir", "is not a folder"),
    *[row for cmd in ("infer", "monitor") for row in (  # the device commands share these options
        ([cmd, "--port", _NO_PORT, "--model", "dir"], "--model", "dir is a folder"),
        ([cmd, "--port", _NO_PORT, "--model", "m.tbn", "--input", "dir"], "--input", "dir is a folder"),
        ([cmd, "--port", _NO_PORT, "--model", "m.tbn", "--data-dir", "file.txt"], "--data-dir",
         "is not a folder"),
        ([cmd, "--board", "mps2_an500", "--model", "m.tbn", "--input", "x.npy", "--log", "dir"], "--log",
         "dir is a folder: give a file name"))],
    (["infer", "--port", _NO_PORT, "--model", "m.tbn", "--input", "x.npy", "--json", "dir"], "--json",
     "dir is a folder: give a file name"),
    (["micropython", "build", "--mip", "file.txt"], "--mip", "is not a folder"),
    (["micropython", "run", "--target", "mpy_unix", "--model", "dir"], "--model", "dir is a folder"),
    (["micropython", "run", "--target", "mpy_unix", "--model", "m.tbn", "--input", "dir"], "--input",
     "dir is a folder"),
    (["micropython", "run", "--target", "mpy_unix", "--model", "m.tbn", "--data-dir", "file.txt"],
     "--data-dir", "is not a folder"),
    (["micropython", "boot", "--model", "dir"], "--model", "dir is a folder"),
    (["micropython", "boot", "--model", "m.tbn", "--file", "dir"], "--file", "dir is a folder"),
    (["micropython", "deploy", "--port", _NO_PORT, "--model", "dir"], "--model", "dir is a folder"),
    (["compare", "dir"], "model", "dir is a folder"),
    (["compare", "model.pt", "--teacher", "dir"], "--teacher", "dir is a folder"),
    (["compare", "model.pt", "--tbn", "dir"], "--tbn", "dir is a folder"),
    (["compare", "model.pt", "--data-dir", "file.txt"], "--data-dir", "is not a folder"),
    (["compare", "model.pt", "--json", "dir"], "--json", "dir is a folder: give a file name"),
    (["report", "file.txt"], "runs", "not a tbn train output folder"),
    (["report", "--model", "dir"], "--model", "dir is a folder"),
    (["report", "--compare", "dir"], "--compare", "dir is a folder"),
    (["report", "--profile", "dir"], "--profile", "dir is a folder"),
    (["report", "--model", "m.tbn", "-o", "file.txt"], "--out", "tbn report writes a folder"),
]
PATH_CASES = [Case(f"{' '.join(a[:2] if a[0] == 'micropython' else a[:1])} {opt} of the wrong kind", 8,
                   _everything, a, msg, unchanged=("model.pt", "m.tbn", "file.txt"), path=opt)
              for a, opt, msg in _PATHS]
PATH_CASES.append(Case("tbn-flash --model of the wrong kind", 8, _everything,
                       ["--board", "mps2_an500", "--model", "dir", "--dry-run"], "dir is a folder",
                       program="tbn-flash", path="--model"))


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.mark.parametrize("case", CASES + LINK_CASES + PATH_CASES, ids=lambda c: c.name)
def test_bad_input_gets_one_clear_error(case: Case, tmp_path: Path) -> None:
    case.setup(tmp_path)
    before = {f: _digest(tmp_path / f) for f in case.unchanged}
    env = {**os.environ, "TBN_OFFLINE": "1"}  # no case may download anything
    with case.peer() if case.peer else nullcontext() as peer:
        argv = [a.replace("{peer}", peer.url) if peer else a for a in case.argv]
        r = subprocess.run([sys.executable, "-m", PROGRAMS[case.program], *argv], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == case.code, out
    assert case.message in out, out
    assert "Traceback" not in out, out
    assert {f: _digest(tmp_path / f) for f in case.unchanged} == before
    assert not [f for f in case.absent if (tmp_path / f).exists()]
    assert [f for f in case.written if (tmp_path / f).is_file()] == list(case.written)


def _command(case: Case) -> str:
    return case.program if case.program != "tbn" else f"tbn {case.argv[0]}"


def coverage() -> dict[str, dict[int, int]]:
    """Cases per command and per kind: ``python tests/test_bad_input.py`` prints the table."""
    table: dict[str, dict[int, int]] = {}
    for case in CASES + LINK_CASES + PATH_CASES:
        row = table.setdefault(_command(case), {})
        row[case.kind] = row.get(case.kind, 0) + 1
    return table


def test_every_command_and_kind_has_a_case() -> None:
    from tbn.cli.main import COMMANDS, build_parser

    assert {c.kind for c in CASES + LINK_CASES} == set(KINDS) - {3}  # 3 needs a device (HIL)
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    commands = {f"tbn {name}" for name in sub.choices} | {"tbn-flash"}
    assert len(sub.choices) == len(COMMANDS)
    assert commands == set(coverage()), commands ^ set(coverage())


# Issue 40's classes of fault, and which commands must show each: those whose parser has an
# option of these dests taking a value (an input batch; a .tbn or JSON file written), or named.
FAULTS: dict[str, set[str]] = {"empty batch": {"input"},
                               "output over a file of another kind": {"output", "json"}}
FAULT_COMMANDS = {"divergence": {"tbn train"}, "compile range check": {"tbn compile"}}


def _dests(parser: argparse.ArgumentParser) -> set[str]:
    """The dests of every option of ``parser`` and its subcommands that takes a value."""
    found = set()
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for sub in a.choices.values():
                found |= _dests(sub)
        elif a.nargs != 0:
            found.add(a.dest)
    return found


def test_every_command_has_a_case_of_each_fault_class_it_can_meet() -> None:
    """A command that gains an input batch, or an output file, fails this test until it has a
    case of the matching class."""
    from tbn.cli.flash import build_parser as flash_parser
    from tbn.cli.main import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    parsers = {f"tbn {name}": p for name, p in sub.choices.items()} | {"tbn-flash": flash_parser()}
    need = {(fault, cmd) for cmd, p in parsers.items() for fault, dests in FAULTS.items()
            if _dests(p) & dests}
    need |= {(fault, cmd) for fault, cmds in FAULT_COMMANDS.items() for cmd in cmds}
    have = {(c.fault, _command(c)) for c in CASES + LINK_CASES + PATH_CASES if c.fault}
    assert need <= have, sorted(need - have)
    assert {c.fault for c in CASES if c.fault} <= set(FAULTS) | set(FAULT_COMMANDS)


# Options named as paths without type=Path (argparse's default str)
_PATH_DESTS = {"model", "output", "out", "data_dir", "calibration_data", "input", "teacher"}


def _path_options(parser: argparse.ArgumentParser, command: str) -> set[tuple[str, str]]:
    """(command, option) for every option of ``parser`` and its subcommands that takes a path;
    an option by its longest name, a positional by its name."""
    found: set[tuple[str, str]] = set()
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, sub in a.choices.items():
                found |= _path_options(sub, f"{command} {name}")
        elif a.nargs != 0 and (a.type is Path or a.dest in _PATH_DESTS):
            found.add((command, max(a.option_strings, key=len) if a.option_strings else a.dest))
    return found


def test_every_path_option_has_a_case_of_the_wrong_kind() -> None:
    """A new path option fails this test until PATH_CASES gives it a folder for a file (or the
    reverse) and its message."""
    from tbn.cli.flash import build_parser as flash_parser
    from tbn.cli.main import build_parser

    options = _path_options(build_parser(), "tbn") | _path_options(flash_parser(), "tbn-flash")
    covered = {(case.program if case.program != "tbn" else
                "tbn " + " ".join(case.argv[:2] if case.argv[0] == "micropython" else case.argv[:1]),
                case.path) for case in PATH_CASES}
    assert options == covered, f"no case: {sorted(options - covered)}; no option: {sorted(covered - options)}"


if __name__ == "__main__":
    counts = coverage()
    print(f"{'command':<16}" + "".join(f"{k:>4}" for k in KINDS) + "  all")
    for cmd, row in sorted(counts.items()):
        print(f"{cmd:<16}" + "".join(f"{row.get(k, 0):>4}" for k in KINDS) + f"{sum(row.values()):>5}")
    total = {k: sum(r.get(k, 0) for r in counts.values()) for k in KINDS}
    print(f"{'all':<16}" + "".join(f"{total[k]:>4}" for k in KINDS) + f"{sum(total.values()):>5}")
    for k, what in KINDS.items():
        print(f"  {k}: {what}")
