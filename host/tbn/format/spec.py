"""The ``.tbn`` bytecode layout: the single source of truth (docs/bytecode.md explains it).

The writer, the reader, the C header (``firmware/lib/tbn/include/tbn_format.h``, generated
from this module) and every runtime take their numbers from here.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from functools import cached_property

import numpy as np

from tbn.format.expr import parse as parse_fn
from tbn.format.expr import uses_parameter

MAGIC = b"TBNB"
VERSION_MAJOR = 2  # 2: tiled ops name a scratch tensor for their lookup tables
VERSION_MINOR = 5  # 2.1: the IN_PLACE flag; 2.2: narrow per-output parameters (RQ16, I16, F16 biases);
# 2.3: the unary family (elementwise functions, INT8 through a 256-entry table); 2.4: more of it;
# 2.5: token ops (linear over the last axis of a (..., K) input, LayerNorm, transpose, matrix
# products of two activations) and nearest upsampling
TOKEN_LINEAR_SINCE = 5  # a linear op whose output has more than one axis: one row per token
ALIGN = 4
NONE_ID = 0xFFFF  # an absent optional operand (scale, bias)
MAX_DIMS = 4
CRC_START = 16  # the CRC32 covers bytes [CRC_START, file_size)
MAX_FILE_BYTES = 0xFFFFFFFF  # file_size is a u32

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
RQ16_HEADER = struct.Struct("<BBH")  # leads an RQ16 vector's data: one layer's two shifts
RQ16_HEADER_FIELDS = ("pre_shift", "shift", "reserved")
RQ16_MAX_SHIFT = 31  # both shifts of an RQ16 vector act on 32-bit values
RQ16_MAX_MULT = 0x7FFF  # |multiplier| of an RQ16 vector
INT32_MAX = 0x7FFFFFFF
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
    IN_PLACE = 1 << 1  # an IN_PLACE op may write its output over an input's exact arena slot (2.1)


REQUIRED_FLAGS_MASK = 0x0000FFFF
KNOWN_FLAGS = int(Flag.INT8 | Flag.IN_PLACE)
FLAG_SINCE = {Flag.INT8: 0, Flag.IN_PLACE: 1}  # the minor version that added each flag


def minor_for(flags: int, vectors: Iterable[tuple[str, int]] = (), minor: int = 0,
              ops: Iterable[int] = (), token_linear: bool = False) -> int:
    """The minor version a file states: the newest that any of its flags, of its
    ``(table, dtype)`` vector kinds (``("bias", DType.I16)``), of its opcodes or a linear
    op over tokens needs."""
    need = [v for f, v in FLAG_SINCE.items() if flags & f]
    need += [TOKEN_LINEAR_SINCE] if token_linear else []
    need += [VECTOR_SINCE.get((table, DType(d)), 0) for table, d in vectors]
    need += [OPS[Op(op)].since for op in ops]
    return max([minor, *need])


class DType(IntEnum):
    F32 = 1
    F16 = 2
    I8 = 3
    I32 = 4
    REQUANT = 5  # (int32 multiplier, int32 shift) pairs: the wide INT8 requantisation
    I16 = 6  # narrow INT8 biases (2.2)
    RQ16 = 7  # narrow INT8 requantisation: RQ16_HEADER, then int16 multipliers (2.2)


DTYPE_SIZE = {DType.F32: 4, DType.F16: 2, DType.I8: 1, DType.I32: 4, DType.REQUANT: 8, DType.I16: 2,
              DType.RQ16: 2}
# numpy's name of each dtype's element (a REQUANT entry is two "<i4")
NUMPY_DTYPES = {DType.F32: "<f4", DType.F16: "<f2", DType.I8: "i1", DType.I32: "<i4", DType.REQUANT: "<i4",
                DType.I16: "<i2", DType.RQ16: "<i2"}
TENSOR_DTYPES = (DType.F32, DType.I8, DType.I32)
# scale and bias dtypes by the model's activations (INT8 or F32); the first of each is the wide form
INT8_SCALE_DTYPES = (DType.REQUANT, DType.RQ16)
INT8_BIAS_DTYPES = (DType.I32, DType.I16)
F32_VECTOR_DTYPES = (DType.F32, DType.F16)
SCALE_DTYPES = (*F32_VECTOR_DTYPES, *INT8_SCALE_DTYPES)
BIAS_DTYPES = (*F32_VECTOR_DTYPES, *INT8_BIAS_DTYPES)
# the minor version that first allowed a (table, dtype) vector
VECTOR_SINCE = {("scale", DType.RQ16): 2, ("bias", DType.I16): 2, ("bias", DType.F16): 2}


def vector_nbytes(dtype: DType, count: int) -> int:
    """Bytes of a scale or bias vector's data (before alignment padding)."""
    return (RQ16_HEADER.size if dtype == DType.RQ16 else 0) + count * DTYPE_SIZE[dtype]


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
    SIGMOID = 14
    TANH = 15
    HARDSIGMOID = 16
    HARDSWISH = 17
    SILU = 18
    GELU = 19
    GELU_TANH = 20
    SOFTMAX_AXIS = 21
    MUL = 22
    CONCAT = 23
    LAYERNORM = 24
    TRANSPOSE = 25
    BATCH_MATMUL = 26
    UPSAMPLE_NEAREST = 27
    LEAKY_RELU = 28
    ELU = 29
    UPSAMPLE_ZEROS = 30
    PAD = 31


