/* tbn_cmsis.c -- run a .tbn file's dense int8 linear and conv layers with CMSIS-NN, for the
 * side-by-side benchmarks (benchmarks/mcu.py, benchmarks/mlperf_tiny.py).
 *
 * The tbn runtime loads and validates the model and runs every other op; this is its
 * TBN_OP_BACKEND (tbn_interp.c). A DENSE_LINEAR or DENSE_CONV2D (one group, or depthwise)
 * op of an INT8 model with REQUANT scales (one, or one an output) maps onto CMSIS-NN's
 * parameters:
 * input_offset = -input zero point, output_offset = output zero point, activation range =
 * the output's clamp, and tbn's (multiplier, shift s) = CMSIS-NN's (multiplier, 31 - s).
 * Built with CMSIS_NN_USE_SINGLE_ROUNDING, CMSIS-NN rounds exactly as docs/bytecode.md
 * says, so its outputs equal the reference's bit for bit. */
#include "arm_nnfunctions.h"
#include "cost.h"
#include "tbn_internal.h"

int tbn_cmsis_op(const tbn_model *m, const tbn_op *op, uint8_t *arena);

/* CMSIS-NN convolves NHWC tensors with OHWI weights (depthwise: 1HWO); tbn's are CHW and OIHW.
 * The backend transposes each conv's input and output (about 5 instructions an element) and
 * leaves that out of the cost (cost_exclude): a CMSIS-NN deployment keeps NHWC throughout. It
 * reorders each conv's weights once, on its first run, into a pool in RAM. Sizes cover the
 * cnn recipe (benchmarks/mcu.py) and MLPerf Tiny's architectures (benchmarks/mlperf_tiny.py). */
#define MAX_ACT (48 * 48 * 16)
#define MAX_CHANNELS 256
#define MAX_CONVS 32
#define POOL_BYTES (256 * 1024)
#define MAX_OUTPUTS 1024 /* of a linear layer */
#define SCRATCH_BYTES (4 * MAX_CHANNELS * 9)
static int8_t g_hwc_in[MAX_ACT], g_hwc_out[MAX_ACT], g_pool[POOL_BYTES];
static uint32_t g_pool_used, g_pool_crc; /* the pool holds the weights of the model of this CRC */
static const int8_t *g_src_of[MAX_CONVS], *g_reordered[MAX_CONVS];
static int16_t g_scratch[SCRATCH_BYTES / 2];
static int32_t g_mult[MAX_OUTPUTS], g_shift[MAX_OUTPUTS];

/* w (o, c, kh, kw) of model m reordered to (o, kh, kw, c) -- or, depthwise (c = 1), to
 * (kh, kw, o) -- once; NULL when the pool is full. A model loaded over the last one (its
 * weights perhaps at the same addresses) empties the pool. */
static const int8_t *reordered(const tbn_model *m, const int8_t *w, uint32_t o, uint32_t c, uint32_t kh, uint32_t kw,
                               int depthwise) {
    uint32_t crc = tbn_rd32(m->data + TBN_HDR_CRC32);
    if (crc != g_pool_crc) {
        g_pool_used = 0, g_pool_crc = crc;
        for (int j = 0; j < MAX_CONVS; j++) g_src_of[j] = NULL;
    }
    int i = 0;
    for (; i < MAX_CONVS && g_src_of[i]; i++)
        if (g_src_of[i] == w) return g_reordered[i];
    uint32_t n = o * c * kh * kw;
    if (i == MAX_CONVS || n > POOL_BYTES - g_pool_used) return NULL;
    int8_t *dst = g_pool + g_pool_used;
    for (uint32_t a = 0; a < o; a++)
        for (uint32_t y = 0; y < kh; y++)
            for (uint32_t x = 0; x < kw; x++)
                for (uint32_t ch = 0; ch < c; ch++)
                    dst[depthwise ? (y * kw + x) * o + a : ((a * kh + y) * kw + x) * c + ch] =
                        w[((a * c + ch) * kh + y) * kw + x];
    g_pool_used += (n + 3u) & ~3u;
    g_src_of[i] = w;
    return g_reordered[i] = dst;
}

/* tbn's REQUANT (multiplier, shift s) per output channel as CMSIS-NN's (multiplier, 31 - s);
 * 0 for other rescalings (RQ16: tbn's own kernel). */
static int channel_quant(const tbn_vector *scale, uint32_t o) {
    if (o > MAX_OUTPUTS || scale->dtype != TBN_DTYPE_REQUANT || (scale->count != 1 && scale->count != o)) return 0;
    for (uint32_t i = 0; i < o; i++) {
        const uint8_t *e = scale->data + 8u * (scale->count == 1 ? 0u : i);
        g_mult[i] = tbn_rds32(e);
        g_shift[i] = 31 - tbn_rds32(e + 4);
    }
    return 1;
}

