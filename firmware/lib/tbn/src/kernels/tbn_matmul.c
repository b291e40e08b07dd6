/* Tiled and dense linear / conv2d, F32 and INT8 (docs/bytecode.md, "Weights of linear and
 * conv ops"). A linear op is a 1x1 convolution over a (K, 1, 1) input.
 *
 * Tile reuse: when the tile holds R = T / K whole rows (p divides the outputs) and there is
 * one group, output channels c and c + R share their signs, so each output position computes
 * R sign-dot-products (in chunks of TBN_CHUNK on the stack) and scales them into all O
 * outputs: O/p dot products instead of O. Otherwise every output row reads the tile at its
 * own (moving) offset, split where it wraps.
 *
 * Inner loops take 32 tile bits per load: F32 flips the sign bit of x with an XOR, INT8 masks;
 * no branch per bit. */
#include "tbn_matmul.h"

#ifndef TBN_CHUNK /* tile rows accumulated at once: a stack array of this many sums */
#if defined(__AVR__)
#define TBN_CHUNK 4 /* 2 KB of RAM */
#else
#define TBN_CHUNK 32
#endif
#endif

typedef union { float f; uint32_t u; } f32_bits;

/* sum_j sign(bit pos+j) * x[j*stride], j < n, with pos + n <= T. */
static float dot_tile_f32(const TBN_ROM uint8_t *tile, uint32_t pos, const float *x, uint32_t stride, uint32_t n) {
    float acc = 0.0f;
    while (n) {
        uint32_t k = n < 32 ? n : 32, neg = ~bits_at(tile, pos, k);
        /* one shift a bit and a pointer step: an 8-bit core has no barrel shifter, and AVR
         * builds go without GCC's induction-variable pass (-fno-ivopts) */
        for (uint32_t j = 0; j < k; j++, neg >>= 1, x += stride) {
            f32_bits v;
            v.f = *x;
            v.u ^= (neg & 1u) << 31;
            acc += v.f;
        }
        pos += k;
        n -= k;
    }
    return acc;
}

static int32_t dot_tile_i8(const TBN_ROM uint8_t *tile, uint32_t pos, const int8_t *x, uint32_t stride, uint32_t n,
                           int32_t zp) {
    int32_t plus = 0, total = 0;
    while (n) {
        uint32_t k = n < 32 ? n : 32, bits = bits_at(tile, pos, k);
        for (uint32_t j = 0; j < k; j++, bits >>= 1, x += stride) { /* as above */
            int32_t v = (int32_t)*x - zp;
            total += v;
            plus += v & -(int32_t)(bits & 1u);
        }
        pos += k;
        n -= k;
    }
    return 2 * plus - total;
}

/* Weighted sum of one output row's segment: weights f .. f+n-1 (flat), inputs x[j*stride].
 * F32 with a per-repetition scale applies it per tile repetition. */
static float seg_f32(const mm_ctx *c, uint32_t f, const float *x, uint32_t stride, uint32_t n, int per_rep) {
    if (!c->tiled) {
        float acc = 0.0f;
        const TBN_ROM int8_t *w = c->dense + f;
        for (uint32_t j = 0; j < n; j++) acc += (float)w[j] * x[j * stride];
        return acc;
    }
    float acc = 0.0f;
    uint32_t t = c->tile.n_bits;
    while (n) {
        uint32_t pos = f < t ? f : f % t, k = t - pos < n ? t - pos : n; /* no division at p = 1 */
        float s = dot_tile_f32(c->tile.bits, pos, x, stride, k);
        acc += per_rep ? s * tbn_vector_f32(&c->scale, f / t) : s;
        f += k;
        x += k * stride;
        n -= k;
    }
    return acc;
}

static int32_t seg_i8(const mm_ctx *c, uint32_t f, const int8_t *x, uint32_t stride, uint32_t n, int32_t zp) {
    if (!c->tiled) {
        int32_t acc = 0;
        const TBN_ROM int8_t *w = c->dense + f;
        for (uint32_t j = 0; j < n; j++) acc += (int32_t)w[j] * ((int32_t)x[j * stride] - zp);
        return acc;
    }
    int32_t acc = 0;
    uint32_t t = c->tile.n_bits;
    while (n) {
        uint32_t pos = f < t ? f : f % t, k = t - pos < n ? t - pos : n; /* no division at p = 1 */
        acc += dot_tile_i8(c->tile.bits, pos, x, stride, k, zp);
        f += k;
        x += k * stride;
        n -= k;
    }
    return acc;
}

