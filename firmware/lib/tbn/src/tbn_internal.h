/* Internal helpers shared by the loader, the interpreter and the kernels. */
#ifndef TBN_INTERNAL_H
#define TBN_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "tbn.h"

/* Little-endian loads from byte pointers (memcpy compiles to one load where allowed). */
static inline uint16_t tbn_rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t tbn_rd32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline int32_t tbn_rds32(const uint8_t *p) { return (int32_t)tbn_rd32(p); }
static inline float tbn_rdf32(const uint8_t *p) {
    uint32_t u = tbn_rd32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
float tbn_f16_to_f32(uint16_t h);

/* A decoded tensor. */
typedef struct {
    uint8_t dtype, ndim;
    uint16_t dims[TBN_MAX_DIMS];
    uint32_t numel, offset, nbytes;
    float scale;
    int32_t zero_point, qmin, qmax;
} tbn_tensor;

void tbn_get_tensor(const tbn_model *m, uint32_t id, tbn_tensor *t);

/* A vector entry (scale or bias). */
typedef struct {
    const uint8_t *data;
    uint32_t count;
    uint8_t dtype;
} tbn_vector;

void tbn_get_scale(const tbn_model *m, uint32_t id, tbn_vector *v);
void tbn_get_bias(const tbn_model *m, uint32_t id, tbn_vector *v);
float tbn_vector_f32(const tbn_vector *v, uint32_t i); /* F32, F16 */

/* Tile: packed bits (LSB first), n_bits. */
typedef struct {
    const uint8_t *bits;
    uint32_t n_bits;
} tbn_tile;

void tbn_get_tile(const tbn_model *m, uint32_t id, tbn_tile *t);
const int8_t *tbn_get_dense(const tbn_model *m, uint32_t id, uint32_t *count);

/* A decoded op: every layout's fields by name (absent fields are 0). */
typedef struct {
    uint8_t opcode, act;
    uint16_t input, output, a, b, tile, weight, scale, bias;
    uint8_t kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
    uint16_t groups;
    uint32_t size;
} tbn_op;

/* Decode the op at byte offset `pos` of the ops section; returns 0 if unknown/truncated. */
int tbn_decode_op(const uint8_t *p, uint32_t avail, tbn_op *op);

/* out = floor((v + 2^(s-1)) / 2^s) for s >= 1, v for s == 0 (no implementation-defined shifts). */
static inline int64_t tbn_rshift_round(int64_t v, int32_t s) {
    if (s <= 0) return v;
    v += (int64_t)1 << (s - 1);
    return v >= 0 ? (v >> s) : -(((-v) - 1) >> s) - 1;
}

/* A fused activation on an F32 value. */
static inline float tbn_act_f32(float v, uint8_t act) {
    if (act == TBN_ACT_NONE) return v;
    if (v < 0.0f) v = 0.0f;
    if (act == TBN_ACT_RELU6 && v > 6.0f) v = 6.0f;
    return v;
}

/* floor((2 * sum + n) / (2 * n)): the INT8 average, rounded half up (n > 0). */
static inline int64_t tbn_avg_round(int64_t sum, int64_t n) {
    int64_t num = 2 * sum + n, den = 2 * n;
    return num >= 0 ? num / den : -((-num + den - 1) / den);
}

static inline int8_t tbn_clamp_q(int64_t v, int32_t lo, int32_t hi) {
    return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

/* Kernels: each returns TBN_OK (the loader has checked every shape already). */
tbn_status tbn_kernel_matmul(const tbn_model *m, const tbn_op *op, uint8_t *arena);  /* linear, conv */
tbn_status tbn_kernel_pool(const tbn_model *m, const tbn_op *op, uint8_t *arena);
tbn_status tbn_kernel_global_avgpool(const tbn_model *m, const tbn_op *op, uint8_t *arena);
tbn_status tbn_kernel_eltwise(const tbn_model *m, const tbn_op *op, uint8_t *arena); /* others */

#endif /* TBN_INTERNAL_H */