class Trait(IntFlag):
    """What an op is, as every reader, runtime and tool asks it (``OPS[op].traits``).

    The first group is declared per op; the operand traits (``SCALE`` ...) follow from its
    layout. The C header carries the same bits as ``TBN_TRAIT_*`` and ``TBN_OP_<NAME>_TRAITS``."""

    TILED = 1 << 0  # weights are one binary tile repeated p times
    DENSE = 1 << 1  # weights are an int8 matrix
    CONV = 1 << 2  # convolution geometry (kernel, stride, dilation, padding, groups)
    WINDOW = 1 << 3  # pooling window geometry (kernel, stride, padding)
    FUSABLE = 1 << 4  # may carry a fused activation
    F32_ONLY = 1 << 5  # refused in INT8 models
    SAME_QUANT = 1 << 6  # INT8: output quantisation equals the input's
    SCALE_OPTIONAL_F32 = 1 << 7  # the scale operand may be absent in F32 models
    SCALE = 1 << 8  # has a scale operand (from the layout)
    BIAS = 1 << 9  # has an optional bias operand (from the layout)
    TWO_INPUTS = 1 << 10  # reads two tensors (from the layout)
    SCRATCH = 1 << 11  # may name a scratch tensor, its working memory (from the layout)
    IN_PLACE = 1 << 12  # elementwise: its output may take an input's exact slot (with Flag.IN_PLACE)
    TABLE = 1 << 13  # may name an int8 lookup table, a dense entry (from the layout)
    WEIGHTED = TILED | DENSE


class ScaleMode(IntEnum):
    """How a weighted op's F32 scale vector is meant, derived from its count by
    :func:`scale_mode` (INT8 REQUANT scales are one or per output). The values are those the
    CUDA kernels take."""

    PER_OUTPUT = 0
    PER_REPETITION = 1
    ONE = 2


def scale_mode(count: int, outputs: int, p: int) -> ScaleMode | None:
    """The meaning of a scale of ``count`` entries on an op with ``outputs`` outputs tiled
    ``p`` times (``p`` = 1 for dense weights); None when the count fits none.

    A count that fits two meanings is read in this order: per output, one, per repetition."""
    if count == outputs:
        return ScaleMode.PER_OUTPUT
    if count == 1:
        return ScaleMode.ONE
    if count == p:
        return ScaleMode.PER_REPETITION
    return None


FIELD_KINDS = ("tensor", "scratch", "tile", "scale", "bias", "dense", "table", "u8", "u16", "u32", "pad8",
               "pad16")
_CODES = {**dict.fromkeys(("tensor", "scratch", "tile", "scale", "bias", "dense", "table", "u16"), "H"),
          "u8": "B", "u32": "I", "pad8": "x", "pad16": "2x"}
