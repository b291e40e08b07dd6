/* Loading and validating a .tbn file: the rules of docs/bytecode.md, "What a reader checks". */
#include <stddef.h>

#include "tbn_internal.h"

static const char *const k_errors[TBN_ERR_COUNT_] = {
    "ok",
    "bad argument (NULL pointer or misaligned buffer)",
    "file truncated or of the wrong length",
    "bad magic: not a .tbn file",
    "unsupported format major version",
    "CRC32 mismatch: the file is corrupt",
    "unknown required feature flag",
    "malformed tensor (dtype, rank or dims)",
    "tensor arena slot out of bounds or misaligned",
    "bad quantisation parameters",
    "tile, scale, bias or dense entry out of bounds or malformed",
    "unknown opcode or activation (file needs a newer runtime?)",
    "operand id out of range, or tensor read before written",
    "inconsistent shapes, dtypes, geometry or scale counts",
    "arena too small for the model",
    "input or output buffer of the wrong size",
};

const char *tbn_strerror(tbn_status status) {
    if ((unsigned)status >= (unsigned)TBN_ERR_COUNT_) return "unknown tbn status";
    return k_errors[status];
}

uint32_t tbn_crc32_update(uint32_t crc, const void *data, size_t n) {
    const uint8_t *p = (const uint8_t *)data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

uint32_t tbn_crc32(const void *data, size_t n) { return tbn_crc32_update(0, data, n); }

float tbn_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400u)) { man <<= 1; exp--; }
            u = sign | (exp << 23) | ((man & 0x3FFu) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7F800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t dtype_size(uint8_t dtype) {
    switch (dtype) {
    case TBN_DTYPE_F32: return 4;
    case TBN_DTYPE_F16: return 2;
    case TBN_DTYPE_I8: return 1;
    case TBN_DTYPE_I32: return 4;
    case TBN_DTYPE_REQUANT: return 8;
    default: return 0;
    }
}

void tbn_get_tensor(const tbn_model *m, uint32_t id, tbn_tensor *t) {
    const uint8_t *e = m->data + m->off_tensors + id * TBN_TENSOR_ENTRY_SIZE;
    const uint8_t *a = m->data + m->off_arena + id * TBN_ARENA_ENTRY_SIZE;
    t->dtype = e[TBN_TENSOR_DTYPE];
    t->ndim = e[TBN_TENSOR_NDIM];
    t->numel = 1;
    for (int i = 0; i < TBN_MAX_DIMS; i++) {
        t->dims[i] = tbn_rd16(e + TBN_TENSOR_DIMS + 2 * i);
        if (i < t->ndim) t->numel *= t->dims[i];
    }
    t->offset = tbn_rd32(a + TBN_ARENA_OFFSET);
    t->nbytes = tbn_rd32(a + TBN_ARENA_SIZE);
    t->scale = 0.0f;
    t->zero_point = 0;
    t->qmin = -128;
    t->qmax = 127;
    if (m->flags & TBN_FLAG_INT8) {
        const uint8_t *q = m->data + m->off_quant + id * TBN_QUANT_ENTRY_SIZE;
        t->scale = tbn_rdf32(q + TBN_QUANT_SCALE);
        t->zero_point = (int16_t)tbn_rd16(q + TBN_QUANT_ZERO_POINT);
        t->qmin = (int8_t)q[TBN_QUANT_QMIN];
        t->qmax = (int8_t)q[TBN_QUANT_QMAX];
    }
}

static void get_vector(const tbn_model *m, uint32_t table, uint32_t id, tbn_vector *v) {
    const uint8_t *e = m->data + table + id * TBN_VECTOR_ENTRY_SIZE;
    v->data = m->data + tbn_rd32(e + TBN_VECTOR_OFFSET);
    v->count = tbn_rd16(e + TBN_VECTOR_COUNT);
    v->dtype = e[TBN_VECTOR_DTYPE];
}

void tbn_get_scale(const tbn_model *m, uint32_t id, tbn_vector *v) { get_vector(m, m->off_scales, id, v); }
void tbn_get_bias(const tbn_model *m, uint32_t id, tbn_vector *v) { get_vector(m, m->off_biases, id, v); }

float tbn_vector_f32(const tbn_vector *v, uint32_t i) {
    if (v->dtype == TBN_DTYPE_F16) return tbn_f16_to_f32(tbn_rd16(v->data + 2 * i));
    return tbn_rdf32(v->data + 4 * i);
}

void tbn_get_tile(const tbn_model *m, uint32_t id, tbn_tile *t) {
    const uint8_t *e = m->data + m->off_tiles + id * TBN_TILE_ENTRY_SIZE;
    t->n_bits = tbn_rd32(e + TBN_TILE_N_BITS);
    t->bits = m->data + tbn_rd32(e + TBN_TILE_OFFSET);
}

const int8_t *tbn_get_dense(const tbn_model *m, uint32_t id, uint32_t *count) {
    const uint8_t *e = m->data + m->off_dense + id * TBN_DENSE_ENTRY_SIZE;
    *count = tbn_rd32(e + TBN_DENSE_COUNT);
    return (const int8_t *)(m->data + tbn_rd32(e + TBN_DENSE_OFFSET));
}

int tbn_decode_op(const uint8_t *p, uint32_t avail, tbn_op *op) {
    memset(op, 0, sizeof *op);
    if (avail < 2) return 0;
    op->opcode = p[0];
    op->act = p[1];
    op->scale = op->bias = TBN_NONE_ID;
    switch (op->opcode) {
    case TBN_OP_TILED_LINEAR: case TBN_OP_DENSE_LINEAR: op->size = TBN_OP_TILED_LINEAR_SIZE; break;
    case TBN_OP_TILED_CONV2D: case TBN_OP_DENSE_CONV2D: op->size = TBN_OP_TILED_CONV2D_SIZE; break;
    case TBN_OP_MAXPOOL2D: case TBN_OP_AVGPOOL2D: op->size = TBN_OP_MAXPOOL2D_SIZE; break;
    case TBN_OP_ADD: op->size = TBN_OP_ADD_SIZE; break;
    case TBN_OP_AFFINE: op->size = TBN_OP_AFFINE_SIZE; break;
    case TBN_OP_GLOBAL_AVGPOOL: case TBN_OP_RESHAPE: case TBN_OP_ACTIVATION: case TBN_OP_SOFTMAX:
    case TBN_OP_ARGMAX: op->size = TBN_OP_RESHAPE_SIZE; break;
    default: return 0;
    }
    if (avail < op->size) return 0;
    switch (op->opcode) {
    case TBN_OP_TILED_LINEAR: case TBN_OP_DENSE_LINEAR:
    case TBN_OP_TILED_CONV2D: case TBN_OP_DENSE_CONV2D:
        op->input = tbn_rd16(p + TBN_OP_TILED_LINEAR_INPUT);
        op->output = tbn_rd16(p + TBN_OP_TILED_LINEAR_OUTPUT);
        op->tile = op->weight = tbn_rd16(p + TBN_OP_TILED_LINEAR_TILE);
        op->scale = tbn_rd16(p + TBN_OP_TILED_LINEAR_SCALE);
        op->bias = tbn_rd16(p + TBN_OP_TILED_LINEAR_BIAS);
        if (op->opcode == TBN_OP_TILED_CONV2D || op->opcode == TBN_OP_DENSE_CONV2D) {
            const uint8_t *g = p + TBN_OP_TILED_CONV2D_KH;
            op->kh = g[0]; op->kw = g[1]; op->sh = g[2]; op->sw = g[3]; op->dh = g[4]; op->dw = g[5];
            op->pt = g[6]; op->pl = g[7]; op->pb = g[8]; op->pr = g[9];
            op->groups = tbn_rd16(p + TBN_OP_TILED_CONV2D_GROUPS);
        } else {
            op->kh = op->kw = op->sh = op->sw = op->dh = op->dw = 1;
            op->groups = 1;
        }
        break;
    case TBN_OP_MAXPOOL2D: case TBN_OP_AVGPOOL2D: {
        const uint8_t *g = p + TBN_OP_MAXPOOL2D_KH;
        op->input = tbn_rd16(p + TBN_OP_MAXPOOL2D_INPUT);
        op->output = tbn_rd16(p + TBN_OP_MAXPOOL2D_OUTPUT);
        op->kh = g[0]; op->kw = g[1]; op->sh = g[2]; op->sw = g[3];
        op->pt = g[4]; op->pl = g[5]; op->pb = g[6]; op->pr = g[7];
        op->dh = op->dw = 1;
        break;
    }
    case TBN_OP_ADD:
        op->a = op->input = tbn_rd16(p + TBN_OP_ADD_A);
        op->b = tbn_rd16(p + TBN_OP_ADD_B);
        op->output = tbn_rd16(p + TBN_OP_ADD_OUTPUT);
        op->scale = tbn_rd16(p + TBN_OP_ADD_SCALE);
        break;
    case TBN_OP_AFFINE:
        op->input = tbn_rd16(p + TBN_OP_AFFINE_INPUT);
        op->output = tbn_rd16(p + TBN_OP_AFFINE_OUTPUT);
        op->scale = tbn_rd16(p + TBN_OP_AFFINE_SCALE);
        op->bias = tbn_rd16(p + TBN_OP_AFFINE_BIAS);
        break;
    default:
        op->input = tbn_rd16(p + TBN_OP_RESHAPE_INPUT);
        op->output = tbn_rd16(p + TBN_OP_RESHAPE_OUTPUT);
        break;
    }
    return 1;
}

/* ---- validation ------------------------------------------------------------------------- */

#define FAIL(code, item) do { m->error_item = (uint32_t)(item); return (code); } while (0)

static int finite_f32(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return ((u >> 23) & 0xFFu) != 0xFFu;
}

static int same_shape(const tbn_tensor *a, const tbn_tensor *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->dims[i] != b->dims[i]) return 0;
    return 1;
}

