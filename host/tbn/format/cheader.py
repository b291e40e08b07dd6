"""Generate ``firmware/lib/tbn/include/tbn_format.h`` from :mod:`tbn.format.spec`.

Run ``python -m tbn.format.cheader`` to rewrite it, ``--check`` to fail when the committed
header is out of date.
"""

from __future__ import annotations

import argparse
import re
import struct
import sys
from pathlib import Path

from tbn.format import spec
from tbn.format.expr import to_c
from tbn.paths import root

HEADER_PATH = root() / "firmware" / "lib" / "tbn" / "include" / "tbn_format.h"


def field_offsets(st: struct.Struct, names: tuple[str, ...]) -> list[tuple[str, int]]:
    """Byte offset of each named field; a repeat count (``4s``, ``4H``) makes one field."""
    out, pos = [], 0
    fields = iter(names)
    for count, code in re.findall(r"(\d*)([a-zA-Z?])", st.format.lstrip("<")):
        if code != "x":
            out.append((next(fields), pos))
        pos += struct.calcsize("<" + code) * int(count or 1)
    return out


def generate() -> str:
    """The header's text."""
    lines = [
        "/* tbn_format.h -- GENERATED from host/tbn/format/spec.py by",
        " * `python -m tbn.format.cheader`. Do not edit: change the spec and regenerate.",
        " * The layout is described in docs/bytecode.md. All integers are little-endian. */",
        "#ifndef TBN_FORMAT_H",
        "#define TBN_FORMAT_H",
        "",
        "#include <stdint.h>",
        "",
        f'#define TBN_MAGIC "{spec.MAGIC.decode()}"',
        f"#define TBN_VERSION_MAJOR {spec.VERSION_MAJOR}",
        f"#define TBN_VERSION_MINOR {spec.VERSION_MINOR}",
        f"#define TBN_ALIGN {spec.ALIGN}",
        f"#define TBN_NONE_ID 0x{spec.NONE_ID:04X}u",
        f"#define TBN_MAX_DIMS {spec.MAX_DIMS}",
        f"#define TBN_CRC_START {spec.CRC_START}",
        f"#define TBN_REQUIRED_FLAGS_MASK 0x{spec.REQUIRED_FLAGS_MASK:08X}u",
        f"#define TBN_KNOWN_FLAGS 0x{spec.KNOWN_FLAGS:08X}u",
        "",
        "/* header */",
        f"#define TBN_HEADER_SIZE {spec.HEADER.size}",
    ]
    header = field_offsets(spec.HEADER, spec.HEADER_FIELDS)
    lines += [f"#define TBN_HDR_{n.upper()} {off}" for n, off in header]
    for name, st, names in spec.TABLES:
        lines += ["", f"/* {name} table entry */", f"#define TBN_{name.upper()}_ENTRY_SIZE {st.size}"]
        lines += [f"#define TBN_{name.upper()}_{n.upper()} {off}" for n, off in field_offsets(st, names)]
    for enum, prefix in ((spec.Flag, "TBN_FLAG"), (spec.DType, "TBN_DTYPE"), (spec.Act, "TBN_ACT"),
                         (spec.Op, "TBN_OP")):
        lines += ["", f"/* {enum.__name__} */"]
        lines += [f"#define {prefix}_{m.name} {int(m)}" for m in enum]
    lines += ["", "/* dtype sizes in bytes */"]
    lines += [f"#define TBN_DTYPE_SIZE_{d.name} {s}" for d, s in spec.DTYPE_SIZE.items()]
    lines += _dtype_sets()
    lines += ["", "/* ScaleMode: how an F32 scale vector is meant (tbn.format.spec.scale_mode) */"]
    lines += [f"#define TBN_SCALE_{m.name} {int(m)}" for m in spec.ScaleMode]
    lines += _rq16()
    lines += _lut()
    lines += _op_tables()
    lines += ["", "#endif /* TBN_FORMAT_H */", ""]
    return "\n".join(lines)