OPTIONAL_KINDS = ("scale", "bias", "scratch", "table")  # id fields a writer fills with NONE_ID when absent


def f32_of_bits(bits: int) -> float:
    """The float32 a ``u32`` field's bits hold (LAYERNORM's F32 eps, a unary op's alpha, PAD's
    F32 value)."""
    return float(np.array(bits, dtype="<u4").view("<f4"))


def bits_of_f32(x: float) -> int:
    """``x`` rounded to float32, as the bits a ``u32`` field holds."""
    return int(np.array(x, dtype="<f4").view("<u4"))
UNARY_TABLE_SIZE = 256  # a unary op's INT8 table: its output for each input q, at index q + 128
# SOFTMAX_AXIS's INT8 table: round(65535 exp(-d s)) for d = max q - q in 0..255, little-endian
# u16, so a dense entry of 512 bytes; its output is quantised with scale 1/256, zero point -128
SOFTMAX_TABLE_SIZE = 256
SOFTMAX_OUT_SCALE = 1.0 / 256
SOFTMAX_OUT_ZERO = -128
# INT8 LAYERNORM (docs/bytecode.md): each normalised value is held with LAYERNORM_FRAC fraction
# bits, from a reciprocal of the row's integer standard deviation normalised to 31 bits
LAYERNORM_FRAC = 16
LAYERNORM_RECIP_SHIFT = 61  # inv = floor(2^61 / R), R = isqrt(V << 2m) in [2^30, 2^31)
LAYERNORM_MAX_EPS = 0xFFFFFFFF  # E is a u32


@dataclass(frozen=True)
class OpLayout:
    """Fields after the two-byte (opcode, act) prefix, in order. ``kind`` says what an
    id field refers to: tensor, tile, scale, bias, dense, or ``u8``/``u16``/``pad``."""

    fields: tuple[tuple[str, str], ...]

    @cached_property
    def struct(self) -> struct.Struct:
        return struct.Struct("<BB" + "".join(_CODES[k] for _, k in self.fields))

    @cached_property
    def size(self) -> int:
        return self.struct.size

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, k in self.fields if not k.startswith("pad"))

    @cached_property
    def offsets(self) -> tuple[tuple[str, str, int], ...]:
        """(name, kind, byte offset from the opcode) of each field that is not padding."""
        out, pos = [], 2
        for name, kind in self.fields:
            if not kind.startswith("pad"):
                out.append((name, kind, pos))
            pos += struct.calcsize("<" + _CODES[kind])
        return tuple(out)

    @cached_property
    def inputs(self) -> tuple[str, ...]:
        """The tensor operands an op reads, in order (every tensor field but ``output``)."""
        return tuple(n for n, k in self.fields if k == "tensor" and n != "output")


@dataclass(frozen=True)
class OpSpec:
    """One op: its encoding, its traits and the kernel family that runs it (the reference
    interpreter's ``tbn.runtime.kernels.<kernel>``, the C runtime's
    ``tbn_prepare_<kernel>`` / ``tbn_eval_<kernel>``). An op of the ``unary`` family also
    has ``fn``, its function of ``x`` (:mod:`tbn.format.expr`), from which every runtime's
    F32 kernel and the compiler's INT8 table are made. ``since``: the minor version that
    added it."""

    layout: OpLayout
    declared: Trait
    kernel: str
    fn: str = ""
    since: int = 0

    @cached_property
    def traits(self) -> Trait:
        kinds = {k for _, k in self.layout.fields}
        t = self.declared
        t |= Trait.SCALE if "scale" in kinds else Trait(0)
        t |= Trait.BIAS if "bias" in kinds else Trait(0)
        t |= Trait.SCRATCH if "scratch" in kinds else Trait(0)
        t |= Trait.TABLE if "table" in kinds else Trait(0)
        return t | (Trait.TWO_INPUTS if len(self.layout.inputs) == 2 else Trait(0))


_CONV_GEOM = (("kh", "u8"), ("kw", "u8"), ("sh", "u8"), ("sw", "u8"), ("dh", "u8"), ("dw", "u8"),
              ("pt", "u8"), ("pl", "u8"), ("pb", "u8"), ("pr", "u8"), ("groups", "u16"))
