"""A float PyTorch ``nn.Sequential`` (a tbn recipe) as the equivalent Keras model, for the
TFLite int8 baseline (:mod:`tbn.keras.tflite`). A tiled layer becomes a float layer holding
its latent weights.

Keras reads channels-last inputs: convolutions take transposed kernels, PyTorch's symmetric
zero padding becomes a ``ZeroPadding2D``, and the first Linear after a flattened feature map
has its inputs permuted from ``(C, H, W)`` to Keras' ``(H, W, C)`` order.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from torch import nn

from tbn.errors import UsageError


def _np(t: Any) -> np.ndarray:
    return t.detach().cpu().float().numpy()


def _linear(m: nn.Linear, chw: tuple[int, int, int] | None) -> keras.layers.Layer:
    w = _np(m.weight)  # (O, K), K in (C, H, W) order when it reads a flattened map
    if chw is not None:
        c, h, ww = chw
        w = w.reshape(-1, c, h, ww).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
    layer = keras.layers.Dense(m.out_features, use_bias=m.bias is not None)
    layer.build((None, m.in_features))
    layer.set_weights([w.T] + ([_np(m.bias)] if m.bias is not None else []))
    return layer


def _conv(m: nn.Conv2d) -> list[keras.layers.Layer]:
    if m.padding_mode != "zeros" or isinstance(m.padding, str):
        raise UsageError(f"{m}: only integer zero padding converts to Keras")
    pad = tuple(m.padding)
    layer = keras.layers.Conv2D(m.out_channels, m.kernel_size, strides=m.stride, dilation_rate=m.dilation,
                                groups=m.groups, use_bias=m.bias is not None)
    layer.build((None, None, None, m.in_channels))
    layer.set_weights([_np(m.weight).transpose(2, 3, 1, 0)] + ([_np(m.bias)] if m.bias is not None else []))
    return ([keras.layers.ZeroPadding2D(pad)] if any(pad) else []) + [layer]


def _batchnorm(m: nn.BatchNorm1d | nn.BatchNorm2d) -> keras.layers.Layer:
    layer = keras.layers.BatchNormalization(epsilon=m.eps)
    c = m.num_features
    layer.build((None, None, None, c) if isinstance(m, nn.BatchNorm2d) else (None, c))
    ones, zeros = np.ones(m.num_features, np.float32), np.zeros(m.num_features, np.float32)
    layer.set_weights([_np(m.weight) if m.affine else ones, _np(m.bias) if m.affine else zeros,
                       _np(m.running_mean), _np(m.running_var)])
    return layer


def _pool(m: nn.MaxPool2d | nn.AvgPool2d) -> list[keras.layers.Layer]:
    if m.padding not in (0, (0, 0)) or getattr(m, "dilation", 1) not in (1, (1, 1)) or m.ceil_mode:
        raise UsageError(f"{m}: only unpadded, undilated pooling converts to Keras")
    cls = keras.layers.MaxPooling2D if isinstance(m, nn.MaxPool2d) else keras.layers.AveragePooling2D
    return [cls(m.kernel_size, m.stride or m.kernel_size)]


def to_keras(model: nn.Module, input_shape: tuple[int, ...]) -> keras.Model:
    """The Keras twin of a float or tiled ``nn.Sequential`` reading ``input_shape`` (PyTorch's
    ``(C, H, W)``); the Keras model reads ``(H, W, C)``."""
    if not isinstance(model, nn.Sequential):
        raise UsageError(f"the TFLite baseline converts nn.Sequential recipes; {type(model).__name__} "
                         "is not one")
    chw = input_shape if len(input_shape) == 3 else None
    keras_in = (*input_shape[1:], input_shape[0]) if chw else input_shape
    layers: list[keras.layers.Layer] = []
    flat: tuple[int, int, int] | None = None
    shape = chw
    for m in model:
        if isinstance(m, nn.Linear):
            layers.append(_linear(m, flat))
            flat = None
        elif isinstance(m, nn.Conv2d):
            layers += _conv(m)
        elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            layers.append(_batchnorm(m))
        elif isinstance(m, nn.ReLU | nn.ReLU6):
            layers.append(keras.layers.ReLU(max_value=6.0 if isinstance(m, nn.ReLU6) else None))
        elif isinstance(m, nn.MaxPool2d | nn.AvgPool2d):
            layers += _pool(m)
        elif isinstance(m, nn.Flatten):
            layers.append(keras.layers.Flatten())
            flat = shape if shape and shape[1] * shape[2] > 1 and shape[0] > 1 else None
        elif isinstance(m, nn.Dropout | nn.Identity):
            continue
        else:
            raise UsageError(f"{type(m).__name__} has no Keras twin here (the TFLite baseline converts "
                             "Linear, Conv2d, BatchNorm, ReLU, ReLU6, pooling, Flatten and Dropout)")
        if isinstance(m, nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d):
            shape = _out_shape(layers, keras_in)
    return keras.Sequential([keras.Input(keras_in), *layers])


def _out_shape(layers: list[keras.layers.Layer], keras_in: tuple[int, ...]) -> tuple[int, int, int]:
    """(C, H, W) after ``layers`` (Keras computes it channels-last)."""
    shape: tuple[Any, ...] = (None, *keras_in)
    for layer in layers:
        shape = layer.compute_output_shape(shape)
    return (int(shape[3]), int(shape[1]), int(shape[2]))