static int64_t conv_out(uint32_t size, uint32_t k, uint32_t s, uint32_t d, uint32_t pad) {
    int64_t span = (int64_t)size + pad - (int64_t)d * (k - 1) - 1;
    return span < 0 ? -1 : span / s + 1;
}

static tbn_status check_blob(const tbn_model *m, uint32_t data_start, uint32_t offset, uint64_t nbytes) {
    if (offset % 4 || offset < data_start || (uint64_t)offset + nbytes > m->size) return TBN_ERR_CONST;
    return TBN_OK;
}

static tbn_status check_vectors(tbn_model *m, uint32_t table, uint16_t n, uint32_t data_start, int is_scale) {
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = m->data + table + i * TBN_VECTOR_ENTRY_SIZE;
        uint32_t offset = tbn_rd32(e + TBN_VECTOR_OFFSET), count = tbn_rd16(e + TBN_VECTOR_COUNT);
        uint8_t dtype = e[TBN_VECTOR_DTYPE];
        int ok = is_scale ? (dtype == TBN_DTYPE_F32 || dtype == TBN_DTYPE_F16 || dtype == TBN_DTYPE_REQUANT)
                          : (dtype == TBN_DTYPE_F32 || dtype == TBN_DTYPE_I32);
        if (!ok) FAIL(e[TBN_VECTOR_DTYPE] > TBN_DTYPE_REQUANT ? TBN_ERR_OPCODE : TBN_ERR_CONST, i);
        if (count == 0 || e[TBN_VECTOR_RESERVED]) FAIL(TBN_ERR_CONST, i);
        if (check_blob(m, data_start, offset, (uint64_t)count * dtype_size(dtype)) != TBN_OK)
            FAIL(TBN_ERR_CONST, i);
        for (uint32_t j = 0; j < count; j++) {
            const uint8_t *v = m->data + offset + j * dtype_size(dtype);
            if (dtype == TBN_DTYPE_REQUANT) {
                int32_t shift = tbn_rds32(v + 4);
                if (shift < 0 || shift > 62) FAIL(TBN_ERR_CONST, i);
            } else if (dtype == TBN_DTYPE_F32 && !finite_f32(tbn_rdf32(v))) {
                FAIL(TBN_ERR_CONST, i);
            } else if (dtype == TBN_DTYPE_F16 && ((tbn_rd16(v) >> 10) & 0x1Fu) == 0x1Fu) {
                FAIL(TBN_ERR_CONST, i);
            }
        }
    }
    return TBN_OK;
}