_POOL_GEOM = (("kh", "u8"), ("kw", "u8"), ("sh", "u8"), ("sw", "u8"),
              ("pt", "u8"), ("pl", "u8"), ("pb", "u8"), ("pr", "u8"), ("_", "pad16"))
_UNARY = OpLayout((("input", "tensor"), ("output", "tensor"), ("_", "pad16")))
_IO = (("input", "tensor"), ("output", "tensor"))
_TILED = OpLayout((*_IO, ("tile", "tile"), ("scale", "scale"), ("bias", "bias"), ("scratch", "scratch"),
                   ("_", "pad16")))
_DENSE = OpLayout((*_IO, ("weight", "dense"), ("scale", "scale"), ("bias", "bias")))
_TABLED = OpLayout((*_IO, ("table", "table")))  # INT8: the table; F32: NONE_ID
_TABLED_PARAM = OpLayout((*_IO, ("table", "table"), ("alpha", "u32")))  # alpha: the float32 bits of fn's a
_BINARY = OpLayout((("a", "tensor"), ("b", "tensor"), ("output", "tensor"), ("scale", "scale"),
                    ("_", "pad16")))
_AXIS_TABLED = OpLayout((*_IO, ("table", "table"), ("axis", "u8"), ("_", "pad8"), ("_", "pad16")))
_MM = Trait.FUSABLE
_UPSAMPLE = OpLayout((*_IO, ("sh", "u8"), ("sw", "u8")))
# LAYERNORM's eps: an F32 model's epsilon as float32 bits; an INT8 model's E = round(C^2 eps /
# s_in^2), at least 1, the epsilon in the integer statistics' units (docs/bytecode.md)
_LAYERNORM = OpLayout((*_IO, ("scale", "scale"), ("bias", "bias"), ("_", "pad16"), ("eps", "u32")))
# output[i0, i1, ..] = input[..] with input axis perm_k as output axis k (perm_k = k past the rank)
_TRANSPOSE = OpLayout((*_IO, *((f"perm{k}", "u8") for k in range(4)), ("_", "pad16")))
# a (.., M, K) @ b (.., K, N), either stored transposed (ta, tb); the scale: F32 an optional
# factor (attention's 1/sqrt(d)), INT8 the one requantisation entry
_BATCH_MATMUL = OpLayout((("a", "tensor"), ("b", "tensor"), ("output", "tensor"), ("scale", "scale"),
                          ("ta", "u8"), ("tb", "u8")))

