"""The ``.tbn`` bytecode layout: the single source of truth (docs/bytecode.md explains it).

The writer, the reader, the C header (``firmware/lib/tbn/include/tbn_format.h``, generated
from this module) and every runtime take their numbers from here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

MAGIC = b"TBNB"
VERSION_MAJOR = 1
VERSION_MINOR = 0
ALIGN = 4
NONE_ID = 0xFFFF  # an absent optional operand (scale, bias)
MAX_DIMS = 4
CRC_START = 16  # the CRC32 covers bytes [CRC_START, file_size)

HEADER = struct.Struct("<4sHHIIIIHHHHHHI")
HEADER_FIELDS = ("magic", "major", "minor", "file_size", "crc32", "flags", "arena_size", "n_tensors",
                 "n_tiles", "n_scales", "n_biases", "n_dense", "n_ops", "ops_size")
TENSOR = struct.Struct("<BBH4H")
TENSOR_FIELDS = ("dtype", "ndim", "reserved", "dims")
ARENA = struct.Struct("<II")
ARENA_FIELDS = ("offset", "size")
QUANT = struct.Struct("<fhbb")  # INT8 files only
QUANT_FIELDS = ("scale", "zero_point", "qmin", "qmax")
TILE = struct.Struct("<II")
TILE_FIELDS = ("n_bits", "offset")
VECTOR = struct.Struct("<IHBB")  # scales and biases
VECTOR_FIELDS = ("offset", "count", "dtype", "reserved")
DENSE = struct.Struct("<II")  # int8 weights
DENSE_FIELDS = ("offset", "count")
# (name, struct, field names) of each table, in file order after the header.
TABLES = (("tensor", TENSOR, TENSOR_FIELDS), ("arena", ARENA, ARENA_FIELDS),
          ("quant", QUANT, QUANT_FIELDS), ("tile", TILE, TILE_FIELDS),
          ("vector", VECTOR, VECTOR_FIELDS), ("dense", DENSE, DENSE_FIELDS))


class Flag(IntEnum):
    """Header flag bits. Bits 0-15 are required features: a reader that does not know a
    set bit must refuse the file. Bits 16-31 are hints a reader may ignore."""

    INT8 = 1 << 0


REQUIRED_FLAGS_MASK = 0x0000FFFF
KNOWN_FLAGS = int(Flag.INT8)


class DType(IntEnum):
    F32 = 1
    F16 = 2
    I8 = 3
    I32 = 4
    REQUANT = 5  # (int32 multiplier, int32 shift) pairs


DTYPE_SIZE = {DType.F32: 4, DType.F16: 2, DType.I8: 1, DType.I32: 4, DType.REQUANT: 8}
TENSOR_DTYPES = (DType.F32, DType.I8, DType.I32)
SCALE_DTYPES = (DType.F32, DType.F16, DType.REQUANT)
BIAS_DTYPES = (DType.F32, DType.I32)


class Act(IntEnum):
    """Fused activation (the byte after the opcode)."""

    NONE = 0
    RELU = 1
    RELU6 = 2


class Op(IntEnum):
    TILED_LINEAR = 1
    TILED_CONV2D = 2
    DENSE_LINEAR = 3
    DENSE_CONV2D = 4
    MAXPOOL2D = 5
    AVGPOOL2D = 6
    GLOBAL_AVGPOOL = 7
    RESHAPE = 8
    ADD = 9
    ACTIVATION = 10
    SOFTMAX = 11
    ARGMAX = 12
    AFFINE = 13


@dataclass(frozen=True)
class OpLayout:
    """Fields after the two-byte (opcode, act) prefix, in order. ``kind`` says what an
    id field refers to: tensor, tile, scale, bias, dense, or ``u8``/``u16``/``pad``."""

    fields: tuple[tuple[str, str], ...]

    @property
    def struct(self) -> struct.Struct:
        codes = {"tensor": "H", "tile": "H", "scale": "H", "bias": "H", "dense": "H",
                 "u16": "H", "u8": "B", "pad8": "x", "pad16": "2x"}
        return struct.Struct("<BB" + "".join(codes[k] for _, k in self.fields))

    @property
    def size(self) -> int:
        return self.struct.size

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, k in self.fields if not k.startswith("pad"))


_CONV_GEOM = (("kh", "u8"), ("kw", "u8"), ("sh", "u8"), ("sw", "u8"), ("dh", "u8"), ("dw", "u8"),
              ("pt", "u8"), ("pl", "u8"), ("pb", "u8"), ("pr", "u8"), ("groups", "u16"))
_POOL_GEOM = (("kh", "u8"), ("kw", "u8"), ("sh", "u8"), ("sw", "u8"),
              ("pt", "u8"), ("pl", "u8"), ("pb", "u8"), ("pr", "u8"), ("_", "pad16"))
_UNARY = (("input", "tensor"), ("output", "tensor"), ("_", "pad16"))

OP_LAYOUTS: dict[Op, OpLayout] = {
    Op.TILED_LINEAR: OpLayout((("input", "tensor"), ("output", "tensor"), ("tile", "tile"),
                               ("scale", "scale"), ("bias", "bias"))),
    Op.TILED_CONV2D: OpLayout((("input", "tensor"), ("output", "tensor"), ("tile", "tile"),
                               ("scale", "scale"), ("bias", "bias"), *_CONV_GEOM)),
    Op.DENSE_LINEAR: OpLayout((("input", "tensor"), ("output", "tensor"), ("weight", "dense"),
                               ("scale", "scale"), ("bias", "bias"))),
    Op.DENSE_CONV2D: OpLayout((("input", "tensor"), ("output", "tensor"), ("weight", "dense"),
                               ("scale", "scale"), ("bias", "bias"), *_CONV_GEOM)),
    Op.MAXPOOL2D: OpLayout((("input", "tensor"), ("output", "tensor"), *_POOL_GEOM)),
    Op.AVGPOOL2D: OpLayout((("input", "tensor"), ("output", "tensor"), *_POOL_GEOM)),
    Op.GLOBAL_AVGPOOL: OpLayout(_UNARY),
    Op.RESHAPE: OpLayout(_UNARY),
    Op.ADD: OpLayout((("a", "tensor"), ("b", "tensor"), ("output", "tensor"), ("scale", "scale"),
                      ("_", "pad16"))),
    Op.ACTIVATION: OpLayout(_UNARY),
    Op.SOFTMAX: OpLayout(_UNARY),
    Op.ARGMAX: OpLayout(_UNARY),
    Op.AFFINE: OpLayout((("input", "tensor"), ("output", "tensor"), ("scale", "scale"),
                         ("bias", "bias"), ("_", "pad16"))),
}

for _op, _layout in OP_LAYOUTS.items():
    assert _layout.size % ALIGN == 0, f"{_op.name} layout is {_layout.size} bytes, not 4-aligned"


def align(n: int) -> int:
    """``n`` rounded up to the format's alignment."""
    return (n + ALIGN - 1) // ALIGN * ALIGN