/* Row `row` (weights row*K ..) at output position (oy, ox), group g: F32 or INT8 accumulator. */
static float row_f32(const mm_ctx *c, uint32_t row, uint32_t g, uint32_t oy, uint32_t ox, int per_rep) {
    const tbn_op *op = c->op;
    uint32_t h = c->h, w = c->w;
    const float *x = (const float *)c->src;
    if (!(op->traits & TBN_TRAIT_CONV))
        return seg_f32(c, row * c->k, x, 1, c->k, per_rep);
    int32_t iy0 = (int32_t)(oy * op->sh) - op->pt, ix0 = (int32_t)(ox * op->sw) - op->pl, kx_lo, kx_hi;
    kx_range(op, ix0, w, &kx_lo, &kx_hi);
    float acc = 0.0f;
    if (kx_lo >= kx_hi) return acc;
    for (uint32_t ic = 0; ic < c->cg; ic++) {
        const float *plane = x + (size_t)(g * c->cg + ic) * h * w;
        for (uint32_t ky = 0; ky < op->kh; ky++) {
            int32_t iy = iy0 + (int32_t)(ky * op->dh);
            if (iy < 0 || iy >= (int32_t)h) continue;
            uint32_t f = row * c->k + (ic * op->kh + ky) * op->kw + (uint32_t)kx_lo;
            acc += seg_f32(c, f, plane + (size_t)iy * w + ix0 + kx_lo * op->dw, op->dw,
                           (uint32_t)(kx_hi - kx_lo), per_rep);
        }
    }
    return acc;
}

static int32_t row_i8(const mm_ctx *c, uint32_t row, uint32_t g, uint32_t oy, uint32_t ox) {
    const tbn_op *op = c->op;
    uint32_t h = c->h, w = c->w;
    const int8_t *x = (const int8_t *)c->src;
    int32_t zp = c->in_zp;
    if (!(op->traits & TBN_TRAIT_CONV))
        return seg_i8(c, row * c->k, x, 1, c->k, zp);
    int32_t iy0 = (int32_t)(oy * op->sh) - op->pt, ix0 = (int32_t)(ox * op->sw) - op->pl, kx_lo, kx_hi;
    kx_range(op, ix0, w, &kx_lo, &kx_hi);
    int32_t acc = 0;
    if (kx_lo >= kx_hi) return acc; /* padding holds the zero point: contributes 0 */
    for (uint32_t ic = 0; ic < c->cg; ic++) {
        const int8_t *plane = x + (size_t)(g * c->cg + ic) * h * w;
        for (uint32_t ky = 0; ky < op->kh; ky++) {
            int32_t iy = iy0 + (int32_t)(ky * op->dh);
            if (iy < 0 || iy >= (int32_t)h) continue;
            uint32_t f = row * c->k + (ic * op->kh + ky) * op->kw + (uint32_t)kx_lo;
            acc += seg_i8(c, f, plane + (size_t)iy * w + ix0 + kx_lo * op->dw, op->dw, (uint32_t)(kx_hi - kx_lo), zp);
        }
    }
    return acc;
}

/* (outputs O, fan-in K) of a linear or conv op, from its checked tensors; a linear op over
 * tokens ((.., K) to (.., O), format 2.5) takes its tensors' last axes. */
static void weight_count(const tbn_op *op, const tbn_tensor *in, const tbn_tensor *out, uint64_t *o, uint64_t *k) {
    if (op->traits & TBN_TRAIT_CONV) {
        *o = out->dims[0];
        *k = (uint64_t)(in->dims[0] / op->groups) * op->kh * op->kw;
    } else if (TBN_BUILD_TOKENS && out->ndim > 1) {
        *o = out->dims[out->ndim - 1];
        *k = in->dims[in->ndim - 1];
    } else {
        *o = out->numel;
        *k = in->numel;
    }
}

/* A linear op over tokens: the same rank as its input, the same leading axes. */
static int tokens_ok(const tbn_tensor *in, const tbn_tensor *out) {
    if (out->ndim == 1) return 1;
    if (!TBN_BUILD_TOKENS) return 0; /* a build for models without them: refused, TBN_ERR_SHAPE */
    if (in->ndim != out->ndim) return 0;
    for (int i = 0; i + 1 < in->ndim; i++)
        if (in->dims[i] != out->dims[i]) return 0;
    return 1;
}

static int conv_geometry_ok(const tbn_op *op, const tbn_tensor *in, const tbn_tensor *out) {
    if (in->ndim != 3 || out->ndim != 3) return 0;
    if (!op->kh || !op->kw || !op->sh || !op->sw || !op->dh || !op->dw || !op->groups) return 0;
    if (in->dims[0] % op->groups || out->dims[0] % op->groups) return 0;
    return tbn_conv_out(in->dims[1], op->kh, op->sh, op->dh, (uint32_t)op->pt + op->pb) == out->dims[1] &&
           tbn_conv_out(in->dims[2], op->kw, op->sw, op->dw, (uint32_t)op->pl + op->pr) == out->dims[2];
}

/* The table kernel's needs: one group, a tile of whole rows, scratch of the activations'
 * dtype and of at least tbn_lut_scratch_size bytes (the same rule as tbn.format.validate). */
static int lut_scratch_ok(const tbn_op *op, const tbn_io *io, uint32_t n_bits, uint32_t k) {
    uint32_t rows = tbn_tile_rows(op, n_bits, k);
    return rows && io->scratch.dtype == io->in.dtype &&
           io->scratch.nbytes >= tbn_lut_scratch_size(rows, k, (op->traits & TBN_TRAIT_CONV) != 0, TBN_INT8(io->int8));
}

/* The largest |value| of an integer (I16, I32) bias vector. */
static uint32_t bias_peak(const tbn_vector *b) {
    uint32_t peak = 0, wide = b->dtype == TBN_DTYPE_I32;
    for (uint32_t i = 0; i < b->count; i++) {
        int64_t v = wide ? tbn_rds32(b->data + 4 * i) : (int16_t)tbn_rd16(b->data + 2 * i);
        uint32_t a = (uint32_t)(v < 0 ? -v : v);
        if (a > peak) peak = a;
    }
    return peak;
}

