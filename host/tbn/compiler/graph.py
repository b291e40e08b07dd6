"""The captured graph: a list of :class:`Node`, each the spec's :class:`~tbn.format.spec.Op`
it will become or a :class:`Kind` for what is not an op (the input, the output, a BatchNorm
still to fold), and the compiler's error."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from tbn.errors import TbnError
from tbn.format.spec import Op


class TbnCompileError(TbnError, ValueError):
    """The model cannot be compiled; the message names the operation and where it is."""


class Kind(Enum):
    """Graph nodes that are not (yet) an op."""

    INPUT = "input"
    OUTPUT = "output"
    BATCHNORM = "batchnorm"  # folded into the layer before it, or an AFFINE op (fold.py)
    ALIAS = "alias"  # Identity, Dropout, .contiguous(): no node, its input's value
    PAD = "pad"  # constant padding: folded into the convolution or pool it feeds (fold.py)
    SCALE = "scale"  # times a constant: folded into the matrix product beside it (fold.py)


@dataclass
class Node:
    kind: Op | Kind
    inputs: list[str]
    output: str
    shape: tuple[int, ...]
    where: str
    attrs: dict[str, Any] = field(default_factory=dict)
    act: str = "none"
