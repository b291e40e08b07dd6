"""argparse types shared by the commands: a bad value is refused while parsing, with the
range it must lie in, before anything runs."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T", int, float)


def _checked(text: str, parse: Callable[[str], T], kind: str, ok: Callable[[T], bool], want: str) -> T:
    try:
        v = parse(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
    if not ok(v):  # NaN fails every range check
        raise argparse.ArgumentTypeError(f"expected {want}, got {text}")
    return v


def count(text: str) -> int:
    """A whole number of things, 1 or more."""
    return _checked(text, int, "a whole number", lambda n: n >= 1, "1 or more")


def count_or_none(text: str) -> int:
    """A whole number of things, 0 (none) or more."""
    return _checked(text, int, "a whole number", lambda n: n >= 0, "0 or more")


def seconds(text: str) -> float:
    """A finite duration, 0 or more seconds."""
    return _checked(text, float, "a number of seconds", lambda v: 0 <= v < math.inf, "0 or more seconds")


def tcp_port(text: str) -> int:
    """A TCP port number, 1..65535."""
    return _checked(text, int, "a TCP port number", lambda p: 1 <= p <= 65535, "a TCP port in 1..65535")
