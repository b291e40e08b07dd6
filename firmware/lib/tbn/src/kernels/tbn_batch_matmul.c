/* BATCH_MATMUL: the matrix product of two activations (attention's q k^T and its weights
 * times v), over the last two axes, either operand stored transposed. F32 applies the
 * optional one-entry scale; INT8 sums (q_a - z_a)(q_b - z_b) in 32 bits (prepare bounds the
 * depth) and rescales by one REQUANT or RQ16 entry. */
#include "../tbn_internal.h"

typedef struct {
    uint32_t batch, m, k, n;
    uint32_t a_row, a_col, b_row, b_col; /* element strides of a's (m, k) and b's (k, n) walks */
} bmm_dims;

static bmm_dims dims_of(const tbn_op *op, const tbn_tensor *a, const tbn_tensor *out) {
    bmm_dims d;
    uint32_t r = a->ndim;
    d.m = op->ta ? a->dims[r - 1] : a->dims[r - 2];
    d.k = op->ta ? a->dims[r - 2] : a->dims[r - 1];
    d.n = out->dims[r - 1];
    d.batch = a->numel / (d.m * d.k);
    d.a_row = op->ta ? 1u : d.k;
    d.a_col = op->ta ? d.m : 1u;
    d.b_row = op->tb ? 1u : d.n;
    d.b_col = op->tb ? d.k : 1u;
    return d;
}

tbn_status tbn_prepare_batch_matmul(const tbn_model *m, const tbn_op *op, const tbn_io *io) {
    const tbn_tensor *a = &io->in, *b = &io->b, *o = &io->out;
    uint32_t r = a->ndim;
    if (r < 2 || b->ndim != r || o->ndim != r || b->dtype != a->dtype || op->ta > 1 || op->tb > 1) return TBN_ERR_SHAPE;
    for (uint32_t d = 0; d + 2 < r; d++)
        if (b->dims[d] != a->dims[d] || o->dims[d] != a->dims[d]) return TBN_ERR_SHAPE;
    bmm_dims d = dims_of(op, a, o);
    uint32_t kb = op->tb ? b->dims[r - 1] : b->dims[r - 2], nb = op->tb ? b->dims[r - 2] : b->dims[r - 1];
    if (kb != d.k || nb != d.n || o->dims[r - 2] != d.m) return TBN_ERR_SHAPE;
    if (!TBN_INT8(io->int8)) {
        if (op->scale == TBN_NONE_ID) return TBN_OK;
        tbn_vector s;
        tbn_get_scale(m, op->scale, &s);
        return TBN_DTYPE_IN(s.dtype, TBN_F32_VECTOR_DTYPES) && s.count == 1 ? TBN_OK : TBN_ERR_SHAPE;
    }
    uint64_t bound = (uint64_t)d.k * tbn_q_span(a->zero_point) * tbn_q_span(b->zero_point);
    return bound <= TBN_INT32_MAX && tbn_rescale_ok(m, op->scale, 1, bound) ? TBN_OK : TBN_ERR_SHAPE;
}

/* Columns of b whose sums and accumulators sit on the stack at once (less on AVR's 2 KB). */
#if defined(__AVR__)
#define BMM_COLS 8u
#else
#define BMM_COLS 32u
#endif

#if defined(__ARM_FEATURE_SIMD32) && !defined(__ARM_BIG_ENDIAN) && !defined(TBN_PORTABLE)
#include <arm_acle.h>
#define BMM_SIMD 1
#define BMM_COPY 512u /* stack bytes for columns of b made contiguous (DSP cores: RAM to spare) */
#endif

/* sum_k a[k] b[k] over two int8 vectors, a step apart in a (b contiguous). Contiguous, four at
 * a time: on DSP cores two SXTB16 a word and two SMLADs (bytes 0 and 2, then 1 and 3). */
static int32_t dot_i8(const int8_t *a, uint32_t a_step, const int8_t *b, uint32_t k) {
    int32_t acc = 0;
    uint32_t i = 0;
    if (a_step == 1u)
        for (; i + 4u <= k; i += 4u) {
#ifdef BMM_SIMD
            uint32_t wa, wb;
            memcpy(&wa, a + i, sizeof wa);
            memcpy(&wb, b + i, sizeof wb);
            acc = __smlad(__sxtb16(wa), __sxtb16(wb), acc);
            acc = __smlad(__sxtb16((wa >> 8) | (wa << 24)), __sxtb16((wb >> 8) | (wb << 24)), acc);
#else
            acc += a[i] * b[i] + a[i + 1] * b[i + 1] + a[i + 2] * b[i + 2] + a[i + 3] * b[i + 3];
#endif
        }
    for (; i < k; i++) acc += a[i * a_step] * b[i];
    return acc;
}

/* One batch entry in INT8. sum_k (a - za)(b - zb) = sum a b - zb sum a - za sum b + k za zb:
 * the loops sum raw products (about 4 instructions a MAC on the M7, where subtracting both
 * zero points in the loop took 15), the sums of a row of a and of a column of b correct them
 * once each. Every term is under k * 128 * 128 and the result under prepare's bound, so the
 * arithmetic wraps in 32 bits and lands exact. Columns go BMM_COLS at a time: their sums and,
 * where b's rows are contiguous (no column is), their accumulators live on the stack; on DSP
 * cores such a block is copied column by column into BMM_COPY bytes instead, where k allows
 * four columns at least. */