def _mask(dtypes) -> str:
    return f"0x{sum(1 << int(d) for d in dtypes):04X}u"


def _dtype_sets() -> list[str]:
    lines = ["", "/* dtype sets as masks of (1 << dtype), and the size of any dtype (0: unknown) */",
             f"#define TBN_TENSOR_DTYPES {_mask(spec.TENSOR_DTYPES)}",
             f"#define TBN_SCALE_DTYPES {_mask(spec.SCALE_DTYPES)}",
             f"#define TBN_BIAS_DTYPES {_mask(spec.BIAS_DTYPES)}",
             f"#define TBN_INT8_SCALE_DTYPES {_mask(spec.INT8_SCALE_DTYPES)}",
             f"#define TBN_INT8_BIAS_DTYPES {_mask(spec.INT8_BIAS_DTYPES)}",
             f"#define TBN_F32_VECTOR_DTYPES {_mask(spec.F32_VECTOR_DTYPES)}",
             f"#define TBN_DTYPE_MAX {max(spec.DType)}",
             "#define TBN_DTYPE_IN(dtype, set) ((dtype) < 16u && (((set) >> (dtype)) & 1u))",
             "static inline unsigned tbn_dtype_size(unsigned dtype) {", "    switch (dtype) {"]
    lines += [f"    case TBN_DTYPE_{d.name}: return TBN_DTYPE_SIZE_{d.name};" for d in spec.DTYPE_SIZE]
    return [*lines, "    default: return 0;", "    }", "}"]


def _rq16() -> list[str]:
    """The RQ16 header and bounds (tbn.format.spec.vector_nbytes, q_span, rq16_fits)."""
    offsets = field_offsets(spec.RQ16_HEADER, spec.RQ16_HEADER_FIELDS)
    head = [f"#define TBN_RQ16_{n.upper()} {off}" for n, off in offsets]
    return ["", "/* RQ16 vectors: a header (two shifts), then int16 multipliers; 32-bit bounds */",
            f"#define TBN_RQ16_HEADER_SIZE {spec.RQ16_HEADER.size}", *head,
            f"#define TBN_RQ16_MAX_SHIFT {spec.RQ16_MAX_SHIFT}",
            f"#define TBN_RQ16_MAX_MULT {spec.RQ16_MAX_MULT}",
            f"#define TBN_RQ16_PRODUCT_LIMIT 0x{spec.RQ16_PRODUCT_LIMIT:08X}u",
            f"#define TBN_INT32_MAX 0x{spec.INT32_MAX:08X}u",
            "static inline uint64_t tbn_vector_nbytes(unsigned dtype, uint32_t count) {",
            "    return (dtype == TBN_DTYPE_RQ16 ? TBN_RQ16_HEADER_SIZE : 0u) +",
            "           (uint64_t)count * tbn_dtype_size(dtype);",
            "}",
            "static inline uint32_t tbn_q_span(int32_t zero_point) {",
            "    return (uint32_t)(zero_point + 128 > 127 - zero_point ? zero_point + 128",
            "                                                          : 127 - zero_point);", "}",
            "static inline int tbn_rq16_fits(uint64_t bound, uint32_t mult_abs, unsigned pre_shift,",
            "                                unsigned shift) {",
            "    uint64_t half_a = ((uint64_t)1 << pre_shift) >> 1, t = (bound + half_a) >> pre_shift;",
            "    return bound + half_a <= TBN_RQ16_PRODUCT_LIMIT &&",
            "           t * mult_abs + (((uint64_t)1 << shift) >> 1) <= TBN_RQ16_PRODUCT_LIMIT;", "}"]


