/* What the direct and the table kernel of the matmul family share (tbn_matmul.c,
 * tbn_matmul_lut.c): the decoded op, tile bit reads and the stores of one output. */
#ifndef TBN_MATMUL_H
#define TBN_MATMUL_H

#include "../tbn_internal.h"

/* 1..32 tile bits starting at bit `pos` (the tile is stored in whole 32-bit words). */
static inline uint32_t bits_at(const uint8_t *tile, uint32_t pos, uint32_t n) {
    uint32_t word = pos >> 5, sh = pos & 31u;
    uint32_t v = tbn_rd32(tile + 4 * word) >> sh;
    if (sh && sh + n > 32) v |= tbn_rd32(tile + 4 * (word + 1)) << (32 - sh);
    return v;
}

typedef struct {
    const tbn_model *m;
    const tbn_op *op;
    int tiled, int8;
    tbn_tile tile;
    const int8_t *dense;
    tbn_vector scale;
    tbn_vector bias;
    int has_bias, scale_mode;
    uint32_t o, k, p, cg, og; /* outputs, fan-in, tiling factor, in/out channels per group */
    tbn_tensor in, out;
    const uint8_t *src;
    uint8_t *dst;
    int per_rep; /* F32 scale per tile repetition: applied to row sums, not at the store */
    uint32_t npix; /* output positions (1 for linear) */
} mm_ctx;

/* Fill `c` for `op`, whose checks prepare has passed. */
void tbn_mm_init(mm_ctx *c, const tbn_model *m, const tbn_op *op, uint8_t *arena);

/* Store output channel ch at spatial index pix from its raw accumulator. */
static inline void store_f32(const mm_ctx *c, uint32_t ch, uint32_t pix, uint32_t npix, float raw, int per_rep) {
    float s = 1.0f;
    if (!per_rep) s = tbn_vector_f32(&c->scale, c->scale_mode == TBN_SCALE_ONE ? 0 : ch);
    float v = raw * s + (c->has_bias ? tbn_rdf32(c->bias.data + 4 * ch) : 0.0f);
    ((float *)c->dst)[(size_t)ch * npix + pix] = tbn_act_f32(v, c->op->act);
}

static inline void store_i8(const mm_ctx *c, uint32_t ch, uint32_t pix, uint32_t npix, int32_t acc) {
    uint32_t i = c->scale_mode == TBN_SCALE_ONE ? 0 : ch;
    int32_t mult = tbn_rds32(c->scale.data + 8 * i), shift = tbn_rds32(c->scale.data + 8 * i + 4);
    int64_t v = (int64_t)acc + (c->has_bias ? tbn_rds32(c->bias.data + 4 * ch) : 0);
    v = tbn_rshift_round(v * mult, shift);
    ((int8_t *)c->dst)[(size_t)ch * npix + pix] = tbn_clamp_q(c->out.zero_point + v, c->out.qmin, c->out.qmax);
}

/* The table kernel (tbn_matmul_lut.c): for an op with a scratch tensor, `rows` distinct rows. */
void tbn_mm_eval_lut(const mm_ctx *c, uint32_t rows, uint8_t *scratch);

#endif /* TBN_MATMUL_H */