static void bmm_i8(const bmm_dims *d, const int8_t *a, const int8_t *b, int8_t *out, const tbn_tensor *ta,
                   const tbn_tensor *tb, const tbn_tensor *to, const tbn_vector *s) {
    uint32_t za = (uint32_t)(int32_t)ta->zero_point, zb = (uint32_t)(int32_t)tb->zero_point;
    uint32_t kzz = d->k * za * zb, cols = BMM_COLS;
    /* the one RQ16 entry's constants, once (REQUANT goes through tbn_rescale_entry) */
    int rq16 = s->dtype == TBN_DTYPE_RQ16;
    int32_t mult = rq16 ? (int16_t)tbn_rd16(s->data) : 0;
    int32_t pre_half = (int32_t)(((uint32_t)1 << s->pre_shift) >> 1), half = (int32_t)(((uint32_t)1 << s->shift) >> 1);
#ifdef BMM_SIMD
    /* b's rows contiguous: where k allows, a block of columns is copied into a contiguous
     * buffer (once for all rows of a), so every output is a SIMD dot product */
    int8_t buffer[BMM_COPY];
    int8_t *bt = d->b_row != 1u && d->k * 4u <= BMM_COPY ? buffer : NULL;
    if (bt && BMM_COPY / d->k < cols) cols = BMM_COPY / d->k;
#else
    int8_t *bt = NULL;
#endif
    for (uint32_t j0 = 0; j0 < d->n; j0 += cols) {
        uint32_t nj = d->n - j0 < cols ? d->n - j0 : cols;
        uint32_t colsum[BMM_COLS];
        int32_t acc[BMM_COLS];
        for (uint32_t j = 0; j < nj; j++) {
            const int8_t *pb = b + (size_t)(j0 + j) * d->b_col;
            int32_t sum = 0;
            for (uint32_t k = 0; k < d->k; k++, pb += d->b_row) {
                sum += *pb;
                if (bt) bt[(size_t)j * d->k + k] = *pb;
            }
            colsum[j] = (uint32_t)sum;
        }
        for (uint32_t i = 0; i < d->m; i++) {
            const int8_t *pa = a + (size_t)i * d->a_row;
            int32_t rowsum = 0;
            for (uint32_t k = 0; k < d->k; k++) rowsum += pa[(size_t)k * d->a_col];
            if (d->b_row == 1u) { /* b stored transposed: each column contiguous, a dot product */
                for (uint32_t j = 0; j < nj; j++)
                    acc[j] = dot_i8(pa, d->a_col, b + (size_t)(j0 + j) * d->b_col, d->k);
            } else if (bt) { /* the block's columns copied contiguous (below): dot products too */
                for (uint32_t j = 0; j < nj; j++) acc[j] = dot_i8(pa, d->a_col, bt + (size_t)j * d->k, d->k);
            } else { /* b's rows contiguous (b_col 1): a row of b times one value of a, added */
                memset(acc, 0, sizeof acc);
                for (uint32_t k = 0; k < d->k; k++) {
                    int32_t av = pa[(size_t)k * d->a_col];
                    const int8_t *pb = b + (size_t)k * d->b_row + j0;
                    for (uint32_t j = 0; j < nj; j++) acc[j] += av * pb[j];
                }
            }
            int8_t *po = out + (size_t)i * d->n + j0;
            uint32_t row_term = zb * (uint32_t)rowsum;
            for (uint32_t j = 0; j < nj; j++) {
                int32_t v = (int32_t)((uint32_t)acc[j] - row_term - za * colsum[j] + kzz);
                if (rq16) { /* in 32 bits: prepare checked the products fit (tbn_rescale_ok) */
                    int32_t z = to->zero_point + tbn_rshift_round32(tbn_rshift_round32(v, pre_half, s->pre_shift) * mult,
                                                                    half, s->shift);
                    po[j] = (int8_t)(z < to->qmin ? to->qmin : (z > to->qmax ? to->qmax : z));
                } else {
                    po[j] = tbn_clamp_q(to->zero_point + tbn_rescale_entry(v, s, 0), to->qmin, to->qmax);
                }
            }
        }
    }
}

tbn_status tbn_eval_batch_matmul(const tbn_model *m, const tbn_op *op, uint8_t *arena) {
    tbn_tensor a, b, out;
    tbn_get_tensor(m, op->a, &a);
    tbn_get_tensor(m, op->b, &b);
    tbn_get_tensor(m, op->output, &out);
    bmm_dims d = dims_of(op, &a, &out);
    tbn_vector s = {0};
    if (op->scale != TBN_NONE_ID) tbn_get_scale(m, op->scale, &s);
    for (uint32_t g = 0; g < d.batch; g++) {
        size_t a0 = (size_t)g * d.m * d.k, b0 = (size_t)g * d.k * d.n, o0 = (size_t)g * d.m * d.n;
        if (tbn_int8(m)) {
            bmm_i8(&d, (const int8_t *)(arena + a.offset) + a0, (const int8_t *)(arena + b.offset) + b0,
                   (int8_t *)(arena + out.offset) + o0, &a, &b, &out, &s);
            continue;
        }
        for (uint32_t i = 0; i < d.m; i++)
            for (uint32_t j = 0; j < d.n; j++) {
                const float *pa = (const float *)(void *)(arena + a.offset) + a0 + (size_t)i * d.a_row;
                const float *pb = (const float *)(void *)(arena + b.offset) + b0 + (size_t)j * d.b_col;
                float acc = 0.0f;
                for (uint32_t k = 0; k < d.k; k++, pa += d.a_col, pb += d.b_row) acc += *pa * *pb;
                if (s.data) acc *= tbn_vector_f32(&s, 0);
                ((float *)(void *)(arena + out.offset))[o0 + (size_t)i * d.n + j] = tbn_act_f32(acc, op->act);
            }
    }
    return TBN_OK;
}