/* Index of the op (before `before`) that writes tensor t, or -1; tensor 0 counts as written. */
static int32_t producer(const tbn_model *m, uint32_t t, uint32_t before) {
    if (t == 0) return 0;
    uint32_t pos = m->off_ops;
    for (uint32_t i = 0; i < before; i++) {
        tbn_op op;
        tbn_decode_op(m->data + pos, m->off_ops + m->ops_size - pos, &op);
        if (op.output == t) return (int32_t)i;
        pos += op.size;
    }
    return -1;
}

static int overlaps(const tbn_tensor *a, const tbn_tensor *b) {
    return a->offset < b->offset + b->nbytes && b->offset < a->offset + a->nbytes;
}

static tbn_status check_matmul(const tbn_model *m, const tbn_op *op, const tbn_tensor *in,
                               const tbn_tensor *out, int int8) {
    int tiled = op->opcode == TBN_OP_TILED_LINEAR || op->opcode == TBN_OP_TILED_CONV2D;
    int conv = op->opcode == TBN_OP_TILED_CONV2D || op->opcode == TBN_OP_DENSE_CONV2D;
    uint8_t act = int8 ? TBN_DTYPE_I8 : TBN_DTYPE_F32;
    uint64_t o, k;
    if (in->dtype != act || out->dtype != act) return TBN_ERR_SHAPE;
    if (conv) {
        if (in->ndim != 3 || out->ndim != 3) return TBN_ERR_SHAPE;
        if (!op->kh || !op->kw || !op->sh || !op->sw || !op->dh || !op->dw || !op->groups) return TBN_ERR_SHAPE;
        if (in->dims[0] % op->groups || out->dims[0] % op->groups) return TBN_ERR_SHAPE;
        if (conv_out(in->dims[1], op->kh, op->sh, op->dh, (uint32_t)op->pt + op->pb) != out->dims[1] ||
            conv_out(in->dims[2], op->kw, op->sw, op->dw, (uint32_t)op->pl + op->pr) != out->dims[2])
            return TBN_ERR_SHAPE;
        o = out->dims[0];
        k = (uint64_t)(in->dims[0] / op->groups) * op->kh * op->kw;
    } else {
        if (out->ndim != 1) return TBN_ERR_SHAPE;
        o = out->numel;
        k = in->numel;
    }
    if (o * k > 0xFFFFFFFFu) return TBN_ERR_SHAPE;
    uint64_t p = 1;
    if (tiled) {
        tbn_tile t;
        tbn_get_tile(m, op->tile, &t);
        if ((o * k) % t.n_bits) return TBN_ERR_SHAPE;
        p = (o * k) / t.n_bits;
    } else {
        uint32_t count;
        tbn_get_dense(m, op->weight, &count);
        if (count != o * k) return TBN_ERR_SHAPE;
    }
    tbn_vector s;
    tbn_get_scale(m, op->scale, &s);
    if (int8) {
        if (s.dtype != TBN_DTYPE_REQUANT || (s.count != 1 && s.count != o)) return TBN_ERR_SHAPE;
    } else {
        if (s.dtype == TBN_DTYPE_REQUANT || (s.count != 1 && s.count != o && s.count != p)) return TBN_ERR_SHAPE;
    }
    if (op->bias != TBN_NONE_ID) {
        tbn_vector b;
        tbn_get_bias(m, op->bias, &b);
        if (b.count != o || b.dtype != (int8 ? TBN_DTYPE_I32 : TBN_DTYPE_F32)) return TBN_ERR_SHAPE;
    }
    return TBN_OK;
}

