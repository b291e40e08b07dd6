/* tbn_format.h -- GENERATED from host/tbn/format/spec.py by
 * `python -m tbn.format.cheader`. Do not edit: change the spec and regenerate.
 * The layout is described in docs/bytecode.md. All integers are little-endian. */
#ifndef TBN_FORMAT_H
#define TBN_FORMAT_H

#include <stdint.h>

#define TBN_MAGIC "TBNB"
#define TBN_VERSION_MAJOR 2
#define TBN_VERSION_MINOR 5
#define TBN_ALIGN 4
#define TBN_NONE_ID 0xFFFFu
#define TBN_MAX_DIMS 4
#define TBN_CRC_START 16
#define TBN_REQUIRED_FLAGS_MASK 0x0000FFFFu
#define TBN_KNOWN_FLAGS 0x00000003u

/* header */
#define TBN_HEADER_SIZE 40
#define TBN_HDR_MAGIC 0
#define TBN_HDR_MAJOR 4
#define TBN_HDR_MINOR 6
#define TBN_HDR_FILE_SIZE 8
#define TBN_HDR_CRC32 12
#define TBN_HDR_FLAGS 16
#define TBN_HDR_ARENA_SIZE 20
#define TBN_HDR_N_TENSORS 24
#define TBN_HDR_N_TILES 26
#define TBN_HDR_N_SCALES 28
#define TBN_HDR_N_BIASES 30
#define TBN_HDR_N_DENSE 32
#define TBN_HDR_N_OPS 34
#define TBN_HDR_OPS_SIZE 36

/* tensor table entry */
#define TBN_TENSOR_ENTRY_SIZE 12
#define TBN_TENSOR_DTYPE 0
#define TBN_TENSOR_NDIM 1
#define TBN_TENSOR_RESERVED 2
#define TBN_TENSOR_DIMS 4

/* arena table entry */
#define TBN_ARENA_ENTRY_SIZE 8
#define TBN_ARENA_OFFSET 0
#define TBN_ARENA_SIZE 4

/* quant table entry */
#define TBN_QUANT_ENTRY_SIZE 8
#define TBN_QUANT_SCALE 0
#define TBN_QUANT_ZERO_POINT 4
#define TBN_QUANT_QMIN 6
#define TBN_QUANT_QMAX 7

/* tile table entry */
#define TBN_TILE_ENTRY_SIZE 8
#define TBN_TILE_N_BITS 0
#define TBN_TILE_OFFSET 4

/* vector table entry */
#define TBN_VECTOR_ENTRY_SIZE 8
#define TBN_VECTOR_OFFSET 0
#define TBN_VECTOR_COUNT 4
#define TBN_VECTOR_DTYPE 6
#define TBN_VECTOR_RESERVED 7

/* dense table entry */
#define TBN_DENSE_ENTRY_SIZE 8
#define TBN_DENSE_OFFSET 0
#define TBN_DENSE_COUNT 4

/* Flag */
#define TBN_FLAG_INT8 1
#define TBN_FLAG_IN_PLACE 2

/* DType */
#define TBN_DTYPE_F32 1
#define TBN_DTYPE_F16 2
#define TBN_DTYPE_I8 3
#define TBN_DTYPE_I32 4
#define TBN_DTYPE_REQUANT 5
#define TBN_DTYPE_I16 6
#define TBN_DTYPE_RQ16 7

/* Act */
#define TBN_ACT_NONE 0
#define TBN_ACT_RELU 1
#define TBN_ACT_RELU6 2

/* Op */
#define TBN_OP_TILED_LINEAR 1
#define TBN_OP_TILED_CONV2D 2
#define TBN_OP_DENSE_LINEAR 3
#define TBN_OP_DENSE_CONV2D 4
#define TBN_OP_MAXPOOL2D 5
#define TBN_OP_AVGPOOL2D 6
#define TBN_OP_GLOBAL_AVGPOOL 7
#define TBN_OP_RESHAPE 8
#define TBN_OP_ADD 9
#define TBN_OP_ACTIVATION 10
#define TBN_OP_SOFTMAX 11
#define TBN_OP_ARGMAX 12
#define TBN_OP_AFFINE 13
#define TBN_OP_SIGMOID 14
#define TBN_OP_TANH 15
#define TBN_OP_HARDSIGMOID 16
#define TBN_OP_HARDSWISH 17
#define TBN_OP_SILU 18
#define TBN_OP_GELU 19
#define TBN_OP_GELU_TANH 20
#define TBN_OP_SOFTMAX_AXIS 21
#define TBN_OP_MUL 22
#define TBN_OP_CONCAT 23
#define TBN_OP_LAYERNORM 24
#define TBN_OP_TRANSPOSE 25
#define TBN_OP_BATCH_MATMUL 26
#define TBN_OP_UPSAMPLE_NEAREST 27
#define TBN_OP_LEAKY_RELU 28
#define TBN_OP_ELU 29
#define TBN_OP_UPSAMPLE_ZEROS 30
#define TBN_OP_PAD 31

