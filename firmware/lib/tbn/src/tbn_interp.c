/* The interpreter: walk the validated ops and call one kernel per op. Owns no memory. */
#include "tbn_internal.h"

/* A build may hand some ops to another kernel library first: -DTBN_OP_BACKEND=fn names a
 * function that runs the op and returns 1, or returns 0 to leave it to tbn's kernel.
 * benchmarks/cmsis uses it to run dense int8 layers with CMSIS-NN, side by side. */
#ifdef TBN_OP_BACKEND
int TBN_OP_BACKEND(const tbn_model *m, const tbn_op *op, uint8_t *arena);
#endif

tbn_status tbn_invoke(const tbn_model *m, void *arena, size_t arena_size) {
    if (!m) return TBN_ERR_ARG;
    return tbn_invoke_ops(m, arena, arena_size, 0, m->n_ops);
}

tbn_status tbn_invoke_ops(const tbn_model *m, void *arena, size_t arena_size, uint32_t first, uint32_t last) {
    if (!m || !arena || !tbn_aligned4(arena) || first > last || last > m->n_ops) return TBN_ERR_ARG;
    if (arena_size < m->arena_size) return TBN_ERR_ARENA_SIZE;
    uint8_t *a = (uint8_t *)arena;
    uint32_t pos = m->off_ops, end = m->off_ops + m->ops_size;
    for (uint32_t i = 0; i < last; i++) {
        tbn_op op;
        if (!tbn_decode_op(m->data + pos, end - pos, &op)) return TBN_ERR_OPCODE;
        if (i < first) { /* ops before the range: only stepped over */
            pos += op.size;
            continue;
        }
#ifdef TBN_OP_BACKEND
        if (TBN_OP_BACKEND(m, &op, a)) {
            pos += op.size;
            continue;
        }
#endif
        tbn_status s;
        switch (op.opcode) {
#define TBN_EVAL(NAME, code, size, traits, kernel) \
    case code: s = TBN_BUILT(code) ? tbn_eval_##kernel(m, &op, a) : TBN_ERR_NOT_BUILT; break;
            TBN_OP_LIST(TBN_EVAL)
#undef TBN_EVAL
        default: return TBN_ERR_OPCODE;
        }
        if (s != TBN_OK) return s;
        pos += op.size;
    }
    return TBN_OK;
}

tbn_status tbn_run(const tbn_model *m, void *arena, size_t arena_size, const void *input, size_t input_size,
                   void *output, size_t output_size) {
    if (!m || !input || !output) return TBN_ERR_ARG;
    if (input_size != tbn_input_size(m) || output_size != tbn_output_size(m)) return TBN_ERR_IO_SIZE;
    if (!arena || !tbn_aligned4(arena)) return TBN_ERR_ARG;
    if (arena_size < m->arena_size) return TBN_ERR_ARENA_SIZE;
    memcpy(tbn_input_ptr(m, arena), input, input_size);
    tbn_status s = tbn_invoke(m, arena, arena_size);
    if (s == TBN_OK) memcpy(output, tbn_output_ptr(m, arena), output_size);
    return s;
}
