"""MLPerf Tiny's published reference models (the pinned mlcommons/tiny copy): each Keras file
loads, converts exactly, and compiles to F32 equal to the framework and to INT8 within a
quantisation step per op. Needs the tf extra; skipped where the pinned copy is absent."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras", reason="the tf extra is not installed (pip install 'tbn[tf]')")

from tbn import compile_model  # noqa: E402
from tbn.compiler.weights import with_stored_weights  # noqa: E402
from tbn.errors import UsageError  # noqa: E402
from tbn.format import read  # noqa: E402
from tbn.keras import channels_first, load_model, to_torch  # noqa: E402
from tbn.mlperf import TASKS, reference_file  # noqa: E402
from tbn.runtime import Interpreter  # noqa: E402
from tbn.runtime.steps import int8_op_steps  # noqa: E402
from tbn.third_party import SourceNotFoundError  # noqa: E402


def _reference(task: str) -> Path:
    try:
        return reference_file(task)
    except SourceNotFoundError as e:
        pytest.skip(str(e))


@pytest.mark.parametrize("task", [t for t, spec in TASKS.items() if spec.keras])
def test_reference_model_loads_converts_and_compiles(task: str) -> None:
    model = load_model(_reference(task))
    x = np.random.default_rng(0).normal(size=(4, *model.inputs[0].shape[1:])).astype(np.float32)
    want = np.asarray(model(x, training=False))
    graph = to_torch(model)
    xt = torch.from_numpy(channels_first(x))
    with torch.no_grad():
        got = graph(xt).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())  # conversion exact

    f32 = read(compile_model(model, x[:1], params="wide"))
    with torch.no_grad():
        stored = with_stored_weights(graph)(xt).numpy()  # its dense layers' weights as the file holds them
    np.testing.assert_allclose(Interpreter(f32).run(xt.numpy()).reshape(stored.shape), stored, rtol=1e-5,
                               atol=1e-5 * np.abs(stored).max())
    int8 = read(compile_model(model, x[:1], activations="int8", calibration=x, params="wide"))
    assert max(int8_op_steps(f32, int8, xt.numpy())) <= 1


def test_a_tensorflow_2_depthwise_config_loads(tmp_path: Path) -> None:
    """TensorFlow 2.x wrote ``groups`` into DepthwiseConv2D's config; Keras 3 refuses the key."""
    import h5py

    model = keras.Sequential([keras.Input((6, 6, 2)), keras.layers.DepthwiseConv2D(3), keras.layers.Flatten(),
                              keras.layers.Dense(2)])
    path = tmp_path / "tf2.h5"
    model.save(path)
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "DepthwiseConv2D":
                layer["config"]["groups"] = 1
        f.attrs["model_config"] = json.dumps(config)
    with pytest.raises((TypeError, ValueError)):
        keras.models.load_model(path, compile=False)
    x = np.ones((1, 6, 6, 2), np.float32)
    np.testing.assert_allclose(np.asarray(load_model(path)(x)), np.asarray(model(x)), rtol=1e-6)


def test_a_model_file_runs_no_code(tmp_path: Path) -> None:
    """A Lambda layer is marshalled Python: tbn refuses the file before Keras reads it."""
    marker = tmp_path / "ran"
    where = str(marker)  # the lambda's closure is saved with it: a string
    model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(
        lambda x: (open(where, "w").close(), x)[1]), keras.layers.Dense(2)])
    path = tmp_path / "lambda.h5"
    model.save(path)
    marker.unlink()
    with pytest.raises(UsageError, match="layer class 'Lambda' is not a built-in Keras layer"):
        load_model(path)
    assert not marker.exists()


@pytest.mark.parametrize(("name", "content", "message"), [
    ("model.h5", b"not hdf5", "not an HDF5 Keras model"),
    ("model.txt", b"", "a Keras model is a .keras or .h5 file"),
    ("missing.h5", None, "no such file"),
])
def test_bad_model_files_are_named(tmp_path: Path, name: str, content: bytes | None, message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UsageError, match=message):
        load_model(path)


def test_unknown_tasks_and_files_are_named() -> None:
    with pytest.raises(UsageError, match="unknown MLPerf Tiny task 'kws99'"):
        reference_file("kws99")
    with pytest.raises(UsageError, match="publishes no keras model for kws01"):
        reference_file("kws01", "keras")
