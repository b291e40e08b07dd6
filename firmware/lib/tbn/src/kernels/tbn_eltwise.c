/* RESHAPE, ADD, MUL, CONCAT, ACTIVATION, SOFTMAX and SOFTMAX_AXIS, ARGMAX, AFFINE (F32 only) and the unary
 * family (SIGMOID, ...): one prepare and one eval each. */
#include "../tbn_internal.h"
#if defined(__ARM_FEATURE_SAT)
#include <arm_acle.h>
#endif

/* e^x for SOFTMAX without libm (MicroPython's native modules and some ports link none):
 * x = n ln2 + r with |r| <= ln2/2, e^r by its Taylor series to r^7 (error < 6e-9 relative,
 * under float's own rounding), times 2^n built in the exponent bits. */
static float tbn_exp_f32(float x) {
    if (!(x == x)) return x; /* NaN stays NaN, as expf keeps it (a model's weights can make one) */
    if (x < -87.0f) return 0.0f; /* below FLT_MIN: SOFTMAX's weights there are 0 to float precision */
    if (x > 88.0f) x = 88.0f;
    float fn = x * 1.44269504f;
    int32_t n = (int32_t)(fn < 0.0f ? fn - 0.5f : fn + 0.5f);
    float r = (x - (float)n * 0.693145752f) - (float)n * 1.42860677e-6f; /* ln2, hi + lo */
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (
        1.0f / 720 + r * (1.0f / 5040)))))));
    uint32_t bits = (uint32_t)(n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* erf(x) for GELU without libm: erfc by Numerical Recipes' Chebyshev fit (relative error
 * under 1.2e-7 everywhere) on tbn_exp_f32, erf = 1 - erfc, odd in x. */
static float tbn_erf_f32(float x) {
    static const float c[10] = {-1.26551223f, 1.00002368f, 0.37409196f, 0.09678418f, -0.18628806f,
                                0.27886807f, -1.13520398f, 1.48851587f, -0.82215223f, 0.17087277f};
    float z = x < 0.0f ? -x : x, t = 1.0f / (1.0f + 0.5f * z), poly = c[9];
    for (int i = 8; i >= 0; i--) poly = c[i] + t * poly;
    float r = t * tbn_exp_f32(poly - z * z);
    return x < 0.0f ? r - 1.0f : 1.0f - r;
}

/* The input and output tensors of a one-input op, and their places in the arena. */
typedef struct {
    tbn_tensor in, out;
    const uint8_t *src;
    uint8_t *dst;
} unary;

static unary unary_of(const tbn_model *m, const tbn_op *op, uint8_t *arena) {
    unary u;
    tbn_get_tensor(m, op->input, &u.in);
    tbn_get_tensor(m, op->output, &u.out);
    u.src = arena + u.in.offset;
    u.dst = arena + u.out.offset;
    return u;
}

tbn_status tbn_prepare_reshape(const tbn_model *m, const tbn_op *op, const tbn_io *io) {
    (void)m;
    (void)op;
    return io->out.numel == io->in.numel ? TBN_OK : TBN_ERR_SHAPE;
}

tbn_status tbn_eval_reshape(const tbn_model *m, const tbn_op *op, uint8_t *arena) {
    unary u = unary_of(m, op, arena);
    if (u.src != u.dst) memmove(u.dst, u.src, u.out.nbytes);
    return TBN_OK;
}

tbn_status tbn_prepare_add(const tbn_model *m, const tbn_op *op, const tbn_io *io) {
    if (!tbn_same_shape(&io->in, &io->b) || !tbn_same_shape(&io->in, &io->out) || io->b.dtype != io->in.dtype)
        return TBN_ERR_SHAPE;
    /* one multiplier per input: REQUANT, or RQ16 whose products fit 32 bits */
    uint32_t span_a = tbn_q_span(io->in.zero_point), span_b = tbn_q_span(io->b.zero_point);
    return !TBN_INT8(io->int8) || tbn_rescale_ok(m, op->scale, 2, span_a > span_b ? span_a : span_b) ? TBN_OK
                                                                                                  : TBN_ERR_SHAPE;
}

/* Input i's rescaled term of an INT8 ADD (REQUANT or RQ16) for its value q of zero point z: the
 * output is zo + term_a(a) + term_b(b), clamped, as the reference computes it. */
