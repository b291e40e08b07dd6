/* MAXPOOL2D, AVGPOOL2D and GLOBAL_AVGPOOL, F32 and INT8 (docs/bytecode.md). */
#include "../tbn_internal.h"

tbn_status tbn_prepare_pool(const tbn_model *m, const tbn_op *op, const tbn_io *io) {
    const tbn_tensor *in = &io->in, *out = &io->out;
    (void)m;
    if (in->ndim != 3 || out->ndim != 3 || in->dims[0] != out->dims[0]) return TBN_ERR_SHAPE;
    if (!op->kh || !op->kw || !op->sh || !op->sw) return TBN_ERR_SHAPE;
    /* a window may hang over the edge by at most half: every output sees a real input */
    if (2 * (op->pt > op->pb ? op->pt : op->pb) > op->kh || 2 * (op->pl > op->pr ? op->pl : op->pr) > op->kw)
        return TBN_ERR_SHAPE;
    if (tbn_conv_out(in->dims[1], op->kh, op->sh, 1, (uint32_t)op->pt + op->pb) != out->dims[1] ||
        tbn_conv_out(in->dims[2], op->kw, op->sw, 1, (uint32_t)op->pl + op->pr) != out->dims[2])
        return TBN_ERR_SHAPE;
    return TBN_OK;
}

/* The max of a window that lies wholly inside the input (the common case: no padding to
 * skip, so no bounds checks), at x, w elements per row. */
static int32_t max_inside_i8(const int8_t *x, uint32_t w, uint32_t kh, uint32_t kw) {
    int32_t m = x[0];
    for (uint32_t ky = 0; ky < kh; ky++, x += w)
        for (uint32_t kx = 0; kx < kw; kx++) m = x[kx] > m ? x[kx] : m;
    return m;
}

static float max_inside_f32(const float *x, uint32_t w, uint32_t kh, uint32_t kw) {
    float m = x[0];
    for (uint32_t ky = 0; ky < kh; ky++, x += w)
        for (uint32_t kx = 0; kx < kw; kx++) m = x[kx] > m ? x[kx] : m;
    return m;
}

/* The sum of n consecutive int8 values. Off AVR, four a word: x ^ 0x80 is x + 128 in 0..255, the
 * low 16-bit lane adds bytes 0 and 1 of up to 128 words and the high one bytes 2 and 3, before
 * either could carry (about 2 instructions a value on the M7, against about 5 one at a time). */
static tbn_avg_int sum_run_i8(const int8_t *x, uint32_t n) {
    tbn_avg_int s = 0;
#if !defined(__AVR__)
    while (n >= 8) {
        uint32_t words = n / 4 < 128 ? n / 4 : 128, lanes = 0;
        for (uint32_t i = 0; i < words; i++, x += 4) {
            uint32_t v;
            memcpy(&v, x, sizeof v);
            v ^= 0x80808080u;
            lanes += (v & 0x00FF00FFu) + ((v >> 8) & 0x00FF00FFu);
        }
        s += (int32_t)((lanes & 0xFFFFu) + (lanes >> 16)) - 512 * (int32_t)words;
        n -= 4 * words;
    }
#endif
    for (; n; n--) s += *x++;
    return s;
}

/* The sum of such a window (INT8: |sum| < 255 * 255 * 128 fits 32 bits; F32 in the order of
 * the general path below); off AVR, a window as wide as the input is one run. */
static int32_t sum_inside_i8(const int8_t *x, uint32_t w, uint32_t kh, uint32_t kw) {
    int32_t s = 0;
#if !defined(__AVR__)
    if (kw == w) return (int32_t)sum_run_i8(x, kh * kw);
    for (uint32_t ky = 0; ky < kh; ky++, x += w) s += (int32_t)sum_run_i8(x, kw);
#else /* a value at a time: the loop above takes about 300 more bytes of the Uno's flash */
    for (uint32_t ky = 0; ky < kh; ky++, x += w)
        for (uint32_t kx = 0; kx < kw; kx++) s += x[kx];
#endif
    return s;
}

static float sum_inside_f32(const float *x, uint32_t w, uint32_t kh, uint32_t kw) {
    float s = 0.0f;
    for (uint32_t ky = 0; ky < kh; ky++, x += w)
        for (uint32_t kx = 0; kx < kw; kx++) s += x[kx];
    return s;
}

