/* tbn.h -- run .tbn bytecode (docs/bytecode.md) in place from flash.
 *
 * C99, no malloc, no global state. The model bytes stay where they are (flash or RAM,
 * 4-byte aligned); the caller provides the activation arena. tbn_model_init validates
 * the whole file first -- CRC, every bound, every id, every shape -- so tbn_invoke can
 * never read or write outside the model or the arena, whatever the file holds.
 *
 *   tbn_model m;
 *   if (tbn_model_init(&m, model_bytes, model_len) != TBN_OK) ...
 *   static uint32_t arena[ARENA_WORDS];            // >= tbn_arena_size(&m) bytes
 *   tbn_status s = tbn_run(&m, arena, sizeof arena, input, in_len, output, out_len);
 */
#ifndef TBN_H
#define TBN_H

#include <stddef.h>
#include <stdint.h>

#include "tbn_format.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    TBN_OK = 0,
    TBN_ERR_ARG,          /* a NULL pointer or a misaligned buffer */
    TBN_ERR_TRUNCATED,    /* shorter than its header or sections, or file_size differs */
    TBN_ERR_MAGIC,        /* not a .tbn file */
    TBN_ERR_VERSION,      /* another major version */
    TBN_ERR_CRC,          /* contents do not match the CRC32 */
    TBN_ERR_FLAGS,        /* an unknown required feature flag */
    TBN_ERR_TENSOR,       /* a tensor's dtype, rank or dims */
    TBN_ERR_ARENA_PLAN,   /* a tensor's arena slot */
    TBN_ERR_QUANT,        /* a tensor's quantisation parameters */
    TBN_ERR_CONST,        /* a tile, scale, bias or dense-weight entry */
    TBN_ERR_OPCODE,       /* an unknown opcode or activation (a newer minor version?) */
    TBN_ERR_OPERAND,      /* an id out of range, or a tensor read before it is written */
    TBN_ERR_SHAPE,        /* inconsistent shapes, dtypes, geometry or scale counts */
    TBN_ERR_ARENA_SIZE,   /* the caller's arena is smaller than the model needs */
    TBN_ERR_IO_SIZE,      /* input or output buffer of the wrong size */
    TBN_ERR_NOT_BUILT,    /* an op or activation type this build leaves out (TBN_BUILD_OPS) */
    TBN_ERR_COUNT_
} tbn_status;

/* Where a model's bytes may live. Nothing changes on a target with one address space. On AVR,
 * whose flash is a separate address space that a model of kilobytes must stay in, every read
 * of the model goes through avr-gcc's __memx pointers (flash or RAM, told apart at run time;
 * GNU C: build with -std=gnu99). The runtime reads the model through these pointers only. */
#if defined(__AVR__) && (!defined(__MEMX) || defined(__STRICT_ANSI__))
#error "tbn on AVR reads models in flash through __memx pointers: build it as GNU C (-std=gnu99)"
#elif defined(__AVR__)
#define TBN_ROM __memx
#else
#define TBN_ROM
#endif

/* A validated model: offsets into the caller's bytes, nothing copied. */
typedef struct {
    const TBN_ROM uint8_t *data;
    uint32_t size;
    uint32_t flags;
    uint32_t arena_size;
    uint16_t n_tensors, n_tiles, n_scales, n_biases, n_dense, n_ops;
    uint16_t output;   /* tensor id of the model output */
    uint16_t minor;
    uint32_t off_tensors, off_arena, off_quant, off_tiles, off_scales, off_biases, off_dense;
    uint32_t off_ops, ops_size;
    uint32_t error_item; /* after a failed init: the tensor, entry or op it concerns */
} tbn_model;

const char *tbn_strerror(tbn_status status);

/* CRC-32 (IEEE 802.3, as zlib's crc32) of n bytes: the file checksum, also handy for links. */
uint32_t tbn_crc32(const TBN_ROM void *data, size_t n);

/* Continue a CRC-32 over more bytes, as zlib's crc32(crc, ...): start from 0. */
uint32_t tbn_crc32_update(uint32_t crc, const TBN_ROM void *data, size_t n);

/* Validate `size` bytes at `data` (4-byte aligned) and fill `model`. */
tbn_status tbn_model_init(tbn_model *model, const TBN_ROM void *data, size_t size);

/* Bytes of arena the model needs; the arena must be 4-byte aligned. */
uint32_t tbn_arena_size(const tbn_model *model);
uint32_t tbn_input_size(const tbn_model *model);
uint32_t tbn_output_size(const tbn_model *model);
int tbn_is_int8(const tbn_model *model);

/* The model's input or output as a caller sees it (the bindings' info() and input
 * preparation): dtype (TBN_DTYPE_*), shape, and for INT8 tensors real = scale * (q - zero_point). */
typedef struct {
    uint8_t dtype, ndim;
    uint16_t dims[TBN_MAX_DIMS];
    uint32_t numel, nbytes;
    float scale;
    int32_t zero_point;
} tbn_io_info;

void tbn_input_info(const tbn_model *model, tbn_io_info *info);
void tbn_output_info(const tbn_model *model, tbn_io_info *info);

/* Quantise n floats for an INT8 input as the reference does (docs/bytecode.md):
 * q = clamp(rint(x / scale) + zero_point, -128, 127), rounding half to even. Returns the
 * index of the first value that is NaN or infinite (nothing is written from there on), or
 * -1 when all are finite. */
int32_t tbn_quantize(const tbn_io_info *info, const float *x, int8_t *q, uint32_t n);

/* Where the input goes and the output comes out, inside the arena. */
void *tbn_input_ptr(const tbn_model *model, void *arena);
const void *tbn_output_ptr(const tbn_model *model, const void *arena);

/* Run the ops on the arena (the input must already be in tbn_input_ptr). */
tbn_status tbn_invoke(const tbn_model *model, void *arena, size_t arena_size);

/* Run ops [first, last) only (first <= last <= tbn_op_count), as a profiler does to measure
 * each op: the ops before `first` must have run on this arena already. */
tbn_status tbn_invoke_ops(const tbn_model *model, void *arena, size_t arena_size, uint32_t first, uint32_t last);
uint32_t tbn_op_count(const tbn_model *model);

/* Copy the input in, invoke, copy the output out. Sizes must equal the tensors'. */
tbn_status tbn_run(const tbn_model *model, void *arena, size_t arena_size, const void *input,
                   size_t input_size, void *output, size_t output_size);

#ifdef __cplusplus
}
#endif

#endif /* TBN_H */