/* dtype sizes in bytes */
#define TBN_DTYPE_SIZE_F32 4
#define TBN_DTYPE_SIZE_F16 2
#define TBN_DTYPE_SIZE_I8 1
#define TBN_DTYPE_SIZE_I32 4
#define TBN_DTYPE_SIZE_REQUANT 8
#define TBN_DTYPE_SIZE_I16 2
#define TBN_DTYPE_SIZE_RQ16 2

/* dtype sets as masks of (1 << dtype), and the size of any dtype (0: unknown) */
#define TBN_TENSOR_DTYPES 0x001Au
#define TBN_SCALE_DTYPES 0x00A6u
#define TBN_BIAS_DTYPES 0x0056u
#define TBN_INT8_SCALE_DTYPES 0x00A0u
#define TBN_INT8_BIAS_DTYPES 0x0050u
#define TBN_F32_VECTOR_DTYPES 0x0006u
#define TBN_DTYPE_MAX 7
#define TBN_DTYPE_IN(dtype, set) ((dtype) < 16u && (((set) >> (dtype)) & 1u))
static inline unsigned tbn_dtype_size(unsigned dtype) {
    switch (dtype) {
    case TBN_DTYPE_F32: return TBN_DTYPE_SIZE_F32;
    case TBN_DTYPE_F16: return TBN_DTYPE_SIZE_F16;
    case TBN_DTYPE_I8: return TBN_DTYPE_SIZE_I8;
    case TBN_DTYPE_I32: return TBN_DTYPE_SIZE_I32;
    case TBN_DTYPE_REQUANT: return TBN_DTYPE_SIZE_REQUANT;
    case TBN_DTYPE_I16: return TBN_DTYPE_SIZE_I16;
    case TBN_DTYPE_RQ16: return TBN_DTYPE_SIZE_RQ16;
    default: return 0;
    }
}

/* ScaleMode: how an F32 scale vector is meant (tbn.format.spec.scale_mode) */
#define TBN_SCALE_PER_OUTPUT 0
#define TBN_SCALE_PER_REPETITION 1
#define TBN_SCALE_ONE 2

/* RQ16 vectors: a header (two shifts), then int16 multipliers; 32-bit bounds */
#define TBN_RQ16_HEADER_SIZE 4
#define TBN_RQ16_PRE_SHIFT 0
#define TBN_RQ16_SHIFT 1
#define TBN_RQ16_RESERVED 2
#define TBN_RQ16_MAX_SHIFT 31
#define TBN_RQ16_MAX_MULT 32767
#define TBN_RQ16_PRODUCT_LIMIT 0x40000000u
#define TBN_INT32_MAX 0x7FFFFFFFu
static inline uint64_t tbn_vector_nbytes(unsigned dtype, uint32_t count) {
    return (dtype == TBN_DTYPE_RQ16 ? TBN_RQ16_HEADER_SIZE : 0u) +
           (uint64_t)count * tbn_dtype_size(dtype);
}
static inline uint32_t tbn_q_span(int32_t zero_point) {
    return (uint32_t)(zero_point + 128 > 127 - zero_point ? zero_point + 128
                                                          : 127 - zero_point);
}
static inline int tbn_rq16_fits(uint64_t bound, uint32_t mult_abs, unsigned pre_shift,
                                unsigned shift) {
    uint64_t half_a = ((uint64_t)1 << pre_shift) >> 1, t = (bound + half_a) >> pre_shift;
    return bound + half_a <= TBN_RQ16_PRODUCT_LIMIT &&
           t * mult_abs + (((uint64_t)1 << shift) >> 1) <= TBN_RQ16_PRODUCT_LIMIT;
}

/* lookup-table kernel of tiled ops: inputs per table (narrow, wide), per chunk of
 * tables, and the rows from which INT8 ops use wide tables */
#define TBN_LUT_GROUP 4
#define TBN_LUT_WIDE_GROUP 8
#define TBN_LUT_CHUNK 32
#define TBN_LUT_WIDE_MIN_ROWS 96u
/* the quad kernel's pointwise convs (rows x fan-in, fan-in) and convs with a window
 * (fan-in, rows, rows x fan-in but three wide: at most; output width: at least) */
#define TBN_QUAD_MAX_ROW_INPUTS 1024u
#define TBN_QUAD_MAX_FAN_IN 128u
#define TBN_QUAD_MAX_CONV_FAN_IN 255u
#define TBN_QUAD_MAX_CONV_ROWS 16u
#define TBN_QUAD_MIN_CONV_WIDTH 8u
#define TBN_QUAD_MAX_CONV_ROW_INPUTS 1152u
#define TBN_PLANE_MIN_ROWS 5u
#define TBN_PLANE_MIN_ROWS_WINDOW 8u
#define TBN_PLANE_MIN_POSITIONS 12u
static inline uint64_t tbn_lut_scratch_size(uint32_t rows, uint32_t fan_in, int conv,
                                            int int8) {
    uint64_t entries = 128u + (int8 && rows >= TBN_LUT_WIDE_MIN_ROWS ? 1024u : 0u);
    uint64_t patch = conv ? ((uint64_t)fan_in * (int8 ? 1u : 4u) + 3u) / 4u * 4u : 0u;
    return 4u * (uint64_t)rows + entries * (int8 ? 2u : 4u) + patch;
}
/* an INT8 conv (linear op over tokens) with this much scratch takes output positions
 * (tokens) in pairs */
