"""Parse and validate ``.tbn`` bytes. Every problem raises :class:`TbnFormatError`.

Structure is checked before anything is sliced (sizes come from 16-bit counts and the
file's own length, so a hostile file cannot make the reader allocate more than the file),
then :func:`tbn.format.validate.validate` checks the program's semantics.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tbn.files import FileError, read_bounded
from tbn.format.program import Operation, Program, TbnFormatError, Tensor, Tile, Vector
from tbn.format.spec import (
    ARENA,
    BIAS_DTYPES,
    CRC_START,
    DENSE,
    HEADER,
    HEADER_FIELDS,
    KNOWN_FLAGS,
    MAGIC,
    MAX_DIMS,
    MAX_FILE_BYTES,
    NUMPY_DTYPES,
    OP_LAYOUTS,
    QUANT,
    REQUIRED_FLAGS_MASK,
    RQ16_HEADER,
    SCALE_DTYPES,
    TENSOR,
    TILE,
    VECTOR,
    VERSION_MAJOR,
    VERSION_MINOR,
    Act,
    DType,
    Flag,
    Op,
    vector_nbytes,
)
from tbn.format.validate import validate


def _newer(minor: int) -> str:
    return (f" (the file is format {VERSION_MAJOR}.{minor}; this reader knows "
            f"{VERSION_MAJOR}.{VERSION_MINOR}: upgrade tbn to read it)") if minor > VERSION_MINOR else ""


@dataclass
class _Cursor:
    """The file, where the next table starts, and where constant data may lie."""

    data: bytes
    h: dict[str, int]
    pos: int = HEADER.size
    data_start: int = 0

    @property
    def newer(self) -> str:
        return _newer(self.h["minor"])

    def entries(self, st: struct.Struct, n: int) -> list[tuple]:
        """The next table: ``n`` entries of ``st``."""
        out = [st.unpack_from(self.data, self.pos + i * st.size) for i in range(n)]
        self.pos += n * st.size
        return out

    def blob(self, offset: int, nbytes: int, what: str) -> bytes:
        size = self.h["file_size"]
        if offset % 4 or offset < self.data_start or offset + nbytes > size:
            raise TbnFormatError(f"{what}: data at offset {offset} ({nbytes} bytes) lies outside "
                                 f"the data region [{self.data_start}, {size}) or is not 4-aligned")
        return self.data[offset:offset + nbytes]


def read(data: bytes | bytearray | memoryview) -> Program:
    """Decode and validate a ``.tbn`` file's bytes."""
    cur = _header(bytes(data))
    h = cur.h
    int8 = bool(h["flags"] & Flag.INT8)
    tensors = _tensors(cur, int8)
    tiles = _tiles(cur)
    scales = _vectors(cur, h["n_scales"], "scale", SCALE_DTYPES)
    biases = _vectors(cur, h["n_biases"], "bias", BIAS_DTYPES)
    dense = _dense(cur)
    prog = Program(flags=h["flags"], tensors=tensors, tiles=tiles, scales=scales, biases=biases,
                   dense=dense, ops=_ops(cur), arena_size=h["arena_size"], minor=h["minor"])
    validate(prog)
    return prog


# What users give by mistake, told apart by their first bytes: (prefix, what it is, what to do).
_COMPILE_IT = "compile it first: tbn compile MODEL.pt -o m.tbn"
_OTHER_FILES = (
    (b"PK\x03\x04", "a PyTorch file (model.pt or checkpoint.pt)", _COMPILE_IT),
    (b"\x80\x02", "a pickled PyTorch file", _COMPILE_IT),
    (b"\x93NUMPY", "a numpy .npy array", "pass inputs with --input, the model as a .tbn"),
    (b"\x1f\x8b", "gzip data", "unpack it, or give the .tbn that `tbn compile` wrote"),
    (b"{", "JSON text (metrics.json?)", "give the .tbn that `tbn compile` wrote"),
)


def _looks_like(data: bytes) -> str:
    """A hint naming what a file that is not .tbn seems to be, or ''."""
    for prefix, what, remedy in _OTHER_FILES:
        if data.startswith(prefix):
            return f"; it looks like {what}: {remedy}"
    return ""