static int64_t add_term(const tbn_vector *rq, uint32_t i, int32_t q, int32_t z) {
    if (rq->dtype == TBN_DTYPE_RQ16 || !TBN_BUILD_REQUANT) {
        uint32_t pre = rq->pre_shift, shift = rq->shift;
        int32_t pre_half = (int32_t)(((uint32_t)1 << pre) >> 1), half = (int32_t)(((uint32_t)1 << shift) >> 1);
        return tbn_rshift_round32(tbn_rshift_round32(q - z, pre_half, pre) * (int16_t)tbn_rd16(rq->data + 2 * i),
                                  half, shift);
    }
    return tbn_rshift_round(((int64_t)q - z) * tbn_rds32(rq->data + 8 * i), tbn_rds32(rq->data + 8 * i + 4));
}

#define ADD_TABLE_MIN 512 /* elements from which building two 256-entry tables pays */

#if !defined(__AVR__) /* 1 KB of stack for the tables is half the Uno's RAM */
/* dst = clamp(ta[a] + tb[b]) over n elements, in a function of its own so that every pointer
 * stays in a register (inlined, the M7 build kept them on the stack: 21 instructions an element). */
static TBN_NOINLINE void add_lookup(const int16_t *ta, const int16_t *tb, const uint8_t *a, const uint8_t *b,
                                    int8_t *dst, uint32_t n, int32_t lo, int32_t hi) {
    const uint8_t *end = a + n;
#if defined(__ARM_FEATURE_SAT)
    if (lo == -128 && hi == 127) {
        for (; a < end; a++, b++, dst++) *dst = (int8_t)__ssat(ta[*a] + tb[*b], 8);
        return;
    }
#endif
    for (; a < end; a++, b++, dst++) {
        int32_t v = ta[*a] + tb[*b];
        *dst = (int8_t)(v < lo ? lo : (v > hi ? hi : v));
    }
}
#endif

/* t[(uint8_t)q] = base + input i's term of q, for q = -128..127. Where the term is
 * rshift_round((q - z) M, S) with no first shift (REQUANT, or RQ16 without pre_shift), one q
 * to the next adds M to the numerator: its quotient and remainder by 2^S are carried with M's
 * own (exact, as the division; about 8 instructions a term on the M7, where each computed alone
 * took about 45: ViT's 16x64 ADD 33,000 -> 14,000). The caller checked that the terms fit 16 bits. */
#if !defined(__AVR__) /* as add_by_tables */
static void add_terms(int16_t *t, const tbn_vector *rq, uint32_t i, int32_t z, int32_t base) {
    int rq16 = rq->dtype == TBN_DTYPE_RQ16 || !TBN_BUILD_REQUANT;
    if (rq16 && rq->pre_shift) {
        for (int32_t q = -128; q < 128; q++) t[(uint8_t)q] = (int16_t)(base + add_term(rq, i, q, z));
        return;
    }
    int64_t m = rq16 ? (int16_t)tbn_rd16(rq->data + 2 * i) : tbn_rds32(rq->data + 8 * i);
    int32_t s = rq16 ? (int32_t)rq->shift : tbn_rds32(rq->data + 8 * i + 4);
    if (s <= 0) s = 0; /* rshift_round by 0 or less is the value itself */
    int64_t unit = (int64_t)1 << s, half = unit >> 1;
    int64_t n = ((int64_t)-128 - z) * m;
    int64_t quot = tbn_rshift_round(n, s), mq = tbn_rshift_round(m - half, s); /* floor(m / 2^S) */
    int64_t rem = n + half - quot * unit, mr = m - mq * unit;                   /* both in [0, 2^S) */
    int32_t v = (int32_t)(base + quot), step = (int32_t)mq;
    for (int32_t q = -128; q < 128; q++) {
        t[(uint8_t)q] = (int16_t)v;
        v += step;
        rem += mr;
        if (rem >= unit) rem -= unit, v++;
    }
}
#endif

/* Where both terms fit 16 bits (each is monotonic in its input, so its ends bound it), two
 * tables of them make an element two lookups and a clamp: about 11 instructions on the M7,
 * where computing both terms takes about 32 (RQ16) or more (REQUANT's 64-bit products).
 * 1 if it ran. */