OPS: dict[Op, OpSpec] = {
    Op.TILED_LINEAR: OpSpec(_TILED, Trait.TILED | _MM, "matmul"),
    Op.TILED_CONV2D: OpSpec(OpLayout(_TILED.fields + _CONV_GEOM), Trait.TILED | Trait.CONV | _MM, "matmul"),
    Op.DENSE_LINEAR: OpSpec(_DENSE, Trait.DENSE | _MM, "matmul"),
    Op.DENSE_CONV2D: OpSpec(OpLayout(_DENSE.fields + _CONV_GEOM), Trait.DENSE | Trait.CONV | _MM, "matmul"),
    Op.MAXPOOL2D: OpSpec(OpLayout(_IO + _POOL_GEOM), Trait.WINDOW | Trait.SAME_QUANT, "pool"),
    Op.AVGPOOL2D: OpSpec(OpLayout(_IO + _POOL_GEOM), Trait.WINDOW | Trait.SAME_QUANT, "pool"),
    Op.GLOBAL_AVGPOOL: OpSpec(_UNARY, Trait.SAME_QUANT, "global_avgpool"),
    Op.RESHAPE: OpSpec(_UNARY, Trait.SAME_QUANT, "reshape"),
    Op.ADD: OpSpec(_BINARY, Trait.FUSABLE | Trait.SCALE_OPTIONAL_F32 | Trait.IN_PLACE, "add"),
    Op.ACTIVATION: OpSpec(_UNARY, Trait.SAME_QUANT | Trait.IN_PLACE, "activation"),
    Op.SOFTMAX: OpSpec(_UNARY, Trait.F32_ONLY, "softmax"),  # over all elements (format 2.0)
    Op.SOFTMAX_AXIS: OpSpec(_AXIS_TABLED, Trait(0), "softmax", since=4),  # along one axis; INT8 too
    # b broadcasts: each of its dims a's or 1 (a squeeze-and-excitation gate, (C, 1, 1))
    Op.MUL: OpSpec(_BINARY, Trait.FUSABLE | Trait.SCALE_OPTIONAL_F32 | Trait.IN_PLACE, "mul", since=4),
    Op.CONCAT: OpSpec(OpLayout((("a", "tensor"), ("b", "tensor"), ("output", "tensor"), ("scale", "scale"),
                                ("axis", "u8"), ("_", "pad8"))), Trait.SCALE_OPTIONAL_F32, "concat", since=4),
    Op.LAYERNORM: OpSpec(_LAYERNORM, Trait(0), "layernorm", since=5),  # over the last axis
    Op.TRANSPOSE: OpSpec(_TRANSPOSE, Trait.SAME_QUANT, "transpose", since=5),
    Op.BATCH_MATMUL: OpSpec(_BATCH_MATMUL, Trait.FUSABLE | Trait.SCALE_OPTIONAL_F32, "batch_matmul", since=5),
    # (C, H, W) to (C, H sh, W sw): each value repeated (nearest), or placed at (y sh, x sw) among
    # zeros (a transposed convolution's input, the zero point in INT8)
    Op.UPSAMPLE_NEAREST: OpSpec(_UPSAMPLE, Trait.SAME_QUANT, "upsample", since=5),
    Op.UPSAMPLE_ZEROS: OpSpec(_UPSAMPLE, Trait.SAME_QUANT, "upsample", since=5),
    # constant padding of a (C, H, W) map where no conv or pool takes it; value: F32 the float32
    # bits, INT8 the int8 value (two's complement in the low byte)
    Op.PAD: OpSpec(OpLayout((*_IO, ("pt", "u8"), ("pl", "u8"), ("pb", "u8"), ("pr", "u8"), ("_", "pad16"),
                             ("value", "u32"))), Trait.SAME_QUANT, "pad", since=5),
    Op.ARGMAX: OpSpec(_UNARY, Trait(0), "argmax"),
    Op.AFFINE: OpSpec(OpLayout((*_IO, ("scale", "scale"), ("bias", "bias"), ("_", "pad16"))),
                      Trait.FUSABLE | Trait.F32_ONLY, "affine"),
    # the unary family: one line an op, its function of x
    Op.SIGMOID: OpSpec(_TABLED, Trait.IN_PLACE, "unary", "1 / (1 + exp(-x))", since=3),
    Op.TANH: OpSpec(_TABLED, Trait.IN_PLACE, "unary", "2 / (1 + exp(-2 * x)) - 1", since=3),
    Op.HARDSIGMOID: OpSpec(_TABLED, Trait.IN_PLACE, "unary", "min(max(x + 3, 0), 6) / 6", since=4),
    Op.HARDSWISH: OpSpec(_TABLED, Trait.IN_PLACE, "unary", "x * min(max(x + 3, 0), 6) / 6", since=4),
    Op.SILU: OpSpec(_TABLED, Trait.IN_PLACE, "unary", "x / (1 + exp(-x))", since=4),
    Op.GELU: OpSpec(_TABLED, Trait.IN_PLACE, "unary", "0.5 * x * (1 + erf(x * 0.7071067811865476))", since=4),
    # GELU's tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), tanh written by exp
    Op.GELU_TANH: OpSpec(_TABLED, Trait.IN_PLACE, "unary",
                         "x / (1 + exp(-1.5957691216057308 * (x + 0.044715 * x * x * x)))", since=4),
    # with a parameter a, the op's alpha (2.5): a leaky ReLU's slope (0 <= a <= 1), ELU's scale (a >= 0)
    Op.LEAKY_RELU: OpSpec(_TABLED_PARAM, Trait.IN_PLACE, "unary", "max(x, a * x)", since=5),
    Op.ELU: OpSpec(_TABLED_PARAM, Trait.IN_PLACE, "unary", "max(x, 0) + min(a * (exp(x) - 1), 0)", since=5),
}
OP_LAYOUTS: dict[Op, OpLayout] = {op: s.layout for op, s in OPS.items()}
KERNELS = tuple(dict.fromkeys(s.kernel for s in OPS.values()))  # kernel families, in opcode order


