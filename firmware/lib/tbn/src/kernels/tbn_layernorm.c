/* LAYERNORM over the last axis (docs/bytecode.md, "LayerNorm"): F32 in float, INT8 in
 * integers only, with int32/int64 statistics, an exact integer square root and one
 * reciprocal per row (no division, no libm, no libgcc 64-bit division). */
#include "../tbn_internal.h"

#define TBN_F32_MIN_NORMAL 1.17549435e-38f
#define TBN_F32_MAX 3.40282347e38f

tbn_status tbn_prepare_layernorm(const tbn_model *m, const tbn_op *op, const tbn_io *io) {
    if (!tbn_same_shape(&io->in, &io->out)) return TBN_ERR_SHAPE;
    uint32_t c = io->in.dims[io->in.ndim - 1];
    tbn_vector s, b = {0};
    tbn_get_scale(m, op->scale, &s);
    int has_bias = op->bias != TBN_NONE_ID;
    if (has_bias) tbn_get_bias(m, op->bias, &b);
    if (TBN_INT8(io->int8))
        return s.dtype == TBN_DTYPE_REQUANT && s.count == c && op->eps >= 1u &&
                       (!has_bias || (b.dtype == TBN_DTYPE_I32 && b.count == c))
                   ? TBN_OK : TBN_ERR_SHAPE;
    float eps;
    memcpy(&eps, &op->eps, sizeof eps);
    int eps_ok = eps >= TBN_F32_MIN_NORMAL && eps <= TBN_F32_MAX; /* false for NaN */
    return eps_ok && TBN_DTYPE_IN(s.dtype, TBN_F32_VECTOR_DTYPES) && (s.count == 1 || s.count == c) &&
                   (!has_bias || (TBN_DTYPE_IN(b.dtype, TBN_F32_VECTOR_DTYPES) && b.count == c))
               ? TBN_OK : TBN_ERR_SHAPE;
}

/* 1/sqrt(v) for a normal v > 0: the exponent-halving first guess, then three Newton steps
 * (relative error 3e-3, 1e-5, 2e-10: float's own precision). */
static float rsqrt_f32(float v) {
    uint32_t i;
    float y;
    memcpy(&i, &v, sizeof i);
    i = 0x5f3759dfu - (i >> 1);
    memcpy(&y, &i, sizeof y);
    for (int k = 0; k < 3; k++) y = y * (1.5f - 0.5f * v * y * y);
    return y;
}

static void row_f32(const float *x, float *y, uint32_t c, float eps, const tbn_vector *s, const tbn_vector *b) {
    float sum = 0.0f, var = 0.0f;
    for (uint32_t i = 0; i < c; i++) sum += x[i];
    float mean = sum / (float)c;
    for (uint32_t i = 0; i < c; i++) var += (x[i] - mean) * (x[i] - mean);
    float r = rsqrt_f32(var / (float)c + eps);
    for (uint32_t i = 0; i < c; i++) {
        float v = (x[i] - mean) * r * tbn_vector_f32(s, s->count == 1 ? 0u : i);
        y[i] = b->data ? v + tbn_vector_f32(b, i) : v;
    }
}

/* floor(sqrt(x)) for x < 2^62, two bits of x a step: the remainder (x's bits so far less
 * root^2, at most 2 root) fits 32 bits until the last step, whose 33 bits take 64 (a 64-bit
 * loop throughout took about 1,300 instructions a row on the M7). */
static uint32_t isqrt62(uint64_t x) {
    uint32_t hi = (uint32_t)(x >> 32), lo = (uint32_t)x, rem = 0, root = 0;
    for (uint32_t i = 30; i >= 1; i--) {
        rem = rem << 2 | ((i >= 16 ? hi >> (2u * i - 32u) : lo >> (2u * i)) & 3u);
        root <<= 1;
        if (rem >= (root << 1 | 1u)) {
            rem -= root << 1 | 1u;
            root |= 1u;
        }
    }
    uint64_t last = (uint64_t)rem << 2 | (lo & 3u);
    root <<= 1;
    return last >= ((uint64_t)root << 1 | 1u) ? root | 1u : root;
}

