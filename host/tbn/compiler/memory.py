"""Static memory plan: liveness-based placement of activation buffers in one arena."""

from __future__ import annotations

from dataclasses import dataclass

from tbn.format.spec import align


@dataclass
class Buffer:
    size: int
    first: int  # index of the op that writes it (-1: the model input)
    last: int  # index of the last op that reads it (n_ops: the model output)
    offset: int = 0


def plan(buffers: list[Buffer]) -> int:
    """Give each buffer an offset so that buffers alive at the same time never overlap;
    returns the arena size. Greedy by size: the largest buffer first, each at the lowest
    4-aligned offset clear of every already-placed buffer whose lifetime meets its own."""
    placed: list[Buffer] = []
    for buf in sorted(buffers, key=lambda b: (-b.size, b.first)):
        clashes = sorted((b for b in placed if b.first <= buf.last and buf.first <= b.last),
                         key=lambda b: b.offset)
        offset = 0
        for other in clashes:
            if offset + buf.size <= other.offset:
                break
            offset = max(offset, align(other.offset + other.size))
        buf.offset = offset
        placed.append(buf)
    return max((align(b.offset + b.size) for b in buffers), default=0)