/* INT8: |acc| on any input stays in 32 bits, and an RQ16 requantisation of acc + bias too
 * (tbn.format.validate.accumulator_bound): the largest row sum of |weight| times the input's
 * q_span, plus the largest bias. */
static tbn_status check_bounds(const tbn_model *m, const tbn_op *op, const tbn_io *io, const tbn_vector *s,
                               const tbn_vector *b, uint64_t o, uint64_t k) {
    uint64_t wsum = k;
    if (!(op->traits & TBN_TRAIT_TILED)) {
        uint32_t count;
        const TBN_ROM int8_t *w = tbn_get_dense(m, op->weight, &count);
        wsum = 0;
        for (uint64_t r = 0; r < o; r++) {
            uint64_t sum = 0;
            for (uint64_t j = 0; j < k; j++) sum += (uint64_t)(w[r * k + j] < 0 ? -w[r * k + j] : w[r * k + j]);
            if (sum > wsum) wsum = sum;
        }
    }
    uint64_t acc = wsum * tbn_q_span(io->in.zero_point);
    if (acc > TBN_INT32_MAX) return TBN_ERR_SHAPE;
    if (s->dtype == TBN_DTYPE_RQ16 &&
        !tbn_rq16_fits(acc + (b ? bias_peak(b) : 0u), tbn_rq16_peak(s), s->pre_shift, s->shift))
        return TBN_ERR_SHAPE;
    return TBN_OK;
}

tbn_status tbn_prepare_matmul(const tbn_model *m, const tbn_op *op, const tbn_io *io) {
    const tbn_tensor *in = &io->in, *out = &io->out;
    uint8_t act = TBN_INT8(io->int8) ? TBN_DTYPE_I8 : TBN_DTYPE_F32;
    if (in->dtype != act || out->dtype != act) return TBN_ERR_SHAPE;
    if ((op->traits & TBN_TRAIT_CONV) ? !conv_geometry_ok(op, in, out) : !tokens_ok(in, out)) return TBN_ERR_SHAPE;
    uint64_t o, k, p = 1;
    weight_count(op, in, out, &o, &k);
    if (o * k > 0xFFFFFFFFu) return TBN_ERR_SHAPE;
    if (op->traits & TBN_TRAIT_TILED) {
        tbn_tile t;
        tbn_get_tile(m, op->tile, &t);
        uint32_t ok = (uint32_t)(o * k); /* 32-bit division: no libgcc 64-bit one */
        if (ok % t.n_bits) return TBN_ERR_SHAPE;
        p = ok / t.n_bits;
        if (TBN_SMALL_ALL && TBN_INT8(io->int8) && k > t.n_bits) /* AVR's only INT8 kernel wraps a row once */
            return TBN_ERR_NOT_BUILT;
        if (io->has_scratch && !TBN_BUILD_TABLES) return TBN_ERR_NOT_BUILT;
        if (io->has_scratch && !lut_scratch_ok(op, io, t.n_bits, (uint32_t)k)) return TBN_ERR_SHAPE;
    } else {
        uint32_t count;
        tbn_get_dense(m, op->weight, &count);
        if (count != o * k) return TBN_ERR_SHAPE;
    }
    tbn_vector s, b = {0};
    tbn_get_scale(m, op->scale, &s);
    int mode = tbn_scale_mode(s.count, (uint32_t)o, p);
    if (TBN_INT8(io->int8) ? !TBN_DTYPE_IN(s.dtype, TBN_INT8_SCALE_DTYPES) || (mode != TBN_SCALE_ONE && mode != TBN_SCALE_PER_OUTPUT)
                 : !TBN_DTYPE_IN(s.dtype, TBN_F32_VECTOR_DTYPES) || mode < 0)
        return TBN_ERR_SHAPE;
    if (op->bias != TBN_NONE_ID) {
        tbn_get_bias(m, op->bias, &b);
        if (b.count != o || !TBN_DTYPE_IN(b.dtype, TBN_INT8(io->int8) ? TBN_INT8_BIAS_DTYPES : TBN_F32_VECTOR_DTYPES))
            return TBN_ERR_SHAPE;
    }
    if (!TBN_INT8(io->int8)) return TBN_OK;
    if (TBN_SMALL_ALL && (k > TBN_SMALL_MAX_COUNT || o > TBN_SMALL_MAX_COUNT || in->numel > TBN_SMALL_MAX_COUNT))
        return TBN_ERR_NOT_BUILT;
    return check_bounds(m, op, io, &s, op->bias != TBN_NONE_ID ? &b : NULL, o, k);
}

