/* What the direct and the table kernel of the matmul family share (tbn_matmul.c,
 * tbn_matmul_lut.c): the decoded op, tile bit reads and the stores of one output. */
#ifndef TBN_MATMUL_H
#define TBN_MATMUL_H

#include "../tbn_internal.h"

/* An argument of a naked assembly function (the kernels' hand-scheduled loops), which reads it
 * in its assembly: unused to the compiler. */
#define TBN_ASM_ARG __attribute__((unused))

/* 1..32 tile bits starting at bit `pos` (the tile is stored in whole 32-bit words). */
static inline uint32_t bits_at(const TBN_ROM uint8_t *tile, uint32_t pos, uint32_t n) {
    uint32_t word = pos >> 5, sh = pos & 31u;
    uint32_t v = tbn_rd32a(tile + 4 * word) >> sh;
    if (sh && sh + n > 32) v |= tbn_rd32a(tile + 4 * (word + 1)) << (32 - sh);
    return v;
}

/* What turns an output's raw sum into its stored value: scale (none when an F32 scale per
 * repetition was applied to the row sums), bias, then activation or requantisation. */
typedef struct {
    const TBN_ROM uint8_t *scale, *bias; /* bias: NULL when the op has none */
    uint32_t scale_stride;       /* bytes from one channel's scale to the next; 0: one scale */
    int f16, bias16;             /* F16 scales; 16-bit biases (I16, or F16 in F32 models) */
    int rq16;                    /* INT8: RQ16 requantisation (else REQUANT) */
    uint32_t pre_shift, shift;   /* RQ16's two shifts ... */
    int32_t pre_half, half;      /* ... and their rounding terms, 2^(s-1) or 0 */
    uint8_t act;
    int32_t zp, qmin, qmax; /* INT8 output */
} mm_epilogue;

typedef struct {
    const tbn_model *m;
    const tbn_op *op;
    int tiled, int8;
    tbn_tile tile;
    const TBN_ROM int8_t *dense;
    tbn_vector scale; /* per-repetition F32 scales are read from here; the rest via ep */
    uint32_t o, k, p, cg, og; /* outputs, fan-in, tiling factor, in/out channels per group */
    uint16_t h, w, ho, wo; /* input and output planes (1 x 1 for linear ops) */
    int32_t in_zp;         /* INT8 input's zero point */
    const uint8_t *src;
    uint8_t *dst;
    int per_rep; /* F32 scale per tile repetition: applied to row sums, not at the store */
    uint32_t npix; /* output positions (1 for linear) */
    uint32_t tokens; /* rows of a linear op over tokens (1 otherwise) */
    mm_epilogue ep;
} mm_ctx;

/* The distinct rows a tile of n_bits holds for fan-in k, 0 when it holds no whole rows or the
 * conv has groups (tbn.format.spec.lut_rows): the rows that tile reuse and the table kernel
 * share. */
static inline uint32_t tbn_tile_rows(const tbn_op *op, uint32_t n_bits, uint32_t k) {
    int grouped = (op->traits & TBN_TRAIT_CONV) && op->groups != 1;
    return !grouped && n_bits % k == 0 ? n_bits / k : 0;
}

/* A 1x1 conv at stride 1 without padding: each output position reads its own input position. */
static inline int tbn_pointwise(const tbn_op *op) {
    return op->kh == 1 && op->kw == 1 && op->sh == 1 && op->sw == 1 && !op->pt && !op->pb && !op->pl && !op->pr;
}

/* The kernel columns [lo, hi) that fall inside the input row (the rest is zero padding). */
static inline void kx_range(const tbn_op *op, int32_t ix0, uint32_t w, int32_t *lo, int32_t *hi) {
    *lo = 0;
    *hi = op->kw;
    while (*lo < *hi && ix0 + *lo * op->dw < 0) (*lo)++;
    while (*hi > *lo && ix0 + (*hi - 1) * op->dw >= (int32_t)w) (*hi)--;
}

/* Store output channel ch at spatial index pix from its raw accumulator (the epilogue, once
 * per output). Kernels with a loop of stores copy c->ep to a local first: stores through an
 * int8_t pointer may alias anything, so fields read through `c` would be reloaded each time. */
static inline float finish_f32(const mm_epilogue *e, uint32_t ch, float raw) {
    float v = raw;
    if (e->scale) {
        const TBN_ROM uint8_t *p = e->scale + ch * e->scale_stride;
        v *= e->f16 ? tbn_f16_to_f32(tbn_rd16(p)) : tbn_rdf32(p);
    }
    if (e->bias) v += e->bias16 ? tbn_f16_to_f32(tbn_rd16(e->bias + 2 * ch)) : tbn_rdf32(e->bias + 4 * ch);
    return tbn_act_f32(v, e->act);
}

