"""tbn.tflite: a .tflite file as the PyTorch graph tbn compiles, against TensorFlow Lite's own
interpreter (its reference kernels, no delegate), and the published MLPerf Tiny files. Needs
the tf extra; the MLPerf cases skip where the pinned copy is absent."""

from __future__ import annotations

import functools
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras", reason="the tf extra is not installed (pip install 'tbn[tf]')")

from tbn import compile_model  # noqa: E402
from tbn.compiler.weights import with_stored_weights  # noqa: E402
from tbn.errors import UsageError  # noqa: E402
from tbn.format import read  # noqa: E402
from tbn.layout import channels_first  # noqa: E402
from tbn.mlperf import reference_file  # noqa: E402
from tbn.runtime import Interpreter  # noqa: E402
from tbn.runtime.steps import int8_op_steps  # noqa: E402
from tbn.tflite import load, read_tflite  # noqa: E402
from tbn.third_party import SourceNotFoundError  # noqa: E402

L = keras.layers


def float_tflite(model: keras.Model) -> bytes:
    """``model`` as TFLite's converter writes a float model."""
    import tensorflow as tf

    return bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())


def tflite_run(path: Path, x: np.ndarray) -> np.ndarray:
    """TFLite's reference kernels (no XNNPACK delegate) on a channels-last float batch, one
    sample at a time (int8 files: quantised in, dequantised out with the file's parameters)."""
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        it = tf.lite.Interpreter(model_path=str(path), experimental_op_resolver_type=(
            tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    it.allocate_tensors()
    di, do = it.get_input_details()[0], it.get_output_details()[0]
    outs = []
    for xi in x:
        v = xi[None]
        if di["dtype"] == np.int8:
            s, z = di["quantization"]
            v = np.clip(np.round(v / s) + z, -128, 127).astype(np.int8)
        it.set_tensor(di["index"], v)
        it.invoke()
        o = it.get_tensor(do["index"]).astype(np.float32)
        if do["dtype"] == np.int8:
            s, z = do["quantization"]
            o = (o - z) * s
        outs.append(o.reshape(-1))
    return np.stack(outs)


def _concat() -> keras.Model:
    x = keras.Input((8,))
    return keras.Model(x, L.Concatenate()([L.Dense(3)(x), L.Dense(2)(x)]))


def _mlp() -> keras.Model:
    keras.utils.set_random_seed(1)
    return keras.Sequential([keras.Input((20,)), L.Dense(16, activation="relu"),
                             L.Dense(8, activation="sigmoid"),
                             L.Dense(3, activation="softmax")])


def test_a_float_model_converts_exactly(tmp_path: Path) -> None:
    path = tmp_path / "mlp.tflite"
    path.write_bytes(float_tflite(_mlp()))
    x = np.random.default_rng(0).normal(size=(5, 20)).astype(np.float32)
    graph = load(path)
    assert graph.meta["tflite"]["dequantised"] is False
    with torch.no_grad():
        got = graph(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, tflite_run(path, x), rtol=1e-5, atol=1e-6)


def test_an_operator_tbn_does_not_convert_is_named(tmp_path: Path) -> None:
    path = tmp_path / "net.tflite"
    path.write_bytes(float_tflite(_concat()))
    with pytest.raises(UsageError, match=r"operator \d+ \(CONCATENATION\): not an operator tbn converts"):
        load(path)


def test_a_float_convnet_converts_exactly_and_compiles(tmp_path: Path) -> None:
    keras.utils.set_random_seed(0)
    x = keras.Input((12, 10, 3), batch_size=1)  # a fixed batch, as the published files have
    a = L.Conv2D(8, 3, strides=2, padding="same", activation="relu6")(x)
    b = L.DepthwiseConv2D(3, padding="same", depth_multiplier=2, activation="relu")(a)
    c = L.Add()([a, L.Conv2D(8, 1)(b)])
    d = L.MaxPooling2D(2, padding="same")(L.ZeroPadding2D(((1, 0), (0, 1)))(c))
    e = L.Dense(4, activation="softmax")(L.Dense(6, activation="tanh")(L.Flatten()(L.AveragePooling2D(1)(d))))
    f = L.GlobalAveragePooling2D()(L.Conv2D(5, 2, padding="valid")(d))
    path = tmp_path / "net.tflite"
    path.write_bytes(float_tflite(keras.Model(x, L.Add()([e, L.Dense(4)(f)]))))
    names = {op.name for op in read_tflite(path).operators}
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MAX_POOL_2D", "PAD", "RESHAPE", "FULLY_CONNECTED",
            "MEAN", "SOFTMAX", "TANH"} <= names, names
    xs = np.random.default_rng(0).normal(size=(6, 12, 10, 3)).astype(np.float32)
    graph = load(path)
    with torch.no_grad():
        got = graph(torch.from_numpy(channels_first(xs))).numpy()
    want = tflite_run(path, xs)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    f32 = read(compile_model(graph, torch.from_numpy(channels_first(xs[:1])), params="wide"))
    with torch.no_grad():  # the dense layers' weights as the file holds them (int8 per output row)
        stored = with_stored_weights(graph)(torch.from_numpy(channels_first(xs))).numpy()
    run = Interpreter(f32).run(channels_first(xs)).reshape(want.shape)
    np.testing.assert_allclose(run, stored, rtol=1e-5, atol=1e-5 * np.abs(stored).max())


def _published(task: str, kind: str) -> Path:
    try:
        return reference_file(task, kind)
    except SourceNotFoundError as e:
        pytest.skip(str(e))


def _hybrid(graph: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """TFLite's hybrid ops in the graph, for the comparison: an op of float inputs and int8
    weights quantises its input per sample, symmetrically, at run time (reference kernels)."""
    def quantise(_: torch.nn.Module, args: tuple) -> tuple:
        s = args[0].abs().amax(dim=tuple(range(1, args[0].ndim)), keepdim=True) / 127
        return (torch.round(args[0] / s) * s,)
    for i in graph.meta["tflite"]["hybrid_ops"]:
        name = next(n for n, _ in graph.named_children() if n.startswith(f"op{i}_"))
        graph.get_submodule(name).register_forward_pre_hook(quantise)
    return graph


def test_kws01_float_model_equals_tflite_and_compiles() -> None:
    """The published kws01 DS-CNN (its '.float32' file holds int8 weights in the 1x1 and first
    convs: hybrid ops). With TFLite's run-time quantisation of those ops' inputs emulated, the
    graph equals TFLite's reference kernels; without, it is the float twin tbn compiles."""
    path = _published("kws01", "float_tflite")
    graph = load(path)
    meta = graph.meta["tflite"]
    assert meta["input_shape"] == (1, 49, 10, 1) and len(meta["hybrid_ops"]) == 5
    xs = np.random.default_rng(0).normal(size=(4, 49, 10, 1)).astype(np.float32)
    want = tflite_run(path, xs)
    with torch.no_grad():
        twin = graph(torch.from_numpy(channels_first(xs))).numpy()
        exact = _hybrid(load(path))(torch.from_numpy(channels_first(xs))).numpy()
    np.testing.assert_allclose(exact, want, rtol=1e-5, atol=1e-5)
    assert (twin.argmax(1) == want.argmax(1)).all()
    x = torch.from_numpy(channels_first(xs))
    f32 = read(compile_model(graph, x[:1], params="wide"))
    with torch.no_grad():
        stored = with_stored_weights(graph)(x).numpy()
    np.testing.assert_allclose(Interpreter(f32).run(x.numpy()).reshape(twin.shape), stored, rtol=1e-5,
                               atol=1e-5 * np.abs(stored).max())
    int8 = read(compile_model(graph, x[:1], activations="int8", calibration=x, params="wide"))
    assert max(int8_op_steps(f32, int8, x.numpy())) <= 1


def _tflite_tensors(path: Path, q: np.ndarray) -> tuple[dict[int, np.ndarray], object]:
    """Every tensor of an int8 file after TFLite's reference kernels ran the int8 input ``q``,
    dequantised with its own parameters."""
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        it = tf.lite.Interpreter(model_path=str(path), experimental_preserve_all_tensors=True,
                                 experimental_op_resolver_type=(
                                     tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], q.astype(np.int8))
    it.invoke()
    out = {}
    for d in it.get_tensor_details():
        if d["dtype"] == np.int8 and d["quantization"][0]:
            s, z = d["quantization"]
            out[d["index"]] = (it.get_tensor(d["index"]).astype(np.float32) - z) * s
    return out, it


@pytest.mark.parametrize("task", ["ic02", "kws01"])
@pytest.mark.filterwarnings("ignore::tbn.runtime.interpreter.InputWarning")  # ic02 reads raw 0-255 pixels
def test_a_published_int8_model_loads_as_its_float_twin(task: str) -> None:
    """Each weighted op of the twin, fed TFLite's own int8 input to that op, gives TFLite's int8
    output to within one of its quantisation steps: the weights, biases, padding and fused
    activations are the file's (only the int8 rounding of the activations is not in the twin)."""
    from tbn.tflite import read_tflite

    path = _published(task, "int8")
    with pytest.raises(UsageError, match=r"an int8 model .* dequantise=True"):
        load(path)
    graph = load(path, dequantise=True)
    meta = graph.meta["tflite"]
    assert meta["dequantised"] and meta["input_quantization"] and meta["output_quantization"]
    model = read_tflite(path)
    q = np.random.default_rng(0).integers(-128, 128, size=meta["input_shape"])
    values, _ = _tflite_tensors(path, q)
    modules = dict(graph.named_children())
    checked = 0
    for op in model.operators:
        if op.name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            continue
        x, out = values[op.inputs[0]], model.tensors[op.outputs[0]]
        chain = [m for n, m in modules.items() if n.startswith(f"op{op.index}_")]  # pad, op, activation
        h = torch.from_numpy(channels_first(x) if x.ndim == 4 else x.reshape(1, -1))
        with torch.no_grad():
            for m in chain:
                h = m(h)
        want = values[op.outputs[0]]
        got = h.numpy() if want.ndim < 4 else np.moveaxis(h.numpy(), 1, -1)
        step, zero = float(out.scale[0]), int(out.zero_point[0])
        got = np.clip(got, (-128 - zero) * step, (127 - zero) * step)  # int8 saturates
        assert np.abs(got.reshape(want.shape) - want).max() <= 1.01 * step, op
        checked += 1
    assert checked >= 5
    x = torch.from_numpy(channels_first(((q - meta["input_quantization"][1]) * meta["input_quantization"][0])
                                        .astype(np.float32)))
    int8 = read(compile_model(graph, x, activations="int8", calibration=x))
    assert Interpreter(int8).run(x.numpy()).shape[0] == 1


def test_bad_files_are_named_errors(tmp_path: Path) -> None:
    good = float_tflite(_mlp())
    cases = {"junk.tflite": b"not a flatbuffer at all",
             "short.tflite": good[:7],
             "truncated.tflite": good[:len(good) // 3],
             "wrongid.tflite": good[:4] + b"XXXX" + good[8:]}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(UsageError, match=f"{name}: (not a TFLite flatbuffer|a corrupt TFLite)"):
            load(tmp_path / name)
    with pytest.raises(UsageError, match="no such file"):
        load(tmp_path / "missing.tflite")
    (tmp_path / "dir.tflite").mkdir()
    with pytest.raises(UsageError, match="is a folder"):
        load(tmp_path / "dir.tflite")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(8, 10**6), st.integers(0, 255)), min_size=1, max_size=16))