static int add_by_tables(const unary *u, const tbn_tensor *b, const uint8_t *bb, const tbn_vector *rq) {
#if defined(__AVR__)
    (void)u, (void)b, (void)bb, (void)rq;
    return 0;
#else
    int16_t ta[256], tb[256];
    int32_t za = u->in.zero_point, zb = b->zero_point, zo = u->out.zero_point, lo = u->out.qmin, hi = u->out.qmax;
    int64_t ends[4] = {zo + add_term(rq, 0, -128, za), zo + add_term(rq, 0, 127, za), add_term(rq, 1, -128, zb),
                       add_term(rq, 1, 127, zb)};
    for (int i = 0; i < 4; i++)
        if (ends[i] < -32768 || ends[i] > 32767) return 0;
    add_terms(ta, rq, 0, za, zo);
    add_terms(tb, rq, 1, zb, 0);
    add_lookup(ta, tb, u->src, bb, (int8_t *)u->dst, u->in.numel, lo, hi);
    return 1;
#endif
}

/* INT8 ADD with RQ16: both inputs rescaled in 32 bits (prepare checked the bounds). Every
 * parameter in a local: the int8 stores may alias anything reached through a pointer, so
 * fields read in the loop would be reloaded each element (78 instructions an element on the
 * M7 where this takes about 32). */
static void add_rq16(const unary *u, const tbn_tensor *b, const int8_t *src_b, const tbn_vector *rq) {
    int32_t ma = (int16_t)tbn_rd16(rq->data), mb = (int16_t)tbn_rd16(rq->data + 2);
    uint32_t pre = rq->pre_shift, shift = rq->shift;
    int32_t pre_half = (int32_t)(((uint32_t)1 << pre) >> 1), half = (int32_t)(((uint32_t)1 << shift) >> 1);
    int32_t za = u->in.zero_point, zb = b->zero_point, zo = u->out.zero_point, lo = u->out.qmin, hi = u->out.qmax;
    const int8_t *a = (const int8_t *)u->src;
    int8_t *dst = (int8_t *)u->dst;
    for (const int8_t *end = a + u->in.numel; a < end; a++, src_b++, dst++) {
        int32_t ta = tbn_rshift_round32((int32_t)*a - za, pre_half, pre);
        int32_t tb = tbn_rshift_round32((int32_t)*src_b - zb, pre_half, pre);
        int32_t v = zo + tbn_rshift_round32(ta * ma, half, shift) + tbn_rshift_round32(tb * mb, half, shift);
        *dst = (int8_t)(v < lo ? lo : (v > hi ? hi : v));
    }
}

/* INT8 ADD with REQUANT: each input's (q - z) * M in 64 bits, rounded, as the reference. */
static void add_requant(const unary *u, const tbn_tensor *b, const int8_t *src_b, const tbn_vector *rq) {
    int32_t za = u->in.zero_point, zb = b->zero_point, zo = u->out.zero_point, lo = u->out.qmin, hi = u->out.qmax;
    const int8_t *a = (const int8_t *)u->src;
    int8_t *dst = (int8_t *)u->dst;
    for (const int8_t *end = a + u->in.numel; a < end; a++, src_b++, dst++)
        *dst = tbn_clamp_q(zo + add_term(rq, 0, *a, za) + add_term(rq, 1, *src_b, zb), lo, hi);
}

tbn_status tbn_eval_add(const tbn_model *m, const tbn_op *op, uint8_t *arena) {
    unary u = unary_of(m, op, arena);
    tbn_tensor b;
    tbn_get_tensor(m, op->b, &b);
    const uint8_t *src_b = arena + b.offset;
    uint32_t n = u.in.numel;
    if (!tbn_int8(m)) {
        for (uint32_t i = 0; i < n; i++)
            ((float *)u.dst)[i] = tbn_act_f32(((const float *)u.src)[i] + ((const float *)src_b)[i], op->act);
        return TBN_OK;
    }
    tbn_vector rq;
    tbn_get_scale(m, op->scale, &rq);
    if (n >= ADD_TABLE_MIN && add_by_tables(&u, &b, src_b, &rq)) return TBN_OK;
    if (rq.dtype == TBN_DTYPE_RQ16 || !TBN_BUILD_REQUANT) add_rq16(&u, &b, (const int8_t *)src_b, &rq);
    else add_requant(&u, &b, (const int8_t *)src_b, &rq);
    return TBN_OK;
}

