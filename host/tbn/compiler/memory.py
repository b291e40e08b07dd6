"""Compiler stage 4, the static memory plan: liveness-based placement of activation buffers
in one arena (:func:`plan_memory`, run once on the finished program).

No plan can be smaller than the most bytes alive at one time (the lower bound). Greedy
placement by size misses it on plain chains (a 4-conv network: 1,792 bytes where 1,280
are enough), and on a 2 KB board those bytes decide whether a model fits, so a bounded
search for a plan at the bound runs first and greedy placement is the fallback.
"""

from __future__ import annotations

from dataclasses import dataclass

from tbn.format import Flag, Op, Program
from tbn.format.spec import ALIGN, NONE_ID, Trait, align, has

SEARCH_STEPS = 20_000  # placements tried before the search gives up (milliseconds of work)


@dataclass
class Buffer:
    size: int
    first: int  # index of the op that writes it (-1: the model input)
    last: int  # index of the last op that reads it (n_ops: the model output)
    offset: int = 0


def _meet(a: Buffer, b: Buffer) -> bool:
    return a.first <= b.last and b.first <= a.last


def lower_bound(buffers: list[Buffer]) -> int:
    """The most (aligned) bytes alive at one op: no plan is smaller."""
    times = {t for b in buffers for t in (b.first, b.last)}
    return max((sum(align(b.size) for b in buffers if b.first <= t <= b.last) for t in times), default=0)


def plan(buffers: list[Buffer]) -> int:
    """Give each buffer a 4-aligned offset so that buffers alive at the same time never
    overlap; returns the arena size: the lower bound when the search finds such a plan,
    else greedy placement's."""
    order = sorted(buffers, key=lambda b: (-b.size, b.first))
    found = _search(order, lower_bound(buffers))
    if found is None:
        found = _greedy(order)
    for buf, offset in zip(order, found, strict=True):
        buf.offset = offset
    return max((align(b.offset + b.size) for b in buffers), default=0)


def _greedy(order: list[Buffer]) -> list[int]:
    """Each buffer, largest first, at the lowest offset clear of the placed ones it meets."""
    offsets: list[int] = []
    for i, buf in enumerate(order):
        clashes = sorted(
            ((offsets[j], order[j].size) for j in range(i) if _meet(order[j], buf)), key=lambda c: c[0]
        )
        offset = 0
        for other, size in clashes:
            if offset + buf.size <= other:
                break
            offset = max(offset, align(other + size))
        offsets.append(offset)
    return offsets


def _search(order: list[Buffer], limit: int) -> list[int] | None:
    """Offsets that keep every buffer below ``limit``, by depth-first search over each
    buffer's candidate offsets (0, the end of a placed buffer it meets, or flush with the
    top), or None when none turns up within SEARCH_STEPS placements."""
    offsets: list[int] = []
    steps = 0

    def fits(i: int, offset: int) -> bool:
        end = offset + order[i].size
        if offset < 0 or end > limit:
            return False
        return all(
            end <= offsets[j] or offsets[j] + order[j].size <= offset
            for j in range(i)
            if _meet(order[j], order[i])
        )

    def place(i: int) -> bool:
        nonlocal steps
        if i == len(order):
            return True
        ends = {align(offsets[j] + order[j].size) for j in range(i) if _meet(order[j], order[i])}
        top = (limit - order[i].size) // ALIGN * ALIGN
        for offset in sorted({0, top, *ends}):
            steps += 1
            if steps > SEARCH_STEPS:
                return False
            if fits(i, offset):
                offsets.append(offset)
                if place(i + 1):
                    return True
                offsets.pop()
        return False

    return offsets if place(0) else None


def plan_memory(prog: Program) -> None:
    """Give every tensor of ``prog`` its arena offset and set its arena size: tensors alive
    at once never overlap, a reshape shares its input's buffer, and an elementwise op writes
    over an input it is the last to read (Flag.IN_PLACE)."""
    n_ops = len(prog.ops)
    first = {0: -1}
    last = {0: -1}
    alias: dict[int, int] = {}
    for i, op in enumerate(prog.ops):
        out = op.args["output"]
        first[out] = last[out] = i
        for k in ("input", "a", "b"):
            if k in op.args:
                last[op.args[k]] = i
        if op.args.get("scratch", NONE_ID) != NONE_ID:  # working memory of this op alone
            first[op.args["scratch"]] = last[op.args["scratch"]] = i
        if op.opcode == Op.RESHAPE:
            alias[out] = op.args["input"]
    last[prog.output] = n_ops

    def root(t: int) -> int:
        while t in alias:
            t = alias[t]
        return t

    def group_last(r: int) -> int:
        return max(last[t] for t in range(len(prog.tensors)) if root(t) == r)

    # An elementwise op writes over an input whose buffer it is the last to read (never the
    # model's input, which the caller may read back): one buffer instead of two.
    for i, op in enumerate(prog.ops):
        if not has(op.opcode, Trait.IN_PLACE):
            continue
        out = op.args["output"]
        for k in ("input", "a", "b"):
            src = op.args.get(k)
            if (src is not None and root(src) != root(0) and group_last(root(src)) == i
                    and prog.tensors[src].nbytes == prog.tensors[out].nbytes):
                alias[out] = src
                prog.flags |= Flag.IN_PLACE
                break

    groups: dict[int, Buffer] = {}
    for t, tensor in enumerate(prog.tensors):
        r = root(t)
        b = groups.setdefault(r, Buffer(0, first[t], last[t]))
        b.size = max(b.size, tensor.nbytes)
        b.first, b.last = min(b.first, first[t]), max(b.last, last[t])
    prog.arena_size = plan(list(groups.values()))
    for t, tensor in enumerate(prog.tensors):
        tensor.offset = groups[root(t)].offset