# The lookup-table kernel of tiled linear and conv ops (docs/c-runtime.md): for each chunk of
# LUT_CHUNK inputs it builds, per group of LUT_GROUP inputs, the table of all 2**LUT_GROUP
# signed sums, and every distinct row of the tile then costs one lookup per group instead of
# LUT_GROUP sign-adds. Ops with many rows also combine pairs of those tables into wide ones
# over LUT_WIDE_GROUP inputs (256 entries, one lookup per byte of tile bits; INT8 only: F32
# wide tables cost more to build than they save). The kernel
# needs a scratch tensor of lut_scratch_size bytes; without one (the op's scratch id is
# NONE) a runtime uses the direct kernel.
LUT_GROUP = 4
LUT_WIDE_GROUP = 8
LUT_CHUNK = 32
# Cost model (Cortex-M7 instructions per chunk of 32 inputs, measured with `tbn infer
# --profile`): the 8 tables cost about 320 to build and an INT8 row about 31 with them, about
# 545 without (the direct kernel's 17 an input), so INT8 tables pay from one row on: a linear
# op of 128 inputs and 8 outputs at p=4 (two rows) takes 3,200 instructions with them, 5,760
# without (M4 the same; sifive_e 5,776 and 6,375). F32 tables pay from 3 rows (the same op:
# 6,320 with, 3,960 without; sifive_e's soft floats 77,142 and 29,092). The 4 wide tables
# cost about 1,400 more and bring a row down to about 18, which pays from about 90 rows on.
LUT_MIN_ROWS = 3  # F32
LUT_MIN_ROWS_INT8 = 1
# A conv's direct kernel pays its set-up per kernel row (three inputs of a 3x3 window), so
# there tables pay from one row: 2.2 to 3.3 times faster at two rows (vww01's first conv at
# p=4, 3x3 convs at p=4 and 8, a 1x1 conv at p=4; docs/results.md).
LUT_MIN_ROWS_CONV = 1
LUT_WIDE_MIN_ROWS = 96


