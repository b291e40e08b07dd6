/* Ops that only move values: TRANSPOSE (any permutation of up to four axes),
 * UPSAMPLE_NEAREST, UPSAMPLE_ZEROS and PAD. Both keep the input's quantisation, so INT8 and F32 differ only in the
 * element size. */
#include "../tbn_internal.h"

static uint8_t perm_of(const tbn_op *op, uint32_t k) {
    const uint8_t p[4] = {op->perm0, op->perm1, op->perm2, op->perm3};
    return p[k];
}

tbn_status tbn_prepare_transpose(const tbn_model *m, const tbn_op *op, const tbn_io *io) {
    (void)m;
    uint32_t rank = io->in.ndim, seen = 0;
    if (io->out.ndim != rank || io->out.dtype != io->in.dtype) return TBN_ERR_SHAPE;
    for (uint32_t k = 0; k < 4; k++) {
        uint32_t p = perm_of(op, k);
        if (k >= rank ? p != k : p >= rank || (seen >> p & 1u) || io->out.dims[k] != io->in.dims[p])
            return TBN_ERR_SHAPE;
        seen |= 1u << p;
    }
    return TBN_OK;
}

/* n values `stride` apart, one after another (tensors start 4-aligned in the arena). */
static void gather_i8(uint8_t *dst, const uint8_t *src, uint32_t stride, uint32_t n) {
    for (uint32_t i = 0; i < n; i++, src += stride) dst[i] = *src;
}
static void gather_w32(uint32_t *dst, const uint32_t *src, uint32_t stride, uint32_t n) {
    for (uint32_t i = 0; i < n; i++, src += stride) dst[i] = *src;
}

tbn_status tbn_eval_transpose(const tbn_model *m, const tbn_op *op, uint8_t *arena) {
    tbn_tensor in, out;
    tbn_get_tensor(m, op->input, &in);
    tbn_get_tensor(m, op->output, &out);
    uint32_t size = tbn_int8(m) ? 1u : 4u, in_stride[4] = {0, 0, 0, 0}, dim[4] = {1, 1, 1, 1}, stride[4] = {0, 0, 0, 0};
    for (uint32_t d = in.ndim, s = 1; d-- > 0;) {
        in_stride[d] = s;
        s *= in.dims[d];
    }
    for (uint32_t k = 0; k < in.ndim; k++) { /* output axis k walks input axis perm_k */
        dim[4 - in.ndim + k] = out.dims[k];
        stride[4 - in.ndim + k] = in_stride[perm_of(op, k)];
    }
    const uint8_t *src = arena + in.offset;
    uint8_t *dst = arena + out.offset;
    for (uint32_t i0 = 0; i0 < dim[0]; i0++)
        for (uint32_t i1 = 0; i1 < dim[1]; i1++)
            for (uint32_t i2 = 0; i2 < dim[2]; i2++, dst += (size_t)dim[3] * size) {
                size_t at = (size_t)i0 * stride[0] + (size_t)i1 * stride[1] + (size_t)i2 * stride[2];
                /* typed copies: a memcpy of a run-time size a value was a call (about 40
                 * instructions a value on the M7, 5 now) */
                if (stride[3] == 1) /* the last axis stays last: a run */
                    memcpy(dst, src + at * size, (size_t)dim[3] * size);
                else if (size == 1)
                    gather_i8(dst, src + at, stride[3], dim[3]);
                else
                    gather_w32((uint32_t *)(void *)dst, (const uint32_t *)(const void *)src + at, stride[3], dim[3]);
            }
    return TBN_OK;
}

tbn_status tbn_prepare_upsample(const tbn_model *m, const tbn_op *op, const tbn_io *io) {
    (void)m;
    const tbn_tensor *in = &io->in, *out = &io->out;
    if (in->ndim != 3 || out->ndim != 3 || !op->sh || !op->sw || out->dtype != in->dtype) return TBN_ERR_SHAPE;
    return out->dims[0] == in->dims[0] && out->dims[1] == (uint32_t)in->dims[1] * op->sh &&
                   out->dims[2] == (uint32_t)in->dims[2] * op->sw
               ? TBN_OK : TBN_ERR_SHAPE;
}