/* MUL: b broadcast over a (each of b's dims a's or 1); INT8 rescales (q_a - z_a)(q_b - z_b),
 * at most 2^16, by one REQUANT or RQ16 entry (prepare checks RQ16's products fit 32 bits). */
tbn_status tbn_prepare_mul(const tbn_model *m, const tbn_op *op, const tbn_io *io) {
    if (!tbn_same_shape(&io->in, &io->out) || io->b.ndim != io->in.ndim || io->b.dtype != io->in.dtype)
        return TBN_ERR_SHAPE;
    for (uint32_t d = 0; d < io->in.ndim; d++)
        if (io->b.dims[d] != 1 && io->b.dims[d] != io->in.dims[d]) return TBN_ERR_SHAPE;
    uint32_t bound = tbn_q_span(io->in.zero_point) * tbn_q_span(io->b.zero_point);
    return !TBN_INT8(io->int8) || tbn_rescale_ok(m, op->scale, 1, bound) ? TBN_OK : TBN_ERR_SHAPE;
}

/* The product of one pair, F32 or requantised INT8. */
static void mul_one(const unary *u, const uint8_t *src_b, int32_t zb, uint32_t i, uint32_t j, const tbn_op *op,
                    const tbn_vector *rq) {
    if (!rq) {
        float v = ((const float *)u->src)[i] * ((const float *)src_b)[j];
        ((float *)u->dst)[i] = tbn_act_f32(v, op->act);
        return;
    }
    int32_t v = ((int32_t)((const int8_t *)u->src)[i] - u->in.zero_point) * ((int32_t)((const int8_t *)src_b)[j] - zb);
    ((int8_t *)u->dst)[i] = tbn_clamp_q(u->out.zero_point + tbn_rescale_entry(v, rq, 0), u->out.qmin, u->out.qmax);
}

tbn_status tbn_eval_mul(const tbn_model *m, const tbn_op *op, uint8_t *arena) {
    unary u = unary_of(m, op, arena);
    tbn_tensor b;
    tbn_get_tensor(m, op->b, &b);
    tbn_vector rq;
    if (tbn_int8(m)) tbn_get_scale(m, op->scale, &rq);
    /* a's shape and b's strides (0 where b broadcasts), padded to four dims in front */
    uint32_t dim[4] = {1, 1, 1, 1}, stride[4] = {0, 0, 0, 0}, s = 1;
    for (uint32_t d = u.in.ndim; d-- > 0;) {
        uint32_t k = 4 - u.in.ndim + d;
        dim[k] = u.in.dims[d];
        stride[k] = b.dims[d] == 1 ? 0 : s;
        s *= b.dims[d];
    }
    uint32_t i = 0;
    for (uint32_t d0 = 0; d0 < dim[0]; d0++)
        for (uint32_t d1 = 0; d1 < dim[1]; d1++)
            for (uint32_t d2 = 0; d2 < dim[2]; d2++)
                for (uint32_t d3 = 0; d3 < dim[3]; d3++, i++)
                    mul_one(&u, arena + b.offset, b.zero_point, i,
                            d0 * stride[0] + d1 * stride[1] + d2 * stride[2] + d3 * stride[3], op,
                            tbn_int8(m) ? &rq : NULL);
    return TBN_OK;
}

/* CONCAT: a then b along axis; INT8 rescales each to the output's parameters by its own
 * REQUANT or RQ16 entry (as ADD's, without the sum). */
tbn_status tbn_prepare_concat(const tbn_model *m, const tbn_op *op, const tbn_io *io) {
    const tbn_tensor *a = &io->in, *b = &io->b, *o = &io->out;
    if (a->ndim != b->ndim || a->ndim != o->ndim || op->axis >= a->ndim || b->dtype != a->dtype) return TBN_ERR_SHAPE;
    for (uint32_t d = 0; d < a->ndim; d++) {
        uint32_t want = d == op->axis ? (uint32_t)a->dims[d] + b->dims[d] : a->dims[d];
        if (o->dims[d] != want || (d != op->axis && b->dims[d] != a->dims[d])) return TBN_ERR_SHAPE;
    }
    uint32_t span_a = tbn_q_span(a->zero_point), span_b = tbn_q_span(b->zero_point);
    return !TBN_INT8(io->int8) || tbn_rescale_ok(m, op->scale, 2, span_a > span_b ? span_a : span_b) ? TBN_OK
                                                                                                  : TBN_ERR_SHAPE;
}

