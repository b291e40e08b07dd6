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
        for (uint32_t i = 0; i < d.m; i++)
            for (uint32_t j = 0; j < d.n; j++) {
                size_t ai = a0 + (size_t)i * d.a_row, bj = b0 + (size_t)j * d.b_col;
                if (tbn_int8(m)) {
                    const int8_t *pa = (const int8_t *)(arena + a.offset) + ai, *pb = (const int8_t *)(arena + b.offset) + bj;
                    int32_t acc = 0;
                    for (uint32_t k = 0; k < d.k; k++, pa += d.a_col, pb += d.b_row)
                        acc += ((int32_t)*pa - a.zero_point) * ((int32_t)*pb - b.zero_point);
                    ((int8_t *)(arena + out.offset))[o0 + (size_t)i * d.n + j] =
                        tbn_clamp_q(out.zero_point + tbn_rescale_entry(acc, &s, 0), out.qmin, out.qmax);
                } else {
                    const float *pa = (const float *)(void *)(arena + a.offset) + ai;
                    const float *pb = (const float *)(void *)(arena + b.offset) + bj;
                    float acc = 0.0f;
                    for (uint32_t k = 0; k < d.k; k++, pa += d.a_col, pb += d.b_row) acc += *pa * *pb;
                    if (s.data) acc *= tbn_vector_f32(&s, 0);
                    ((float *)(void *)(arena + out.offset))[o0 + (size_t)i * d.n + j] = tbn_act_f32(acc, op->act);
                }
            }
    }
    return TBN_OK;
}