def test_a_damaged_file_is_a_named_error_or_a_model(damage: list[tuple[int, int]]) -> None:
    """Bytes of a real file changed anywhere past its identifier: a UsageError or a graph, never
    another exception."""
    data = bytearray(_mlp_tflite())
    for where, value in damage:
        data[where % len(data)] = value
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.tflite"
        path.write_bytes(bytes(data))
        try:
            load(path, dequantise=True)
        except UsageError:
            pass


@functools.cache
def _mlp_tflite() -> bytes:
    return float_tflite(_mlp())


def test_a_final_softmax_is_dropped_for_distillation(tmp_path: Path) -> None:
    from tbn.foreign import load_foreign, logits

    path = tmp_path / "mlp.tflite"
    path.write_bytes(float_tflite(_mlp()))
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(3, 20)).astype(np.float32))
    graph = load_foreign(path)
    with torch.no_grad():
        probs = graph(x)
        z = logits(graph)(x)
    torch.testing.assert_close(torch.softmax(z, 1), probs)
    assert graph.meta["input_shape"] == (20,)


def test_a_tflite_teacher_distils(tmp_path: Path) -> None:
    """``tbn train --teacher model.tflite``: a float TFLite classifier of the recipe's input (a
    28x28x1 image) is the teacher, its softmax dropped. This one always says "0", and a student
    distilled from it alone learns to say "0": the accuracy of always answering 0."""
    from tbn.train import TrainConfig, train

    dense = L.Dense(10, activation="softmax")
    teacher = keras.Sequential([keras.Input((28, 28, 1), batch_size=1), L.Flatten(), dense])
    dense.set_weights([np.zeros((784, 10), np.float32), np.eye(10, dtype=np.float32)[0] * 10])
    path = tmp_path / "teacher.tflite"
    path.write_bytes(float_tflite(teacher))
    config = TrainConfig(p=4, epochs=1, train_subset=2048, teacher=str(path), distill_weight=1.0)
    metrics = train(config, tmp_path / "run", progress=False)
    assert abs(metrics["test_accuracy"] - 0.098) < 0.01  # 980 zeros in MNIST's 10,000 test images