/* UPSAMPLE_ZEROS: the output zero (F32 0.0 is all-zero bits; INT8 the zero point), then each
 * value at (y sh, x sw). */
static void upsample_zeros(const tbn_tensor *in, const tbn_tensor *out, const tbn_op *op, const uint8_t *src,
                           uint8_t *dst, uint32_t size) {
    memset(dst, size == 1 ? (uint8_t)(int8_t)in->zero_point : 0, out->nbytes);
    uint32_t h = in->dims[1], w = in->dims[2], wo = out->dims[2];
    for (uint32_t c = 0; c < in->dims[0]; c++)
        for (uint32_t y = 0; y < h; y++)
            for (uint32_t x = 0; x < w; x++, src += size)
                memcpy(dst + (((size_t)c * out->dims[1] + (size_t)y * op->sh) * wo + (size_t)x * op->sw) * size, src,
                       size);
}

/* Nearest: each input row written sw-fold once, then copied sh - 1 more times. */
tbn_status tbn_eval_upsample(const tbn_model *m, const tbn_op *op, uint8_t *arena) {
    tbn_tensor in, out;
    tbn_get_tensor(m, op->input, &in);
    tbn_get_tensor(m, op->output, &out);
    uint32_t size = tbn_int8(m) ? 1u : 4u, w = in.dims[2], row = (uint32_t)out.dims[2] * size;
    const uint8_t *src = arena + in.offset;
    uint8_t *dst = arena + out.offset;
    if (op->opcode == TBN_OP_UPSAMPLE_ZEROS) {
        upsample_zeros(&in, &out, op, src, dst, size);
        return TBN_OK;
    }
    for (uint32_t r = 0; r < (uint32_t)in.dims[0] * in.dims[1]; r++, src += (size_t)w * size) {
        uint8_t *first = dst;
        for (uint32_t x = 0; x < w; x++)
            for (uint32_t k = 0; k < op->sw; k++, dst += size) memcpy(dst, src + (size_t)x * size, size);
        for (uint32_t k = 1; k < op->sh; k++, dst += row) memcpy(dst, first, row);
    }
    return TBN_OK;
}

tbn_status tbn_prepare_pad(const tbn_model *m, const tbn_op *op, const tbn_io *io) {
    (void)m;
    const tbn_tensor *in = &io->in, *out = &io->out;
    if (in->ndim != 3 || out->ndim != 3 || out->dtype != in->dtype) return TBN_ERR_SHAPE;
    if (TBN_INT8(io->int8) ? op->value > 0xFFu : ((op->value >> 23) & 0xFFu) == 0xFFu && (op->value & 0x7FFFFFu))
        return TBN_ERR_SHAPE; /* INT8: one byte; F32: not NaN */
    return out->dims[0] == in->dims[0] && out->dims[1] == (uint32_t)in->dims[1] + op->pt + op->pb &&
                   out->dims[2] == (uint32_t)in->dims[2] + op->pl + op->pr
               ? TBN_OK : TBN_ERR_SHAPE;
}

/* The whole output filled with the value, then each input row copied into place. */
tbn_status tbn_eval_pad(const tbn_model *m, const tbn_op *op, uint8_t *arena) {
    tbn_tensor in, out;
    tbn_get_tensor(m, op->input, &in);
    tbn_get_tensor(m, op->output, &out);
    uint32_t size = tbn_int8(m) ? 1u : 4u, w = in.dims[2], wo = out.dims[2], ho = out.dims[1];
    uint8_t *dst = arena + out.offset;
    if (size == 1) {
        memset(dst, (uint8_t)op->value, out.nbytes);
    } else {
        for (uint32_t i = 0; i < out.numel; i++) memcpy(dst + 4 * (size_t)i, &op->value, 4);
    }
    const uint8_t *src = arena + in.offset;
    for (uint32_t c = 0; c < in.dims[0]; c++)
        for (uint32_t y = 0; y < in.dims[1]; y++, src += (size_t)w * size)
            memcpy(dst + (((size_t)c * ho + y + op->pt) * wo + op->pl) * size, src, (size_t)w * size);
    return TBN_OK;
}