static inline uint64_t tbn_lut_pair_scratch_size(uint32_t rows, uint32_t fan_in, int conv) {
    return 12u * (uint64_t)rows + 512u + (conv ? 2u * (((uint64_t)fan_in + 3u) / 4u * 4u) : 0u);
}

/* Trait: what an op is (tbn.format.spec.Trait) */
#define TBN_TRAIT_TILED 0x0001u
#define TBN_TRAIT_DENSE 0x0002u
#define TBN_TRAIT_CONV 0x0004u
#define TBN_TRAIT_WINDOW 0x0008u
#define TBN_TRAIT_FUSABLE 0x0010u
#define TBN_TRAIT_F32_ONLY 0x0020u
#define TBN_TRAIT_SAME_QUANT 0x0040u
#define TBN_TRAIT_SCALE_OPTIONAL_F32 0x0080u
#define TBN_TRAIT_SCALE 0x0100u
#define TBN_TRAIT_BIAS 0x0200u
#define TBN_TRAIT_TWO_INPUTS 0x0400u
#define TBN_TRAIT_SCRATCH 0x0800u
#define TBN_TRAIT_IN_PLACE 0x1000u
#define TBN_TRAIT_TABLE 0x2000u
#define TBN_TRAIT_WEIGHTED 0x0003u

/* TBN_OPS_<TRAIT>: the opcodes with that trait, as a mask of (1 << opcode), so that a
 * build with some ops only (TBN_BUILD_OPS) drops the code of a trait none of them has */
#define TBN_OPS_TILED 0x00000006u
#define TBN_OPS_DENSE 0x00000018u
#define TBN_OPS_CONV 0x00000014u
#define TBN_OPS_WINDOW 0x00000060u
#define TBN_OPS_FUSABLE 0x0440221Eu
#define TBN_OPS_F32_ONLY 0x00002800u
#define TBN_OPS_SAME_QUANT 0xCA0005E0u
#define TBN_OPS_SCALE_OPTIONAL_F32 0x04C00200u
#define TBN_OPS_SCALE 0x05C0221Eu
#define TBN_OPS_BIAS 0x0100201Eu
#define TBN_OPS_TWO_INPUTS 0x04C00200u
#define TBN_OPS_SCRATCH 0x00000006u
#define TBN_OPS_IN_PLACE 0x305FC600u
#define TBN_OPS_TABLE 0x303FC000u
#define TBN_OPS_WEIGHTED 0x0000001Eu