/* Not inlined: its tensors stay off the stack under the kernel's loops (2 KB of RAM on AVR). */
static TBN_NOINLINE void mm_init(mm_ctx *c, const tbn_model *m, const tbn_op *op, uint8_t *arena) {
    memset(c, 0, sizeof *c);
    c->m = m;
    c->op = op;
    c->int8 = tbn_int8(m);
    c->tiled = (op->traits & TBN_TRAIT_TILED) != 0;
    int conv = (op->traits & TBN_TRAIT_CONV) != 0;
    tbn_tensor in, out;
    tbn_get_tensor(m, op->input, &in);
    tbn_get_tensor(m, op->output, &out);
    c->src = arena + in.offset;
    c->dst = arena + out.offset;
    c->h = in.ndim == 3 ? in.dims[1] : 1u;
    c->w = in.ndim == 3 ? in.dims[2] : 1u;
    c->ho = conv ? out.dims[1] : 1u;
    c->wo = conv ? out.dims[2] : 1u;
    c->in_zp = in.zero_point;
    tbn_get_scale(m, op->scale, &c->scale);
    uint64_t o, k;
    weight_count(op, &in, &out, &o, &k); /* prepare checked that o * k fits 32 bits */
    c->o = (uint32_t)o;
    c->k = (uint32_t)k;
    c->cg = conv ? in.dims[0] / op->groups : c->k;
    c->og = c->o / (conv ? op->groups : 1u);
    c->npix = (uint32_t)c->ho * c->wo;
#if TBN_BUILD_TOKENS
    c->tokens = conv ? 1u : out.numel / c->o;
#endif
    if (c->tiled) {
        tbn_get_tile(m, op->tile, &c->tile);
        c->p = c->o * c->k / c->tile.n_bits;
    } else {
        uint32_t count;
        c->dense = tbn_get_dense(m, op->weight, &count);
        c->p = 1;
    }
    int mode = tbn_scale_mode(c->scale.count, c->o, c->p);
    c->per_rep = !TBN_INT8(c->int8) && mode == TBN_SCALE_PER_REPETITION;
    mm_epilogue *e = &c->ep;
    e->scale = c->per_rep ? NULL : c->scale.data;
    e->scale_stride = mode == TBN_SCALE_ONE ? 0u : tbn_dtype_size(c->scale.dtype);
    e->f16 = c->scale.dtype == TBN_DTYPE_F16;
    e->rq16 = c->scale.dtype == TBN_DTYPE_RQ16;
    e->pre_shift = c->scale.pre_shift;
    e->shift = c->scale.shift;
    e->pre_half = (int32_t)(((uint32_t)1 << e->pre_shift) >> 1);
    e->half = (int32_t)(((uint32_t)1 << e->shift) >> 1);
    e->bias = NULL;
    if (op->bias != TBN_NONE_ID) {
        tbn_vector b;
        tbn_get_bias(m, op->bias, &b);
        e->bias = b.data;
        e->bias16 = tbn_dtype_size(b.dtype) == 2;
    }
    e->act = op->act;
    e->zp = out.zero_point;
    e->qmin = out.qmin;
    e->qmax = out.qmax;
}

static void mm_eval(const mm_ctx *c, uint32_t rows);

/* A (k x 1) window down a plane one wide (a 1-D conv over time stored as H x 1, as Keras
 * writes it) reads the same bytes, weights and outputs as a (1 x k) window along a plane one
 * high: run it so, as the kernels' rows are the long axis (sww01's 5x1 depthwise conv on 28 x 1
 * took 53 instructions a MAC, an output a row). `t` holds the transposed op. */
static void as_row(mm_ctx *c, tbn_op *t) {
    const tbn_op *op = c->op;
    if (!(op->traits & TBN_TRAIT_CONV) || c->w != 1u || c->wo != 1u || op->kw != 1u || op->pl || op->pr ||
        c->h == 1u)
        return;
    *t = *op;
    t->kh = 1, t->kw = op->kh, t->sh = op->sw, t->sw = op->sh, t->dh = op->dw, t->dw = op->dh;
    t->pl = op->pt, t->pr = op->pb, t->pt = 0, t->pb = 0;
    c->op = t;
    c->w = c->h, c->h = 1u, c->wo = c->ho, c->ho = 1u;
}

/* A dense 1x1 conv at stride 1, unpadded, one group (a kept-dense per-point layer, PointNet's):
 * the direct kernel's window loop takes one MAC a call there. Here a channel's weights run down
 * four positions at once, its plane's neighbours; sums as the direct kernel's (INT8 exact: the
 * zero point's share, zp * sum(w), comes off once). Not on AVR, whose small kernel takes INT8. */
/* Dense convs by 16-bit SIMD (TBN_SIMD16) where weight words may be read unaligned. */
#if defined(TBN_SIMD16) && defined(__thumb2__) && defined(__ARM_FEATURE_UNALIGNED)
#define TBN_DENSE_DSP 1
#include <arm_acle.h>
#define DENSE_SLOT(n) TBN_SLOT16(n)
#else
#define TBN_DENSE_DSP 0
#define DENSE_SLOT(n) (n)
#endif

static int dense_one_group(const tbn_op *op) {
    return TBN_CHANNEL_KERNEL && TBN_BUILT(TBN_OP_DENSE_CONV2D) && op->opcode == TBN_OP_DENSE_CONV2D &&
           op->groups == 1;
}

static int dense_pointwise_ok(const mm_ctx *c) {
    const tbn_op *op = c->op;
    return dense_one_group(op) && op->kh == 1 && op->kw == 1 && op->sh == 1 && op->sw == 1 && !op->pt && !op->pb &&
           !op->pl && !op->pr;
}