# The quad kernel (DSP cores: Cortex-M4/M7/M33) takes an INT8 tiled pointwise conv (1x1,
# stride 1, no padding) four positions a step in 16-bit sums, with or without table scratch,
# where rows x fan-in is at most QUAD_MAX_ROW_INPUTS (and fan-in at most QUAD_MAX_FAN_IN: 16-bit
# sums): there the tables' per-position build costs more than their lookups save. Measured on
# vww01 at p=4 (M7): 8 -> 16 channels 1.90 M -> 0.35 M instructions, 64 -> 64 (16 rows) 341 k ->
# 281 k; at 32 rows of 64 both about 130 k, and past that the tables win.
QUAD_MAX_ROW_INPUTS = 1024
QUAD_MAX_FAN_IN = 128
# Convs with a window (stride 1 or 2) too, staged a row at a time (a tap about 10 instructions
# for eight positions, three-wide windows at stride 1): on ResNet-8's 16 -> 16 3x3 conv (fan-in
# 144) on the M7 the tables took 3.35 M instructions at 4 rows and 4.22 M at 16, the quad kernel
# 1.03 M and 3.32 M (docs/results.md). Fan-in up to 255 keeps 16-bit sums exact (|sum| <= 128 k);
# an output row must fill a group of eight positions (DS-CNN's first conv, 5 wide at stride 2,
# took 0.30 M on the per-channel kernel and 0.62 M here); windows other than three wide read
# a mask byte a tap, their rows x fan-in bounded for the stack. Three-wide windows past 255
# inputs take the input channels in chunks whose sums fit 16 bits, the rows' sums added in 32
# bits (ResNet-8's 32 -> 32 3x3 conv at p=4, 8 rows of 288: 1.75 M -> 1.13 M), where the rows'
# masks (a byte a kernel row, 1,360 bytes) and 32-bit sums (1 KB) fit the kernel's stack.
QUAD_MAX_CONV_FAN_IN = 255
QUAD_MAX_CONV_ROWS = 16
QUAD_MIN_CONV_WIDTH = 8
QUAD_MAX_CONV_ROW_INPUTS = 1152
# The plane-table kernel (DSP cores) takes INT8 tiled pointwise convs of PLANE_MIN_ROWS rows or
# more and PLANE_MIN_POSITIONS positions or more (fan-in a multiple of 4, at most 128; at most
# 128 outputs) before the quad and table kernels: per block of 8 positions (4 past 64 inputs)
# it builds the 16 signed sums of each group of four input planes once, as vectors of positions
# (about 150 instructions a group), and a row then costs about 8 a group where the quad
# kernel's costs 42. Measured on the M7 (docs/results.md): 64 -> 64 on 25x5 positions 477 k ->
# 262 k instructions at 64 rows, 249 k -> 132 k at 16; at 9 positions or fewer the blocks'
# overlap costs more than it saves (48 -> 96 on 3x3: 46 k -> 49 k), at 12 it pays (47 k -> 41 k).
# Convs with a window (stride 1 or 2, dilation 1, output rows a multiple of 4 wide; the fan-in
# padded to 16) take it from PLANE_MIN_ROWS_WINDOW rows: their tables are built per block from
# the staged input rows, which the quad kernel's three-wide windows (40 instructions a group,
# row and 8 positions) repay below about 8 rows (16 -> 20 and 16 -> 24 3x3 convs at p=4 on
# 16x16: 356 k and 418 k on the quad kernel, 436 k and 469 k here; 32 -> 32 at p=4, 8 rows of
# 288: 1.11 M -> 0.81 M).
PLANE_MIN_ROWS = 5
PLANE_MIN_ROWS_WINDOW = 8
PLANE_MIN_POSITIONS = 12


def lut_rows(fan_in: int, n_bits: int, groups: int) -> int:
    """Distinct rows of a tiled op that the table kernel can share (the tile holds whole
    rows and there is one group); 0 when it cannot run."""
    return n_bits // fan_in if groups == 1 and n_bits % fan_in == 0 else 0


def lut_group(rows: int, int8: bool) -> int:
    """Inputs per lookup for an op of ``rows`` distinct rows: LUT_GROUP or LUT_WIDE_GROUP."""
    return LUT_WIDE_GROUP if int8 and rows >= LUT_WIDE_MIN_ROWS else LUT_GROUP


def lut_scratch_size(rows: int, fan_in: int, conv: bool, int8: bool) -> int:
    """Scratch bytes of the table kernel: one accumulator per row, the chunk's tables (and
    wide tables, see :func:`lut_group`) and, for a convolution, the gathered input patch of
    one output position."""
    entry = 2 if int8 else 4
    tables = LUT_CHUNK // LUT_GROUP * (1 << LUT_GROUP) * entry
    if lut_group(rows, int8) == LUT_WIDE_GROUP:
        tables += LUT_CHUNK // LUT_WIDE_GROUP * (1 << LUT_WIDE_GROUP) * entry
    patch = align(fan_in * (1 if int8 else 4)) if conv else 0
    return 4 * rows + tables + patch


# An INT8 conv (or linear op over tokens) with room for it runs the table kernel on two output
# positions (tokens) at once: one word an entry holds both positions' sums (each biased to stay
# positive), so a lookup and an add serve two outputs. Its scratch: three words a row (the
# packed sums and each position's total), the chunk's packed narrow tables, and for a conv two
# patches.
LUT_PAIR_ENTRY = 4
LUT_PAIR_ROW = 12  # bytes a row: the packed sums and each position's int32 total


def lut_pair_scratch_size(rows: int, fan_in: int, conv: bool) -> int:
    """Scratch bytes with which an INT8 conv's (``conv``) or token linear op's table kernel
    takes output positions or tokens in pairs (a runtime takes them one at a time in less,
    down to :func:`lut_scratch_size`)."""
    tables = LUT_CHUNK // LUT_GROUP * (1 << LUT_GROUP) * LUT_PAIR_ENTRY
    return LUT_PAIR_ROW * rows + tables + (2 * align(fan_in) if conv else 0)


