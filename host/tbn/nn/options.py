"""How a layer is tiled, as one object: :class:`Tiling` (larq makes a quantizer one object).

Every place that tiles takes it: the PyTorch layers and ``tbn.tile_model``, the Keras layers
and ``tbn.keras.tile_model``, and the training config, which derives its own. Each also
takes the fields as keywords (``TiledLinear(784, 256, p=8)``), read through
:meth:`Tiling.of`, so an option is named, defaulted and checked here only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

from tbn.errors import UsageError

AlphaMode = Literal["per_tile", "single"]
ALPHA_MODES: tuple[str, ...] = ("per_tile", "single")
# The latent's gradient: "scaled" is the authors' (the straight-through estimator covers the
# sign and the tiling only, the alpha multiply is ordinary autograd: dL/dw = alpha * dL/dWhat);
# "identity" passes dL/dWhat through alpha as well (tbn before 0.2; larger by 1/alpha).
Ste = Literal["scaled", "identity"]
STES: tuple[str, ...] = ("scaled", "identity")
AlphaSource = Literal["separate", "weight"]
ALPHA_SOURCES: tuple[str, ...] = ("separate", "weight")
# How a separate alpha tensor starts: "independent" (the authors': Kaiming normal, fan_in,
# ReLU gain, while the sign latent keeps PyTorch's Kaiming uniform) or a "copy" of the
# latent (right when tiling an already trained float model: alphas start at its magnitudes).
AlphaInit = Literal["independent", "copy"]
ALPHA_INITS: tuple[str, ...] = ("independent", "copy")


def check_ste(ste: str) -> None:
    if ste not in STES:
        raise UsageError(f"ste={ste!r} is not one of {', '.join(STES)}")


@dataclass(frozen=True)
class Tiling:
    """A layer's tiling; the defaults are the authors' (docs/method.md).

    ``p``: repetitions of the one binary tile (it must divide the layer's weight count);
    ``alpha``: ``"per_tile"`` (p scales) or ``"single"``; ``alpha_source``: ``"separate"``
    (the paper's "W+A", a second latent trained only through the scales) or ``"weight"``;
    ``ste``: the latent's gradient, ``"scaled"`` (the authors') or ``"identity"``;
    ``alpha_init``: how a separate alpha latent starts, ``"independent"`` or ``"copy"``."""

    p: int = 4
    alpha: AlphaMode = "per_tile"
    alpha_source: AlphaSource = "separate"
    ste: Ste = "scaled"
    alpha_init: AlphaInit = "independent"

    def __post_init__(self) -> None:
        check_ste(self.ste)
        for name, allowed in (("alpha", ALPHA_MODES), ("alpha_source", ALPHA_SOURCES),
                              ("alpha_init", ALPHA_INITS)):
            if getattr(self, name) not in allowed:
                raise UsageError(f"{name}={getattr(self, name)!r} is not one of {', '.join(allowed)}")
        if not isinstance(self.p, int) or isinstance(self.p, bool) or self.p < 1:
            raise UsageError(f"tiling factor p={self.p!r} is not a positive integer")

    @classmethod
    def of(cls, tiling: Tiling | None = None, **options: Any) -> Tiling:
        """``tiling`` (default: the authors') with the fields named in ``options`` replaced."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise TypeError(f"unknown tiling options {unknown}; the options are {', '.join(sorted(names))}")
        base = tiling if tiling is not None else cls()
        return replace(base, **options) if options else base

    @classmethod
    def split(cls, tiling: Tiling | None, kwargs: dict[str, Any]) -> tuple[Tiling, dict[str, Any]]:
        """(the tiling, the other keywords) of a layer that takes both, as Keras layers do."""
        names = {f.name for f in fields(cls)}
        return (cls.of(tiling, **{k: v for k, v in kwargs.items() if k in names}),
                {k: v for k, v in kwargs.items() if k not in names})

    def with_p(self, p: int) -> Tiling:
        return replace(self, p=p)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TilingAttributes:
    """A tiled layer's options read as attributes (``layer.p``, ``layer.ste``) from its
    ``tiling``: one value, however it is asked for. (One read-only property per field of
    :class:`Tiling`, made below.)"""

    tiling: Tiling


for _field in fields(Tiling):
    setattr(TilingAttributes, _field.name, property(lambda self, _n=_field.name: getattr(self.tiling, _n),
                                                    doc=f"``self.tiling.{_field.name}``"))
