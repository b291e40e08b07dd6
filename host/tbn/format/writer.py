"""Serialise a :class:`Program` to ``.tbn`` bytes (layout in docs/bytecode.md)."""

from __future__ import annotations

import zlib

import numpy as np

from tbn.format.program import Program, TbnFormatError, Vector
from tbn.format.spec import (
    ARENA,
    CRC_START,
    DENSE,
    HEADER,
    MAGIC,
    MAX_DIMS,
    NONE_ID,
    NUMPY_DTYPES,
    OP_LAYOUTS,
    OPTIONAL_KINDS,
    QUANT,
    RQ16_HEADER,
    TENSOR,
    TILE,
    VECTOR,
    VERSION_MAJOR,
    DType,
    align,
    minor_for,
)
from tbn.format.validate import token_linear, validate


def vector_bytes(v: Vector) -> bytes:
    """The little-endian bytes of a scale or bias vector (an RQ16 one after its shifts)."""
    head = RQ16_HEADER.pack(v.pre_shift, v.shift, 0) if v.dtype == DType.RQ16 else b""
    return head + np.ascontiguousarray(v.data, dtype=NUMPY_DTYPES[v.dtype]).tobytes()


def _pad(b: bytes) -> bytes:
    return b + bytes(align(len(b)) - len(b))


def serialize(prog: Program) -> bytes:
    """The ``.tbn`` file for ``prog``. Raises :class:`TbnFormatError` if it cannot be encoded."""
    if not prog.ops:
        raise TbnFormatError("a program needs at least one op")
    validate(prog)
    tables = bytearray()
    for t in prog.tensors:
        if not 1 <= len(t.shape) <= MAX_DIMS or any(not 1 <= d <= 0xFFFF for d in t.shape):
            raise TbnFormatError(f"tensor shape {t.shape} cannot be encoded (1-4 dims of 1..65535)")
        tables += TENSOR.pack(t.dtype, len(t.shape), 0, *t.shape, *([0] * (MAX_DIMS - len(t.shape))))
    for t in prog.tensors:
        tables += ARENA.pack(t.offset, t.nbytes)
    if prog.int8:
        for t in prog.tensors:
            tables += QUANT.pack(t.scale, t.zero_point, t.qmin, t.qmax)

    ops = bytearray()
    for op in prog.ops:
        layout = OP_LAYOUTS[op.opcode]
        values = [op.args.get(n, NONE_ID if k in OPTIONAL_KINDS else 0) for n, k in layout.fields
                  if not k.startswith("pad")]
        ops += layout.struct.pack(op.opcode, op.act, *values)

    n_tables = HEADER.size + len(tables) + len(prog.tiles) * TILE.size \
        + (len(prog.scales) + len(prog.biases)) * VECTOR.size + len(prog.dense) * DENSE.size
    data_start = align(n_tables + len(ops))
    blobs = bytearray()
    entries = bytearray()

    def place(raw: bytes) -> int:
        offset = data_start + len(blobs)
        blobs.extend(_pad(raw))
        return offset

    for tile in prog.tiles:
        entries += TILE.pack(tile.n_bits, place(tile.bits.tobytes()))
    for vec in prog.scales + prog.biases:
        if not 1 <= vec.count <= 0xFFFF:
            raise TbnFormatError(f"a vector of {vec.count} entries cannot be encoded (1..65535)")
        entries += VECTOR.pack(place(vector_bytes(vec)), vec.count, vec.dtype, 0)
    for w in prog.dense:
        entries += DENSE.pack(place(w.astype(np.int8).tobytes()), w.size)

    body = bytes(tables) + bytes(entries) + bytes(ops)
    body += bytes(data_start - HEADER.size - len(body)) + bytes(blobs)
    size = HEADER.size + len(body)
    kinds = [("scale", v.dtype) for v in prog.scales] + [("bias", v.dtype) for v in prog.biases]
    tokens = any(token_linear(prog, op) for op in prog.ops)
    minor = minor_for(prog.flags, kinds, prog.minor, (op.opcode for op in prog.ops), tokens)
    header = HEADER.pack(MAGIC, VERSION_MAJOR, minor, size, 0, prog.flags, prog.arena_size,
                         len(prog.tensors), len(prog.tiles), len(prog.scales), len(prog.biases),
                         len(prog.dense), len(prog.ops), len(ops))
    crc = zlib.crc32(header[CRC_START:] + body)
    return header[:12] + crc.to_bytes(4, "little") + header[16:] + body