def _lut() -> list[str]:
    """The table kernel's constants and scratch size (tbn.format.spec.lut_scratch_size)."""
    narrow = spec.LUT_CHUNK // spec.LUT_GROUP * (1 << spec.LUT_GROUP)
    wide = spec.LUT_CHUNK // spec.LUT_WIDE_GROUP * (1 << spec.LUT_WIDE_GROUP)
    return ["", "/* lookup-table kernel of tiled ops: inputs per table (narrow, wide), per chunk of",
            " * tables, and the rows from which INT8 ops use wide tables */",
            f"#define TBN_LUT_GROUP {spec.LUT_GROUP}",
            f"#define TBN_LUT_WIDE_GROUP {spec.LUT_WIDE_GROUP}",
            f"#define TBN_LUT_CHUNK {spec.LUT_CHUNK}",
            f"#define TBN_LUT_WIDE_MIN_ROWS {spec.LUT_WIDE_MIN_ROWS}u",
            "/* the quad kernel's pointwise convs (rows x fan-in, fan-in) and convs with a window",
            " * (fan-in, rows, rows x fan-in but three wide: at most; output width: at least) */",
            f"#define TBN_QUAD_MAX_ROW_INPUTS {spec.QUAD_MAX_ROW_INPUTS}u",
            f"#define TBN_QUAD_MAX_FAN_IN {spec.QUAD_MAX_FAN_IN}u",
            f"#define TBN_QUAD_MAX_CONV_FAN_IN {spec.QUAD_MAX_CONV_FAN_IN}u",
            f"#define TBN_QUAD_MAX_CONV_ROWS {spec.QUAD_MAX_CONV_ROWS}u",
            f"#define TBN_QUAD_MIN_CONV_WIDTH {spec.QUAD_MIN_CONV_WIDTH}u",
            f"#define TBN_QUAD_MAX_CONV_ROW_INPUTS {spec.QUAD_MAX_CONV_ROW_INPUTS}u",
            f"#define TBN_PLANE_MIN_ROWS {spec.PLANE_MIN_ROWS}u",
            f"#define TBN_PLANE_MIN_ROWS_WINDOW {spec.PLANE_MIN_ROWS_WINDOW}u",
            f"#define TBN_PLANE_MIN_POSITIONS {spec.PLANE_MIN_POSITIONS}u",
            "static inline uint64_t tbn_lut_scratch_size(uint32_t rows, uint32_t fan_in, int conv,",
            "                                            int int8) {",
            f"    uint64_t entries = {narrow}u + (int8 && rows >= TBN_LUT_WIDE_MIN_ROWS ? {wide}u : 0u);",
            "    uint64_t patch = conv ? ((uint64_t)fan_in * (int8 ? 1u : 4u) + 3u) / 4u * 4u : 0u;",
            "    return 4u * (uint64_t)rows + entries * (int8 ? 2u : 4u) + patch;", "}",
            "/* an INT8 conv (linear op over tokens) with this much scratch takes output positions",
            " * (tokens) in pairs */",
            "static inline uint64_t tbn_lut_pair_scratch_size(uint32_t rows, uint32_t fan_in, int conv) {",
            f"    return {spec.LUT_PAIR_ROW}u * (uint64_t)rows + {narrow * spec.LUT_PAIR_ENTRY}u + "
            "(conv ? 2u * (((uint64_t)fan_in + 3u) / 4u * 4u) : 0u);", "}"]


