/* tbn_cmsis.c -- run a .tbn file's dense int8 linear layers with CMSIS-NN's
 * arm_fully_connected_s8, for the side-by-side benchmark (benchmarks/mcu.py).
 *
 * The tbn runtime loads and validates the model and runs every other op; this is its
 * TBN_OP_BACKEND (tbn_interp.c). A DENSE_LINEAR op of an INT8 model with one REQUANT scale
 * (per-tensor quantisation, as TFLite Micro sets it) maps onto CMSIS-NN's parameters:
 * input_offset = -input zero point, output_offset = output zero point, activation range =
 * the output's clamp, and tbn's (multiplier, shift s) = CMSIS-NN's (multiplier, 31 - s).
 * Built with CMSIS_NN_USE_SINGLE_ROUNDING, CMSIS-NN rounds exactly as docs/bytecode.md
 * says, so its outputs equal the reference's bit for bit. */
#include "arm_nnfunctions.h"
#include "tbn_internal.h"

int tbn_cmsis_op(const tbn_model *m, const tbn_op *op, uint8_t *arena);

int tbn_cmsis_op(const tbn_model *m, const tbn_op *op, uint8_t *arena) {
    if (op->opcode != TBN_OP_DENSE_LINEAR || !tbn_is_int8(m)) return 0;
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
