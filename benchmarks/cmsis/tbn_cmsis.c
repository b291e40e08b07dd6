/* tbn_cmsis.c -- run a .tbn file's dense int8 linear layers with CMSIS-NN's
 * arm_fully_connected_s8, for the side-by-side benchmark (benchmarks/mcu.py).
 *
 * The tbn runtime loads and validates the model and runs every other op; this is its
 * TBN_OP_BACKEND (tbn_interp.c). A DENSE_LINEAR or DENSE_CONV2D op of an INT8 model with
 * one REQUANT scale (per-tensor quantisation) maps onto CMSIS-NN's parameters:
 * input_offset = -input zero point, output_offset = output zero point, activation range =
 * the output's clamp, and tbn's (multiplier, shift s) = CMSIS-NN's (multiplier, 31 - s).
 * Built with CMSIS_NN_USE_SINGLE_ROUNDING, CMSIS-NN rounds exactly as docs/bytecode.md
 * says, so its outputs equal the reference's bit for bit. */
#include "arm_nnfunctions.h"
#include "tbn_internal.h"

int tbn_cmsis_op(const tbn_model *m, const tbn_op *op, uint8_t *arena);

static int fully_connected(const tbn_model *m, const tbn_op *op, uint8_t *arena) {
    tbn_vector scale, bias;
    tbn_get_scale(m, op->scale, &scale);
    if (scale.count != 1) return 0; /* per-channel: tbn's own kernel */
    tbn_tensor in, out;
    tbn_get_tensor(m, op->input, &in);
    tbn_get_tensor(m, op->output, &out);
    uint32_t count;
    const int8_t *w = tbn_get_dense(m, op->weight, &count);
    const int32_t *b = NULL;
    if (op->bias != TBN_NONE_ID) {
        tbn_get_bias(m, op->bias, &bias);
        b = (const int32_t *)(const void *)bias.data; /* 4-byte aligned, little-endian */
    }
    cmsis_nn_context ctx = {NULL, 0};
    cmsis_nn_fc_params fc = {-in.zero_point, 0, out.zero_point, {out.qmin, out.qmax}};
    cmsis_nn_per_tensor_quant_params q = {tbn_rds32(scale.data), 31 - tbn_rds32(scale.data + 4)};
    cmsis_nn_dims in_dims = {1, 1, 1, (int32_t)in.numel}, w_dims = {(int32_t)in.numel, 1, 1, (int32_t)out.numel};
    cmsis_nn_dims b_dims = {1, 1, 1, (int32_t)out.numel}, out_dims = {1, 1, 1, (int32_t)out.numel};
    arm_fully_connected_s8(&ctx, &fc, &q, &in_dims, (const int8_t *)arena + in.offset, &w_dims, w, &b_dims, b,
                           &out_dims, (int8_t *)arena + out.offset);
    return 1;
}

/* CMSIS-NN convolves NHWC tensors with OHWI weights; tbn's are CHW and OIHW. The benchmark
 * pays for that with a transpose of the input and the output (counted in its cost; about
 * 5 instructions an element) and reorders each conv's weights once, on its first run, into
 * RAM. Sizes cover the cnn recipe (benchmarks/mcu.py). */
#define MAX_ACT (64 * 28 * 28)
#define MAX_WEIGHTS (64 * 32 * 3 * 3)
#define MAX_CHANNELS 64
#define MAX_CONVS 4
static int8_t g_hwc_in[MAX_ACT], g_hwc_out[MAX_ACT], g_ohwi[MAX_CONVS][MAX_WEIGHTS];
static const int8_t *g_ohwi_of[MAX_CONVS];
static int16_t g_im2col[2 * MAX_CHANNELS * 9];
static int32_t g_mult[MAX_CHANNELS], g_shift[MAX_CHANNELS];

