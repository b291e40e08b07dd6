"""tbn.keras: the Keras layers' math against tbn.nn's, tile_model's policy, and compiling Keras
models (docs/keras.md). Needs the tf extra; CI installs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras", reason="the tf extra is not installed (pip install 'tbn[tf]')")

from tbn import compile_model  # noqa: E402
from tbn import tile_model as torch_tile_model  # noqa: E402
from tbn.errors import UsageError  # noqa: E402
from tbn.keras import TiledConv2D, TiledDense, channels_first, tile_model, to_torch  # noqa: E402
from tbn.nn import TiledConv2d, TiledLinear  # noqa: E402
from tbn.runtime import Interpreter  # noqa: E402

OPTIONS = [{"alpha": "per_tile", "alpha_source": "separate"}, {"alpha": "single", "alpha_source": "weight"},
           {"alpha": "per_tile", "alpha_source": "weight", "ste": "identity"}]


def _pair(kind: str, options: dict, seed: int) -> tuple[keras.layers.Layer, torch.nn.Module]:
    """A Keras tiled layer with random latents and the PyTorch one holding the same values."""
    keras.utils.set_random_seed(seed)
    if kind == "dense":
        lay = TiledDense(12, p=4, **options)
        lay.build((None, 20))
        ref = TiledLinear(20, 12, p=4, **options)
        order = (1, 0)
    else:
        lay = TiledConv2D(8, 3, p=4, groups=2, **options)
        lay.build((None, 6, 6, 4))
        ref = TiledConv2d(4, 8, 3, p=4, groups=2, **options)
        order = (3, 2, 0, 1)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(np.asarray(lay.kernel).transpose(order).copy()))
        if lay.alpha_kernel is not None:
            ref.alpha_weight.copy_(torch.from_numpy(np.asarray(lay.alpha_kernel).transpose(order).copy()))
        ref.bias.copy_(torch.from_numpy(np.asarray(lay.bias)))
    return lay, ref


@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(o.values()))
def test_same_latents_same_effective_weights_bit_for_bit(kind: str, options: dict) -> None:
    order = (1, 0) if kind == "dense" else (3, 2, 0, 1)
    for seed in range(3):
        lay, ref = _pair(kind, options, seed)
        got = np.asarray(lay.tiled_kernel()).transpose(order)
        assert np.array_equal(got.view(np.uint32), ref.tiled_weight().detach().numpy().view(np.uint32))
        alphas = ref.alphas().detach().numpy()
        assert np.array_equal(np.asarray(lay.alphas()).view(np.uint32), alphas.view(np.uint32))
        assert np.array_equal(np.asarray(lay.tile()), ref.tile().numpy())


@pytest.mark.parametrize("kind", ["dense", "conv"])
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(o.values()))
def test_gradients_match_pytorch(kind: str, options: dict) -> None:
    """The straight-through estimator and the alphas' gradient are tbn.nn's."""
    import tensorflow as tf

    lay, ref = _pair(kind, options, 7)
    shape = (3, 20) if kind == "dense" else (3, 6, 6, 4)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(lay(x) ** 2)
    grads = dict(zip([v.path.split("/")[-1] for v in lay.trainable_weights],
                     tape.gradient(loss, lay.trainable_weights), strict=True))
    xt = torch.from_numpy(x if kind == "dense" else x.transpose(0, 3, 1, 2).copy())
    (ref(xt) ** 2).sum().backward()
    order = (1, 0) if kind == "dense" else (2, 3, 1, 0)
    for name, param in (("kernel", ref.weight), ("alpha_kernel", ref.alpha_weight), ("bias", ref.bias)):
        if param is None:
            continue
        want = param.grad.numpy()
        want = want.transpose(order) if want.ndim > 1 else want
        np.testing.assert_allclose(np.asarray(grads[name]), want, rtol=1e-4, atol=1e-5)


def _keras_mlp() -> keras.Model:
    return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(256),
                             keras.layers.BatchNormalization(), keras.layers.ReLU(), keras.layers.Dense(256),
                             keras.layers.BatchNormalization(), keras.layers.ReLU(), keras.layers.Dense(10)])


def test_tile_model_has_pytorchs_policy_and_report() -> None:
    from tbn.train.models import mlp

    tiled, report = tile_model(_keras_mlp(), p=4)
    ref = torch_tile_model(mlp(), p=4)
    assert [(r.shape, r.p, r.bits, r.bytes) for r in report.layers] == \
        [(r.shape, r.p, r.bits, r.bytes) for r in ref.layers]
    assert [type(lay).__name__ for lay in tiled.layers if "dense" in lay.name] == \
        ["TiledDense", "TiledDense", "TiledDense"]
    model = _keras_mlp()
    first = next(lay.name for lay in model.layers if isinstance(lay, keras.layers.Dense))
    kept, report = tile_model(model, p=4, keep_dense=[first])
    assert type(kept.get_layer(first)).__name__ == "Dense" and report.layers[0].p is None


def _keras_cnn() -> keras.Model:
    """Functional: conv-BN-ReLU, a residual Add, pooling of both kinds, Flatten into a tiled Dense."""
    x = inp = keras.Input((12, 12, 2))
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(keras.layers.Conv2D(8, 3, padding="same")(x)))
    x = keras.layers.MaxPooling2D(2)(x)
    y = keras.layers.Conv2D(8, 3, padding="same", use_bias=False)(x)
    x = keras.layers.ReLU(max_value=6.0)(keras.layers.Add()([x, keras.layers.BatchNormalization()(y)]))
    x = keras.layers.AveragePooling2D(2)(x)
    x = keras.layers.Dense(10, activation="relu")(keras.layers.Dropout(0.1)(keras.layers.Flatten()(x)))
    return keras.Model(inp, keras.layers.Dense(6)(x))


def _randomize_bn(model: keras.Model) -> None:
    rng = np.random.default_rng(1)
    for lay in model.layers:
        if isinstance(lay, keras.layers.BatchNormalization):
            c = lay.gamma.shape[0]
            lay.set_weights([rng.normal(size=c), rng.normal(size=c) * 0.3, rng.normal(size=c) * 0.5,
                             rng.uniform(0.5, 1.5, size=c)])


@pytest.mark.parametrize("build", [_keras_mlp, _keras_cnn], ids=["sequential", "functional"])
def test_compiled_keras_model_matches_keras(build: object) -> None:
    keras.utils.set_random_seed(0)
    model, _ = tile_model(build(), p=2, min_params=0)  # type: ignore[operator]
    _randomize_bn(model)
    shape = model.inputs[0].shape[1:]
    x = np.random.default_rng(2).random((16, *shape)).astype(np.float32)
    want = np.asarray(model(x, training=False))
    data = compile_model(model, x[:1], params="wide")
    got = Interpreter(data).run(x.transpose(0, 3, 1, 2))
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()
    q = Interpreter(compile_model(model, x[:1], activations="int8", calibration=x)).run_float(
        x.transpose(0, 3, 1, 2))
    assert np.abs(q - want).max() <= 0.1 * np.abs(want).max()


def _keras_sequence_net() -> keras.Model:
    """A 1-D net and a depthwise 2-D one, the layers tile_model now tiles too."""
    x = inp = keras.Input((12, 3))
    x = keras.layers.Conv1D(8, 3, padding="same", activation="relu")(x)
    x = keras.layers.Conv1D(8, 3, strides=2)(x)
    return keras.Model(inp, keras.layers.Dense(4)(keras.layers.GlobalAveragePooling1D()(x)))


def _keras_depthwise_net() -> keras.Model:
    return keras.Sequential([keras.Input((6, 6, 4)), keras.layers.DepthwiseConv2D(3, depth_multiplier=2),
                             keras.layers.Conv2D(4, 1), keras.layers.Flatten(), keras.layers.Dense(4)])


@pytest.mark.parametrize("build", [_keras_sequence_net, _keras_depthwise_net], ids=["conv1d", "depthwise"])
def test_conv1d_and_depthwise_layers_tile_and_compile(build: object) -> None:
    keras.utils.set_random_seed(0)
    model, report = tile_model(build(), p=2, min_params=0)  # type: ignore[operator]
    kinds = {type(lay).__name__ for lay in model.layers}
    assert "Conv1D" not in kinds and "DepthwiseConv2D" not in kinds
    assert any(r.kind in ("TiledConv1D", "TiledConv2D") for r in report.layers)
    shape = model.inputs[0].shape[1:]
    x = np.random.default_rng(2).random((16, *shape)).astype(np.float32)
    want = channels_first(np.asarray(model(x, training=False)))
    got = Interpreter(compile_model(model, x[:1], params="wide")).run(channels_first(x)).reshape(want.shape)
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()
    restored = keras.Sequential.from_config(model.get_config()) if isinstance(model, keras.Sequential) \
        else keras.Model.from_config(model.get_config())
    assert [type(lay).__name__ for lay in restored.layers] == [type(lay).__name__ for lay in model.layers]


def _keras_separable_net(rank: int) -> keras.Model:
    """SeparableConv (depth multiplier 2, then strided) between a stem and a classifier."""
    sep = keras.layers.SeparableConv2D if rank == 2 else keras.layers.SeparableConv1D
    pool = keras.layers.GlobalAveragePooling2D if rank == 2 else keras.layers.GlobalAveragePooling1D
    x = inp = keras.Input((8, 8, 4) if rank == 2 else (12, 4))
    x = sep(8, 3, padding="same", depth_multiplier=2, activation="relu", name="sep")(x)
    x = sep(8, 3, strides=2, name="sep2")(x)
    return keras.Model(inp, keras.layers.Dense(4)(pool()(x)))


@pytest.mark.parametrize("rank", [1, 2], ids=["1-D", "2-D"])
def test_a_separable_convs_two_kernels_tile_on_their_own(rank: int) -> None:
    """tile_model splits each SeparableConv into its depthwise and pointwise convolutions (a nested
    Sequential, the same arithmetic) and tiles each kernel, or keeps one by its name; the file
    computes what the Keras model does."""
    keras.utils.set_random_seed(0)
    source = _keras_separable_net(rank)
    x = np.random.default_rng(2).random((8, *source.inputs[0].shape[1:])).astype(np.float32)
    for keep, want_p in (((), {"sep_depthwise": 2, "sep_pointwise": 2}),
                         (("sep_depthwise",), {"sep_depthwise": None, "sep_pointwise": 2})):
        model, report = tile_model(source, p=2, min_params=0, keep_dense=keep)
        got_p = {r.name: r.p for r in report.layers}
        assert {k: got_p[k] for k in want_p} == want_p and got_p["sep2_depthwise"] == 2
        want = channels_first(np.asarray(model(x, training=False)))
        got = Interpreter(compile_model(model, x[:1], params="wide")).run(channels_first(x))
        # a kept (dense) kernel is stored as int8 rows: about 1% off the float kernel
        assert np.abs(got.reshape(want.shape) - want).max() <= (2e-2 if keep else 1e-5) * np.abs(want).max()
    restored = keras.Model.from_config(model.get_config())
    kind = "TiledConv2D" if rank == 2 else "TiledConv1D"
    assert [type(lay).__name__ for lay in restored.get_layer("sep2").layers] == [kind, kind]


def test_multi_head_attentions_projections_tile() -> None:
    """tile_model turns a MultiHeadAttention into a SplitAttention (the same outputs when every
    projection is kept) whose query, key, value and output projections the policy tiles; the file
    computes what the Keras model does, and the config rebuilds it."""
    from tbn.keras import SplitAttention

    keras.utils.set_random_seed(0)
    x = inp = keras.Input((10, 32))
    x = keras.layers.Add()([x, keras.layers.MultiHeadAttention(4, 8, value_dim=6, name="mha")(x, x)])
    source = keras.Model(inp, keras.layers.Dense(4, name="head")(keras.layers.GlobalAveragePooling1D()(x)))
    x = np.random.default_rng(2).random((8, 10, 32)).astype(np.float32)
    kept, report = tile_model(source, p=2, min_params=0, keep_dense=["mha_*"])
    assert [r.p for r in report.layers if r.name.startswith("mha_")] == [None] * 4
    np.testing.assert_allclose(np.asarray(kept.get_layer("mha")(x, x)),
                               np.asarray(source.get_layer("mha")(x, x)), atol=1e-5)
    model, report = tile_model(source, p=2, min_params=0, per_layer={"mha_value": 4})
    assert {r.name: r.p for r in report.layers} == {"mha_query": 2, "mha_key": 2, "mha_value": 4,
                                                    "mha_output": 2, "head": 2}
    attention = model.get_layer("mha")
    assert isinstance(attention, SplitAttention) and attention.value_dense.p == 4
    want = channels_first(np.asarray(model(x, training=False)))
    got = Interpreter(compile_model(model, x[:1], params="wide")).run(channels_first(x))
    assert np.abs(got.reshape(want.shape) - want).max() <= 1e-5 * np.abs(want).max()
    restored = keras.Model.from_config(model.get_config())
    restored.set_weights(model.get_weights())
    np.testing.assert_allclose(np.asarray(restored(x)), np.asarray(model(x)), atol=1e-6)


def test_unsupported_layers_are_named() -> None:
    model = keras.Sequential([keras.Input((8, 3)), keras.layers.LSTM(4), keras.layers.Dense(2)])
    with pytest.raises(UsageError, match=r"'lstm.*' \(LSTM\) has no tbn equivalent"):
        to_torch(model)
    tiled, _ = tile_model(keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten(),
                                            keras.layers.Dense(6)]), p=4, min_params=0)
    with pytest.raises(UsageError, match="does not divide its 6 units"):
        to_torch(tiled)


def test_without_tensorflow_the_message_names_the_extra() -> None:
    code = ("import sys; sys.modules['keras'] = None\n"
            "try:\n    import tbn.keras\nexcept ImportError as e:\n    print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "MissingExtraError" in out and "pip install 'tbn[tf]'" in out
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, tbn, tbn.compiler, tbn.format; print(*sys.modules)"],
        capture_output=True, text=True, check=True).stdout.split()
    assert not [m for m in loaded if m.split(".")[0] in ("tensorflow", "keras")]  # lazily, as promised


def test_the_example_trains_compiles_and_runs_on_the_emulated_board(shared_mnist: Path) -> None:
    """examples/keras_mnist.py end to end: Keras training, tbn.compile_model, the firmware on
    QEMU's mps2-an500, the board's outputs equal to the reference."""
    import shutil

    if shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("QEMU or the Arm toolchain is missing: make deps installs them")
    example = Path(__file__).resolve().parents[1] / "examples" / "keras_mnist.py"
    out = subprocess.run([sys.executable, str(example), "--epochs", "1", "--subset", "2000", "--n", "2",
                          "--data-dir", str(shared_mnist)], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "mps2_an500: 2/2 outputs equal to the reference" in out.stdout
