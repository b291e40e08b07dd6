"""The unary family (one op per elementwise function, :mod:`tbn.format.spec`) as PyTorch
modules: what the compiler recognises, the golden vectors build and the Keras front end
converts each Keras activation to. A module is told apart by its class and, for GELU, its
``approximate``."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import nn

from tbn.format.spec import Op

UNARY_MODULES: dict[Op, Callable[[], nn.Module]] = {
    Op.SIGMOID: nn.Sigmoid, Op.TANH: nn.Tanh, Op.HARDSIGMOID: nn.Hardsigmoid, Op.HARDSWISH: nn.Hardswish,
    Op.SILU: nn.SiLU, Op.GELU: nn.GELU, Op.GELU_TANH: partial(nn.GELU, approximate="tanh"),
    Op.LEAKY_RELU: partial(nn.LeakyReLU, 0.1), Op.ELU: partial(nn.ELU, 0.5)}