/* ops: byte size and field offsets (after the opcode and act bytes) */
#define TBN_OP_TILED_LINEAR_SIZE 16
#define TBN_OP_TILED_LINEAR_TRAITS 0x0B11u
#define TBN_OP_TILED_LINEAR_INPUT 2
#define TBN_OP_TILED_LINEAR_OUTPUT 4
#define TBN_OP_TILED_LINEAR_TILE 6
#define TBN_OP_TILED_LINEAR_SCALE 8
#define TBN_OP_TILED_LINEAR_BIAS 10
#define TBN_OP_TILED_LINEAR_SCRATCH 12
#define TBN_OP_TILED_CONV2D_SIZE 28
#define TBN_OP_TILED_CONV2D_TRAITS 0x0B15u
#define TBN_OP_TILED_CONV2D_INPUT 2
#define TBN_OP_TILED_CONV2D_OUTPUT 4
#define TBN_OP_TILED_CONV2D_TILE 6
#define TBN_OP_TILED_CONV2D_SCALE 8
#define TBN_OP_TILED_CONV2D_BIAS 10
#define TBN_OP_TILED_CONV2D_SCRATCH 12
#define TBN_OP_TILED_CONV2D_KH 16
#define TBN_OP_TILED_CONV2D_KW 17
#define TBN_OP_TILED_CONV2D_SH 18
#define TBN_OP_TILED_CONV2D_SW 19
#define TBN_OP_TILED_CONV2D_DH 20
#define TBN_OP_TILED_CONV2D_DW 21
#define TBN_OP_TILED_CONV2D_PT 22
#define TBN_OP_TILED_CONV2D_PL 23
#define TBN_OP_TILED_CONV2D_PB 24
#define TBN_OP_TILED_CONV2D_PR 25
#define TBN_OP_TILED_CONV2D_GROUPS 26
#define TBN_OP_DENSE_LINEAR_SIZE 12
#define TBN_OP_DENSE_LINEAR_TRAITS 0x0312u
#define TBN_OP_DENSE_LINEAR_INPUT 2
#define TBN_OP_DENSE_LINEAR_OUTPUT 4
#define TBN_OP_DENSE_LINEAR_WEIGHT 6
#define TBN_OP_DENSE_LINEAR_SCALE 8
#define TBN_OP_DENSE_LINEAR_BIAS 10
#define TBN_OP_DENSE_CONV2D_SIZE 24
#define TBN_OP_DENSE_CONV2D_TRAITS 0x0316u
#define TBN_OP_DENSE_CONV2D_INPUT 2
#define TBN_OP_DENSE_CONV2D_OUTPUT 4
#define TBN_OP_DENSE_CONV2D_WEIGHT 6
#define TBN_OP_DENSE_CONV2D_SCALE 8
#define TBN_OP_DENSE_CONV2D_BIAS 10
#define TBN_OP_DENSE_CONV2D_KH 12
#define TBN_OP_DENSE_CONV2D_KW 13
#define TBN_OP_DENSE_CONV2D_SH 14
#define TBN_OP_DENSE_CONV2D_SW 15
#define TBN_OP_DENSE_CONV2D_DH 16
#define TBN_OP_DENSE_CONV2D_DW 17
#define TBN_OP_DENSE_CONV2D_PT 18
#define TBN_OP_DENSE_CONV2D_PL 19
#define TBN_OP_DENSE_CONV2D_PB 20
#define TBN_OP_DENSE_CONV2D_PR 21
#define TBN_OP_DENSE_CONV2D_GROUPS 22
#define TBN_OP_MAXPOOL2D_SIZE 16
#define TBN_OP_MAXPOOL2D_TRAITS 0x0048u
#define TBN_OP_MAXPOOL2D_INPUT 2
#define TBN_OP_MAXPOOL2D_OUTPUT 4
#define TBN_OP_MAXPOOL2D_KH 6
#define TBN_OP_MAXPOOL2D_KW 7
#define TBN_OP_MAXPOOL2D_SH 8
#define TBN_OP_MAXPOOL2D_SW 9
#define TBN_OP_MAXPOOL2D_PT 10
#define TBN_OP_MAXPOOL2D_PL 11
#define TBN_OP_MAXPOOL2D_PB 12
#define TBN_OP_MAXPOOL2D_PR 13
#define TBN_OP_AVGPOOL2D_SIZE 16
#define TBN_OP_AVGPOOL2D_TRAITS 0x0048u
#define TBN_OP_AVGPOOL2D_INPUT 2
#define TBN_OP_AVGPOOL2D_OUTPUT 4
#define TBN_OP_AVGPOOL2D_KH 6
#define TBN_OP_AVGPOOL2D_KW 7
#define TBN_OP_AVGPOOL2D_SH 8
#define TBN_OP_AVGPOOL2D_SW 9
#define TBN_OP_AVGPOOL2D_PT 10
#define TBN_OP_AVGPOOL2D_PL 11
#define TBN_OP_AVGPOOL2D_PB 12
#define TBN_OP_AVGPOOL2D_PR 13
#define TBN_OP_GLOBAL_AVGPOOL_SIZE 8
#define TBN_OP_GLOBAL_AVGPOOL_TRAITS 0x0040u
#define TBN_OP_GLOBAL_AVGPOOL_INPUT 2
#define TBN_OP_GLOBAL_AVGPOOL_OUTPUT 4
#define TBN_OP_RESHAPE_SIZE 8
#define TBN_OP_RESHAPE_TRAITS 0x0040u
#define TBN_OP_RESHAPE_INPUT 2
#define TBN_OP_RESHAPE_OUTPUT 4
#define TBN_OP_ADD_SIZE 12
#define TBN_OP_ADD_TRAITS 0x1590u
#define TBN_OP_ADD_A 2
#define TBN_OP_ADD_B 4
#define TBN_OP_ADD_OUTPUT 6
#define TBN_OP_ADD_SCALE 8
#define TBN_OP_ACTIVATION_SIZE 8
#define TBN_OP_ACTIVATION_TRAITS 0x1040u
#define TBN_OP_ACTIVATION_INPUT 2
#define TBN_OP_ACTIVATION_OUTPUT 4
#define TBN_OP_SOFTMAX_SIZE 8
#define TBN_OP_SOFTMAX_TRAITS 0x0020u
#define TBN_OP_SOFTMAX_INPUT 2
#define TBN_OP_SOFTMAX_OUTPUT 4
#define TBN_OP_SOFTMAX_AXIS_SIZE 12
#define TBN_OP_SOFTMAX_AXIS_TRAITS 0x2000u
#define TBN_OP_SOFTMAX_AXIS_INPUT 2
#define TBN_OP_SOFTMAX_AXIS_OUTPUT 4
#define TBN_OP_SOFTMAX_AXIS_TABLE 6
#define TBN_OP_SOFTMAX_AXIS_AXIS 8
#define TBN_OP_MUL_SIZE 12
#define TBN_OP_MUL_TRAITS 0x1590u
#define TBN_OP_MUL_A 2
#define TBN_OP_MUL_B 4
#define TBN_OP_MUL_OUTPUT 6
#define TBN_OP_MUL_SCALE 8
#define TBN_OP_CONCAT_SIZE 12
#define TBN_OP_CONCAT_TRAITS 0x0580u
#define TBN_OP_CONCAT_A 2
#define TBN_OP_CONCAT_B 4
#define TBN_OP_CONCAT_OUTPUT 6
#define TBN_OP_CONCAT_SCALE 8
#define TBN_OP_CONCAT_AXIS 10
#define TBN_OP_LAYERNORM_SIZE 16
#define TBN_OP_LAYERNORM_TRAITS 0x0300u
#define TBN_OP_LAYERNORM_INPUT 2
#define TBN_OP_LAYERNORM_OUTPUT 4
#define TBN_OP_LAYERNORM_SCALE 6
#define TBN_OP_LAYERNORM_BIAS 8
#define TBN_OP_LAYERNORM_EPS 12
#define TBN_OP_TRANSPOSE_SIZE 12
#define TBN_OP_TRANSPOSE_TRAITS 0x0040u
#define TBN_OP_TRANSPOSE_INPUT 2
#define TBN_OP_TRANSPOSE_OUTPUT 4
#define TBN_OP_TRANSPOSE_PERM0 6
#define TBN_OP_TRANSPOSE_PERM1 7
#define TBN_OP_TRANSPOSE_PERM2 8
#define TBN_OP_TRANSPOSE_PERM3 9
#define TBN_OP_BATCH_MATMUL_SIZE 12
#define TBN_OP_BATCH_MATMUL_TRAITS 0x0590u
#define TBN_OP_BATCH_MATMUL_A 2
#define TBN_OP_BATCH_MATMUL_B 4
#define TBN_OP_BATCH_MATMUL_OUTPUT 6
#define TBN_OP_BATCH_MATMUL_SCALE 8
#define TBN_OP_BATCH_MATMUL_TA 10
#define TBN_OP_BATCH_MATMUL_TB 11
#define TBN_OP_UPSAMPLE_NEAREST_SIZE 8
#define TBN_OP_UPSAMPLE_NEAREST_TRAITS 0x0040u
#define TBN_OP_UPSAMPLE_NEAREST_INPUT 2
#define TBN_OP_UPSAMPLE_NEAREST_OUTPUT 4
#define TBN_OP_UPSAMPLE_NEAREST_SH 6
#define TBN_OP_UPSAMPLE_NEAREST_SW 7
#define TBN_OP_UPSAMPLE_ZEROS_SIZE 8
#define TBN_OP_UPSAMPLE_ZEROS_TRAITS 0x0040u
#define TBN_OP_UPSAMPLE_ZEROS_INPUT 2
#define TBN_OP_UPSAMPLE_ZEROS_OUTPUT 4
#define TBN_OP_UPSAMPLE_ZEROS_SH 6
#define TBN_OP_UPSAMPLE_ZEROS_SW 7
#define TBN_OP_PAD_SIZE 16
#define TBN_OP_PAD_TRAITS 0x0040u
#define TBN_OP_PAD_INPUT 2
#define TBN_OP_PAD_OUTPUT 4
#define TBN_OP_PAD_PT 6
#define TBN_OP_PAD_PL 7
#define TBN_OP_PAD_PB 8
#define TBN_OP_PAD_PR 9
#define TBN_OP_PAD_VALUE 12
#define TBN_OP_ARGMAX_SIZE 8
#define TBN_OP_ARGMAX_TRAITS 0x0000u
#define TBN_OP_ARGMAX_INPUT 2
#define TBN_OP_ARGMAX_OUTPUT 4
#define TBN_OP_AFFINE_SIZE 12
#define TBN_OP_AFFINE_TRAITS 0x0330u
#define TBN_OP_AFFINE_INPUT 2
#define TBN_OP_AFFINE_OUTPUT 4
#define TBN_OP_AFFINE_SCALE 6
#define TBN_OP_AFFINE_BIAS 8
#define TBN_OP_SIGMOID_SIZE 8
#define TBN_OP_SIGMOID_TRAITS 0x3000u
#define TBN_OP_SIGMOID_INPUT 2
#define TBN_OP_SIGMOID_OUTPUT 4
#define TBN_OP_SIGMOID_TABLE 6
#define TBN_OP_TANH_SIZE 8
#define TBN_OP_TANH_TRAITS 0x3000u
#define TBN_OP_TANH_INPUT 2
#define TBN_OP_TANH_OUTPUT 4
#define TBN_OP_TANH_TABLE 6
#define TBN_OP_HARDSIGMOID_SIZE 8
#define TBN_OP_HARDSIGMOID_TRAITS 0x3000u
#define TBN_OP_HARDSIGMOID_INPUT 2
#define TBN_OP_HARDSIGMOID_OUTPUT 4
#define TBN_OP_HARDSIGMOID_TABLE 6
#define TBN_OP_HARDSWISH_SIZE 8
#define TBN_OP_HARDSWISH_TRAITS 0x3000u
#define TBN_OP_HARDSWISH_INPUT 2
#define TBN_OP_HARDSWISH_OUTPUT 4
#define TBN_OP_HARDSWISH_TABLE 6
#define TBN_OP_SILU_SIZE 8
#define TBN_OP_SILU_TRAITS 0x3000u
#define TBN_OP_SILU_INPUT 2
#define TBN_OP_SILU_OUTPUT 4
#define TBN_OP_SILU_TABLE 6
#define TBN_OP_GELU_SIZE 8
#define TBN_OP_GELU_TRAITS 0x3000u
#define TBN_OP_GELU_INPUT 2
#define TBN_OP_GELU_OUTPUT 4
#define TBN_OP_GELU_TABLE 6
#define TBN_OP_GELU_TANH_SIZE 8
#define TBN_OP_GELU_TANH_TRAITS 0x3000u
#define TBN_OP_GELU_TANH_INPUT 2
#define TBN_OP_GELU_TANH_OUTPUT 4
#define TBN_OP_GELU_TANH_TABLE 6
#define TBN_OP_LEAKY_RELU_SIZE 12
#define TBN_OP_LEAKY_RELU_TRAITS 0x3000u
#define TBN_OP_LEAKY_RELU_INPUT 2
#define TBN_OP_LEAKY_RELU_OUTPUT 4
#define TBN_OP_LEAKY_RELU_TABLE 6
#define TBN_OP_LEAKY_RELU_ALPHA 8
#define TBN_OP_ELU_SIZE 12
#define TBN_OP_ELU_TRAITS 0x3000u
#define TBN_OP_ELU_INPUT 2
#define TBN_OP_ELU_OUTPUT 4
#define TBN_OP_ELU_TABLE 6
#define TBN_OP_ELU_ALPHA 8
#define TBN_OP_MAX 31