/* Copy n values of one input into the output, rescaled by entry k of rq where INT8. */
static void concat_part(const uint8_t *src, const tbn_tensor *t, uint8_t *dst, const tbn_tensor *out, uint32_t n,
                        const tbn_vector *rq, uint32_t k) {
    if (!rq) {
        memcpy(dst, src, (size_t)n * 4u);
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        int64_t r = tbn_rescale_entry((int32_t)((const int8_t *)src)[i] - t->zero_point, rq, k);
        ((int8_t *)dst)[i] = tbn_clamp_q(out->zero_point + r, out->qmin, out->qmax);
    }
}

tbn_status tbn_eval_concat(const tbn_model *m, const tbn_op *op, uint8_t *arena) {
    tbn_tensor a, b, out;
    tbn_get_tensor(m, op->a, &a);
    tbn_get_tensor(m, op->b, &b);
    tbn_get_tensor(m, op->output, &out);
    tbn_vector rq;
    if (tbn_int8(m)) tbn_get_scale(m, op->scale, &rq);
    uint32_t outer = 1, inner = 1, size = tbn_int8(m) ? 1u : 4u;
    for (uint32_t d = 0; d < op->axis; d++) outer *= a.dims[d];
    for (uint32_t d = op->axis + 1u; d < a.ndim; d++) inner *= a.dims[d];
    uint32_t na = a.dims[op->axis] * inner, nb = b.dims[op->axis] * inner; /* values per outer step */
    for (uint32_t o = 0; o < outer; o++) {
        uint8_t *dst = arena + out.offset + (size_t)o * (na + nb) * size;
        concat_part(arena + a.offset + (size_t)o * na * size, &a, dst, &out, na, tbn_int8(m) ? &rq : NULL, 0);
        concat_part(arena + b.offset + (size_t)o * nb * size, &b, dst + (size_t)na * size, &out, nb,
                    tbn_int8(m) ? &rq : NULL, 1);
    }
    return TBN_OK;
}

tbn_status tbn_prepare_activation(const tbn_model *m, const tbn_op *op, const tbn_io *io) {
    (void)m;
    return op->act != TBN_ACT_NONE && tbn_same_shape(&io->in, &io->out) ? TBN_OK : TBN_ERR_SHAPE;
}

tbn_status tbn_eval_activation(const tbn_model *m, const tbn_op *op, uint8_t *arena) {
    unary u = unary_of(m, op, arena);
    int int8 = tbn_int8(m);
    for (uint32_t i = 0; i < u.in.numel; i++) {
        if (int8) ((int8_t *)u.dst)[i] = tbn_clamp_q(((const int8_t *)u.src)[i], u.out.qmin, u.out.qmax);
        else ((float *)u.dst)[i] = tbn_act_f32(((const float *)u.src)[i], op->act);
    }
    return TBN_OK;
}

/* SOFTMAX: over all elements (F32). SOFTMAX_AXIS: along one axis, each of the outer x inner
 * lines apart; INT8 by the file's u16 table of exp (docs/bytecode.md), in integers. */
tbn_status tbn_prepare_softmax(const tbn_model *m, const tbn_op *op, const tbn_io *io) {
    if (!tbn_same_shape(&io->in, &io->out)) return TBN_ERR_SHAPE;
    if (op->opcode == TBN_OP_SOFTMAX) return TBN_OK;
    if (op->axis >= io->in.ndim) return TBN_ERR_SHAPE;
    if (!TBN_INT8(io->int8)) {
        float a;
        memcpy(&a, &op->alpha, sizeof a);
        return op->table == TBN_NONE_ID && a - a == 0.0f ? TBN_OK : TBN_ERR_SHAPE; /* a finite */
    }
    uint32_t count = 0;
    const TBN_ROM int8_t *table = op->table != TBN_NONE_ID ? tbn_get_dense(m, op->table, &count) : NULL;
    /* entry 0 (the maximum's own) > 0: every line's sum is then at least it, never 0 */
    return count == 2u * TBN_SOFTMAX_TABLE_SIZE && tbn_rd16((const TBN_ROM uint8_t *)table) != 0 &&
                   io->out.zero_point == TBN_SOFTMAX_OUT_ZERO && io->out.scale == 1.0f / 256.0f
               ? TBN_OK
               : TBN_ERR_SHAPE;
}