/* Sums of row ch at n positions from pix, four positions a weight, less zp * sum w (taken off
 * here: every partial sum stays in the loader's bound). */
static void pointwise_sums(const mm_ctx *c, const TBN_ROM int8_t *w, int32_t corr, uint32_t pix, uint32_t n,
                           int32_t *acc) {
    const int8_t *x = (const int8_t *)c->src + pix;
    uint32_t npix = c->npix, k = c->k, i = 0;
    for (; i + 4u <= n; i += 4u) {
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        const int8_t *p = x + i;
        for (uint32_t j = 0; j < k; j++, p += npix) {
            int32_t wj = w[j];
            a0 += wj * p[0], a1 += wj * p[1], a2 += wj * p[2], a3 += wj * p[3];
        }
        acc[i] = a0 - corr, acc[i + 1u] = a1 - corr, acc[i + 2u] = a2 - corr, acc[i + 3u] = a3 - corr;
    }
    for (; i < n; i++) {
        int32_t a = 0;
        for (uint32_t j = 0; j < k; j++) a += (int32_t)w[j] * x[(size_t)j * npix + i];
        acc[i] = a - corr;
    }
}

/* Row ch at every position, DENSE_RUN positions a store: the per-channel kernel's (its assembly
 * requantisation on DSP cores), where one output at a time took about 45 instructions on the
 * M7 (PointNet's 2-to-128 layer: 895,920 instructions). */
#define DENSE_RUN 64
static void dense_pointwise_i8(const mm_ctx *c, uint32_t ch) {
    const TBN_ROM int8_t *w = c->dense + (size_t)ch * c->k;
    int32_t corr = 0, acc[DENSE_RUN];
    for (uint32_t j = 0; j < c->k; j++) corr += w[j];
    corr *= c->in_zp;
    for (uint32_t pix = 0, n; pix < c->npix; pix += n) {
        n = c->npix - pix < DENSE_RUN ? c->npix - pix : DENSE_RUN;
        pointwise_sums(c, w, corr, pix, n, acc);
        tbn_chan_store32_i8(c, ch, c->o, acc, n, pix);
    }
}

#if TBN_DENSE_DSP
#define DENSE_WIDE 2048u     /* stack bytes for a block of positions' inputs in 16 bits */
#define DENSE_WIDE_MIN_K 8u /* below, four positions a weight (pointwise_sums) is faster */
/* Dense 1x1 convs with 8 to 128 inputs on DSP cores: a block of positions' inputs (each a
 * column of k values npix apart) widened to 16 bits once, then rows two at a time, each 2x2
 * block of outputs by SMLAD (tbn_dots_2xn) and each row's sums stored by the per-channel
 * kernel's store: raw sums less zp * sum w, the weights' sum from their widening. */
static TBN_NOINLINE void dense_pointwise_dsp(const mm_ctx *c) { /* its buffers off tbn_eval_matmul's frame */
    uint32_t k = c->k, k4 = (k + 3u) & ~3u, words = k4 / 2u, npix = c->npix, o = c->o, per = DENSE_WIDE / (2u * k4);
    union {
        uint32_t w[DENSE_WIDE / 4u];
        int16_t h[DENSE_WIDE / 2u];
    } cols;
    union {
        uint32_t w[128u];
        int16_t h[256u];
    } rows;
    int32_t acc[2][DENSE_RUN];
    per = per < DENSE_RUN ? per : DENSE_RUN;
    for (uint32_t pix = 0, n; pix < npix; pix += n) {
        n = npix - pix < per ? npix - pix : per;
        for (uint32_t p = 0; p < n; p++) tbn_widen16((const int8_t *)c->src + pix + p, npix, k, k4, cols.h + p * k4);
        for (uint32_t ch = 0; ch < o; ch += 2u) {
            uint32_t chb = ch + 1u < o ? ch + 1u : ch; /* an odd last row pairs with itself */
            int32_t ca = tbn_widen16(c->dense + (size_t)ch * k, 1, k, k4, rows.h) * c->in_zp;
            int32_t cb = tbn_widen16(c->dense + (size_t)chb * k, 1, k, k4, rows.h + k4) * c->in_zp;
            tbn_dots_2xn(rows.w, rows.w + words, cols.w, words, n, acc[0], acc[1]);
            for (uint32_t p = 0; p < n; p++) acc[0][p] -= ca, acc[1][p] -= cb;
            tbn_chan_store32_i8(c, ch, o, acc[0], n, pix);
            if (chb != ch) tbn_chan_store32_i8(c, chb, o, acc[1], n, pix);
        }
    }
}
#endif

static void dense_pointwise_f32(const mm_ctx *c, uint32_t ch) {
    const TBN_ROM int8_t *w = c->dense + (size_t)ch * c->k;
    const float *x = (const float *)c->src;
    uint32_t npix = c->npix, k = c->k, pix = 0;
    for (; pix + 4u <= npix; pix += 4u) {
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
        const float *p = x + pix;
        for (uint32_t j = 0; j < k; j++, p += npix) {
            float wj = (float)w[j];
            a0 += wj * p[0], a1 += wj * p[1], a2 += wj * p[2], a3 += wj * p[3];
        }
        store_f32(c, ch, pix, npix, a0), store_f32(c, ch, pix + 1u, npix, a1);
        store_f32(c, ch, pix + 2u, npix, a2), store_f32(c, ch, pix + 3u, npix, a3);
    }
    for (; pix < npix; pix++) {
        float a = 0.0f;
        for (uint32_t j = 0; j < k; j++) a += (float)w[j] * x[(size_t)j * npix + pix];
        store_f32(c, ch, pix, npix, a);
    }
}

