"""``TiledDense``, ``TiledConv1D`` and ``TiledConv2D``: Keras 3 layers with exactly the math of
:mod:`tbn.nn.layers` (arXiv 2407.12075).

The tile is defined on the weight in PyTorch's order, ``(out, in)`` for dense and
``(out, in, kh, kw)`` for convolutions, which is also the ``.tbn`` order: a Keras kernel
``(in, out)`` or ``(kh, kw, in, out)`` is transposed to it, tiled there and transposed back.
So the same latent values give the same tile bits, alphas and effective weights, bit for
bit, in both frameworks (sums in float64, as :mod:`tbn.nn.tiling` does), and a model
compiled from either is the same file.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from tbn.errors import UsageError
from tbn.nn.options import Tiling, TilingAttributes
from tbn.nn.tiling import check_p

# Keras kernel axes -> PyTorch's weight axes, and back
_TO_TORCH = {2: (1, 0), 3: (2, 1, 0), 4: (3, 2, 0, 1)}
_TO_KERAS = {2: (1, 0), 3: (2, 1, 0), 4: (2, 3, 1, 0)}


def torch_order(kernel: Any) -> Any:
    """A Keras kernel as PyTorch lays out the same weight."""
    return ops.transpose(kernel, _TO_TORCH[len(kernel.shape)])


def keras_order(weight: Any) -> Any:
    """A PyTorch-ordered weight as a Keras kernel."""
    return ops.transpose(weight, _TO_KERAS[len(weight.shape)])


def compute_alphas(a: Any, p: int, mode: str) -> Any:
    """Mean |a| per repetition (``per_tile``, ``p`` values) or overall (``single``) of a
    PyTorch-ordered tensor, summed in float64 and rounded once to float32."""
    n = math.prod(a.shape)
    flat = ops.abs(ops.cast(ops.reshape(a, (p, n // p) if mode == "per_tile" else (1, n)), "float64"))
    return ops.cast(ops.sum(flat, axis=1) / (n // p if mode == "per_tile" else n), "float32")


def make_tile(w: Any, p: int) -> Any:
    """The ``N/p`` tile (+1/-1, float32) of a PyTorch-ordered latent: the float64 sum of its
    ``p`` repetitions, ``> 0`` -> +1."""
    n = math.prod(w.shape)
    s = ops.sum(ops.cast(ops.reshape(w, (p, n // p)), "float64"), axis=0)
    return ops.where(s > 0, 1.0, -1.0)


def tiled_weight(w: Any, alphas: Any, p: int, ste: str) -> Any:
    """The effective PyTorch-ordered weight ``alpha[k // (N/p)] * tile[k % (N/p)]`` with the
    straight-through gradient of :class:`tbn.nn.tiling._TiledWeight`."""
    shape, n = tuple(w.shape), math.prod(w.shape)

    @ops.custom_gradient
    def forward(w: Any, alphas: Any) -> Any:
        tile = ops.cast(make_tile(w, p), "float32")
        out = ops.reshape(ops.broadcast_to(ops.reshape(alphas, (-1, 1)) * ops.reshape(tile, (1, n // p)),
                                           (p, n // p)), shape)

        def grad(*args: Any, upstream: Any = None) -> tuple[Any, Any]:
            g = ops.reshape(args[0] if upstream is None else upstream, (p, n // p))
            per_rep = ops.sum(g * tile, axis=1)
            grad_alphas = per_rep if alphas.shape[0] != 1 else ops.reshape(ops.sum(per_rep), (1,))
            grad_w = g * ops.reshape(alphas, (-1, 1)) if ste == "scaled" else g
            return ops.reshape(grad_w, shape), grad_alphas

        return out, grad

    return forward(w, alphas)


class _Tiled(TilingAttributes, keras.layers.Layer):
    """What both tiled layers share: the options (one :class:`~tbn.nn.options.Tiling`, given
    as ``tiling=`` or as its fields, which the layer's config stores flat), the latent and
    alpha kernels, the tiled kernel."""

    def __init__(self, tiling: Tiling | None, kwargs: dict[str, Any]) -> None:
        t, rest = Tiling.split(tiling, kwargs)
        super().__init__(**rest)
        self.tiling = t

    def _add_kernels(self, shape: tuple[int, ...], fan_in: int, initializer: Any) -> None:
        what = f"{type(self).__name__} {self.name!r} kernel {shape} (torch: {self._torch_shape(shape)})"
        check_p(math.prod(shape), self.p, what=what)
        self.kernel = self.add_weight(name="kernel", shape=shape, initializer=initializer)
        self.alpha_kernel = None
        if self.alpha_source == "separate":  # the authors' "W+A": Kaiming normal, fan_in, ReLU gain
            init = (keras.initializers.RandomNormal(stddev=math.sqrt(2.0 / fan_in))
                    if self.alpha_init == "independent" else initializer)
            self.alpha_kernel = self.add_weight(name="alpha_kernel", shape=shape, initializer=init)

    @staticmethod
    def _torch_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(shape[i] for i in _TO_TORCH[len(shape)])

    def alphas(self) -> Any:
        """The scale factors: ``p`` values (``per_tile``) or one (``single``)."""
        source = self.alpha_kernel if self.alpha_kernel is not None else self.kernel
        return compute_alphas(torch_order(source), self.p, self.alpha)

    def tile(self) -> Any:
        """The binary tile (+1/-1) in PyTorch's order, ``N/p`` entries."""
        return make_tile(torch_order(self.kernel), self.p)

    def tiled_kernel(self) -> Any:
        """The kernel the forward pass uses, in Keras' layout."""
        return keras_order(tiled_weight(torch_order(self.kernel), self.alphas(), self.p, self.ste))

    def _config(self) -> dict[str, Any]:
        return self.tiling.to_dict()


@keras.saving.register_keras_serializable(package="tbn")
class TiledDense(_Tiled):
    """``keras.layers.Dense`` whose kernel is one binary tile repeated ``p`` times and scaled
    (the Keras twin of :class:`tbn.nn.TiledLinear`)."""

    def __init__(self, units: int, activation: Any = None, use_bias: bool = True,
                 tiling: Tiling | None = None, kernel_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", **kwargs: Any) -> None:
        super().__init__(tiling, kwargs)
        self.units, self.use_bias = int(units), use_bias
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        k = int(input_shape[-1])
        self._add_kernels((k, self.units), k, self.kernel_initializer)
        self.bias = (self.add_weight(name="bias", shape=(self.units,), initializer=self.bias_initializer)
                     if self.use_bias else None)

    def call(self, x: Any) -> Any:
        y = ops.matmul(x, self.tiled_kernel())
        return self.activation(y + self.bias if self.bias is not None else y)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*input_shape[:-1], self.units)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self._config(), "units": self.units, "use_bias": self.use_bias,
                "activation": keras.activations.serialize(self.activation),
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer)}


