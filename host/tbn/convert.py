"""``tile_model``: swap a model's Linear/Conv layers for tiled ones, by policy.

Policy for each ``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d`` (matched anywhere in the
module tree, by its qualified name as in ``model.named_modules()``):

1. names matching ``keep_dense`` (exact names or ``fnmatch`` patterns) stay float;
2. names in ``per_layer`` get that ``p``;
3. layers with fewer than ``min_params`` weights get ``p = 1`` (plain binary);
4. every other layer gets ``p`` -- or, with ``budget_bytes``, the rule below.

Budget rule: rules 1-3 fix some layers' bytes.  The remaining ("tileable") layers start at
``p = 1``; while the total exceeds ``budget_bytes`` the tileable layer that currently
takes the most bytes moves to its next power-of-two ``p`` that divides its weight count
(ties go to the earlier layer).  When no tileable layer can be tiled further and the total
is still over budget, :class:`BudgetError` says by how much.  Stored bytes of a layer:
``ceil(N/p / 8)`` tile bytes + 2 bytes per alpha (fp16) + 4 per bias entry; a dense layer
counts as float32 weights and bias.
"""

from __future__ import annotations

import copy
import fnmatch
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from torch import nn

from tbn.errors import TbnError
from tbn.nn.attention import split_attention
from tbn.nn.layers import TILED_TYPES, is_tiled
from tbn.nn.options import AlphaMode, Tiling
from tbn.nn.tiling import check_p, tile_storage_bits


class BudgetError(TbnError, ValueError):
    """No choice of tiling factors fits the requested byte budget."""