/* floor(2^61 / r) for r in [2^30, 2^31), by shift and subtract. */
static uint32_t recip61(uint32_t r) {
    uint64_t rem = (uint64_t)1 << TBN_LAYERNORM_RECIP_SHIFT;
    uint32_t q = 0;
    for (int bit = 31; bit >= 0; bit--) {
        uint64_t d = (uint64_t)r << bit;
        if (rem >= d) {
            rem -= d;
            q |= (uint32_t)1 << bit;
        }
    }
    return q;
}

static uint32_t bitlen64(uint64_t v) {
#if defined(__GNUC__)
    return v ? 64u - (uint32_t)__builtin_clzll(v) : 0u; /* CLZ on Arm and RISC-V */
#else
    uint32_t n = 0;
    for (; v; v >>= 1) n++;
    return n;
#endif
}

/* An arithmetic shift right of a 32-bit value by s < 32. */
static inline int32_t asr32(int32_t v, uint32_t s) {
#if defined(__GNUC__)
    return v >> s;
#else
    return v >= 0 ? (int32_t)((uint32_t)v >> s) : -(int32_t)(((uint32_t)-(v + 1)) >> s) - 1;
#endif
}

/* rshift_round(acc, s) for s < 26, held to +-2^30 (past which the int8 clamp gives the same)
 * so that the caller's arithmetic stays in 32 bits. */
static TBN_NOINLINE int32_t shift_wide(int64_t acc, int32_t s) {
    int64_t v = tbn_rshift_round(acc, s), cap = (int64_t)1 << 30;
    return (int32_t)(v < -cap ? -cap : (v > cap ? cap : v));
}

/* w >> s (w already rounded) for s in 1..62 where the result fits 32 bits (u, and a feature's
 * rescaling at S >= 26): the low word of the shifted value, from the two words of w. */
static inline int32_t shift_narrow(uint64_t w, uint32_t s) {
    uint32_t lo = (uint32_t)w, hi = (uint32_t)(w >> 32);
    return s >= 32u ? asr32((int32_t)hi, s - 32u) : (int32_t)(lo >> s | hi << (32u - s));
}

/* u = rshift_round((c x - base) inv, shift) of n values (base = sum d + c z_i): |u| < 2^25, so
 * the low word of the shifted product is u itself. */
static TBN_NOINLINE void row_units(const int8_t *x, int32_t *u, uint32_t n, int32_t cs, int32_t base, int32_t inv,
                                   uint32_t shift) {
    const uint64_t half = (uint64_t)1 << (shift - 1u);
    for (uint32_t i = 0; i < n; i++) u[i] = shift_narrow((uint64_t)((int64_t)(cs * x[i] - base) * inv) + half, shift);
}

/* y = clamp(z_o + rshift_round(u M + B, S)) of n values, each feature's REQUANT entry (M, S)
 * and bias B (none: bias NULL): |u M + B| < 2^57 leaves S >= 26 a 32-bit result, the low word
 * of the shifted value; a smaller S goes through 64 bits as the reference writes it. */
static TBN_NOINLINE void row_outs(const int32_t *u, int8_t *y, uint32_t n, const TBN_ROM uint8_t *rq,
                                  const TBN_ROM uint8_t *bias, int32_t zo, int32_t lo, int32_t hi) {
    for (uint32_t i = 0; i < n; i++, rq += 8) {
        int32_t m = (int32_t)tbn_rd32a(rq), sr = (int32_t)tbn_rd32a(rq + 4);
        int64_t acc = (int64_t)u[i] * m + (bias ? (int32_t)tbn_rd32a(bias + 4 * i) : 0);
        int32_t z;
        if (sr >= 33) { /* the rounding constant in the high word alone */
            z = zo + asr32((int32_t)((uint32_t)((uint64_t)acc >> 32) + (1u << (sr - 33))), (uint32_t)sr - 32u);
        } else if (sr >= 26) {
            uint32_t lo32 = (uint32_t)acc, hi32 = (uint32_t)((uint64_t)acc >> 32), r = lo32 + (1u << (sr - 1));
            hi32 += r < lo32; /* the carry */
            z = zo + (sr == 32 ? (int32_t)hi32 : (int32_t)(r >> sr | hi32 << (32 - sr)));
        } else {
            z = zo + shift_wide(acc, sr);
        }
        y[i] = (int8_t)(z < lo ? lo : (z > hi ? hi : z));
    }
}