/* Any other INT8 dense conv of one group whose window holds at most TBN_DENSE_COL inputs (an
 * untiled convnet, a float twin compiled to INT8): each position's window gathered once as
 * x - zp (0 for padding) in 16 bits, then a row of weights a dot product over it, where the
 * direct kernel walks the window per output. Exact: the same integer sums. (On 1x1 convs the
 * four-position path above is faster: PointNet's 32-to-64 layer 1.55 M instructions against 2.38 M.) */
#define TBN_DENSE_COL 256 /* 512 bytes of stack */

/* On DSP cores (TBN_DENSE_DSP) the window is stored in quads of taps as (j, j+2) and (j+1, j+3)
 * halfword pairs, the halves SXTB16 makes of a weight word and of it rotated by 8, so one SMLAD
 * adds two products: two output rows at a time share each load of the window, about 1.75
 * instructions a MAC where the byte loop took about 19 (ViT's 7x7 patch embedding of 64
 * channels on the M7: 955,440 instructions, and 768,160 by the per-channel kernel). */
static int dense_window_ok(const mm_ctx *c) {
    return dense_one_group(c->op) && TBN_INT8(c->int8) && c->k <= TBN_DENSE_COL;
}

/* On DSP cores, whether a dense conv the per-channel kernel would take (one input channel)
 * goes to the window path instead: all but those at stride 1 and 3x3 at stride 2, where the
 * per-channel kernel's assembly is faster (on the M7, one channel to 16 on 16x16, 3x3 at stride
 * 1: 107,440 instructions against 294,960; ViT's 7x7 patches at stride 7: 768,160 against
 * 160,560; 2x2 at stride 2 to 48 channels: 1,008,280 against 373,200). */
static int dense_before_channel(const mm_ctx *c) {
    const tbn_op *op = c->op;
    return !c->tiled && dense_window_ok(c) && !dense_pointwise_ok(c) && op->sw > 1 &&
           !(op->sw == 2 && op->kh == 3 && op->kw == 3);
}

/* Position (oy, ox)'s window as x - zp (0 for padding), tap n at col[DENSE_SLOT(n)]. */
static void gather_window(const mm_ctx *c, uint32_t oy, uint32_t ox, int16_t *col) {
    const tbn_op *op = c->op;
    const int8_t *x = (const int8_t *)c->src;
    int32_t iy0 = (int32_t)(oy * op->sh) - op->pt, ix0 = (int32_t)(ox * op->sw) - op->pl, zp = c->in_zp;
    int inside = iy0 >= 0 && ix0 >= 0 && iy0 + (int32_t)((op->kh - 1u) * op->dh) < (int32_t)c->h &&
                 ix0 + (int32_t)((op->kw - 1u) * op->dw) < (int32_t)c->w;
    uint32_t n = 0;
    for (uint32_t ic = 0; ic < c->cg; ic++)
        for (uint32_t ky = 0; ky < op->kh; ky++) {
            int32_t iy = iy0 + (int32_t)(ky * op->dh);
            int in_y = iy >= 0 && iy < (int32_t)c->h;
            const int8_t *row = x + ((size_t)ic * c->h + (in_y ? (uint32_t)iy : 0u)) * c->w;
            if (inside) { /* no bounds to test */
                for (uint32_t kx = 0, dw = op->dw, kw = op->kw; kx < kw; kx++, n++)
                    col[DENSE_SLOT(n)] = (int16_t)(row[ix0 + (int32_t)(kx * dw)] - zp);
                continue;
            }
            for (uint32_t kx = 0; kx < op->kw; kx++, n++) {
                int32_t ix = ix0 + (int32_t)(kx * op->dw);
                int in = in_y && ix >= 0 && ix < (int32_t)c->w;
                col[DENSE_SLOT(n)] = in ? (int16_t)(row[ix] - zp) : (int16_t)0;
            }
        }
}

#if TBN_DENSE_DSP
#define DENSE_BATCH 16 /* positions a batch: each row's sums stored at once, by the assembly */
/* Two rows' dot products with n windows k4 apart, by SMLAD on quads of taps: the window's
 * padding past k is 0, so a weight word reaching past the row (into the next) adds nothing;
 * `kq` quads' worth of taps (k4, or k rounded down where a word would read past the weights),
 * the rest one by one. */
