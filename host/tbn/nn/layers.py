"""Tiled Bit layers: drop-in ``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d`` subclasses.

Each keeps the full-precision latent weight in ``weight`` (same name and shape as the
module it replaces, so ``state_dict`` stays familiar) and, with
``alpha_source="separate"`` (the paper's "W+A"), a second tensor ``alpha_weight`` of the
same shape that is trained only through the scale factors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from tbn.nn import tiling
from tbn.nn.options import Tiling, TilingAttributes


@dataclass(frozen=True)
class TileExport:
    """What a compiler needs from one tiled layer.

    ``tile_bits`` is packed least-significant-bit first (see :mod:`tbn.nn.tiling`),
    ``alphas`` holds ``p`` scales (``alpha="per_tile"``) or one (``"single"``).
    """

    shape: tuple[int, ...]
    p: int
    n_bits: int
    tile_bits: np.ndarray
    alphas: np.ndarray
    bias: np.ndarray | None


class _TiledMixin(TilingAttributes):
    """Shared state and behaviour of the tiled layers; mixed into a torch module class. The
    options are one :class:`~tbn.nn.options.Tiling` (``layer.tiling``; ``layer.p`` reads it)."""

    weight: nn.Parameter
    bias: nn.Parameter | None
    training: bool

    def _init_tiling(self, t: Tiling) -> None:
        what = f"{type(self).__name__} weight {tuple(self.weight.shape)}"
        tiling.check_p(self.weight.numel(), t.p, what=what)
        self.tiling = t
        if t.alpha_source == "separate":
            self.alpha_weight = nn.Parameter(self.weight.detach().clone())
            if t.alpha_init == "independent":
                nn.init.kaiming_normal_(self.alpha_weight, mode="fan_in", nonlinearity="relu")
        else:
            self.register_parameter("alpha_weight", None)
        self._cache: tuple[tuple[Any, ...], torch.Tensor] | None = None

    # -- the tiled weight -------------------------------------------------------------
    def _alpha_tensor(self) -> torch.Tensor:
        return self.alpha_weight if self.alpha_weight is not None else self.weight

    def alphas(self) -> torch.Tensor:
        """The scale factors: ``p`` values (``per_tile``) or one (``single``)."""
        return tiling.compute_alphas(self._alpha_tensor(), self.p, self.alpha)

    def tile(self) -> torch.Tensor:
        """The binary tile (+1/-1), ``N/p`` entries."""
        return tiling.make_tile(self.weight.detach(), self.p)

    def tiled_weight(self) -> torch.Tensor:
        """The weight used in the forward pass.

        In eval mode (or without autograd) the result is cached until a parameter changes,
        so inference does not rebuild the tile on every call.
        """
        if self.training and torch.is_grad_enabled():
            self._cache = None
            return tiling.tiled_weight(self.weight, self.alphas(), self.p, self.ste)
        a = self._alpha_tensor()
        key = (self.weight._version, self.weight.data_ptr(), a._version, a.data_ptr(),
               self.weight.dtype, self.weight.device)
        if self._cache is None or self._cache[0] != key:
            with torch.no_grad():
                self._cache = (key, tiling.tiled_weight(self.weight, self.alphas(), self.p, self.ste))
        return self._cache[1]

    def train(self, mode: bool = True):
        self._cache = None
        return super().train(mode)  # type: ignore[misc]

    # -- export and accounting ----------------------------------------------------------
    @property
    def n_alphas(self) -> int:
        return self.p if self.alpha == "per_tile" else 1

    def export(self) -> TileExport:
        """Packed tile bits, alphas and bias for a compiler (float32 numpy arrays)."""
        with torch.no_grad():
            tile = self.tile()
            return TileExport(
                shape=tuple(self.weight.shape),
                p=self.p,
                n_bits=tile.numel(),
                tile_bits=tiling.pack_bits(tile),
                alphas=self.alphas().float().cpu().numpy(),
                bias=None if self.bias is None else self.bias.detach().float().cpu().numpy(),
            )

    def storage_bits(self, alpha_bits: int = 16, bias_bits: int = 32) -> int:
        """Exact bits to store this layer: ``N/p`` tile bits, alphas (fp16 by default)
        and bias (float32 by default)."""
        n_bias = 0 if self.bias is None else self.bias.numel()
        return tiling.tile_storage_bits(self.weight.numel(), self.p, self.n_alphas, n_bias,
                                        alpha_bits, bias_bits)

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, p={self.p}, alpha={self.alpha}, "  # type: ignore[misc]
                f"alpha_source={self.alpha_source}, ste={self.ste}")


def _copy_params(dst: nn.Module, src: nn.Module) -> None:
    with torch.no_grad():
        dst.weight.copy_(src.weight)
        if dst.alpha_weight is not None and dst.alpha_init == "copy":
            dst.alpha_weight.copy_(src.weight)
        if src.bias is not None:
            dst.bias.copy_(src.bias)


class TiledLinear(_TiledMixin, nn.Linear):
    """``nn.Linear`` whose weight is one binary tile repeated ``p`` times, scaled by alphas.

    ``p=1`` is the plain binary layer with a scale.  ``p`` must divide
    ``in_features * out_features``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, tiling: Tiling | None = None,
                 device: Any = None, dtype: Any = None, **options: Any) -> None:
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self._init_tiling(Tiling.of(tiling, **options))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.tiled_weight(), self.bias)

    @classmethod
    def from_float(cls, mod: nn.Module, tiling: Tiling | None = None, **options: Any) -> TiledLinear:
        if not isinstance(mod, nn.Linear):
            raise TypeError(f"TiledLinear.from_float needs nn.Linear, got {type(mod).__name__}")
        new = cls(mod.in_features, mod.out_features, bias=mod.bias is not None,
                  tiling=Tiling.of(tiling, **options), device=mod.weight.device, dtype=mod.weight.dtype)
        _copy_params(new, mod)
        return new