def _op_tables() -> list[str]:
    """Traits, sizes and field offsets of each op, and X-macro lists over them."""
    lines = ["", "/* Trait: what an op is (tbn.format.spec.Trait) */"]
    lines += [f"#define TBN_TRAIT_{n} 0x{int(t):04X}u" for n, t in spec.Trait.__members__.items()]
    lines += ["", "/* TBN_OPS_<TRAIT>: the opcodes with that trait, as a mask of (1 << opcode), so that a",
              " * build with some ops only (TBN_BUILD_OPS) drops the code of a trait none of them has */"]
    for name, trait in spec.Trait.__members__.items():
        mask = sum(1 << int(op) for op, s in spec.OPS.items() if s.traits & trait)
        lines.append(f"#define TBN_OPS_{name} 0x{mask:08X}u")
    lines += ["", "/* ops: byte size and field offsets (after the opcode and act bytes) */"]
    for op, s in spec.OPS.items():
        lines.append(f"#define TBN_OP_{op.name}_SIZE {s.layout.size}")
        lines.append(f"#define TBN_OP_{op.name}_TRAITS 0x{int(s.traits):04X}u")
        lines += [f"#define TBN_OP_{op.name}_{n.upper()} {off}" for n, _, off in s.layout.offsets]
    lines += ["#define TBN_OP_MAX " + str(max(spec.Op)), "",
              "/* X(NAME, opcode, size, traits, kernel): every op, in opcode order */",
              "#define TBN_OP_LIST(X) " + " ".join(
                  f"X({op.name}, {int(op)}, {s.layout.size}, TBN_OP_{op.name}_TRAITS, {s.kernel})"
                  for op, s in spec.OPS.items()),
              "", "/* K(kernel): every kernel family once */",
              "#define TBN_KERNEL_LIST(K) " + " ".join(f"K({k})" for k in spec.KERNELS)]
    lines += ["", "/* F(field, offset, bytes): the fields of each op, by the names of its layout */"]
    for op, s in spec.OPS.items():
        sizes = {"u8": 1, "u32": 4}
        fields = " ".join(f"F({n}, {off}, {sizes.get(k, 2)})" for n, k, off in s.layout.offsets)
        lines.append(f"#define TBN_OP_{op.name}_FIELDS(F) {fields}")
    unary = [(op, s) for op, s in spec.OPS.items() if s.kernel == "unary"]
    lines += ["", "/* U(NAME, opcode): every op of the unary family; TBN_UNARY_F32_<NAME>(x): its",
              " * function of x and the op's parameter a (the spec's fn, tbn.format.expr.to_c), on",
              " * tbn_exp_f32, tbn_erf_f32, tbn_minf and tbn_maxf */",
              "#define TBN_UNARY_LIST(U) " + " ".join(f"U({op.name}, {int(op)})" for op, _ in unary),
              f"#define TBN_UNARY_TABLE_SIZE {spec.UNARY_TABLE_SIZE}u",
              "/* SOFTMAX_AXIS's INT8 table (u16 entries) and output zero point (its scale is 1/256) */",
              f"#define TBN_SOFTMAX_TABLE_SIZE {spec.SOFTMAX_TABLE_SIZE}u",
              f"#define TBN_SOFTMAX_OUT_ZERO ({spec.SOFTMAX_OUT_ZERO})",
              "/* INT8 LAYERNORM: fraction bits of a normalised value; the reciprocal's shift */",
              f"#define TBN_LAYERNORM_FRAC {spec.LAYERNORM_FRAC}",
              f"#define TBN_LAYERNORM_RECIP_SHIFT {spec.LAYERNORM_RECIP_SHIFT}"]
    lines += [f"#define TBN_UNARY_F32_{op.name}(x, a) {to_c(s.fn)}" for op, s in unary]
    return [*lines, "", "/* the size of an opcode's ops; 0 for an unknown opcode */",
            "static inline unsigned tbn_op_size(unsigned opcode) {", "    switch (opcode) {",
            "#define TBN_X_(NAME, code, size, traits, kernel) case code: return size;",
            "    TBN_OP_LIST(TBN_X_)", "#undef TBN_X_", "    default: return 0;", "    }", "}"]


def write_or_check(text: str, path: Path, module: str, argv: list[str] | None = None) -> int:
    """The command line of a header generator: write ``text`` to ``path``, or ``--check`` it."""
    ap = argparse.ArgumentParser(description=f"Generate {path.name}")
    ap.add_argument("--check", action="store_true", help="exit 1 if the committed header differs")
    ap.add_argument("--output", type=Path, default=path)
    args = ap.parse_args(argv)
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run python -m {module}", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return write_or_check(generate(), HEADER_PATH, "tbn.format.cheader", argv)


if __name__ == "__main__":
    sys.exit(main())