static void softmax_line_f32(const float *x, float *y, uint32_t n, uint32_t stride) {
    float mx = x[0], sum = 0.0f;
    for (uint32_t i = 1; i < n; i++) if (x[i * stride] > mx) mx = x[i * stride];
    for (uint32_t i = 0; i < n; i++) sum += y[i * stride] = tbn_exp_f32(x[i * stride] - mx);
    for (uint32_t i = 0; i < n; i++) y[i * stride] /= sum;
}

static void softmax_line_s8(const int8_t *x, int8_t *y, uint32_t n, uint32_t stride,
                            const TBN_ROM int8_t *table) {
    int32_t mx = x[0];
    uint32_t sum = 0;
    for (uint32_t i = 1; i < n; i++) if (x[i * stride] > mx) mx = x[i * stride];
    for (uint32_t i = 0; i < n; i++) sum += tbn_rd16((const TBN_ROM uint8_t *)table + 2 * (mx - x[i * stride]));
    for (uint32_t i = 0; i < n; i++) {
        uint32_t e = tbn_rd16((const TBN_ROM uint8_t *)table + 2 * (mx - x[i * stride]));
        uint32_t q = (e * 256u + sum / 2u) / sum; /* 0..256; e*256 < 2^24 and sum/2 < 2^31 */
        y[i * stride] = (int8_t)((q > 255u ? 255 : (int32_t)q) - 128);
    }
}

tbn_status tbn_eval_softmax(const tbn_model *m, const tbn_op *op, uint8_t *arena) {
    unary u = unary_of(m, op, arena);
    uint32_t outer = 1, n = u.in.numel, inner = 1;
    if (op->opcode != TBN_OP_SOFTMAX) {
        n = u.in.dims[op->axis];
        for (uint32_t d = 0; d < op->axis; d++) outer *= u.in.dims[d];
        for (uint32_t d = op->axis + 1u; d < u.in.ndim; d++) inner *= u.in.dims[d];
    }
    const TBN_ROM int8_t *table = NULL;
    if (tbn_int8(m)) {
        uint32_t count;
        table = tbn_get_dense(m, op->table, &count);
    }
    for (uint32_t o = 0; o < outer; o++)
        for (uint32_t i = 0; i < inner; i++) {
            size_t at = (size_t)o * n * inner + i;
            if (table)
                softmax_line_s8((const int8_t *)u.src + at, (int8_t *)u.dst + at, n, inner, table);
            else
                softmax_line_f32((const float *)u.src + at, (float *)u.dst + at, n, inner);
        }
    return TBN_OK;
}

tbn_status tbn_prepare_argmax(const tbn_model *m, const tbn_op *op, const tbn_io *io) {
    (void)m;
    (void)op;
    return io->out.dtype == TBN_DTYPE_I32 && io->out.numel == 1 ? TBN_OK : TBN_ERR_SHAPE;
}

tbn_status tbn_eval_argmax(const tbn_model *m, const tbn_op *op, uint8_t *arena) {
    unary u = unary_of(m, op, arena);
    int int8 = tbn_int8(m);
    uint32_t best = 0;
    for (uint32_t i = 1; i < u.in.numel; i++) {
        if (int8 ? ((const int8_t *)u.src)[i] > ((const int8_t *)u.src)[best]
                 : ((const float *)u.src)[i] > ((const float *)u.src)[best])
            best = i;
    }
    int32_t v = (int32_t)best;
    memcpy(u.dst, &v, sizeof v);
    return TBN_OK;
}