/* X(NAME, opcode, size, traits, kernel): every op, in opcode order */
#define TBN_OP_LIST(X) X(TILED_LINEAR, 1, 16, TBN_OP_TILED_LINEAR_TRAITS, matmul) X(TILED_CONV2D, 2, 28, TBN_OP_TILED_CONV2D_TRAITS, matmul) X(DENSE_LINEAR, 3, 12, TBN_OP_DENSE_LINEAR_TRAITS, matmul) X(DENSE_CONV2D, 4, 24, TBN_OP_DENSE_CONV2D_TRAITS, matmul) X(MAXPOOL2D, 5, 16, TBN_OP_MAXPOOL2D_TRAITS, pool) X(AVGPOOL2D, 6, 16, TBN_OP_AVGPOOL2D_TRAITS, pool) X(GLOBAL_AVGPOOL, 7, 8, TBN_OP_GLOBAL_AVGPOOL_TRAITS, global_avgpool) X(RESHAPE, 8, 8, TBN_OP_RESHAPE_TRAITS, reshape) X(ADD, 9, 12, TBN_OP_ADD_TRAITS, add) X(ACTIVATION, 10, 8, TBN_OP_ACTIVATION_TRAITS, activation) X(SOFTMAX, 11, 8, TBN_OP_SOFTMAX_TRAITS, softmax) X(SOFTMAX_AXIS, 21, 12, TBN_OP_SOFTMAX_AXIS_TRAITS, softmax) X(MUL, 22, 12, TBN_OP_MUL_TRAITS, mul) X(CONCAT, 23, 12, TBN_OP_CONCAT_TRAITS, concat) X(LAYERNORM, 24, 16, TBN_OP_LAYERNORM_TRAITS, layernorm) X(TRANSPOSE, 25, 12, TBN_OP_TRANSPOSE_TRAITS, transpose) X(BATCH_MATMUL, 26, 12, TBN_OP_BATCH_MATMUL_TRAITS, batch_matmul) X(UPSAMPLE_NEAREST, 27, 8, TBN_OP_UPSAMPLE_NEAREST_TRAITS, upsample) X(UPSAMPLE_ZEROS, 30, 8, TBN_OP_UPSAMPLE_ZEROS_TRAITS, upsample) X(PAD, 31, 16, TBN_OP_PAD_TRAITS, pad) X(ARGMAX, 12, 8, TBN_OP_ARGMAX_TRAITS, argmax) X(AFFINE, 13, 12, TBN_OP_AFFINE_TRAITS, affine) X(SIGMOID, 14, 8, TBN_OP_SIGMOID_TRAITS, unary) X(TANH, 15, 8, TBN_OP_TANH_TRAITS, unary) X(HARDSIGMOID, 16, 8, TBN_OP_HARDSIGMOID_TRAITS, unary) X(HARDSWISH, 17, 8, TBN_OP_HARDSWISH_TRAITS, unary) X(SILU, 18, 8, TBN_OP_SILU_TRAITS, unary) X(GELU, 19, 8, TBN_OP_GELU_TRAITS, unary) X(GELU_TANH, 20, 8, TBN_OP_GELU_TANH_TRAITS, unary) X(LEAKY_RELU, 28, 12, TBN_OP_LEAKY_RELU_TRAITS, unary) X(ELU, 29, 12, TBN_OP_ELU_TRAITS, unary)