class _TiledConvNd(_TiledMixin):
    """What the tiled convolutions share: ``_float_cls`` (nn.Conv1d or nn.Conv2d) builds the
    module, then the tiling is added."""

    _float_cls: type[nn.Module]

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", tiling: Tiling | None = None, device: Any = None,
                 dtype: Any = None, **options: Any) -> None:
        self._float_cls.__init__(self, in_channels, out_channels, kernel_size, stride, padding,  # type: ignore[call-arg]
                                 dilation, groups, bias, padding_mode, device=device, dtype=dtype)
        self._init_tiling(Tiling.of(tiling, **options))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.tiled_weight(), self.bias)  # type: ignore[attr-defined]

    @classmethod
    def from_float(cls, mod: nn.Module, tiling: Tiling | None = None, **options: Any):
        if not isinstance(mod, cls._float_cls):
            raise TypeError(f"{cls.__name__}.from_float needs {cls._float_cls.__name__}, "
                            f"got {type(mod).__name__}")
        new = cls(mod.in_channels, mod.out_channels, mod.kernel_size, stride=mod.stride,
                  padding=mod.padding, dilation=mod.dilation, groups=mod.groups,
                  bias=mod.bias is not None, padding_mode=mod.padding_mode,
                  tiling=Tiling.of(tiling, **options), device=mod.weight.device, dtype=mod.weight.dtype)
        _copy_params(new, mod)
        return new


class TiledConv1d(_TiledConvNd, nn.Conv1d):
    """``nn.Conv1d`` with a tiled binary weight; see :class:`TiledLinear`."""

    _float_cls = nn.Conv1d


class TiledConv2d(_TiledConvNd, nn.Conv2d):
    """``nn.Conv2d`` with a tiled binary weight; see :class:`TiledLinear`."""

    _float_cls = nn.Conv2d


TILED_TYPES: dict[type[nn.Module], type[_TiledMixin]] = {
    nn.Linear: TiledLinear,
    nn.Conv1d: TiledConv1d,
    nn.Conv2d: TiledConv2d,
}


def is_tiled(mod: nn.Module) -> bool:
    """True for any tbn tiled layer."""
    return isinstance(mod, _TiledMixin)