static int convolution(const tbn_model *m, const tbn_op *op, uint8_t *arena) {
    tbn_vector scale, bias;
    tbn_get_scale(m, op->scale, &scale);
    tbn_tensor in, out;
    tbn_get_tensor(m, op->input, &in);
    tbn_get_tensor(m, op->output, &out);
    uint32_t c = in.dims[0], h = in.dims[1], w = in.dims[2], o = out.dims[0], ho = out.dims[1], wo = out.dims[2];
    int depthwise = op->groups == c && op->groups > 1;
    if ((op->groups != 1 && !depthwise) || o > MAX_CHANNELS || (uint64_t)c * h * w > MAX_ACT ||
        (uint64_t)o * ho * wo > MAX_ACT || !channel_quant(&scale, o))
        return 0;
    uint32_t count;
    const int8_t *weights = reordered(m, tbn_get_dense(m, op->weight, &count), o, depthwise ? 1u : c, op->kh,
                                      op->kw, depthwise);
    if (!weights) return 0;
    cmsis_nn_context ctx = {g_scratch, (int32_t)sizeof g_scratch};
    cmsis_nn_per_channel_quant_params q = {g_mult, g_shift};
    cmsis_nn_dims in_dims = {1, (int32_t)h, (int32_t)w, (int32_t)c};
    cmsis_nn_dims b_dims = {1, 1, 1, (int32_t)o}, out_dims = {1, (int32_t)ho, (int32_t)wo, (int32_t)o};
    cmsis_nn_dims f_dims = {depthwise ? 1 : (int32_t)o, op->kh, op->kw, depthwise ? (int32_t)o : (int32_t)c};
    cmsis_nn_conv_params cp = {-in.zero_point, out.zero_point, {op->sw, op->sh}, {op->pl, op->pt},
                               {op->dw, op->dh}, {out.qmin, out.qmax}};
    cmsis_nn_dw_conv_params dp = {-in.zero_point, out.zero_point, (int32_t)(o / c), {op->sw, op->sh},
                                  {op->pl, op->pt}, {op->dw, op->dh}, {out.qmin, out.qmax}};
    int32_t need = depthwise ? arm_depthwise_conv_wrapper_s8_get_buffer_size(&dp, &in_dims, &f_dims, &out_dims)
                             : arm_convolve_wrapper_s8_get_buffer_size(&cp, &in_dims, &f_dims, &out_dims);
    if (need > (int32_t)sizeof g_scratch) return 0;
    const int32_t *b = NULL;
    if (op->bias != TBN_NONE_ID) {
        tbn_get_bias(m, op->bias, &bias);
        if (bias.dtype != TBN_DTYPE_I32) return 0;
        b = (const int32_t *)(const void *)bias.data; /* 4-byte aligned, little-endian */
    }
    uint64_t mark = cost_mark();
    const int8_t *src = (const int8_t *)arena + in.offset;
    for (uint32_t ch = 0; ch < c; ch++) /* CHW -> HWC */
        for (uint32_t i = 0; i < h * w; i++) g_hwc_in[i * c + ch] = src[ch * h * w + i];
    cost_exclude(mark);
    arm_cmsis_nn_status st =
        depthwise ? arm_depthwise_conv_wrapper_s8(&ctx, &dp, &q, &in_dims, g_hwc_in, &f_dims, weights, &b_dims, b,
                                                  &out_dims, g_hwc_out)
                  : arm_convolve_wrapper_s8(&ctx, &cp, &q, &in_dims, g_hwc_in, &f_dims, weights, &b_dims, b, &out_dims,
                                            g_hwc_out);
    if (st != ARM_CMSIS_NN_SUCCESS) return 0;
    mark = cost_mark();
    int8_t *dst = (int8_t *)arena + out.offset;
    for (uint32_t ch = 0; ch < o; ch++) /* HWC -> CHW */
        for (uint32_t i = 0; i < ho * wo; i++) dst[ch * ho * wo + i] = g_hwc_out[i * o + ch];
    cost_exclude(mark);
    return 1;
}

/* arm_fully_connected_s8 with one scale, arm_fully_connected_per_channel_s8 with one an
 * output. */
static int fully_connected(const tbn_model *m, const tbn_op *op, uint8_t *arena) {
    tbn_vector scale, bias;
    tbn_get_scale(m, op->scale, &scale);
    tbn_tensor in, out;
    tbn_get_tensor(m, op->input, &in);
    tbn_get_tensor(m, op->output, &out);
    if (out.numel > MAX_OUTPUTS || !channel_quant(&scale, out.numel)) return 0;
    uint32_t count;
    const int8_t *w = tbn_get_dense(m, op->weight, &count);
    const int32_t *b = NULL;
    if (op->bias != TBN_NONE_ID) {
        tbn_get_bias(m, op->bias, &bias);
        if (bias.dtype != TBN_DTYPE_I32) return 0;
        b = (const int32_t *)(const void *)bias.data; /* 4-byte aligned, little-endian */
    }
    cmsis_nn_context ctx = {NULL, 0};
    cmsis_nn_fc_params fc = {-in.zero_point, 0, out.zero_point, {out.qmin, out.qmax}};
    cmsis_nn_dims in_dims = {1, 1, 1, (int32_t)in.numel}, w_dims = {(int32_t)in.numel, 1, 1, (int32_t)out.numel};
    cmsis_nn_dims b_dims = {1, 1, 1, (int32_t)out.numel}, out_dims = {1, 1, 1, (int32_t)out.numel};
    const int8_t *x = (const int8_t *)arena + in.offset;
    int8_t *y = (int8_t *)arena + out.offset;
    if (scale.count == 1) {
        cmsis_nn_per_tensor_quant_params q = {g_mult[0], g_shift[0]};
        arm_fully_connected_s8(&ctx, &fc, &q, &in_dims, x, &w_dims, w, &b_dims, b, &out_dims, y);
    } else {
        cmsis_nn_per_channel_quant_params q = {g_mult, g_shift};
        arm_fully_connected_per_channel_s8(&ctx, &fc, &q, &in_dims, x, &w_dims, w, &b_dims, b, &out_dims, y);
    }
    return 1;
}

int tbn_cmsis_op(const tbn_model *m, const tbn_op *op, uint8_t *arena) {
    if (!tbn_is_int8(m)) return 0;
    if (op->opcode == TBN_OP_DENSE_LINEAR) return fully_connected(m, op, arena);
    if (op->opcode == TBN_OP_DENSE_CONV2D) return convolution(m, op, arena);
    return 0;
}
