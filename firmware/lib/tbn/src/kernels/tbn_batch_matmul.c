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

#ifdef TBN_SIMD16
#include <arm_acle.h>
#define BMM_COPY 512u /* stack bytes for columns of b made contiguous (DSP cores: RAM to spare) */
#endif

/* sum_k a[k] b[k] over two int8 vectors, a step apart in a (b contiguous). Contiguous, four at
 * a time: on DSP cores two SXTB16 a word and two SMLADs (bytes 0 and 2, then 1 and 3). */
static int32_t dot_i8(const int8_t *a, uint32_t a_step, const int8_t *b, uint32_t k) {
    int32_t acc = 0;
    uint32_t i = 0;
    if (a_step == 1u)
        for (; i + 4u <= k; i += 4u) {
#ifdef TBN_SIMD16
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

/* An INT8 product's rescaling, its constants once: the one RQ16 entry's (REQUANT goes through
 * tbn_rescale_entry) and the zero points' k za zb. */
typedef struct {
    const tbn_vector *s;
    const tbn_tensor *to;
    uint32_t za, kzz;
    int rq16;
    int32_t mult, pre_half, half;
} bmm_rq;

static bmm_rq rq_of(const bmm_dims *d, const tbn_tensor *ta, const tbn_tensor *tb, const tbn_tensor *to,
                    const tbn_vector *s) {
    bmm_rq q;
    q.s = s, q.to = to, q.za = (uint32_t)(int32_t)ta->zero_point;
    q.kzz = d->k * q.za * (uint32_t)(int32_t)tb->zero_point;
    q.rq16 = s->dtype == TBN_DTYPE_RQ16;
    q.mult = q.rq16 ? (int16_t)tbn_rd16(s->data) : 0;
    q.pre_half = (int32_t)(((uint32_t)1 << s->pre_shift) >> 1), q.half = (int32_t)(((uint32_t)1 << s->shift) >> 1);
    return q;
}

/* n outputs of a row from their raw sums: less zb sum a (row_term) and za sum b, plus k za zb. */
static void store_row(const bmm_rq *q, int8_t *po, const int32_t *acc, const uint32_t *colsum, uint32_t row_term,
                      uint32_t n) {
    const tbn_vector *s = q->s;
    /* locals, and RQ16 in a loop of its own: the int8 stores may alias anything, and REQUANT's
     * 64-bit arithmetic beside it spilled the RQ16 loop's constants to the stack */
    const uint32_t za = q->za, base = q->kzz - row_term;
    const int32_t zo = q->to->zero_point, lo = q->to->qmin, hi = q->to->qmax;
    if (!q->rq16) {
        for (uint32_t j = 0; j < n; j++)
            po[j] = tbn_clamp_q(zo + tbn_rescale_entry((int32_t)((uint32_t)acc[j] - za * colsum[j] + base), s, 0), lo,
                                hi);
        return;
    }
    const uint32_t pre = s->pre_shift, shift = s->shift;
    const int32_t mult = q->mult, pre_half = q->pre_half, half = q->half;
    for (uint32_t j = 0; j < n; j++) { /* in 32 bits: prepare checked the products fit (tbn_rescale_ok) */
        int32_t v = (int32_t)((uint32_t)acc[j] - za * colsum[j] + base);
        int32_t z = zo + tbn_rshift_round32(tbn_rshift_round32(v, pre_half, pre) * mult, half, shift);
        po[j] = (int8_t)(z < lo ? lo : (z > hi ? hi : z));
    }
}

#ifdef TBN_SIMD16
#define BMM_WIDE 512u /* stack bytes for a block of b's columns, and for two rows of a, in 16 bits */
/* One batch entry in INT8 on DSP cores where k <= 128: a block of b's columns widened to 16 bits
 * once, then two rows of a at a time, each output pair of a 2x2 block by SMLAD (about 1.2
 * instructions a MAC, where a dot product a byte word at a time took about 4); an odd row or
 * column pairs with itself. Widening sums each row and column on the way. */
static TBN_NOINLINE void bmm_i8_wide(const bmm_dims *d, const int8_t *a, const int8_t *b, int8_t *out, const bmm_rq *q,
                                     uint32_t zb) {
    uint32_t k = d->k, k4 = (k + 3u) & ~3u, words = k4 / 2u, cols = BMM_WIDE / (2u * k4);
    union {
        uint32_t w[BMM_WIDE / 4u];
        int16_t h[BMM_WIDE / 2u];
    } bw, aw;
    cols = cols < BMM_COLS ? cols : BMM_COLS;
    for (uint32_t j0 = 0, nj; j0 < d->n; j0 += nj) {
        nj = d->n - j0 < cols ? d->n - j0 : cols;
        uint32_t colsum[BMM_COLS];
        for (uint32_t j = 0; j < nj; j++)
            colsum[j] = (uint32_t)tbn_widen16(b + (size_t)(j0 + j) * d->b_col, d->b_row, k, k4, bw.h + j * k4);
        for (uint32_t i = 0; i < d->m; i += 2u) {
            uint32_t i1 = i + 1u < d->m ? i + 1u : i;
            int32_t acc[2][BMM_COLS];
            uint32_t sum0 = (uint32_t)tbn_widen16(a + (size_t)i * d->a_row, d->a_col, k, k4, aw.h);
            uint32_t sum1 = (uint32_t)tbn_widen16(a + (size_t)i1 * d->a_row, d->a_col, k, k4, aw.h + k4);
            tbn_dots_2xn(aw.w, aw.w + words, bw.w, words, nj, acc[0], acc[1]);
            store_row(q, out + (size_t)i * d->n + j0, acc[0], colsum, zb * sum0, nj);
            if (i1 != i) store_row(q, out + (size_t)i1 * d->n + j0, acc[1], colsum, zb * sum1, nj);
        }
    }
}
#endif

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
    uint32_t zb = (uint32_t)(int32_t)tb->zero_point, cols = BMM_COLS;
    bmm_rq q = rq_of(d, ta, tb, to, s);
#ifdef TBN_SIMD16
    if (d->k <= BMM_WIDE / 4u) { /* two rows of a fit */
        bmm_i8_wide(d, a, b, out, &q, zb);
        return;
    }
#endif
#ifdef TBN_SIMD16
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
            store_row(&q, out + (size_t)i * d->n + j0, acc, colsum, zb * (uint32_t)rowsum, nj);
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