/* An INT8 output's integer bias (I16 or I32; 0 without one). */
static inline int32_t bias_i32(const mm_epilogue *e, uint32_t ch) {
    if (!e->bias) return 0;
    return e->bias16 ? (int16_t)tbn_rd16a(e->bias + 2 * ch) : (int32_t)tbn_rd32a(e->bias + 4 * ch);
}

/* RQ16: clamp(zp + rshift_round(rshift_round(acc + bias, pre_shift) * mult, shift)) in 32 bits;
 * the loader checked that |acc + bias| and the product stay under 2^30. */
static inline int8_t requant16_parts(const mm_epilogue *e, int32_t acc, int32_t bias, int32_t mult) {
    int32_t t = tbn_rshift_round32(acc + bias, e->pre_half, e->pre_shift);
    int32_t z = e->zp + tbn_rshift_round32(t * mult, e->half, e->shift);
    return (int8_t)(z < e->qmin ? e->qmin : (z > e->qmax ? e->qmax : z));
}

/* clamp(zp + rshift_round((acc + bias) * mult, shift)), the reference's requantisation, from
 * the output channel's bias, multiplier and shift (kernels that keep them per channel call
 * this directly). */
static inline int8_t requant_parts(const mm_epilogue *e, int32_t acc, int32_t bias, int32_t mult, int32_t shift) {
#if defined(__GNUC__)
    /* The usual case, a sum that fits 32 bits and a shift of 32 or more, in 32-bit steps on the
     * high word of one 32x32 multiply: |hi| < 2^30, and 2^(shift-1) only touches the high word
     * (shift 32: the rounding carry is the low word's top bit). >> is arithmetic here. */
    int32_t v32;
    if (shift >= 32 && !__builtin_add_overflow(acc, bias, &v32)) {
        int64_t prod = (int64_t)v32 * mult;
        int32_t hi = (int32_t)(prod >> 32);
        int32_t y = shift == 32 ? hi + (int32_t)((uint32_t)prod >> 31)
                                : (hi + ((int32_t)1 << (shift - 33))) >> (shift - 32);
        int32_t z = e->zp + y;
        return (int8_t)(z < e->qmin ? e->qmin : (z > e->qmax ? e->qmax : z));
    }
#endif
    int64_t v = (int64_t)acc + bias;
    return tbn_clamp_q(e->zp + tbn_rshift_round(v * mult, shift), e->qmin, e->qmax);
}

/* Output channel ch's requantisation of acc, its parameters read from the op's tables. */
static inline int8_t requant_i8(const mm_epilogue *e, uint32_t ch, int32_t acc) {
    const TBN_ROM uint8_t *rq = e->scale + ch * e->scale_stride;
    if (e->rq16 || !TBN_BUILD_REQUANT) return requant16_parts(e, acc, bias_i32(e, ch), (int16_t)tbn_rd16a(rq));
    return requant_parts(e, acc, bias_i32(e, ch), (int32_t)tbn_rd32a(rq), (int32_t)tbn_rd32a(rq + 4));
}

static inline void store_f32(const mm_ctx *c, uint32_t ch, uint32_t pix, uint32_t npix, float raw) {
    ((float *)c->dst)[(size_t)ch * npix + pix] = finish_f32(&c->ep, ch, raw);
}

static inline void store_i8(const mm_ctx *c, uint32_t ch, uint32_t pix, uint32_t npix, int32_t acc) {
    ((int8_t *)c->dst)[(size_t)ch * npix + pix] = requant_i8(&c->ep, ch, acc);
}

/* The table kernel (tbn_matmul_lut.c): for an op with a scratch tensor of `scratch_bytes`,
 * `rows` distinct rows, `tokens` tokens left (a linear op over tokens; else 1). Returns the
 * tokens done: 2 where the scratch has room for pair tables (tbn_lut_pair_scratch_size), else 1. */
uint32_t tbn_mm_eval_lut(const mm_ctx *c, uint32_t rows, uint8_t *scratch, uint32_t scratch_bytes,
                         uint32_t tokens);

/* The per-channel kernel (tbn_conv_channel.c) of convs whose outputs each read one input
 * channel: whether it takes the op, and the op run by it (`rows` as tbn_tile_rows). Not on
 * AVR: its 32-bit arithmetic takes 6.7 KB there, past what the Uno's 32 KB leaves. */
#ifndef TBN_CHANNEL_KERNEL
#if defined(__AVR__)
#define TBN_CHANNEL_KERNEL 0
#else
#define TBN_CHANNEL_KERNEL 1
#endif
#endif
int tbn_mm_channel_ok(const mm_ctx *c);
void tbn_mm_eval_channel(const mm_ctx *c, uint32_t rows);
/* n int16 sums plus corr of distinct row ch, stored at output `at` of ch and of every channel
 * that shares its row (`rows` distinct rows; the per-channel kernel's requantisation). */