static const int8_t *ohwi(const int8_t *w, uint32_t o, uint32_t c, uint32_t kh, uint32_t kw) {
    for (int i = 0; i < MAX_CONVS; i++) {
        if (g_ohwi_of[i] == w) return g_ohwi[i];
        if (g_ohwi_of[i]) continue;
        for (uint32_t a = 0; a < o; a++)
            for (uint32_t y = 0; y < kh; y++)
                for (uint32_t x = 0; x < kw; x++)
                    for (uint32_t ch = 0; ch < c; ch++)
                        g_ohwi[i][((a * kh + y) * kw + x) * c + ch] = w[((a * c + ch) * kh + y) * kw + x];
        g_ohwi_of[i] = w;
        return g_ohwi[i];
    }
    return NULL;
}

static int convolution(const tbn_model *m, const tbn_op *op, uint8_t *arena) {
    tbn_vector scale, bias;
    tbn_get_scale(m, op->scale, &scale);
    tbn_tensor in, out;
    tbn_get_tensor(m, op->input, &in);
    tbn_get_tensor(m, op->output, &out);
    uint32_t c = in.dims[0], h = in.dims[1], w = in.dims[2], o = out.dims[0], ho = out.dims[1], wo = out.dims[2];
    if (scale.count != 1 || op->groups != 1 || op->dh != 1 || op->dw != 1 || o > MAX_CHANNELS ||
        (uint64_t)c * h * w > MAX_ACT || (uint64_t)o * ho * wo > MAX_ACT || (uint64_t)o * c * op->kh * op->kw > MAX_WEIGHTS ||
        c * op->kh * op->kw > MAX_CHANNELS * 9)
        return 0;
    uint32_t count;
    const int8_t *weights = ohwi(tbn_get_dense(m, op->weight, &count), o, c, op->kh, op->kw);
    if (!weights) return 0;
    const int8_t *src = (const int8_t *)arena + in.offset;
    for (uint32_t ch = 0; ch < c; ch++) /* CHW -> HWC */
        for (uint32_t i = 0; i < h * w; i++) g_hwc_in[i * c + ch] = src[ch * h * w + i];
    const int32_t *b = NULL;
    if (op->bias != TBN_NONE_ID) {
        tbn_get_bias(m, op->bias, &bias);
        b = (const int32_t *)(const void *)bias.data;
    }
    for (uint32_t i = 0; i < o; i++) {
        g_mult[i] = tbn_rds32(scale.data);
        g_shift[i] = 31 - tbn_rds32(scale.data + 4);
    }
    cmsis_nn_context ctx = {g_im2col, (int32_t)sizeof g_im2col};
    cmsis_nn_conv_params cp = {-in.zero_point, out.zero_point, {op->sw, op->sh}, {op->pl, op->pt}, {1, 1},
                               {out.qmin, out.qmax}};
    cmsis_nn_per_channel_quant_params q = {g_mult, g_shift};
    cmsis_nn_dims in_dims = {1, (int32_t)h, (int32_t)w, (int32_t)c};
    cmsis_nn_dims f_dims = {(int32_t)o, op->kh, op->kw, (int32_t)c};
    cmsis_nn_dims b_dims = {1, 1, 1, (int32_t)o}, out_dims = {1, (int32_t)ho, (int32_t)wo, (int32_t)o};
    if (arm_convolve_wrapper_s8(&ctx, &cp, &q, &in_dims, g_hwc_in, &f_dims, weights, &b_dims, b, &out_dims,
                                g_hwc_out) != ARM_CMSIS_NN_SUCCESS)
        return 0;
    int8_t *dst = (int8_t *)arena + out.offset;
    for (uint32_t ch = 0; ch < o; ch++) /* HWC -> CHW */
        for (uint32_t i = 0; i < ho * wo; i++) dst[ch * ho * wo + i] = g_hwc_out[i * o + ch];
    return 1;
}

int tbn_cmsis_op(const tbn_model *m, const tbn_op *op, uint8_t *arena) {
    if (!tbn_is_int8(m)) return 0;
    if (op->opcode == TBN_OP_DENSE_LINEAR) return fully_connected(m, op, arena);
    if (op->opcode == TBN_OP_DENSE_CONV2D) return convolution(m, op, arena);
    return 0;
}
