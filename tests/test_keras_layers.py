"""Every Keras layer kind tbn.keras converts (tbn.keras.converters.CONVERTERS), one small model
each: the PyTorch graph equals Keras, the compiled file equals the (tiled) graph in F32 and
stays within a quantisation step of it in INT8. Needs the tf extra; CI installs it."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import pytest
import torch

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras", reason="the tf extra is not installed (pip install 'tbn[tf]')")

from tbn import compile_model, tile_model  # noqa: E402
from tbn.compiler.weights import with_stored_weights  # noqa: E402
from tbn.errors import UsageError  # noqa: E402
from tbn.format import Op, read  # noqa: E402
from tbn.keras import channels_first, to_torch  # noqa: E402
from tbn.keras.converters import ACTIVATIONS, CONVERTERS, SUPPORTED  # noqa: E402
from tbn.runtime import Interpreter  # noqa: E402
from tbn.runtime.steps import int8_op_steps  # noqa: E402

L = keras.layers


def _one(shape: tuple[int, ...], *layers: object) -> Callable[[], keras.Model]:
    return lambda: keras.Sequential([keras.Input(shape), *layers])


# layer kind -> a model around it (each kind of CONVERTERS appears; padding='same' with
# stride 2 on an even size pads one side only, as MLPerf Tiny's ResNet-8 does)
MODELS: dict[str, Callable[[], keras.Model]] = {
    "Dense": _one((6,), L.Dense(5, activation="tanh")),
    "Conv1D causal": _one((12, 3), L.Conv1D(4, 3, padding="causal", dilation_rate=2)),
    "Conv1D same stride 2": _one((12, 3), L.Conv1D(4, 3, strides=2, padding="same")),
    "Conv2D same stride 2": _one((8, 8, 3), L.Conv2D(4, 3, strides=2, padding="same")),
    "Conv2D same 2x2": _one((7, 7, 2), L.Conv2D(4, 2, padding="same")),
    "DepthwiseConv2D": _one((8, 8, 3), L.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2)),
    "DepthwiseConv1D": _one((10, 3), L.DepthwiseConv1D(3, padding="same")),
    "SeparableConv2D": _one((6, 6, 3), L.SeparableConv2D(5, 3, padding="same", activation="relu")),
    "SeparableConv1D": _one((10, 3), L.SeparableConv1D(5, 3)),
    "BatchNormalization": _one((6, 6, 2), L.Conv2D(3, 3), L.BatchNormalization()),
    "ReLU": _one((6, 6, 2), L.Conv2D(3, 3), L.ReLU(max_value=6.0)),
    "ReLU leaky": _one((6, 6, 2), L.Conv2D(3, 3), L.ReLU(negative_slope=0.3)),
    "LeakyReLU": _one((6,), L.Dense(5), L.LeakyReLU(0.25)),
    "ELU": _one((6,), L.Dense(5), L.ELU(0.7)),
    "ZeroPadding2D": _one((6, 6, 2), L.ZeroPadding2D(((2, 0), (1, 3))), L.Conv2D(3, 3)),
    "ZeroPadding1D": _one((8, 2), L.ZeroPadding1D((0, 2)), L.Conv1D(3, 3)),
    "MaxPooling2D same": _one((7, 7, 2), L.MaxPooling2D(2, padding="same")),
    "MaxPooling1D": _one((9, 2), L.MaxPooling1D(3, strides=2, padding="same")),
    "AveragePooling2D": _one((6, 6, 2), L.AveragePooling2D(2)),
    "AveragePooling1D": _one((9, 2), L.AveragePooling1D(3, strides=2)),
    "GlobalAveragePooling2D": _one((5, 5, 3), L.GlobalAveragePooling2D()),
    "GlobalAveragePooling1D": _one((7, 3), L.GlobalAveragePooling1D()),
    "GlobalMaxPooling2D": _one((5, 5, 3), L.GlobalMaxPooling2D()),
    "GlobalMaxPooling1D": _one((7, 3), L.GlobalMaxPooling1D()),
    "Flatten 1-D": _one((6, 3), L.Conv1D(3, 3), L.Flatten(), L.Dropout(0.5), L.Dense(4)),
    "Flatten 2-D": _one((5, 5, 2), L.Conv2D(3, 3), L.Flatten(), L.Dense(4)),
    **{f"Activation {name}": _one((6,), L.Dense(8), L.Activation(name)) for name in ACTIVATIONS
       if name not in ("linear", "relu")},
}


def _add() -> keras.Model:
    x = inp = keras.Input((6, 6, 2))
    return keras.Model(inp, L.Add()([L.Conv2D(3, 3)(x), L.Conv2D(3, 3, activation="relu")(x)]))


def _squeeze_excite() -> keras.Model:
    x = inp = keras.Input((6, 6, 3))
    gate = L.Dense(3, activation="sigmoid")(L.GlobalAveragePooling2D()(x))
    return keras.Model(inp, L.Multiply()([x, L.Reshape((1, 1, 3))(gate)]))


def _concatenate() -> keras.Model:
    x = inp = keras.Input((5, 5, 2))
    y = L.Concatenate()([L.Conv2D(3, 3, padding="same")(x), x])
    return keras.Model(inp, L.Concatenate(axis=2)([y, L.Conv2D(5, 1)(y)]))


def _attention() -> keras.Model:
    x = inp = keras.Input((5, 6))
    y = L.MultiHeadAttention(num_heads=2, key_dim=3, value_dim=4)(x, x)
    return keras.Model(inp, L.Dense(3)(L.Add()([x, y])))


MODELS["Add"] = _add
MODELS["Concatenate"] = _concatenate
MODELS["Multiply Reshape"] = _squeeze_excite
MODELS["Reshape one channel"] = _one((40,), L.Reshape((8, 5, 1)), L.Conv2D(2, 3))
MODELS["Reshape reorders"] = _one((6, 6, 2), L.Conv2D(3, 3), L.Reshape((12, 4)), L.Conv1D(2, 3))
MODELS["Dense over tokens"] = _one((5, 6), L.Dense(4, activation="gelu"), L.Dense(3))
MODELS["LayerNormalization"] = _one((5, 6), L.Dense(8), L.LayerNormalization(epsilon=1e-3))
MODELS["LayerNormalization plain"] = _one((8,), L.Dense(6), L.LayerNormalization(center=False, scale=False))
MODELS["Permute"] = _one((4, 6), L.Dense(5), L.Permute((2, 1)), L.Dense(3))
MODELS["Softmax axis"] = _one((4, 5, 3), L.Conv2D(3, 1), L.Softmax(axis=1))
MODELS["UpSampling2D"] = _one((3, 4, 2), L.UpSampling2D((2, 3)), L.Conv2D(2, 3))
MODELS["UpSampling1D"] = _one((5, 2), L.UpSampling1D(2), L.Conv1D(2, 3))
MODELS["Conv2DTranspose same"] = _one((4, 5, 3), L.Conv2DTranspose(2, 3, strides=2, padding="same"))
MODELS["Conv2DTranspose valid"] = _one((4, 5, 3), L.Conv2DTranspose(2, (2, 3), (2, 1), activation="relu"))
MODELS["Conv2DTranspose same even"] = _one((3, 3, 2), L.Conv2DTranspose(2, 4, strides=2, padding="same"))
MODELS["MultiHeadAttention"] = _attention
MODELS["Conv1DTranspose"] = _one((6, 2), L.Conv1DTranspose(3, 3, strides=2, padding="same"))


def test_every_converter_has_a_model_here() -> None:
    """Each layer class a converter takes (the tiled ones and SplitAttention, which tile_model
    makes: tests/test_keras.py)."""
    covered = {type(lay).__name__ for build in MODELS.values() for lay in build().layers}
    missing = [k.__name__ for c in CONVERTERS for k in c.kinds if k.__name__ not in covered]
    assert missing == ["TiledDense", "TiledConv1D", "TiledConv2D", "SplitAttention"]
    assert covered <= set(SUPPORTED)


def _batch(model: keras.Model, n: int = 32) -> np.ndarray:
    return np.random.default_rng(1).normal(size=(n, *model.inputs[0].shape[1:])).astype(np.float32)


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_layer_converts_and_compiles_f32_and_int8(kind: str) -> None:
    keras.utils.set_random_seed(0)
    model = MODELS[kind]()
    for lay in model.layers:  # BatchNorm with statistics of its own
        if isinstance(lay, L.BatchNormalization):
            lay.set_weights([np.full(3, 1.5), np.full(3, 0.2), np.linspace(-1, 1, 3), np.full(3, 0.7)])
    x = _batch(model)
    want = np.asarray(model(x, training=False))
    graph = to_torch(model)
    with torch.no_grad():
        got = graph(torch.from_numpy(channels_first(x))).numpy()
    np.testing.assert_allclose(got, channels_first(want), rtol=1e-5, atol=1e-5 * np.abs(want).max())

    # compiled: tiled, so the file's weights are the graph's exactly (transposed convolutions stay
    # dense: their int8 rows, as the file stores them)
    tile_model(graph, p=1, min_params=0)
    graph.eval()
    xt = torch.from_numpy(channels_first(x))
    with torch.no_grad():
        tiled = with_stored_weights(graph)(xt).numpy()
    f32 = read(compile_model(graph, xt[:1], params="wide"))
    got = Interpreter(f32).run(xt.numpy()).reshape(tiled.shape)  # a 1-D map is stored as one row
    np.testing.assert_allclose(got, tiled, rtol=1e-5, atol=1e-5 * np.abs(tiled).max())
    if not any(op.opcode == Op.SOFTMAX for op in f32.ops):  # softmax is F32 only
        int8 = read(compile_model(graph, xt[:1], activations="int8", calibration=xt))
        assert max(int8_op_steps(f32, int8, xt.numpy())) <= 1


def test_what_does_not_convert_is_named() -> None:
    cases = [
        (_one((8, 3), L.LSTM(4)), r"'lstm.*' \(LSTM\) has no tbn equivalent"),
        (_one((7, 7, 2), L.AveragePooling2D(2, padding="same")), "leaves the padding out of its mean"),
        (_one((6,), L.Dense(4, activation="softplus")), "activation 'softplus' is not supported"),
        (_one((6, 3), L.LayerNormalization(axis=1)), r"LayerNormalization over axes \[1\]; tbn normalises"),
        (_one((3, 3, 2), L.UpSampling2D(interpolation="bilinear")), "'bilinear' interpolation"),
        (_one((6, 6, 2), L.GlobalAveragePooling2D(keepdims=True)), "keepdims=True"),
        (_one((6, 6, 2), L.ReLU(max_value=6.0, negative_slope=0.1)), "max_value 6 or a negative slope"),
    ]
    for build, message in cases:
        with pytest.raises(UsageError, match=message):
            to_torch(build())


def test_zero_padding_that_feeds_no_convolution_is_a_pad_op() -> None:
    model = _one((6, 6, 2), L.ZeroPadding2D(1), L.Flatten(), L.Dense(3))()
    x = _batch(model)
    prog = read(compile_model(model, x[:1], params="wide"))
    assert Op.PAD in [o.opcode for o in prog.ops]
    want = np.asarray(model(x))
    got = Interpreter(prog).run(channels_first(x))
    assert np.abs(got - want).max() <= 1e-2 * np.abs(want).max()  # the Dense layer's int8 rows


def test_a_depthwise_separable_net_is_the_expected_ops() -> None:
    """DS-CNN's shape: conv, then depthwise (grouped) and pointwise convolutions."""
    model = _one((10, 10, 1), L.Conv2D(4, 3, strides=2, padding="same", activation="relu"),
                 L.SeparableConv2D(4, 3, padding="same", activation="relu"), L.GlobalAveragePooling2D(),
                 L.Dense(3))()
    prog = read(compile_model(model, _batch(model, 1)))
    assert [op.opcode for op in prog.ops] == [Op.DENSE_CONV2D, Op.DENSE_CONV2D, Op.DENSE_CONV2D,
                                              Op.GLOBAL_AVGPOOL, Op.DENSE_LINEAR]
    assert prog.ops[1].args["groups"] == 4 and (prog.ops[0].args["pb"], prog.ops[0].args["pt"]) == (1, 0)