void tbn_chan_store16_i8(const mm_ctx *c, uint32_t ch, uint32_t rows, const int16_t *acc, int32_t corr, uint32_t n,
                         uint32_t at);
/* The same for n int32 sums (their constant already added). */
void tbn_chan_store32_i8(const mm_ctx *c, uint32_t ch, uint32_t rows, const int32_t *acc, uint32_t n, uint32_t at);

/* The quad kernel (tbn_conv_quads.c) of INT8 tiled convs on DSP cores, pointwise or with a
 * window at stride 1 or 2: positions four at a time in 16-bit halves, for ops of few rows or
 * inputs, where the tables' set-up per position costs more than it saves. Whether it takes
 * the op, and the op run by it. */
#if TBN_CHANNEL_KERNEL && defined(__GNUC__) && defined(__thumb2__) && defined(__ARM_FEATURE_DSP) && \
    defined(__ARM_FEATURE_UNALIGNED) && !defined(TBN_PORTABLE)
#define TBN_QUAD_KERNEL 1
#else
#define TBN_QUAD_KERNEL 0
#endif
int tbn_mm_quads_ok(const mm_ctx *c, uint32_t rows);
void tbn_mm_eval_quads(const mm_ctx *c, uint32_t rows);
/* Output row oy's input rows of channels ch0 .. ch0 + nch - 1 staged for a window, padded with
 * the zero point: channel ch0 + i's row ky at (i * kh + ky) * len, its input at pl. */
void tbn_quad_stage_rows(const mm_ctx *c, uint32_t oy, int8_t *stage, uint32_t len, uint32_t ch0, uint32_t nch);
/* The plane-table kernel (tbn_conv_planes.c): INT8 tiled pointwise convs of many rows, a block
 * of positions' tables of signed sums shared by every row. Runs the op and returns 1, or
 * returns 0 (nothing written) where it does not take it. */
int tbn_mm_eval_planes(const mm_ctx *c, uint32_t rows);

/* The small-core kernel (tbn_matmul_small.c) of INT8 ops, in 8- and 16-bit steps: whether it
 * takes the op (tiled, every count in 16 bits), and the op run by it. Built for cores without
 * the DSP extension (AVR, RISC-V, Cortex-M0/M0+; on M4/M7/M33 the table kernel and the
 * per-channel kernel's assembly take convs, and .text stays smaller), used where an op with a
 * window is built (an MLP's linear ops take the table kernel), for ops without tables. On AVR
 * it is the only INT8 kernel (TBN_SMALL_ALL), dense weights included: the direct kernel's INT8
 * paths are left out, and tbn_prepare_matmul refuses an op past its counts. */
#ifndef TBN_SMALL_KERNEL
#if defined(__ARM_FEATURE_DSP)
#define TBN_SMALL_KERNEL 0
#else
#define TBN_SMALL_KERNEL TBN_BUILD_INT8
#endif
#endif
#ifndef TBN_SMALL_ALL
#if defined(__AVR__)
#define TBN_SMALL_ALL TBN_SMALL_KERNEL
#else
#define TBN_SMALL_ALL 0
#endif
#endif
/* a constant: where it is 0 the kernel is not linked */
#define TBN_SMALL_USED (TBN_SMALL_KERNEL && (TBN_SMALL_ALL || TBN_BUILT_TRAIT(CONV)))
/* The most fan-in, outputs and values of an input group it takes: 16-bit counts, with room for
 * a row's bit offset and skips past its end */
#define TBN_SMALL_MAX_COUNT 0xFFF0u
/* Whether it takes an op: INT8 and tiled, every count in 16 bits (fan-in, outputs, an input
 * group); where it is the only INT8 kernel, every INT8 op (tbn_prepare_matmul refused the rest). */
static inline int tbn_mm_small_ok(const mm_ctx *c) {
    if (!TBN_INT8(c->int8) || TBN_SMALL_ALL) return TBN_INT8(c->int8);
    /* a row wraps the tile at most once: a tile shorter than a row (k > n_bits, which a
     * fuzzed file had) goes to the direct kernel */
    return c->tiled && c->k <= TBN_SMALL_MAX_COUNT && c->o <= TBN_SMALL_MAX_COUNT && c->k <= c->tile.n_bits &&
           (uint32_t)c->h * c->w * c->cg <= TBN_SMALL_MAX_COUNT;
}
void tbn_mm_store_i8(const mm_ctx *c, uint32_t ch, uint32_t pix, int32_t acc); /* store_i8, not inlined */
void tbn_mm_eval_small(const mm_ctx *c, uint32_t rows);

#endif /* TBN_MATMUL_H */