static tbn_status check_op(tbn_model *m, const tbn_op *op, uint32_t index) {
    int int8 = (m->flags & TBN_FLAG_INT8) != 0;
    int fusable = op->opcode <= TBN_OP_DENSE_CONV2D || op->opcode == TBN_OP_ADD || op->opcode == TBN_OP_AFFINE;
    if (op->act > TBN_ACT_RELU6) FAIL(TBN_ERR_OPCODE, index);
    if (op->act != TBN_ACT_NONE && !fusable && op->opcode != TBN_OP_ACTIVATION) FAIL(TBN_ERR_SHAPE, index);
    if (int8 && (op->opcode == TBN_OP_SOFTMAX || op->opcode == TBN_OP_AFFINE)) FAIL(TBN_ERR_SHAPE, index);

    /* ids */
    uint16_t reads[2] = {op->input, op->opcode == TBN_OP_ADD ? op->b : op->input};
    if (op->output >= m->n_tensors || reads[0] >= m->n_tensors || reads[1] >= m->n_tensors)
        FAIL(TBN_ERR_OPERAND, index);
    switch (op->opcode) {
    case TBN_OP_TILED_LINEAR: case TBN_OP_TILED_CONV2D:
        if (op->tile >= m->n_tiles) FAIL(TBN_ERR_OPERAND, index);
        /* fall through */
    case TBN_OP_DENSE_LINEAR: case TBN_OP_DENSE_CONV2D:
        if ((op->opcode == TBN_OP_DENSE_LINEAR || op->opcode == TBN_OP_DENSE_CONV2D) && op->weight >= m->n_dense)
            FAIL(TBN_ERR_OPERAND, index);
        /* fall through */
    case TBN_OP_AFFINE:
        if (op->scale >= m->n_scales) FAIL(TBN_ERR_OPERAND, index);
        if (op->bias != TBN_NONE_ID && op->bias >= m->n_biases) FAIL(TBN_ERR_OPERAND, index);
        break;
    case TBN_OP_ADD:
        if (int8 ? op->scale >= m->n_scales : (op->scale != TBN_NONE_ID && op->scale >= m->n_scales))
            FAIL(TBN_ERR_OPERAND, index);
        break;
    default: break;
    }
    /* dataflow */
    for (int r = 0; r < 2; r++)
        if (producer(m, reads[r], index) < 0) FAIL(TBN_ERR_OPERAND, index);
    if (op->output == 0 || producer(m, op->output, index) >= 0) FAIL(TBN_ERR_OPERAND, index);

    tbn_tensor in, b, out;
    tbn_get_tensor(m, op->input, &in);
    tbn_get_tensor(m, reads[1], &b);
    tbn_get_tensor(m, op->output, &out);
    if (!(op->opcode == TBN_OP_RESHAPE && in.offset == out.offset) && (overlaps(&in, &out) || overlaps(&b, &out)))
        FAIL(TBN_ERR_ARENA_PLAN, index);
    if (op->opcode != TBN_OP_ARGMAX && out.dtype != in.dtype) FAIL(TBN_ERR_SHAPE, index);

    tbn_status s = TBN_OK;
    switch (op->opcode) {
    case TBN_OP_TILED_LINEAR: case TBN_OP_TILED_CONV2D: case TBN_OP_DENSE_LINEAR: case TBN_OP_DENSE_CONV2D:
        s = check_matmul(m, op, &in, &out, int8);
        break;
    case TBN_OP_MAXPOOL2D: case TBN_OP_AVGPOOL2D:
        if (in.ndim != 3 || out.ndim != 3 || in.dims[0] != out.dims[0] || !op->kh || !op->kw || !op->sh ||
            !op->sw || 2 * (op->pt > op->pb ? op->pt : op->pb) > op->kh ||
            2 * (op->pl > op->pr ? op->pl : op->pr) > op->kw ||
            conv_out(in.dims[1], op->kh, op->sh, 1, (uint32_t)op->pt + op->pb) != out.dims[1] ||
            conv_out(in.dims[2], op->kw, op->sw, 1, (uint32_t)op->pl + op->pr) != out.dims[2])
            s = TBN_ERR_SHAPE;
        break;
    case TBN_OP_GLOBAL_AVGPOOL:
        if (in.ndim != 3 || out.numel != in.dims[0]) s = TBN_ERR_SHAPE;
        break;
    case TBN_OP_RESHAPE:
        if (out.numel != in.numel) s = TBN_ERR_SHAPE;
        break;
    case TBN_OP_ADD:
        if (!same_shape(&in, &b) || !same_shape(&in, &out) || b.dtype != in.dtype) s = TBN_ERR_SHAPE;
        if (int8) {
            tbn_vector v;
            tbn_get_scale(m, op->scale, &v);
            if (v.dtype != TBN_DTYPE_REQUANT || v.count != 2) s = TBN_ERR_SHAPE;
        }
        break;
    case TBN_OP_ACTIVATION:
        if (op->act == TBN_ACT_NONE || !same_shape(&in, &out)) s = TBN_ERR_SHAPE;
        break;
    case TBN_OP_SOFTMAX:
        if (!same_shape(&in, &out)) s = TBN_ERR_SHAPE;
        break;
    case TBN_OP_ARGMAX:
        if (out.dtype != TBN_DTYPE_I32 || out.numel != 1) s = TBN_ERR_SHAPE;
        break;
    case TBN_OP_AFFINE: {
        tbn_vector v;
        tbn_get_scale(m, op->scale, &v);
        if (!same_shape(&in, &out) || v.dtype == TBN_DTYPE_REQUANT || (v.count != 1 && v.count != in.dims[0]))
            s = TBN_ERR_SHAPE;
        if (op->bias != TBN_NONE_ID) {
            tbn_get_bias(m, op->bias, &v);
            if (v.count != in.dims[0] || v.dtype != TBN_DTYPE_F32) s = TBN_ERR_SHAPE;
        }
        break;
    }
    default: s = TBN_ERR_OPCODE; break;
    }
    if (s != TBN_OK) FAIL(s, index);
    if (int8 && (op->opcode == TBN_OP_MAXPOOL2D || op->opcode == TBN_OP_AVGPOOL2D ||
                 op->opcode == TBN_OP_GLOBAL_AVGPOOL || op->opcode == TBN_OP_RESHAPE ||
                 op->opcode == TBN_OP_ACTIVATION) &&
        (memcmp(&in.scale, &out.scale, sizeof in.scale) || in.zero_point != out.zero_point))
        FAIL(TBN_ERR_SHAPE, index);
    return TBN_OK;
}