tbn_status tbn_prepare_affine(const tbn_model *m, const tbn_op *op, const tbn_io *io) {
    tbn_vector v;
    uint32_t ch = io->in.dims[0];
    tbn_get_scale(m, op->scale, &v);
    if (!tbn_same_shape(&io->in, &io->out) || !TBN_DTYPE_IN(v.dtype, TBN_F32_VECTOR_DTYPES) ||
        tbn_scale_mode(v.count, ch, 1) < 0)
        return TBN_ERR_SHAPE;
    if (op->bias != TBN_NONE_ID) {
        tbn_get_bias(m, op->bias, &v);
        if (v.count != ch || !TBN_DTYPE_IN(v.dtype, TBN_F32_VECTOR_DTYPES)) return TBN_ERR_SHAPE;
    }
    return TBN_OK;
}

tbn_status tbn_eval_affine(const tbn_model *m, const tbn_op *op, uint8_t *arena) {
    unary u = unary_of(m, op, arena);
    tbn_vector s, b;
    tbn_get_scale(m, op->scale, &s);
    int has_bias = op->bias != TBN_NONE_ID, one = tbn_scale_mode(s.count, u.in.dims[0], 1) == TBN_SCALE_ONE;
    if (has_bias) tbn_get_bias(m, op->bias, &b);
    uint32_t ch = u.in.dims[0], per = u.in.numel / ch;
    for (uint32_t c = 0; c < ch; c++) {
        float sc = tbn_vector_f32(&s, one ? 0 : c), bi = has_bias ? tbn_vector_f32(&b, c) : 0.0f;
        for (uint32_t i = 0; i < per; i++) {
            size_t j = (size_t)c * per + i;
            ((float *)u.dst)[j] = tbn_act_f32(((const float *)u.src)[j] * sc + bi, op->act);
        }
    }
    return TBN_OK;
}

/* The unary family: each op's function of x, generated from the spec (tbn_format.h's
 * TBN_UNARY_F32_<NAME>, on tbn_exp_f32 above and tbn_internal.h's tbn_minf, tbn_maxf); INT8
 * reads the file's table, whose 256 entries the compiler made from the same function:
 * y = table[q + 128]. */

static float unary_f32(unsigned opcode, float x, float a) {
    (void)a; /* read by the ops with a parameter only */
    switch (opcode) {
#define TBN_UNARY_CASE(NAME, code) \
    case code: return TBN_UNARY_F32_##NAME(x, a);
        TBN_UNARY_LIST(TBN_UNARY_CASE)
#undef TBN_UNARY_CASE
    default: return x; /* not reached: the loader refuses unknown opcodes */
    }
}

tbn_status tbn_prepare_unary(const tbn_model *m, const tbn_op *op, const tbn_io *io) {
    if (!tbn_same_shape(&io->in, &io->out)) return TBN_ERR_SHAPE;
    if (!TBN_INT8(io->int8)) {
        float a;
        memcpy(&a, &op->alpha, sizeof a);
        return op->table == TBN_NONE_ID && a - a == 0.0f ? TBN_OK : TBN_ERR_SHAPE; /* a finite */
    }
    uint32_t count = 0;
    if (op->table != TBN_NONE_ID) tbn_get_dense(m, op->table, &count);
    return count == TBN_UNARY_TABLE_SIZE ? TBN_OK : TBN_ERR_SHAPE;
}

tbn_status tbn_eval_unary(const tbn_model *m, const tbn_op *op, uint8_t *arena) {
    unary u = unary_of(m, op, arena);
    if (tbn_int8(m)) {
        uint32_t count;
        const TBN_ROM int8_t *table = tbn_get_dense(m, op->table, &count);
        /* locals: through u, each int8 store (which may alias anything) reloaded the pointers and
         * the count, about 16 instructions a value on the M7 where this takes 5 */
        const uint8_t *x = u.src, *end = x + u.in.numel;
        int8_t *y = (int8_t *)u.dst;
        while (x < end) *y++ = table[*x++ ^ 0x80u]; /* q + 128 */
        return TBN_OK;
    }
    float a;
    memcpy(&a, &op->alpha, sizeof a);
    for (uint32_t i = 0; i < u.in.numel; i++) ((float *)u.dst)[i] = unary_f32(op->opcode, ((const float *)u.src)[i], a);
    return TBN_OK;
}