/* A row's outputs in two passes of LN_CHUNK values, each a function of its own so that its
 * constants stay in registers (one loop of both, GCC -Os spilled them: about 50 instructions a
 * value on the M7). */
#define LN_CHUNK 64
static void row_out_i8(const int8_t *x, int8_t *y, uint32_t c, int32_t base, int32_t inv, uint32_t shift,
                       const TBN_ROM uint8_t *rq, const TBN_ROM uint8_t *bias, const tbn_tensor *out) {
    int32_t u[LN_CHUNK];
    for (uint32_t i = 0, n; i < c; i += n) {
        n = c - i < LN_CHUNK ? c - i : LN_CHUNK;
        row_units(x + i, u, n, (int32_t)c, base, inv, shift);
        row_outs(u, y + i, n, rq + 8 * i, bias ? bias + 4 * i : NULL, out->zero_point, out->qmin, out->qmax);
    }
}

/* One row of c features: V = c sum d^2 - (sum d)^2 + E > 0 (E >= 1), its reciprocal square
 * root as inv / 2^(61 - mh), then row_out_i8. c < 2^16 (a dim is 16 bits), so sum d^2 < 2^32,
 * t = c d - sum d and u (|u| < 2^25) are 32-bit and each product one 32x32 -> 64 multiply;
 * inv <= 2^31, and inv = 2^31 (R = 2^30) is halved with the shift, which rounds alike. */
static void row_i8(const int8_t *x, int8_t *y, uint32_t c, const tbn_tensor *in, const tbn_tensor *out,
                   uint32_t eps, const tbn_vector *s, const tbn_vector *b) {
    const int32_t zi = in->zero_point;
    int32_t s1 = 0;
    uint32_t s2 = 0;
    for (uint32_t i = 0; i < c; i++) {
        int32_t d = (int32_t)x[i] - zi;
        s1 += d;
        s2 += (uint32_t)(d * d);
    }
    uint64_t v = (uint64_t)c * s2 - (uint64_t)((int64_t)s1 * s1) + eps; /* c sum d^2 >= (sum d)^2 */
    uint32_t mh = (62u - bitlen64(v)) / 2u;
    uint32_t inv = recip61(isqrt62(v << (2u * mh)));
    uint32_t shift = TBN_LAYERNORM_RECIP_SHIFT - TBN_LAYERNORM_FRAC - mh; /* >= 15 */
    if (inv > (uint32_t)INT32_MAX) {
        inv >>= 1;
        shift--;
    }
    row_out_i8(x, y, c, s1 + (int32_t)c * zi, (int32_t)inv, shift, s->data, b->data, out);
}

tbn_status tbn_eval_layernorm(const tbn_model *m, const tbn_op *op, uint8_t *arena) {
    tbn_tensor in, out;
    tbn_get_tensor(m, op->input, &in);
    tbn_get_tensor(m, op->output, &out);
    tbn_vector s, b = {0};
    tbn_get_scale(m, op->scale, &s);
    if (op->bias != TBN_NONE_ID) tbn_get_bias(m, op->bias, &b);
    uint32_t c = in.dims[in.ndim - 1], rows = in.numel / c;
    for (uint32_t r = 0; r < rows; r++) {
        if (tbn_int8(m)) {
            row_i8((const int8_t *)(arena + in.offset) + (size_t)r * c, (int8_t *)(arena + out.offset) + (size_t)r * c,
                   c, &in, &out, op->eps, &s, &b);
        } else {
            float eps;
            memcpy(&eps, &op->eps, sizeof eps);
            row_f32((const float *)(void *)(arena + in.offset) + (size_t)r * c,
                    (float *)(void *)(arena + out.offset) + (size_t)r * c, c, eps, &s, &b);
        }
    }
    return TBN_OK;
}