tbn_status tbn_eval_pool(const tbn_model *m, const tbn_op *op, uint8_t *arena) {
    tbn_tensor in, out;
    tbn_get_tensor(m, op->input, &in);
    tbn_get_tensor(m, op->output, &out);
    int int8 = tbn_int8(m), is_max = op->opcode == TBN_OP_MAXPOOL2D;
    uint32_t ch = in.dims[0], h = in.dims[1], w = in.dims[2], ho = out.dims[1], wo = out.dims[2];
    int32_t n = (int32_t)op->kh * op->kw;
    for (uint32_t c = 0; c < ch; c++) {
        for (uint32_t oy = 0; oy < ho; oy++) {
            for (uint32_t ox = 0; ox < wo; ox++) {
                int32_t iy0 = (int32_t)(oy * op->sh) - op->pt, ix0 = (int32_t)(ox * op->sw) - op->pl;
                size_t o = ((size_t)c * ho + oy) * wo + ox;
                if (iy0 >= 0 && ix0 >= 0 && iy0 + op->kh <= (int32_t)h && ix0 + op->kw <= (int32_t)w) {
                    size_t i0 = ((size_t)c * h + (uint32_t)iy0) * w + (uint32_t)ix0;
                    if (int8) {
                        const int8_t *x = (const int8_t *)(arena + in.offset) + i0;
                        int64_t v = is_max ? max_inside_i8(x, w, op->kh, op->kw)
                                           : tbn_avg_round(sum_inside_i8(x, w, op->kh, op->kw), n);
                        ((int8_t *)(arena + out.offset))[o] = tbn_clamp_q(v, out.qmin, out.qmax);
                    } else {
                        const float *x = (const float *)(arena + in.offset) + i0;
                        ((float *)(arena + out.offset))[o] = is_max ? max_inside_f32(x, w, op->kh, op->kw)
                                                                    : sum_inside_f32(x, w, op->kh, op->kw) / (float)n;
                    }
                    continue;
                }
                float fmax = 0.0f, fsum = 0.0f;
                int32_t qmax = -128, qsum = 0, seen = 0;
                for (int32_t ky = 0; ky < op->kh; ky++) {
                    for (int32_t kx = 0; kx < op->kw; kx++) {
                        int32_t iy = iy0 + ky, ix = ix0 + kx;
                        if (iy < 0 || ix < 0 || iy >= (int32_t)h || ix >= (int32_t)w) {
                            qsum += in.zero_point; /* INT8 average: padding is real zero */
                            continue;
                        }
                        size_t i = ((size_t)c * h + (uint32_t)iy) * w + (uint32_t)ix;
                        if (int8) {
                            int32_t q = ((const int8_t *)(arena + in.offset))[i];
                            qsum += q;
                            if (q > qmax) qmax = q;
                        } else {
                            float v = ((const float *)(arena + in.offset))[i];
                            fsum += v;
                            if (!seen || v > fmax) fmax = v;
                        }
                        seen = 1;
                    }
                }
                if (int8) {
                    int64_t v = is_max ? qmax : tbn_avg_round(qsum, n);
                    ((int8_t *)(arena + out.offset))[o] = tbn_clamp_q(v, out.qmin, out.qmax);
                } else {
                    ((float *)(arena + out.offset))[o] = is_max ? fmax : fsum / (float)n;
                }
            }
        }
    }
    return TBN_OK;
}

tbn_status tbn_prepare_global_avgpool(const tbn_model *m, const tbn_op *op, const tbn_io *io) {
    (void)m;
    (void)op;
    return io->in.ndim == 3 && io->out.numel == io->in.dims[0] ? TBN_OK : TBN_ERR_SHAPE;
}

tbn_status tbn_eval_global_avgpool(const tbn_model *m, const tbn_op *op, uint8_t *arena) {
    tbn_tensor in, out;
    tbn_get_tensor(m, op->input, &in);
    tbn_get_tensor(m, op->output, &out);
    uint32_t ch = in.dims[0], hw = in.dims[1] * in.dims[2];
    for (uint32_t c = 0; c < ch; c++) {
        if (tbn_int8(m)) {
            const int8_t *x = (const int8_t *)(arena + in.offset) + (size_t)c * hw;
            ((int8_t *)(arena + out.offset))[c] =
                tbn_clamp_q(tbn_avg_round(sum_run_i8(x, hw), hw), out.qmin, out.qmax);
        } else {
            const float *x = (const float *)(arena + in.offset) + (size_t)c * hw;
            float sum = 0.0f;
            for (uint32_t i = 0; i < hw; i++) sum += x[i];
            ((float *)(arena + out.offset))[c] = sum / (float)hw;
        }
    }
    return TBN_OK;
}
