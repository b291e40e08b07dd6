"""``tile_model`` for Keras models: the policy and report of :mod:`tbn.convert`, on Dense,
Conv1D, Conv2D and DepthwiseConv1D/2D layers (a depthwise one as a grouped tiled convolution)
named as Keras names them, in nested models too. A SeparableConv1D/2D is first split into a
nested Sequential of its depthwise and pointwise convolutions (``<name>_depthwise``,
``<name>_pointwise``), so each of its two kernels is tiled (or kept) on its own."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import keras
import numpy as np

from tbn.convert import LayerInfo, TilingReport, layer_report, plan_layers
from tbn.keras.layers import _TO_TORCH as TO_TORCH
from tbn.keras.layers import SplitAttention, TiledConv1D, TiledConv2D, TiledDense, is_tiled
from tbn.nn.options import Tiling

_DEPTHWISE = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
_SEPARABLE = (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)


def _leaves(model: keras.Model) -> list[Any]:
    """The model's layers, a nested model's own layers in its place."""
    return [leaf for lay in model.layers
            for leaf in (_leaves(lay) if isinstance(lay, keras.Model) else [lay])]


def _convertible(model: keras.Model) -> list[Any]:
    kinds = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D, *_DEPTHWISE)
    return [lay for lay in _leaves(model) if type(lay) in kinds or is_tiled(lay) or _attention_ok(lay)]


def _kernel(layer: Any, kernel: Any) -> np.ndarray:
    """A layer's kernel as its tiled twin holds it: a depthwise ``(kh, kw, C, M)`` one as the
    grouped ``(kh, kw, 1, C M)`` (output ``c M + j`` reads channel ``c``)."""
    k = np.asarray(kernel)
    return k.reshape(*k.shape[:-2], 1, -1) if isinstance(layer, _DEPTHWISE) else k


def _split_separable(model: keras.Model) -> keras.Model:
    """``model`` with each SeparableConv1D/2D a nested Sequential of the same depthwise and
    pointwise convolutions (the same arithmetic and weights), or ``model`` when it has none."""
    if not any(isinstance(lay, _SEPARABLE) for lay in _leaves(model)):
        return model

    def split(layer: Any) -> Any:
        if not isinstance(layer, _SEPARABLE):
            return layer.__class__.from_config(layer.get_config())
        cfg, two = layer.get_config(), isinstance(layer, keras.layers.SeparableConv2D)
        depthwise = (keras.layers.DepthwiseConv2D if two else keras.layers.DepthwiseConv1D)(
            cfg["kernel_size"], strides=cfg["strides"], padding=cfg["padding"],
            data_format=cfg["data_format"], depth_multiplier=cfg["depth_multiplier"],
            dilation_rate=cfg["dilation_rate"], use_bias=False, name=f"{layer.name}_depthwise")
        pointwise = (keras.layers.Conv2D if two else keras.layers.Conv1D)(
            cfg["filters"], 1, data_format=cfg["data_format"], activation=cfg["activation"],
            use_bias=cfg["use_bias"], name=f"{layer.name}_pointwise")
        return keras.Sequential([depthwise, pointwise], name=layer.name)

    new = keras.models.clone_model(model, clone_function=split, recursive=True)
    made = {lay.name: lay for lay in _leaves(new)}
    for old in _leaves(model):
        if isinstance(old, _SEPARABLE):
            made[f"{old.name}_depthwise"].set_weights([np.asarray(old.depthwise_kernel)])
            made[f"{old.name}_pointwise"].set_weights([np.asarray(old.pointwise_kernel),
                                                       *([] if old.bias is None else [np.asarray(old.bias)])])
        elif old.weights:
            made[old.name].set_weights(old.get_weights())
    return new


def _attention_parts(layer: Any) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """A MultiHeadAttention's projections as (plan name, Dense kernel (K, O), bias or None)."""
    return [(f"{layer.name}_{proj}", k, b) for proj, k, b in SplitAttention.parts_of(layer)]


def _attention_ok(layer: Any) -> bool:
    """A MultiHeadAttention that SplitAttention computes exactly."""
    cfg = layer.get_config()
    return (isinstance(layer, keras.layers.MultiHeadAttention) and not cfg.get("use_gate")
            and not cfg.get("sliding_window") and cfg.get("output_shape") is None
            and tuple(cfg.get("attention_axes") or (1,)) == (1,)
            and len((getattr(layer, "_build_shapes_dict", None) or {}).get("query_shape", ())) == 3)


def _infos(layer: Any) -> list[LayerInfo]:
    """The planner's rows of a layer: one, or an attention's four projections."""
    if _attention_ok(layer):
        return [LayerInfo(name, (k.shape[1], k.shape[0]), 0 if b is None else len(b))
                for name, k, b in _attention_parts(layer)]
    return [_info(layer)]


def _info(layer: Any) -> LayerInfo:
    shape = _kernel(layer, layer.kernel).shape
    return LayerInfo(layer.name, tuple(int(shape[i]) for i in TO_TORCH[len(shape)]),
                     0 if layer.bias is None else int(layer.bias.shape[0]))