@dataclass(frozen=True)
class LayerReport:
    """One convertible layer: its name, weight shape, tiling factor (None: kept dense),
    exact storage bits and bytes (see module docstring)."""

    name: str
    kind: str
    shape: tuple[int, ...]
    p: int | None
    bits: int
    bytes: int

    @property
    def n_weights(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class TilingReport:
    """Per-layer result of :func:`tile_model`."""

    layers: tuple[LayerReport, ...]

    @property
    def total_bits(self) -> int:
        return sum(r.bits for r in self.layers)

    @property
    def total_bytes(self) -> int:
        return sum(r.bytes for r in self.layers)

    @property
    def n_weights(self) -> int:
        return sum(r.n_weights for r in self.layers)

    def per_layer_p(self) -> dict[str, int | None]:
        return {r.name: r.p for r in self.layers}

    def to_dict(self) -> dict:
        return {
            "layers": [asdict(r) | {"shape": list(r.shape)} for r in self.layers],
            "total_bits": self.total_bits,
            "total_bytes": self.total_bytes,
            "float32_bytes": 4 * self.n_weights,
            "bits_per_weight": self.total_bits / max(1, self.n_weights),
        }

    def __str__(self) -> str:
        rows = [("layer", "kind", "shape", "p", "bits", "bytes")]
        for r in self.layers:
            rows.append((r.name, r.kind, "x".join(map(str, r.shape)),
                         "dense" if r.p is None else str(r.p), str(r.bits), str(r.bytes)))
        rows.append(("total", "", f"{self.n_weights} weights", "", str(self.total_bits),
                     f"{self.total_bytes} ({4 * self.n_weights} as float32)"))
        widths = [max(len(row[i]) for row in rows) for i in range(6)]
        def fmt(row: tuple[str, ...]) -> str:
            return "  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(row, widths, strict=True)))

        lines = [fmt(row) for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


def layer_bits(n_weights: int, n_bias: int, p: int | None, alpha: AlphaMode = "per_tile") -> int:
    """Exact storage bits of one layer (``p=None``: float32 dense)."""
    if p is None:
        return 32 * (n_weights + n_bias)
    return tile_storage_bits(n_weights, p, p if alpha == "per_tile" else 1, n_bias)


def layer_bytes(n_weights: int, n_bias: int, p: int | None, alpha: AlphaMode = "per_tile") -> int:
    """Stored bytes of one layer: the tile padded to whole bytes (``p=None``: float32)."""
    if p is None:
        return 4 * (n_weights + n_bias)
    n_alphas = p if alpha == "per_tile" else 1
    return math.ceil(n_weights // p / 8) + 2 * n_alphas + 4 * n_bias


def _convertible(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules()
            if type(m) in TILED_TYPES or is_tiled(m)]


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(name == pat or fnmatch.fnmatchcase(name, pat) for pat in patterns)


def _next_p(n: int, p: int) -> int | None:
    q = p * 2
    while q <= n:
        if n % q == 0:
            return q
        q *= 2
    return None


class LayerNameError(TbnError, KeyError):
    """A layer name that is not a convertible layer of the model."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class LayerInfo:
    """What the policy needs of one convertible layer, in any framework."""

    name: str
    shape: tuple[int, ...]  # the weight's shape, in PyTorch's order
    n_bias: int

    @property
    def n_weights(self) -> int:
        return math.prod(self.shape)


def plan_tiling(model: nn.Module, p: int = 4, min_params: int = 64_000,
                per_layer: Mapping[str, int] | None = None, keep_dense: Iterable[str] = (),
                budget_bytes: int | None = None,
                alpha: AlphaMode = "per_tile") -> dict[str, int | None]:
    """The tiling factor :func:`tile_model` would give each layer (``None``: dense)."""
    if any(isinstance(m, nn.MultiheadAttention) for m in model.modules()):  # as tile_model splits it
        model = copy.deepcopy(model)
        split_attention(model)
    layers = [LayerInfo(name, tuple(m.weight.shape), 0 if m.bias is None else m.bias.numel())
              for name, m in _convertible(model)]
    return plan_layers(layers, p, min_params, per_layer, keep_dense, budget_bytes, alpha)


def plan_layers(layers: list[LayerInfo], p: int = 4, min_params: int = 64_000,
                per_layer: Mapping[str, int] | None = None, keep_dense: Iterable[str] = (),
                budget_bytes: int | None = None, alpha: AlphaMode = "per_tile") -> dict[str, int | None]:
    """The policy of this module's docstring over framework-neutral layer descriptions."""
    per_layer = dict(per_layer or {})
    keep_dense = tuple(keep_dense)
    names = {info.name for info in layers}
    unknown = sorted(set(per_layer) - names)
    if unknown:
        raise LayerNameError(f"per_layer names {unknown} are not convertible layers of the model; "
                             f"those are: {sorted(names)}")
    plan: dict[str, int | None] = {}
    tileable: list[str] = []
    for info in layers:
        name, n, what = info.name, info.n_weights, f"layer {info.name!r} weight {info.shape}"
        if _matches(name, keep_dense):
            plan[name] = None
        elif name in per_layer:
            check_p(n, per_layer[name], what=what)
            plan[name] = per_layer[name]
        elif n < min_params:
            plan[name] = 1
        elif budget_bytes is None:
            check_p(n, p, what=what)
            plan[name] = p
        else:
            plan[name] = 1
            tileable.append(name)
    if budget_bytes is None:
        return plan

    infos = {info.name: info for info in layers}

    def nbytes(name: str) -> int:
        return layer_bytes(infos[name].n_weights, infos[name].n_bias, plan[name], alpha)

    total = sum(nbytes(n) for n in plan)
    while total > budget_bytes:
        candidates = [n for n in tileable if _next_p(infos[n].n_weights, plan[n]) is not None]
        if not candidates:
            raise BudgetError(
                f"no tiling fits {budget_bytes} bytes: the smallest reachable is {total} bytes "
                f"(tileable layers at their largest p: "
                f"{ {n: plan[n] for n in tileable} }); raise the budget, lower min_params, "
                f"or drop layers from keep_dense/per_layer")
        name = max(candidates, key=nbytes)
        total -= nbytes(name)
        plan[name] = _next_p(infos[name].n_weights, plan[name])
        total += nbytes(name)
    return plan


def layer_report(info: LayerInfo, kind: str, p: int | None, alpha: AlphaMode) -> LayerReport:
    """The report row of a converted layer."""
    return LayerReport(info.name, kind, info.shape, p, layer_bits(info.n_weights, info.n_bias, p, alpha),
                       layer_bytes(info.n_weights, info.n_bias, p, alpha))


def tile_model(model: nn.Module, *, tiling: Tiling | None = None, min_params: int = 64_000,
               per_layer: Mapping[str, int] | None = None, keep_dense: Iterable[str] = (),
               budget_bytes: int | None = None, **options: Any) -> TilingReport:
    """Replace ``model``'s Linear/Conv1d/Conv2d layers in place by tiled layers,
    initialised from their weights, following the policy in this module's docstring.

    ``tiling`` (a :class:`~tbn.nn.options.Tiling`, or its fields as keywords: ``p=8``,
    ``alpha_init="copy"``...) says how: its ``p`` is the policy's default, each layer gets the
    rest as they are. ``alpha_init="copy"`` starts a separate alpha tensor from the weights:
    right when tiling an already trained float model.

    Returns the per-layer :class:`TilingReport`.  Already-tiled layers are re-tiled only
    when their planned ``p`` differs (``keep_dense`` leaves them as they are). Each
    ``nn.MultiheadAttention`` (batch first, one width) first becomes a
    :class:`~tbn.nn.attention.SplitAttention`, whose ``q_proj``, ``k_proj``, ``v_proj`` and
    ``out_proj`` are then layers like any other (``attn.q_proj`` in ``per_layer``).
    """
    t = Tiling.of(tiling, **options)
    split_attention(model)
    plan = plan_tiling(model, t.p, min_params, per_layer, keep_dense, budget_bytes, t.alpha)
    rows = []
    for name, m in _convertible(model):
        lp = plan[name] if not (is_tiled(m) and plan[name] is None) else m.p
        if lp is not None and (not is_tiled(m) or m.p != lp):
            base = next(b for b in TILED_TYPES if isinstance(m, b))
            m = TILED_TYPES[base].from_float(m, t.with_p(lp))
            _set_submodule(model, name, m)
        info = LayerInfo(name, tuple(m.weight.shape), 0 if m.bias is None else m.bias.numel())
        rows.append(layer_report(info, type(m).__name__, lp, t.alpha))
    return TilingReport(tuple(rows))


def _set_submodule(model: nn.Module, name: str, new: nn.Module) -> None:
    if not name:
        raise TypeError("tile_model converts layers inside a model; got a bare layer -- "
                        "use TiledLinear.from_float and friends for a single layer")
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)