static TBN_NOINLINE void dots_pair_dsp(const TBN_ROM int8_t *wa, const TBN_ROM int8_t *wb, const int16_t *col,
                                       uint32_t k, uint32_t k4, uint32_t kq, uint32_t n, int32_t *sa, int32_t *sb) {
    for (uint32_t i = 0; i < n; i++, col += k4) {
        int32_t a0 = 0, b0 = 0;
        uint32_t j = kq;
        if (kq) {
            const TBN_ROM int8_t *pa = wa, *pb = wb;
            const int16_t *px = col;
            uint32_t quads = kq / 4u, x0, x1, t, u, v;
            /* 13 instructions for 8 MACs: a quad of each row's weights as (w0, w2) and (w1, w3) */
            __asm__ volatile("1:\n"
                             "ldr %[t], [%[pa]], #4\n"
                             "ldr %[u], [%[pb]], #4\n"
                             "ldrd %[x0], %[x1], [%[px]], #8\n"
                             "sxtb16 %[v], %[t]\n"
                             "sxtb16 %[t], %[t], ror #8\n"
                             "smlad %[a0], %[v], %[x0], %[a0]\n"
                             "smlad %[a0], %[t], %[x1], %[a0]\n"
                             "sxtb16 %[v], %[u]\n"
                             "sxtb16 %[u], %[u], ror #8\n"
                             "smlad %[b0], %[v], %[x0], %[b0]\n"
                             "smlad %[b0], %[u], %[x1], %[b0]\n"
                             "subs %[n], %[n], #1\n"
                             "bne 1b\n"
                             : [a0] "+r"(a0), [b0] "+r"(b0), [pa] "+r"(pa), [pb] "+r"(pb), [px] "+r"(px),
                               [n] "+r"(quads), [x0] "=&r"(x0), [x1] "=&r"(x1), [t] "=&r"(t), [u] "=&r"(u),
                               [v] "=&r"(v)
                             :
                             : "cc", "memory");
        }
        for (; j < k; j++) a0 += wa[j] * col[DENSE_SLOT(j)], b0 += wb[j] * col[DENSE_SLOT(j)];
        sa[i] = a0, sb[i] = b0;
    }
}

/* Windows in batches of up to DENSE_BATCH positions (as many as the window buffer holds), each
 * padded with zeros to k4 taps; rows two at a time, each row's sums for the batch stored by the
 * per-channel kernel's store (its assembly requantisation). */
static void dense_windows_dsp(const mm_ctx *c, int16_t *col) {
    uint32_t k = c->k, k4 = (k + 3u) & ~3u, per = TBN_DENSE_COL / k4, npix = c->npix, o = c->o;
    per = per < DENSE_BATCH ? per : DENSE_BATCH;
    for (uint32_t pix = 0, n, oy = 0, ox = 0; pix < npix; pix += n) {
        n = npix - pix < per ? npix - pix : per;
        for (uint32_t i = 0; i < n; i++) {
            int16_t *w = col + i * k4;
            gather_window(c, oy, ox, w);
            for (uint32_t j = k; j < k4; j++) w[DENSE_SLOT(j)] = 0;
            if (++ox == c->wo) ox = 0, oy++;
        }
        int32_t sa[DENSE_BATCH], sb[DENSE_BATCH];
        for (uint32_t ch = 0; ch < o; ch += 2u) {
            uint32_t chb = ch + 1u < o ? ch + 1u : ch; /* an odd last row pairs with itself */
            uint32_t kq = (size_t)chb * k + k4 <= (size_t)o * k ? k4 : k & ~3u; /* row chb's words inside */
            dots_pair_dsp(c->dense + (size_t)ch * k, c->dense + (size_t)chb * k, col, k, k4, kq, n, sa, sb);
            tbn_chan_store32_i8(c, ch, o, sa, n, pix);
            if (chb != ch) tbn_chan_store32_i8(c, chb, o, sb, n, pix);
        }
    }
}
#endif

static TBN_NOINLINE void dense_window_i8(const mm_ctx *c) { /* its window off tbn_eval_matmul's frame */
    union {
        uint32_t words[TBN_DENSE_COL / 2]; /* aligned for the DSP path's word loads */
        int16_t taps[TBN_DENSE_COL];
    } window;
    int16_t *col = window.taps;
#if TBN_DENSE_DSP
    dense_windows_dsp(c, col);
#else
    uint32_t k = c->k;
    for (uint32_t oy = 0, pix = 0; oy < c->ho; oy++)
        for (uint32_t ox = 0; ox < c->wo; ox++, pix++) {
            gather_window(c, oy, ox, col);
            for (uint32_t ch = 0; ch < c->o; ch++) {
                const TBN_ROM int8_t *w = c->dense + (size_t)ch * k;
                int32_t a0 = 0, a1 = 0;
                uint32_t j = 0;
                for (; j + 2u <= k; j += 2u) a0 += w[j] * col[j], a1 += w[j + 1u] * col[j + 1u];
                if (j < k) a0 += w[j] * col[j];
                store_i8(c, ch, pix, c->npix, a0 + a1);
            }
        }
#endif
}

/* A linear op over tokens runs once per token, on that token's input and output rows; the
 * tile's rows are shared by every token, the tables (built from the input) are not. */