def _header(data: bytes) -> _Cursor:
    """The header's fields, checked: magic, version, length, CRC, flags, section sizes."""
    if len(data) < HEADER.size:
        raise TbnFormatError(f"file is {len(data)} bytes, shorter than the {HEADER.size}-byte header"
                             f"{_looks_like(data)}")
    h = dict(zip(HEADER_FIELDS, HEADER.unpack_from(data), strict=True))
    if h["magic"] != MAGIC:
        raise TbnFormatError(f"bad magic {h['magic']!r}: not a .tbn file (expected {MAGIC!r})"
                             f"{_looks_like(data)}")
    if h["major"] != VERSION_MAJOR:
        remedy = ("it was compiled by an older tbn: compile the model again (`tbn compile`)"
                  if h["major"] < VERSION_MAJOR else "it was compiled by a newer tbn: upgrade tbn")
        raise TbnFormatError(f"format major version {h['major']} is not supported (this reader reads "
                             f"{VERSION_MAJOR}.x); {remedy}")
    size = h["file_size"]
    if size != len(data):
        what = "truncated" if len(data) < size else "has trailing bytes"
        raise TbnFormatError(f"file {what}: header says {size} bytes, got {len(data)}")
    actual = zlib.crc32(data[CRC_START:])
    if actual != h["crc32"]:
        raise TbnFormatError(f"CRC32 mismatch: header says {h['crc32']:08x}, contents give {actual:08x} "
                             f"(the file is corrupt)")
    unknown = h["flags"] & REQUIRED_FLAGS_MASK & ~KNOWN_FLAGS
    if unknown:
        raise TbnFormatError(f"unknown required feature flags 0x{unknown:04x}{_newer(h['minor'])}")
    quant = QUANT.size if h["flags"] & Flag.INT8 else 0
    table_bytes = (h["n_tensors"] * (TENSOR.size + ARENA.size + quant) + h["n_tiles"] * TILE.size
                   + (h["n_scales"] + h["n_biases"]) * VECTOR.size + h["n_dense"] * DENSE.size)
    data_start = HEADER.size + table_bytes + h["ops_size"]
    if data_start > size:
        raise TbnFormatError(f"section counts need {data_start} bytes of tables and ops, "
                             f"but the file has {size}")
    if h["n_tensors"] == 0 or h["n_ops"] == 0:
        raise TbnFormatError(f"a model needs tensors and ops (got {h['n_tensors']} tensors, "
                             f"{h['n_ops']} ops)")
    return _Cursor(data, h, data_start=data_start)


def _tensors(cur: _Cursor, int8: bool) -> list[Tensor]:
    """The tensor table, the arena plan and (INT8 files) the quantisation table."""
    n, arena_size = cur.h["n_tensors"], cur.h["arena_size"]
    tensors = []
    for i, (dtype, ndim, reserved, *dims) in enumerate(cur.entries(TENSOR, n)):
        if dtype not in DType._value2member_map_:
            raise TbnFormatError(f"tensor {i}: unknown dtype {dtype}{cur.newer}")
        if not 1 <= ndim <= MAX_DIMS or any(d < 1 for d in dims[:ndim]) or any(dims[ndim:]) or reserved:
            raise TbnFormatError(f"tensor {i}: malformed shape (ndim {ndim}, dims {dims})")
        tensors.append(Tensor(DType(dtype), tuple(dims[:ndim])))
    for i, (t, (offset, nbytes)) in enumerate(zip(tensors, cur.entries(ARENA, n), strict=True)):
        t.offset = offset
        if nbytes != t.nbytes:
            raise TbnFormatError(f"tensor {i}: arena size {nbytes} does not match its shape "
                                 f"{t.shape} ({t.nbytes} bytes)")
        if t.offset % 4 or t.offset + nbytes > arena_size:
            raise TbnFormatError(f"tensor {i}: arena slot [{t.offset}, {t.offset + nbytes}) is "
                                 f"misaligned or beyond the arena ({arena_size} bytes)")
    if int8:
        for t, q in zip(tensors, cur.entries(QUANT, n), strict=True):
            t.scale, t.zero_point, t.qmin, t.qmax = q
    return tensors