def lut_planned_size(rows: int, fan_in: int, conv: bool, int8: bool, positions: int) -> int:
    """The scratch the compiler plans for a table-kernel op of ``positions`` output positions
    (a conv) or tokens (a linear op): its own, or room for pairs where an INT8 op has two or
    more."""
    size = lut_scratch_size(rows, fan_in, conv, int8)
    return max(size, lut_pair_scratch_size(rows, fan_in, conv)) if int8 and positions >= 2 else size


# INT8 requantisation bounds (docs/bytecode.md, "INT8 semantics"). A reader checks them once, so
# a runtime never overflows 32 bits on any file it accepted.
RQ16_PRODUCT_LIMIT = 1 << 30  # |rshift_round(v, pre_shift) * M| + rounding of an RQ16 layer


def q_span(zero_point: int) -> int:
    """The largest ``|q - zero_point|`` of any int8 ``q``."""
    return max(zero_point + 128, 127 - zero_point)


def value_bound(weight_abs_sum: int, zero_point: int, bias_peak: int) -> int:
    """The largest ``|acc + bias|`` of an INT8 linear or conv op on any int8 input: its largest
    row sum of ``|weight|`` times the input's :func:`q_span`, plus its largest ``|bias|``."""
    return weight_abs_sum * q_span(zero_point) + bias_peak


def add_bound(zero_a: int, zero_b: int) -> int:
    """The largest ``|q - z|`` either input of an INT8 ADD can hold."""
    return max(q_span(zero_a), q_span(zero_b))


def batch_matmul_bound(zero_a: int, zero_b: int, k: int) -> int:
    """The largest ``|sum_k (q_a - z_a) (q_b - z_b)|`` of an INT8 BATCH_MATMUL of depth ``k``."""
    return k * q_span(zero_a) * q_span(zero_b)


def mul_bound(zero_a: int, zero_b: int) -> int:
    """The largest ``|(q_a - z_a) (q_b - z_b)|`` of an INT8 MUL."""
    return q_span(zero_a) * q_span(zero_b)


def rq16_fits(bound: int, mult_abs: int, pre_shift: int, shift: int) -> bool:
    """Whether an RQ16 requantisation of values ``|v| <= bound`` stays in 32 bits: ``v`` plus
    the pre-shift's rounding, and the product plus the shift's rounding, under
    RQ16_PRODUCT_LIMIT."""
    half_a = (1 << pre_shift) >> 1
    t = (bound + half_a) >> pre_shift
    return bound + half_a <= RQ16_PRODUCT_LIMIT and t * mult_abs + ((1 << shift) >> 1) <= RQ16_PRODUCT_LIMIT


def has(op: Op, trait: Trait) -> bool:
    """Whether ``op`` has any bit of ``trait`` (``has(op, Trait.WEIGHTED)``)."""
    return bool(OPS[op].traits & trait)


assert set(OPS) == set(Op), "every opcode needs an OpSpec"
assert max(Trait) < 1 << 16, "the C decoder's table holds traits in 16 bits"
assert max(Op) < 32, "TBN_BUILD_OPS is a 32-bit mask of opcodes: widen it (tbn_internal.h, device/build.py)"
for _op, _spec in OPS.items():
    assert _spec.layout.size % ALIGN == 0, f"{_op.name} layout is {_spec.layout.size} bytes, not 4-aligned"
    assert all(k in FIELD_KINDS for _, k in _spec.layout.fields), f"{_op.name}: unknown field kind"
    assert bool(_spec.fn) == (_spec.kernel == "unary"), f"{_op.name}: unary ops, and only they, have a fn"
    if _spec.fn:
        parse_fn(_spec.fn)  # a function outside tbn.format.expr's language fails here, at import
        assert uses_parameter(_spec.fn) == ("alpha" in _spec.layout.names), f"{_op.name}: a, but no alpha"


def align(n: int) -> int:
    """``n`` rounded up to the format's alignment."""
    return (n + ALIGN - 1) // ALIGN * ALIGN