@keras.saving.register_keras_serializable(package="tbn")
class TiledConv2D(_Tiled):
    """``keras.layers.Conv2D`` (channels last) with a tiled binary kernel (the Keras twin of
    :class:`tbn.nn.TiledConv2d`)."""

    def __init__(self, filters: int, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 dilation_rate: Any = 1, groups: int = 1, activation: Any = None, use_bias: bool = True,
                 tiling: Tiling | None = None, kernel_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", **kwargs: Any) -> None:
        super().__init__(tiling, kwargs)
        self.filters, self.use_bias, self.groups = int(filters), use_bias, int(groups)
        self.kernel_size, self.strides, self.dilation_rate = (_pair(kernel_size), _pair(strides),
                                                              _pair(dilation_rate))
        if padding not in ("valid", "same"):
            raise UsageError(f"padding={padding!r} is not 'valid' or 'same'")
        self.padding = padding
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        c = int(input_shape[-1])
        if c % self.groups or self.filters % self.groups:
            raise UsageError(f"{self.name}: groups={self.groups} must divide {c} inputs and "
                             f"{self.filters} filters")
        shape = (*self.kernel_size, c // self.groups, self.filters)  # 1-D too: (k, c / groups, filters)
        self._add_kernels(shape, math.prod(shape[:-1]), self.kernel_initializer)
        self.bias = (self.add_weight(name="bias", shape=(self.filters,), initializer=self.bias_initializer)
                     if self.use_bias else None)

    def call(self, x: Any) -> Any:
        y = ops.conv(x, self.tiled_kernel(), strides=self.strides, padding=self.padding,
                     dilation_rate=self.dilation_rate)
        return self.activation(y + self.bias if self.bias is not None else y)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return keras.layers.Conv2D(self.filters, self.kernel_size, self.strides, self.padding,
                                   dilation_rate=self.dilation_rate).compute_output_shape(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self._config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "strides": self.strides, "padding": self.padding,
                "dilation_rate": self.dilation_rate, "groups": self.groups, "use_bias": self.use_bias,
                "activation": keras.activations.serialize(self.activation),
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer)}


@keras.saving.register_keras_serializable(package="tbn")
class TiledConv1D(TiledConv2D):
    """``keras.layers.Conv1D`` (channels last) with a tiled binary kernel (the Keras twin of
    :class:`tbn.nn.TiledConv1d`); a depthwise one is ``groups`` equal to the channels."""

    def __init__(self, filters: int, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 dilation_rate: Any = 1, **kwargs: Any) -> None:
        super().__init__(filters, 1, padding=padding, **kwargs)
        self.kernel_size, self.strides, self.dilation_rate = (_one(kernel_size), _one(strides),
                                                              _one(dilation_rate))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return keras.layers.Conv1D(self.filters, self.kernel_size, self.strides, self.padding,
                                   dilation_rate=self.dilation_rate).compute_output_shape(input_shape)


def _one(v: Any) -> tuple[int]:
    return (int(v),) if isinstance(v, int) else (int(v[0]),)


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def is_tiled(layer: Any) -> bool:
    """True for a tbn tiled Keras layer."""
    return isinstance(layer, _Tiled)


@keras.saving.register_keras_serializable(package="tbn")
class SplitAttention(keras.layers.Layer):
    """``keras.layers.MultiHeadAttention`` (no mask, attention over one sequence axis) with its
    query, key, value and output projections as Dense layers, each a :class:`TiledDense` where
    ``tilings`` gives its tiling (``{"query": {"p": 4, ...}}``): what
    :func:`tbn.keras.tile_model` makes of a MultiHeadAttention. Called as it is:
    ``layer(query, value, key=None)``."""

    PROJECTIONS = ("query", "key", "value", "output")

    @classmethod
    def parts_of(cls, mha: Any) -> list[tuple[str, Any, Any]]:
        """A MultiHeadAttention's projections as (projection, Dense kernel (K, O), bias or None):
        its query, key and value EinsumDense kernels are (C, heads, d), its output's (heads, d, C)."""
        parts = []
        for proj in cls.PROJECTIONS:
            dense = getattr(mha, f"_{proj}_dense")
            k = ops.convert_to_numpy(dense.kernel)
            kernel = k.reshape(-1, k.shape[-1]) if proj == "output" else k.reshape(k.shape[0], -1)
            bias = None if dense.bias is None else ops.convert_to_numpy(dense.bias).reshape(-1)
            parts.append((proj, kernel, bias))
        return parts

    def __init__(self, num_heads: int, key_dim: int, value_dim: int | None = None, use_bias: bool = True,
                 tilings: dict[str, dict[str, Any]] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_heads, self.key_dim = int(num_heads), int(key_dim)
        self.value_dim, self.use_bias = int(value_dim or key_dim), use_bias
        self.tilings = dict(tilings or {})
        unknown = sorted(set(self.tilings) - set(self.PROJECTIONS))
        if unknown:
            raise UsageError(f"{self.name}: tilings for {unknown}; the projections are {self.PROJECTIONS}")

    def _projection(self, name: str, units: int, fan_in: int) -> Any:
        t, common = self.tilings.get(name), {"use_bias": self.use_bias, "name": f"{self.name}_{name}"}
        layer = TiledDense(units, tiling=Tiling(**t), **common) if t else keras.layers.Dense(units, **common)
        layer.build((None, fan_in))
        return layer

    def build(self, query_shape: Any, value_shape: Any, key_shape: Any = None) -> None:
        key_shape = value_shape if key_shape is None else key_shape
        h, c = self.num_heads, int(query_shape[-1])
        self.query_dense = self._projection("query", h * self.key_dim, c)
        self.key_dense = self._projection("key", h * self.key_dim, int(key_shape[-1]))
        self.value_dense = self._projection("value", h * self.value_dim, int(value_shape[-1]))
        self.output_dense = self._projection("output", c, h * self.value_dim)

    def _heads(self, x: Any, d: int) -> Any:  # (N, T, heads d) -> (N, heads, T, d)
        return ops.transpose(ops.reshape(x, (ops.shape(x)[0], -1, self.num_heads, d)), (0, 2, 1, 3))

    def call(self, query: Any, value: Any, key: Any = None) -> Any:
        key = value if key is None else key
        q = self._heads(self.query_dense(query), self.key_dim)
        k = self._heads(self.key_dense(key), self.key_dim)
        v = self._heads(self.value_dense(value), self.value_dim)
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / math.sqrt(self.key_dim)
        mixed = ops.transpose(ops.matmul(ops.softmax(scores, axis=-1), v), (0, 2, 1, 3))
        joined = ops.reshape(mixed, (ops.shape(mixed)[0], -1, self.num_heads * self.value_dim))
        return self.output_dense(joined)

    def compute_output_shape(self, query_shape: Any, value_shape: Any, key_shape: Any = None) -> Any:
        return tuple(query_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim,
                "value_dim": self.value_dim, "use_bias": self.use_bias, "tilings": self.tilings}
