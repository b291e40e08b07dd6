/* RESHAPE, ADD, ACTIVATION, SOFTMAX (F32 only), ARGMAX, AFFINE (F32 only). */
#include <math.h>

#include "../tbn_internal.h"

tbn_status tbn_kernel_eltwise(const tbn_model *m, const tbn_op *op, uint8_t *arena) {
    tbn_tensor in, out;
    tbn_get_tensor(m, op->input, &in);
    tbn_get_tensor(m, op->output, &out);
    int int8 = tbn_is_int8(m);
    const uint8_t *src = arena + in.offset;
    uint8_t *dst = arena + out.offset;
    uint32_t n = in.numel;
    switch (op->opcode) {
    case TBN_OP_RESHAPE:
        if (src != dst) memmove(dst, src, out.nbytes);
        break;
    case TBN_OP_ADD: {
        tbn_tensor b;
        tbn_get_tensor(m, op->b, &b);
        const uint8_t *src_b = arena + b.offset;
        if (int8) {
            tbn_vector rq;
            tbn_get_scale(m, op->scale, &rq);
            int32_t ma = tbn_rds32(rq.data), sa = tbn_rds32(rq.data + 4);
            int32_t mb = tbn_rds32(rq.data + 8), sb = tbn_rds32(rq.data + 12);
            for (uint32_t i = 0; i < n; i++) {
                int64_t va = tbn_rshift_round(((int64_t)((const int8_t *)src)[i] - in.zero_point) * ma, sa);
                int64_t vb = tbn_rshift_round(((int64_t)((const int8_t *)src_b)[i] - b.zero_point) * mb, sb);
                ((int8_t *)dst)[i] = tbn_clamp_q(out.zero_point + va + vb, out.qmin, out.qmax);
            }
        } else {
            for (uint32_t i = 0; i < n; i++)
                ((float *)dst)[i] = tbn_act_f32(((const float *)src)[i] + ((const float *)src_b)[i], op->act);
        }
        break;
    }
    case TBN_OP_ACTIVATION:
        for (uint32_t i = 0; i < n; i++) {
            if (int8) ((int8_t *)dst)[i] = tbn_clamp_q(((const int8_t *)src)[i], out.qmin, out.qmax);
            else ((float *)dst)[i] = tbn_act_f32(((const float *)src)[i], op->act);
        }
        break;
    case TBN_OP_SOFTMAX: {
        const float *x = (const float *)src;
        float mx = x[0], sum = 0.0f;
        for (uint32_t i = 1; i < n; i++) if (x[i] > mx) mx = x[i];
        for (uint32_t i = 0; i < n; i++) sum += ((float *)dst)[i] = expf(x[i] - mx);
        for (uint32_t i = 0; i < n; i++) ((float *)dst)[i] /= sum;
        break;
    }
    case TBN_OP_ARGMAX: {
        uint32_t best = 0;
        for (uint32_t i = 1; i < n; i++) {
            if (int8 ? ((const int8_t *)src)[i] > ((const int8_t *)src)[best]
                     : ((const float *)src)[i] > ((const float *)src)[best])
                best = i;
        }
        int32_t v = (int32_t)best;
        memcpy(dst, &v, sizeof v);
        break;
    }
    case TBN_OP_AFFINE: {
        tbn_vector s, b;
        tbn_get_scale(m, op->scale, &s);
        int has_bias = op->bias != TBN_NONE_ID;
        if (has_bias) tbn_get_bias(m, op->bias, &b);
        uint32_t ch = in.dims[0], per = n / ch;
        for (uint32_t c = 0; c < ch; c++) {
            float sc = tbn_vector_f32(&s, s.count == 1 ? 0 : c), bi = has_bias ? tbn_rdf32(b.data + 4 * c) : 0.0f;
            for (uint32_t i = 0; i < per; i++) {
                size_t j = (size_t)c * per + i;
                ((float *)dst)[j] = tbn_act_f32(((const float *)src)[j] * sc + bi, op->act);
            }
        }
        break;
    }
    default:
        return TBN_ERR_OPCODE;
    }
    return TBN_OK;
}