def _tiled_twin(layer: Any, tiling: Tiling) -> Any:
    """A tiled layer with ``layer``'s configuration (its name included)."""
    cfg = layer.get_config()
    if "depthwise_initializer" in cfg:  # DepthwiseConv2D's kernel
        cfg["kernel_initializer"] = cfg["depthwise_initializer"]
    common = {k: cfg[k] for k in ("name", "activation", "use_bias", "kernel_initializer", "bias_initializer")}
    if isinstance(layer, keras.layers.Dense | TiledDense):
        return TiledDense(cfg["units"], tiling=tiling, **common)
    if cfg.get("data_format", "channels_last") != "channels_last":
        raise ValueError(f"{layer.name}: tbn.keras tiles channels_last convolutions only")
    if cfg["padding"] not in ("valid", "same"):
        raise ValueError(f"{layer.name}: tbn.keras tiles convolutions with padding 'valid' or 'same'")
    filters, groups = cfg.get("filters"), cfg.get("groups", 1)
    if isinstance(layer, _DEPTHWISE):
        groups = int(layer.kernel.shape[-2])
        filters = groups * int(layer.kernel.shape[-1])
    one_d = isinstance(layer, keras.layers.Conv1D | keras.layers.DepthwiseConv1D | TiledConv1D)
    cls = TiledConv1D if one_d else TiledConv2D
    return cls(filters, cfg["kernel_size"], strides=cfg["strides"], padding=cfg["padding"],
               dilation_rate=cfg["dilation_rate"], groups=groups, tiling=tiling, **common)


def tile_model(model: keras.Model, *, tiling: Tiling | None = None, min_params: int = 64_000,
               per_layer: Mapping[str, int] | None = None, keep_dense: Iterable[str] = (),
               budget_bytes: int | None = None, **options: Any) -> tuple[keras.Model, TilingReport]:
    """A copy of ``model`` (Sequential or functional, built) whose Dense and Conv2D layers are
    tiled by the policy of :func:`tbn.tile_model` (``tiling``, or its fields as keywords), and
    the per-layer report. Kept layers keep their weights; tiled ones start from theirs
    (``alpha_init="copy"``: so does the alpha kernel, right for an already trained float model)."""
    if not model.built:
        raise ValueError("tile_model needs a built Keras model: give it an Input or call it once")
    t = Tiling.of(tiling, **options)
    model = _split_separable(model)
    layers = _convertible(model)
    plan = plan_layers([i for lay in layers for i in _infos(lay)], t.p, min_params, per_layer, keep_dense,
                       budget_bytes, t.alpha)

    def clone(layer: Any) -> Any:
        if _attention_ok(layer):  # its projections as (tiled) Dense layers
            cfg = layer.get_config()
            ps = {proj: plan[f"{layer.name}_{proj}"] for proj in SplitAttention.PROJECTIONS}
            return SplitAttention(cfg["num_heads"], cfg["key_dim"], cfg["value_dim"], cfg["use_bias"],
                                  {proj: t.with_p(p).to_dict() for proj, p in ps.items() if p is not None},
                                  name=layer.name)
        lp = plan.get(layer.name)
        if lp is None or (is_tiled(layer) and layer.p == lp):
            return layer.__class__.from_config(layer.get_config())
        return _tiled_twin(layer, t.with_p(lp))

    new = keras.models.clone_model(model, clone_function=clone, recursive=True)
    made = {lay.name: lay for lay in _leaves(new)}
    rows = []
    for old_layer in _leaves(model):
        if not old_layer.weights:  # InputLayer (renamed by clone_model), activations, pooling...
            continue
        layer = made[old_layer.name]
        if isinstance(layer, SplitAttention):
            rows += _set_attention(old_layer, layer, t)
            continue
        weights = old_layer.get_weights()
        if is_tiled(layer) and not is_tiled(old_layer):  # kernel, (alpha kernel), bias
            kernel, *rest = weights
            kernel = _kernel(old_layer, kernel)
            alpha_kernel = [kernel if t.alpha_init == "copy" else np.asarray(layer.alpha_kernel)] \
                if layer.alpha_kernel is not None else []
            weights = [kernel, *alpha_kernel, *rest]
        layer.set_weights(weights)
        if old_layer.name in plan:
            rows.append(layer_report(_info(layer), type(layer).__name__, layer.p if is_tiled(layer) else None,
                                     t.alpha))
    return new, TilingReport(tuple(rows))


def _set_attention(old: Any, new: SplitAttention, t: Tiling) -> list[Any]:
    """Copy a MultiHeadAttention's projections into a SplitAttention's; their report rows."""
    rows = []
    for proj, kernel, bias in SplitAttention.parts_of(old):
        name = f"{old.name}_{proj}"
        dense = getattr(new, f"{proj}_dense")
        tiled = is_tiled(dense)
        alpha = [kernel if t.alpha_init == "copy" else np.asarray(dense.alpha_kernel)] \
            if tiled and dense.alpha_kernel is not None else []
        dense.set_weights([kernel, *alpha, *([] if bias is None else [bias])])
        info = LayerInfo(name, (kernel.shape[1], kernel.shape[0]), 0 if bias is None else len(bias))
        rows.append(layer_report(info, type(dense).__name__, dense.p if tiled else None, t.alpha))
    return rows