tbn_status tbn_eval_matmul(const tbn_model *m, const tbn_op *op, uint8_t *arena) {
    mm_ctx c;
    tbn_op row;
    mm_init(&c, m, op, arena);
    if (TBN_CHANNEL_KERNEL && TBN_BUILT_TRAIT(CONV)) as_row(&c, &row); /* not AVR: 64 bytes of its stack */
    op = c.op;
    /* tile reuse: the tile holds `rows` whole rows, each feeding o / rows outputs */
    uint32_t rows = c.tiled ? tbn_tile_rows(op, c.tile.n_bits, c.k) : 0;
    uint8_t *scratch = NULL;
    uint32_t scratch_bytes = 0;
    if (TBN_BUILD_TABLES && op->scratch != TBN_NONE_ID) { /* prepare checked rows > 0, the scratch fits */
        tbn_tensor s;
        tbn_get_tensor(m, op->scratch, &s);
        scratch = arena + s.offset;
        scratch_bytes = s.nbytes;
    }
    if (TBN_QUAD_KERNEL && TBN_BUILT_TRAIT(CONV) && tbn_mm_eval_planes(&c, rows)) return TBN_OK;
    if (TBN_QUAD_KERNEL && TBN_BUILT_TRAIT(CONV) && tbn_mm_quads_ok(&c, rows)) {
        tbn_mm_eval_quads(&c, rows);
        return TBN_OK;
    }
    if (TBN_DENSE_DSP && dense_before_channel(&c)) {
        dense_window_i8(&c);
        return TBN_OK;
    }
    if (TBN_CHANNEL_KERNEL && TBN_BUILT_TRAIT(CONV) && !scratch && tbn_mm_channel_ok(&c)) { /* a conv */
        tbn_mm_eval_channel(&c, rows);
        return TBN_OK;
    }
    if (dense_pointwise_ok(&c)) {
#if TBN_DENSE_DSP
        if (TBN_INT8(c.int8) && c.k >= DENSE_WIDE_MIN_K && c.k <= 128u) {
            dense_pointwise_dsp(&c);
            return TBN_OK;
        }
#endif
        for (uint32_t ch = 0; ch < c.o; ch++) {
            if (TBN_INT8(c.int8)) dense_pointwise_i8(&c, ch);
            else dense_pointwise_f32(&c, ch);
        }
        return TBN_OK;
    }
    if (dense_window_ok(&c)) {
        dense_window_i8(&c);
        return TBN_OK;
    }
    uint32_t esize = TBN_INT8(c.int8) ? 1u : 4u, tokens = TBN_BUILD_TOKENS ? c.tokens : 1u;
    int small = TBN_SMALL_USED && !scratch && tbn_mm_small_ok(&c);
    for (uint32_t t = 0, n = 1; t < tokens; t += n) { /* the table kernel may take two tokens */
        if (scratch) n = tbn_mm_eval_lut(&c, rows, scratch, scratch_bytes, tokens - t);
        else if (small) tbn_mm_eval_small(&c, rows);
        else if (!TBN_SMALL_ALL || !TBN_INT8(c.int8)) mm_eval(&c, rows);
        c.src += (size_t)n * c.k * esize;
        c.dst += (size_t)n * c.o * esize;
    }
    return TBN_OK;
}

void tbn_mm_store_i8(const mm_ctx *c, uint32_t ch, uint32_t pix, int32_t acc) { store_i8(c, ch, pix, c->npix, acc); }

/* The direct kernel at every output position. */
static void mm_eval(const mm_ctx *c, uint32_t rows) {
    /* locals, not loads through c in the loops: the int8 stores may alias anything */
    uint32_t ho = c->ho, wo = c->wo, npix = c->npix, o = c->o, og = c->og;
    int per_rep = c->per_rep, int8 = c->int8;

    for (uint32_t oy = 0; oy < ho; oy++) {
        for (uint32_t ox = 0; ox < wo; ox++) {
            uint32_t pix = oy * wo + ox;
            if (rows) { /* tile reuse: `rows` distinct dot products, each feeding o / rows outputs */
                for (uint32_t r0 = 0; r0 < rows; r0 += TBN_CHUNK) {
                    uint32_t n = rows - r0 < TBN_CHUNK ? rows - r0 : TBN_CHUNK;
                    if (TBN_INT8(int8)) {
                        int32_t acc[TBN_CHUNK];
                        for (uint32_t r = 0; r < n; r++) acc[r] = row_i8(c, r0 + r, 0, oy, ox);
                        for (uint32_t ch0 = r0; ch0 < o; ch0 += rows)
                            for (uint32_t r = 0; r < n; r++) store_i8(c, ch0 + r, pix, npix, acc[r]);
                    } else {
                        float acc[TBN_CHUNK];
                        for (uint32_t r = 0; r < n; r++) acc[r] = row_f32(c, r0 + r, 0, oy, ox, 0);
                        for (uint32_t ch0 = r0, rep = 0; ch0 < o; ch0 += rows, rep++)
                            for (uint32_t r = 0; r < n; r++)
                                store_f32(c, ch0 + r, pix, npix,
                                          per_rep ? acc[r] * tbn_vector_f32(&c->scale, rep) : acc[r]);
                    }
                }
            } else {
                for (uint32_t ch = 0; ch < o; ch++) {
                    uint32_t g = ch / og;
                    if (TBN_INT8(int8)) store_i8(c, ch, pix, npix, row_i8(c, ch, g, oy, ox));
                    else store_f32(c, ch, pix, npix, row_f32(c, ch, g, oy, ox, per_rep));
                }
            }
        }
    }
}
