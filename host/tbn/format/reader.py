"""Parse and validate ``.tbn`` bytes. Every problem raises :class:`TbnFormatError`.

Structure is checked before anything is sliced (sizes come from 16-bit counts and the
file's own length, so a hostile file cannot make the reader allocate more than the file),
then :func:`tbn.format.validate.validate` checks the program's semantics.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np

from tbn.format.program import Operation, Program, TbnFormatError, Tensor, Tile, Vector
from tbn.format.spec import (
    ARENA,
    CRC_START,
    DENSE,
    DTYPE_SIZE,
    HEADER,
    KNOWN_FLAGS,
    MAGIC,
    MAX_DIMS,
    OP_LAYOUTS,
    QUANT,
    REQUIRED_FLAGS_MASK,
    TENSOR,
    TILE,
    VECTOR,
    VERSION_MAJOR,
    VERSION_MINOR,
    Act,
    DType,
    Flag,
    Op,
)
from tbn.format.validate import validate
from tbn.format.writer import NUMPY_DTYPES


def _newer(minor: int) -> str:
    return (f" (the file is format 1.{minor}; this reader knows 1.{VERSION_MINOR}: "
            f"upgrade tbn to read it)") if minor > VERSION_MINOR else ""


def read(data: bytes | bytearray | memoryview) -> Program:
    """Decode and validate a ``.tbn`` file's bytes."""
    data = bytes(data)
    if len(data) < HEADER.size:
        raise TbnFormatError(f"file is {len(data)} bytes, shorter than the {HEADER.size}-byte header")
    (magic, major, minor, size, crc, flags, arena_size, n_tensors, n_tiles, n_scales, n_biases,
     n_dense, n_ops, ops_size) = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise TbnFormatError(f"bad magic {magic!r}: not a .tbn file (expected {MAGIC!r})")
    if major != VERSION_MAJOR:
        raise TbnFormatError(f"format major version {major} is not supported "
                             f"(this reader reads {VERSION_MAJOR}.x)")
    if size != len(data):
        what = "truncated" if len(data) < size else "has trailing bytes"
        raise TbnFormatError(f"file {what}: header says {size} bytes, got {len(data)}")
    actual = zlib.crc32(data[CRC_START:])
    if actual != crc:
        raise TbnFormatError(f"CRC32 mismatch: header says {crc:08x}, contents give {actual:08x} "
                             f"(the file is corrupt)")
    unknown = flags & REQUIRED_FLAGS_MASK & ~KNOWN_FLAGS
    if unknown:
        raise TbnFormatError(f"unknown required feature flags 0x{unknown:04x}{_newer(minor)}")
    int8 = bool(flags & Flag.INT8)

    pos = HEADER.size
    table_bytes = (n_tensors * (TENSOR.size + ARENA.size + (QUANT.size if int8 else 0))
                   + (n_tiles + n_scales + n_biases) * 8 + n_dense * DENSE.size)
    data_start = pos + table_bytes + ops_size
    if data_start > size:
        raise TbnFormatError(f"section counts need {data_start} bytes of tables and ops, "
                             f"but the file has {size}")
    if n_tensors == 0 or n_ops == 0:
        raise TbnFormatError(f"a model needs tensors and ops (got {n_tensors} tensors, {n_ops} ops)")

    def blob(offset: int, nbytes: int, what: str) -> bytes:
        if offset % 4 or offset < data_start or offset + nbytes > size:
            raise TbnFormatError(f"{what}: data at offset {offset} ({nbytes} bytes) lies outside "
                                 f"the data region [{data_start}, {size}) or is not 4-aligned")
        return data[offset:offset + nbytes]

    tensors = []
    for i in range(n_tensors):
        dtype, ndim, reserved, *dims = TENSOR.unpack_from(data, pos + i * TENSOR.size)
        if dtype not in DType._value2member_map_:
            raise TbnFormatError(f"tensor {i}: unknown dtype {dtype}{_newer(minor)}")
        if not 1 <= ndim <= MAX_DIMS or any(d < 1 for d in dims[:ndim]) or any(dims[ndim:]) or reserved:
            raise TbnFormatError(f"tensor {i}: malformed shape (ndim {ndim}, dims {dims})")
        tensors.append(Tensor(DType(dtype), tuple(dims[:ndim])))
    pos += n_tensors * TENSOR.size
    for i, t in enumerate(tensors):
        t.offset, nbytes = ARENA.unpack_from(data, pos + i * ARENA.size)
        if nbytes != t.nbytes:
            raise TbnFormatError(f"tensor {i}: arena size {nbytes} does not match its shape "
                                 f"{t.shape} ({t.nbytes} bytes)")
        if t.offset % 4 or t.offset + nbytes > arena_size:
            raise TbnFormatError(f"tensor {i}: arena slot [{t.offset}, {t.offset + nbytes}) is "
                                 f"misaligned or beyond the arena ({arena_size} bytes)")
    pos += n_tensors * ARENA.size
    if int8:
        for i, t in enumerate(tensors):
            t.scale, t.zero_point, t.qmin, t.qmax = QUANT.unpack_from(data, pos + i * QUANT.size)
        pos += n_tensors * QUANT.size

    tiles = []
    for i in range(n_tiles):
        n_bits, offset = TILE.unpack_from(data, pos + i * TILE.size)
        if n_bits == 0:
            raise TbnFormatError(f"tile {i}: zero bits")
        raw = blob(offset, 4 * ((n_bits + 31) // 32), f"tile {i}")  # whole 32-bit words
        tiles.append(Tile(n_bits, np.frombuffer(raw[:(n_bits + 7) // 8], dtype=np.uint8)))
    pos += n_tiles * TILE.size

    def vectors(n: int, kind: str, allowed: tuple[DType, ...]) -> list[Vector]:
        nonlocal pos
        out = []
        for i in range(n):
            offset, count, dtype, reserved = VECTOR.unpack_from(data, pos + i * VECTOR.size)
            if dtype not in [d.value for d in allowed]:
                raise TbnFormatError(f"{kind} {i}: dtype {dtype} is not allowed for {kind}s{_newer(minor)}")
            if count == 0 or reserved:
                raise TbnFormatError(f"{kind} {i}: empty or malformed entry")
            dt = DType(dtype)
            raw = blob(offset, count * DTYPE_SIZE[dt], f"{kind} {i}")
            arr = np.frombuffer(raw, dtype=NUMPY_DTYPES[dt])
            out.append(Vector(dt, arr.reshape(count, 2) if dt == DType.REQUANT else arr))
        pos += n * VECTOR.size
        return out

    scales = vectors(n_scales, "scale", (DType.F32, DType.F16, DType.REQUANT))
    biases = vectors(n_biases, "bias", (DType.F32, DType.I32))
    dense = []
    for i in range(n_dense):
        offset, count = DENSE.unpack_from(data, pos + i * DENSE.size)
        if count == 0:
            raise TbnFormatError(f"dense weight {i}: zero entries")
        dense.append(np.frombuffer(blob(offset, count, f"dense weight {i}"), dtype=np.int8))
    pos += n_dense * DENSE.size

    ops = []
    end = pos + ops_size
    for i in range(n_ops):
        if pos + 2 > end:
            raise TbnFormatError(f"op {i}: the ops section ends after {i} of {n_ops} ops")
        opcode, act = data[pos], data[pos + 1]
        if opcode not in Op._value2member_map_:
            raise TbnFormatError(f"op {i}: unknown opcode {opcode}{_newer(minor)}")
        if act not in Act._value2member_map_:
            raise TbnFormatError(f"op {i}: unknown fused activation {act}{_newer(minor)}")
        layout = OP_LAYOUTS[Op(opcode)]
        if pos + layout.size > end:
            raise TbnFormatError(f"op {i} ({Op(opcode).name}): truncated by the end of the ops section")
        values = layout.struct.unpack_from(data, pos)[2:]
        ops.append(Operation(Op(opcode), Act(act), dict(zip(layout.names, values, strict=True))))
        pos += layout.size
    if pos != end:
        raise TbnFormatError(f"ops section has {end - pos} bytes after its {n_ops} ops")

    prog = Program(flags=flags, tensors=tensors, tiles=tiles, scales=scales, biases=biases,
                   dense=dense, ops=ops, arena_size=arena_size, minor=minor)
    validate(prog)
    return prog


def load(path: str | os.PathLike) -> Program:
    """Read and validate a ``.tbn`` file from disk."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise TbnFormatError(f"{p}: cannot read ({e.strerror})") from e
    try:
        return read(data)
    except TbnFormatError as e:
        raise TbnFormatError(f"{p}: {e}") from None