tbn_status tbn_model_init(tbn_model *m, const void *data, size_t size) {
    if (!m || !data || ((uintptr_t)data & 3u)) return TBN_ERR_ARG;
    memset(m, 0, sizeof *m);
    const uint8_t *p = (const uint8_t *)data;
    m->data = p;
    if (size < TBN_HEADER_SIZE || size > 0xFFFFFFFFu) return TBN_ERR_TRUNCATED;
    if (memcmp(p + TBN_HDR_MAGIC, TBN_MAGIC, 4) != 0) return TBN_ERR_MAGIC;
    if (tbn_rd16(p + TBN_HDR_MAJOR) != TBN_VERSION_MAJOR) return TBN_ERR_VERSION;
    m->minor = tbn_rd16(p + TBN_HDR_MINOR);
    m->size = tbn_rd32(p + TBN_HDR_FILE_SIZE);
    if (m->size != size) return TBN_ERR_TRUNCATED;
    if (tbn_crc32(p + TBN_CRC_START, m->size - TBN_CRC_START) != tbn_rd32(p + TBN_HDR_CRC32)) return TBN_ERR_CRC;
    m->flags = tbn_rd32(p + TBN_HDR_FLAGS);
    if (m->flags & TBN_REQUIRED_FLAGS_MASK & ~TBN_KNOWN_FLAGS) return TBN_ERR_FLAGS;
    m->arena_size = tbn_rd32(p + TBN_HDR_ARENA_SIZE);
    m->n_tensors = tbn_rd16(p + TBN_HDR_N_TENSORS);
    m->n_tiles = tbn_rd16(p + TBN_HDR_N_TILES);
    m->n_scales = tbn_rd16(p + TBN_HDR_N_SCALES);
    m->n_biases = tbn_rd16(p + TBN_HDR_N_BIASES);
    m->n_dense = tbn_rd16(p + TBN_HDR_N_DENSE);
    m->n_ops = tbn_rd16(p + TBN_HDR_N_OPS);
    m->ops_size = tbn_rd32(p + TBN_HDR_OPS_SIZE);
    int int8 = (m->flags & TBN_FLAG_INT8) != 0;

    uint64_t pos = TBN_HEADER_SIZE;
    m->off_tensors = (uint32_t)pos; pos += (uint64_t)m->n_tensors * TBN_TENSOR_ENTRY_SIZE;
    m->off_arena = (uint32_t)pos;   pos += (uint64_t)m->n_tensors * TBN_ARENA_ENTRY_SIZE;
    m->off_quant = (uint32_t)pos;   pos += int8 ? (uint64_t)m->n_tensors * TBN_QUANT_ENTRY_SIZE : 0;
    m->off_tiles = (uint32_t)pos;   pos += (uint64_t)m->n_tiles * TBN_TILE_ENTRY_SIZE;
    m->off_scales = (uint32_t)pos;  pos += (uint64_t)m->n_scales * TBN_VECTOR_ENTRY_SIZE;
    m->off_biases = (uint32_t)pos;  pos += (uint64_t)m->n_biases * TBN_VECTOR_ENTRY_SIZE;
    m->off_dense = (uint32_t)pos;   pos += (uint64_t)m->n_dense * TBN_DENSE_ENTRY_SIZE;
    m->off_ops = (uint32_t)pos;     pos += m->ops_size;
    if (pos > m->size) return TBN_ERR_TRUNCATED;
    if (m->n_tensors == 0 || m->n_ops == 0) return TBN_ERR_TRUNCATED;
    uint32_t data_start = (uint32_t)pos;
    uint8_t act = int8 ? TBN_DTYPE_I8 : TBN_DTYPE_F32;

    for (uint32_t i = 0; i < m->n_tensors; i++) {
        const uint8_t *e = p + m->off_tensors + i * TBN_TENSOR_ENTRY_SIZE;
        uint8_t dtype = e[TBN_TENSOR_DTYPE], ndim = e[TBN_TENSOR_NDIM];
        if (dtype != act && dtype != TBN_DTYPE_I32) FAIL(dtype > TBN_DTYPE_REQUANT ? TBN_ERR_OPCODE : TBN_ERR_TENSOR, i);
        if (i == 0 && dtype != act) FAIL(TBN_ERR_TENSOR, i);
        if (ndim < 1 || ndim > TBN_MAX_DIMS || tbn_rd16(e + TBN_TENSOR_RESERVED)) FAIL(TBN_ERR_TENSOR, i);
        uint64_t numel = 1;
        for (int d = 0; d < TBN_MAX_DIMS; d++) {
            uint16_t dim = tbn_rd16(e + TBN_TENSOR_DIMS + 2 * d);
            if ((d < ndim) ? dim == 0 : dim != 0) FAIL(TBN_ERR_TENSOR, i);
            if (d < ndim) numel *= dim;
        }
        const uint8_t *a = p + m->off_arena + i * TBN_ARENA_ENTRY_SIZE;
        uint32_t offset = tbn_rd32(a + TBN_ARENA_OFFSET), nbytes = tbn_rd32(a + TBN_ARENA_SIZE);
        if (numel * dtype_size(dtype) != nbytes || offset % 4 || (uint64_t)offset + nbytes > m->arena_size)
            FAIL(TBN_ERR_ARENA_PLAN, i);
        if (int8 && dtype == TBN_DTYPE_I8) {
            tbn_tensor t;
            tbn_get_tensor(m, i, &t);
            if (!finite_f32(t.scale) || !(t.scale > 0.0f) || t.zero_point < t.qmin || t.zero_point > 127 ||
                t.qmin > t.qmax)
                FAIL(TBN_ERR_QUANT, i);
        }
    }
    for (uint32_t i = 0; i < m->n_tiles; i++) {
        tbn_tile t;
        const uint8_t *e = p + m->off_tiles + i * TBN_TILE_ENTRY_SIZE;
        t.n_bits = tbn_rd32(e + TBN_TILE_N_BITS);
        if (t.n_bits == 0 ||
            check_blob(m, data_start, tbn_rd32(e + TBN_TILE_OFFSET), 4 * (((uint64_t)t.n_bits + 31) / 32)) != TBN_OK)
            FAIL(TBN_ERR_CONST, i);
    }
    tbn_status s = check_vectors(m, m->off_scales, m->n_scales, data_start, 1);
    if (s != TBN_OK) return s;
    s = check_vectors(m, m->off_biases, m->n_biases, data_start, 0);
    if (s != TBN_OK) return s;
    for (uint32_t i = 0; i < m->n_dense; i++) {
        const uint8_t *e = p + m->off_dense + i * TBN_DENSE_ENTRY_SIZE;
        uint32_t count = tbn_rd32(e + TBN_DENSE_COUNT);
        if (count == 0 || check_blob(m, data_start, tbn_rd32(e + TBN_DENSE_OFFSET), count) != TBN_OK)
            FAIL(TBN_ERR_CONST, i);
    }
    uint32_t at = m->off_ops, end = m->off_ops + m->ops_size;
    for (uint32_t i = 0; i < m->n_ops; i++) {
        tbn_op op;
        if (!tbn_decode_op(p + at, end - at, &op)) {
            if (end - at >= 2 && p[at] != 0 && p[at] <= TBN_OP_AFFINE) FAIL(TBN_ERR_TRUNCATED, i);
            FAIL(end - at < 2 ? TBN_ERR_TRUNCATED : TBN_ERR_OPCODE, i);
        }
        s = check_op(m, &op, i);
        if (s != TBN_OK) return s;
        at += op.size;
        m->output = op.output;
    }
    if (at != end) return TBN_ERR_TRUNCATED;
    return TBN_OK;
}

uint32_t tbn_arena_size(const tbn_model *m) { return m->arena_size; }
int tbn_is_int8(const tbn_model *m) { return (m->flags & TBN_FLAG_INT8) != 0; }

uint32_t tbn_input_size(const tbn_model *m) {
    tbn_tensor t;
    tbn_get_tensor(m, 0, &t);
    return t.nbytes;
}

uint32_t tbn_output_size(const tbn_model *m) {
    tbn_tensor t;
    tbn_get_tensor(m, m->output, &t);
    return t.nbytes;
}

void *tbn_input_ptr(const tbn_model *m, void *arena) {
    tbn_tensor t;
    tbn_get_tensor(m, 0, &t);
    return (uint8_t *)arena + t.offset;
}

const void *tbn_output_ptr(const tbn_model *m, const void *arena) {
    tbn_tensor t;
    tbn_get_tensor(m, m->output, &t);
    return (const uint8_t *)arena + t.offset;
}