def _tiles(cur: _Cursor) -> list[Tile]:
    tiles = []
    for i, (n_bits, offset) in enumerate(cur.entries(TILE, cur.h["n_tiles"])):
        if n_bits == 0:
            raise TbnFormatError(f"tile {i}: zero bits")
        raw = cur.blob(offset, 4 * ((n_bits + 31) // 32), f"tile {i}")  # whole 32-bit words
        tiles.append(Tile(n_bits, np.frombuffer(raw[:(n_bits + 7) // 8], dtype=np.uint8)))
    return tiles


def _vectors(cur: _Cursor, n: int, kind: str, allowed: tuple[DType, ...]) -> list[Vector]:
    out = []
    for i, (offset, count, dtype, reserved) in enumerate(cur.entries(VECTOR, n)):
        if dtype not in [d.value for d in allowed]:
            raise TbnFormatError(f"{kind} {i}: dtype {dtype} is not allowed for {kind}s{cur.newer}")
        if count == 0 or reserved:
            raise TbnFormatError(f"{kind} {i}: empty or malformed entry")
        dt = DType(dtype)
        raw = cur.blob(offset, vector_nbytes(dt, count), f"{kind} {i}")
        if dt == DType.RQ16:
            pre_shift, shift, reserved = RQ16_HEADER.unpack_from(raw)
            if reserved:
                raise TbnFormatError(f"{kind} {i}: malformed RQ16 header")
            arr = np.frombuffer(raw[RQ16_HEADER.size:], dtype=NUMPY_DTYPES[dt])
            out.append(Vector(dt, arr, pre_shift, shift))
            continue
        arr = np.frombuffer(raw, dtype=NUMPY_DTYPES[dt])
        out.append(Vector(dt, arr.reshape(count, 2) if dt == DType.REQUANT else arr))
    return out


def _dense(cur: _Cursor) -> list[np.ndarray]:
    dense = []
    for i, (offset, count) in enumerate(cur.entries(DENSE, cur.h["n_dense"])):
        if count == 0:
            raise TbnFormatError(f"dense weight {i}: zero entries")
        dense.append(np.frombuffer(cur.blob(offset, count, f"dense weight {i}"), dtype=np.int8))
    return dense


def _ops(cur: _Cursor) -> list[Operation]:
    data, pos, n_ops = cur.data, cur.pos, cur.h["n_ops"]
    end = pos + cur.h["ops_size"]
    ops = []
    for i in range(n_ops):
        if pos + 2 > end:
            raise TbnFormatError(f"op {i}: the ops section ends after {i} of {n_ops} ops")
        opcode, act = data[pos], data[pos + 1]
        if opcode not in Op._value2member_map_:
            raise TbnFormatError(f"op {i}: unknown opcode {opcode}{cur.newer}")
        if act not in Act._value2member_map_:
            raise TbnFormatError(f"op {i}: unknown fused activation {act}{cur.newer}")
        layout = OP_LAYOUTS[Op(opcode)]
        if pos + layout.size > end:
            raise TbnFormatError(f"op {i} ({Op(opcode).name}): truncated by the end of the ops section")
        values = layout.struct.unpack_from(data, pos)[2:]
        ops.append(Operation(Op(opcode), Act(act), dict(zip(layout.names, values, strict=True))))
        pos += layout.size
    if pos != end:
        raise TbnFormatError(f"ops section has {end - pos} bytes after its {n_ops} ops")
    return ops


def load(path: str | os.PathLike) -> Program:
    """Read and validate a ``.tbn`` file from disk."""
    p = Path(path)
    try:  # a regular file no larger than file_size (u32) can say: never a FIFO or /dev/zero
        data = read_bounded(p, MAX_FILE_BYTES, "a .tbn model")
    except FileError as e:
        raise TbnFormatError(str(e)) from None
    try:
        return read(data)
    except TbnFormatError as e:
        raise TbnFormatError(f"{p}: {e}") from None
