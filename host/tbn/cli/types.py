"""argparse types shared by the commands: a bad value is refused while parsing, with the
range it must lie in, before anything runs."""

from __future__ import annotations

import argparse
import math


def count(text: str) -> int:
    """A whole number of things, 1 or more."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {n}")
    return n


def seconds(text: str) -> float:
    """A finite duration, 0 or more seconds."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not (v >= 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"expected 0 or more seconds, got {text}")
    return v


def tcp_port(text: str) -> int:
    """A TCP port number, 1..65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a TCP port number, got {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port in 1..65535, got {port}")
    return port