/* K(kernel): every kernel family once */
#define TBN_KERNEL_LIST(K) K(matmul) K(pool) K(global_avgpool) K(reshape) K(add) K(activation) K(softmax) K(mul) K(concat) K(layernorm) K(transpose) K(batch_matmul) K(upsample) K(pad) K(argmax) K(affine) K(unary)

/* F(field, offset, bytes): the fields of each op, by the names of its layout */
#define TBN_OP_TILED_LINEAR_FIELDS(F) F(input, 2, 2) F(output, 4, 2) F(tile, 6, 2) F(scale, 8, 2) F(bias, 10, 2) F(scratch, 12, 2)
#define TBN_OP_TILED_CONV2D_FIELDS(F) F(input, 2, 2) F(output, 4, 2) F(tile, 6, 2) F(scale, 8, 2) F(bias, 10, 2) F(scratch, 12, 2) F(kh, 16, 1) F(kw, 17, 1) F(sh, 18, 1) F(sw, 19, 1) F(dh, 20, 1) F(dw, 21, 1) F(pt, 22, 1) F(pl, 23, 1) F(pb, 24, 1) F(pr, 25, 1) F(groups, 26, 2)
#define TBN_OP_DENSE_LINEAR_FIELDS(F) F(input, 2, 2) F(output, 4, 2) F(weight, 6, 2) F(scale, 8, 2) F(bias, 10, 2)
#define TBN_OP_DENSE_CONV2D_FIELDS(F) F(input, 2, 2) F(output, 4, 2) F(weight, 6, 2) F(scale, 8, 2) F(bias, 10, 2) F(kh, 12, 1) F(kw, 13, 1) F(sh, 14, 1) F(sw, 15, 1) F(dh, 16, 1) F(dw, 17, 1) F(pt, 18, 1) F(pl, 19, 1) F(pb, 20, 1) F(pr, 21, 1) F(groups, 22, 2)
#define TBN_OP_MAXPOOL2D_FIELDS(F) F(input, 2, 2) F(output, 4, 2) F(kh, 6, 1) F(kw, 7, 1) F(sh, 8, 1) F(sw, 9, 1) F(pt, 10, 1) F(pl, 11, 1) F(pb, 12, 1) F(pr, 13, 1)
#define TBN_OP_AVGPOOL2D_FIELDS(F) F(input, 2, 2) F(output, 4, 2) F(kh, 6, 1) F(kw, 7, 1) F(sh, 8, 1) F(sw, 9, 1) F(pt, 10, 1) F(pl, 11, 1) F(pb, 12, 1) F(pr, 13, 1)
#define TBN_OP_GLOBAL_AVGPOOL_FIELDS(F) F(input, 2, 2) F(output, 4, 2)
#define TBN_OP_RESHAPE_FIELDS(F) F(input, 2, 2) F(output, 4, 2)
#define TBN_OP_ADD_FIELDS(F) F(a, 2, 2) F(b, 4, 2) F(output, 6, 2) F(scale, 8, 2)
#define TBN_OP_ACTIVATION_FIELDS(F) F(input, 2, 2) F(output, 4, 2)
#define TBN_OP_SOFTMAX_FIELDS(F) F(input, 2, 2) F(output, 4, 2)
#define TBN_OP_SOFTMAX_AXIS_FIELDS(F) F(input, 2, 2) F(output, 4, 2) F(table, 6, 2) F(axis, 8, 1)
#define TBN_OP_MUL_FIELDS(F) F(a, 2, 2) F(b, 4, 2) F(output, 6, 2) F(scale, 8, 2)
#define TBN_OP_CONCAT_FIELDS(F) F(a, 2, 2) F(b, 4, 2) F(output, 6, 2) F(scale, 8, 2) F(axis, 10, 1)
#define TBN_OP_LAYERNORM_FIELDS(F) F(input, 2, 2) F(output, 4, 2) F(scale, 6, 2) F(bias, 8, 2) F(eps, 12, 4)
#define TBN_OP_TRANSPOSE_FIELDS(F) F(input, 2, 2) F(output, 4, 2) F(perm0, 6, 1) F(perm1, 7, 1) F(perm2, 8, 1) F(perm3, 9, 1)
#define TBN_OP_BATCH_MATMUL_FIELDS(F) F(a, 2, 2) F(b, 4, 2) F(output, 6, 2) F(scale, 8, 2) F(ta, 10, 1) F(tb, 11, 1)
#define TBN_OP_UPSAMPLE_NEAREST_FIELDS(F) F(input, 2, 2) F(output, 4, 2) F(sh, 6, 1) F(sw, 7, 1)
#define TBN_OP_UPSAMPLE_ZEROS_FIELDS(F) F(input, 2, 2) F(output, 4, 2) F(sh, 6, 1) F(sw, 7, 1)
#define TBN_OP_PAD_FIELDS(F) F(input, 2, 2) F(output, 4, 2) F(pt, 6, 1) F(pl, 7, 1) F(pb, 8, 1) F(pr, 9, 1) F(value, 12, 4)
#define TBN_OP_ARGMAX_FIELDS(F) F(input, 2, 2) F(output, 4, 2)
#define TBN_OP_AFFINE_FIELDS(F) F(input, 2, 2) F(output, 4, 2) F(scale, 6, 2) F(bias, 8, 2)
#define TBN_OP_SIGMOID_FIELDS(F) F(input, 2, 2) F(output, 4, 2) F(table, 6, 2)
#define TBN_OP_TANH_FIELDS(F) F(input, 2, 2) F(output, 4, 2) F(table, 6, 2)
#define TBN_OP_HARDSIGMOID_FIELDS(F) F(input, 2, 2) F(output, 4, 2) F(table, 6, 2)
#define TBN_OP_HARDSWISH_FIELDS(F) F(input, 2, 2) F(output, 4, 2) F(table, 6, 2)
#define TBN_OP_SILU_FIELDS(F) F(input, 2, 2) F(output, 4, 2) F(table, 6, 2)
#define TBN_OP_GELU_FIELDS(F) F(input, 2, 2) F(output, 4, 2) F(table, 6, 2)
#define TBN_OP_GELU_TANH_FIELDS(F) F(input, 2, 2) F(output, 4, 2) F(table, 6, 2)
#define TBN_OP_LEAKY_RELU_FIELDS(F) F(input, 2, 2) F(output, 4, 2) F(table, 6, 2) F(alpha, 8, 4)
#define TBN_OP_ELU_FIELDS(F) F(input, 2, 2) F(output, 4, 2) F(table, 6, 2) F(alpha, 8, 4)

/* U(NAME, opcode): every op of the unary family; TBN_UNARY_F32_<NAME>(x): its
 * function of x and the op's parameter a (the spec's fn, tbn.format.expr.to_c), on
 * tbn_exp_f32, tbn_erf_f32, tbn_minf and tbn_maxf */
#define TBN_UNARY_LIST(U) U(SIGMOID, 14) U(TANH, 15) U(HARDSIGMOID, 16) U(HARDSWISH, 17) U(SILU, 18) U(GELU, 19) U(GELU_TANH, 20) U(LEAKY_RELU, 28) U(ELU, 29)
#define TBN_UNARY_TABLE_SIZE 256u
/* SOFTMAX_AXIS's INT8 table (u16 entries) and output zero point (its scale is 1/256) */
#define TBN_SOFTMAX_TABLE_SIZE 256u
#define TBN_SOFTMAX_OUT_ZERO (-128)
/* INT8 LAYERNORM: fraction bits of a normalised value; the reciprocal's shift */
#define TBN_LAYERNORM_FRAC 16
#define TBN_LAYERNORM_RECIP_SHIFT 61
#define TBN_UNARY_F32_SIGMOID(x, a) (1.0f / (1.0f + tbn_exp_f32((-(x)))))
#define TBN_UNARY_F32_TANH(x, a) ((2.0f / (1.0f + tbn_exp_f32(((-2.0f) * (x))))) - 1.0f)
#define TBN_UNARY_F32_HARDSIGMOID(x, a) (tbn_minf(tbn_maxf(((x) + 3.0f), 0.0f), 6.0f) / 6.0f)
#define TBN_UNARY_F32_HARDSWISH(x, a) (((x) * tbn_minf(tbn_maxf(((x) + 3.0f), 0.0f), 6.0f)) / 6.0f)
#define TBN_UNARY_F32_SILU(x, a) ((x) / (1.0f + tbn_exp_f32((-(x)))))
#define TBN_UNARY_F32_GELU(x, a) ((0.5f * (x)) * (1.0f + tbn_erf_f32(((x) * 0.7071067811865476f))))
#define TBN_UNARY_F32_GELU_TANH(x, a) ((x) / (1.0f + tbn_exp_f32(((-1.5957691216057308f) * ((x) + (((0.044715f * (x)) * (x)) * (x)))))))
#define TBN_UNARY_F32_LEAKY_RELU(x, a) tbn_maxf((x), ((a) * (x)))
#define TBN_UNARY_F32_ELU(x, a) (tbn_maxf((x), 0.0f) + tbn_minf(((a) * (tbn_exp_f32((x)) - 1.0f)), 0.0f))

/* the size of an opcode's ops; 0 for an unknown opcode */
static inline unsigned tbn_op_size(unsigned opcode) {
    switch (opcode) {
#define TBN_X_(NAME, code, size, traits, kernel) case code: return size;
    TBN_OP_LIST(TBN_X_)
#undef TBN_X_
    default: return 0;
    }
}

#endif /* TBN_FORMAT_H */
