/* Loading and validating a .tbn file: the rules of docs/bytecode.md, "What a reader checks". */
#include <stddef.h>

#include "tbn_internal.h"

/* String constants take RAM on AVR (its .rodata is copied there), where 736 bytes of names
 * would not fit beside a model's arena: there a status is named by its number (tbn.h, and the
 * host's tbn.device.protocol, which names the detail byte of a device's reply). */
#if defined(__AVR__)
const char *tbn_strerror(tbn_status status) {
    (void)status;
    return "tbn_status";
}
#else
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
    "op, activation type or kernel left out of this build of the runtime (TBN_BUILD_OPS)",
};

const char *tbn_strerror(tbn_status status) {
    if ((unsigned)status >= (unsigned)TBN_ERR_COUNT_) return "unknown tbn status";
    return k_errors[status];
}
#endif

uint32_t tbn_crc32_update(uint32_t crc, const TBN_ROM void *data, size_t n) {
    const TBN_ROM uint8_t *p = (const TBN_ROM uint8_t *)data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

uint32_t tbn_crc32(const TBN_ROM void *data, size_t n) { return tbn_crc32_update(0, data, n); }

void tbn_get_tensor(const tbn_model *m, uint32_t id, tbn_tensor *t) {
    const TBN_ROM uint8_t *e = m->data + m->off_tensors + id * TBN_TENSOR_ENTRY_SIZE;
    const TBN_ROM uint8_t *a = m->data + m->off_arena + id * TBN_ARENA_ENTRY_SIZE;
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
        const TBN_ROM uint8_t *q = m->data + m->off_quant + id * TBN_QUANT_ENTRY_SIZE;
        t->scale = tbn_rdf32(q + TBN_QUANT_SCALE);
        t->zero_point = (int16_t)tbn_rd16(q + TBN_QUANT_ZERO_POINT);
        t->qmin = (int8_t)q[TBN_QUANT_QMIN];
        t->qmax = (int8_t)q[TBN_QUANT_QMAX];
    }
}

static void get_vector(const tbn_model *m, uint32_t table, uint32_t id, tbn_vector *v) {
    const TBN_ROM uint8_t *e = m->data + table + id * TBN_VECTOR_ENTRY_SIZE;
    v->data = m->data + tbn_rd32(e + TBN_VECTOR_OFFSET);
    v->count = tbn_rd16(e + TBN_VECTOR_COUNT);
    v->dtype = e[TBN_VECTOR_DTYPE];
    v->pre_shift = v->shift = 0;
    if (v->dtype == TBN_DTYPE_RQ16) {
        v->pre_shift = v->data[TBN_RQ16_PRE_SHIFT];
        v->shift = v->data[TBN_RQ16_SHIFT];
        v->data += TBN_RQ16_HEADER_SIZE;
    }
}

void tbn_get_scale(const tbn_model *m, uint32_t id, tbn_vector *v) { get_vector(m, m->off_scales, id, v); }
void tbn_get_bias(const tbn_model *m, uint32_t id, tbn_vector *v) { get_vector(m, m->off_biases, id, v); }

float tbn_vector_f32(const tbn_vector *v, uint32_t i) {
    if (v->dtype == TBN_DTYPE_F16) return tbn_f16_to_f32(tbn_rd16(v->data + 2 * i));
    return tbn_rdf32(v->data + 4 * i);
}

void tbn_get_tile(const tbn_model *m, uint32_t id, tbn_tile *t) {
    const TBN_ROM uint8_t *e = m->data + m->off_tiles + id * TBN_TILE_ENTRY_SIZE;
    t->n_bits = tbn_rd32(e + TBN_TILE_N_BITS);
    t->bits = m->data + tbn_rd32(e + TBN_TILE_OFFSET);
}

const TBN_ROM int8_t *tbn_get_dense(const tbn_model *m, uint32_t id, uint32_t *count) {
    const TBN_ROM uint8_t *e = m->data + m->off_dense + id * TBN_DENSE_ENTRY_SIZE;
    *count = tbn_rd32(e + TBN_DENSE_COUNT);
    return (const TBN_ROM int8_t *)(m->data + tbn_rd32(e + TBN_DENSE_OFFSET));
}

/* Each opcode's size and traits (0: unknown), as tables: a switch over every opcode would
 * cost each build code for the ops it does not run. (Traits fit 16 bits.) */
#define TBN_SIZE_(NAME, code, size, traits, kernel) [code] = (size),
#define TBN_TRAITS_(NAME, code, size, traits, kernel) [code] = (uint16_t)(traits),
static const TBN_ROM uint8_t op_sizes[TBN_OP_MAX + 1] = {TBN_OP_LIST(TBN_SIZE_)};
static const TBN_ROM uint16_t op_traits[TBN_OP_MAX + 1] = {TBN_OP_LIST(TBN_TRAITS_)};
#undef TBN_SIZE_
#undef TBN_TRAITS_

int tbn_decode_op(const TBN_ROM uint8_t *p, uint32_t avail, tbn_op *op) {
    memset(op, 0, sizeof *op);
    if (avail < 2) return 0;
    op->opcode = p[0];
    op->act = p[1];
    op->scale = op->bias = op->scratch = op->table = TBN_NONE_ID;
    op->kh = op->kw = op->sh = op->sw = op->dh = op->dw = 1;
    op->groups = 1;
    uint8_t size = op->opcode <= TBN_OP_MAX ? op_sizes[op->opcode] : 0u;
    if (!size || avail < size) return 0;
    op->size = size;
    op->traits = op_traits[op->opcode];
    switch (op->opcode) { /* the ops built in, each read by its own generated layout (tbn_format.h) */
#define TBN_FIELD(name, off, bytes) \
    op->name = (bytes) == 1 ? p[off] : (bytes) == 2 ? tbn_rd16(p + (off)) : tbn_rd32(p + (off));
#define TBN_DECODE(NAME, code, size_, traits_, kernel) \
    case code:                                           \
        if (TBN_BUILT(code)) { TBN_OP_##NAME##_FIELDS(TBN_FIELD) } /* else check_op refuses */ \
        break;
        TBN_OP_LIST(TBN_DECODE)
#undef TBN_DECODE
#undef TBN_FIELD
    default: break;
    }
    if (op->traits & TBN_TRAIT_TWO_INPUTS) op->input = op->a;
    return 1;
}

/* ---- validation ------------------------------------------------------------------------- */

#define FAIL(code, item) do { m->error_item = (uint32_t)(item); return (code); } while (0)

static int finite_f32(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return ((u >> 23) & 0xFFu) != 0xFFu;
}

static tbn_status check_blob(const tbn_model *m, uint32_t data_start, uint32_t offset, uint64_t nbytes) {
    if (offset % 4 || offset < data_start || (uint64_t)offset + nbytes > m->size) return TBN_ERR_CONST;
    return TBN_OK;
}

/* Each value of one vector: REQUANT shifts in [0, 62], RQ16 shifts in [0, 31] and multipliers
 * within +-TBN_RQ16_MAX_MULT, floats finite. */
static int vector_values_ok(const TBN_ROM uint8_t *v, uint32_t count, uint8_t dtype) {
    uint32_t size = tbn_dtype_size(dtype);
    if (dtype == TBN_DTYPE_RQ16) {
        if (v[TBN_RQ16_PRE_SHIFT] > TBN_RQ16_MAX_SHIFT || v[TBN_RQ16_SHIFT] > TBN_RQ16_MAX_SHIFT ||
            tbn_rd16(v + TBN_RQ16_RESERVED))
            return 0;
        v += TBN_RQ16_HEADER_SIZE;
    }
    for (uint32_t j = 0; j < count; j++, v += size) {
        if (dtype == TBN_DTYPE_RQ16) {
            if ((int16_t)tbn_rd16(v) < -TBN_RQ16_MAX_MULT) return 0;
        } else if (dtype == TBN_DTYPE_REQUANT) {
            int32_t shift = tbn_rds32(v + 4);
            if (shift < 0 || shift > 62) return 0;
        } else if (dtype == TBN_DTYPE_F32 && !finite_f32(tbn_rdf32(v))) {
            return 0;
        } else if (dtype == TBN_DTYPE_F16 && ((tbn_rd16(v) >> 10) & 0x1Fu) == 0x1Fu) {
            return 0;
        }
    }
    return 1;
}

static tbn_status check_vectors(tbn_model *m, uint32_t table, uint16_t n, uint32_t data_start, uint32_t dtypes) {
    for (uint32_t i = 0; i < n; i++) {
        const TBN_ROM uint8_t *e = m->data + table + i * TBN_VECTOR_ENTRY_SIZE;
        uint32_t offset = tbn_rd32(e + TBN_VECTOR_OFFSET), count = tbn_rd16(e + TBN_VECTOR_COUNT);
        uint8_t dtype = e[TBN_VECTOR_DTYPE];
        if (!TBN_DTYPE_IN(dtype, dtypes)) FAIL(dtype > TBN_DTYPE_MAX ? TBN_ERR_OPCODE : TBN_ERR_CONST, i);
        if (dtype == TBN_DTYPE_REQUANT && !TBN_BUILD_REQUANT) FAIL(TBN_ERR_NOT_BUILT, i);
        if (count == 0 || e[TBN_VECTOR_RESERVED]) FAIL(TBN_ERR_CONST, i);
        if (check_blob(m, data_start, offset, tbn_vector_nbytes(dtype, count)) != TBN_OK ||
            !vector_values_ok(m->data + offset, count, dtype))
            FAIL(TBN_ERR_CONST, i);
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

/* An input and an output that overlap, unless an elementwise op may write over its input's exact slot. */
static int clashes(const tbn_tensor *in, const tbn_tensor *out, int in_place) {
    if (in_place && in->offset == out->offset && in->nbytes == out->nbytes) return 0;
    return overlaps(in, out);
}

/* Operand ids in range for what the op's traits say it has, and read only once written. */
static tbn_status check_operands(const tbn_model *m, const tbn_op *op, uint32_t index, int int8) {
    uint32_t t = op->traits;
    uint16_t reads[2] = {op->input, (t & TBN_TRAIT_TWO_INPUTS) ? op->b : op->input};
    int scale_optional = (t & TBN_TRAIT_SCALE_OPTIONAL_F32) && !int8;
    if (op->output >= m->n_tensors || reads[0] >= m->n_tensors || reads[1] >= m->n_tensors)
        return TBN_ERR_OPERAND;
    if (((t & TBN_TRAIT_TILED) && op->tile >= m->n_tiles) || ((t & TBN_TRAIT_DENSE) && op->weight >= m->n_dense))
        return TBN_ERR_OPERAND;
    if ((t & TBN_TRAIT_SCALE) && op->scale >= m->n_scales && !(scale_optional && op->scale == TBN_NONE_ID))
        return TBN_ERR_OPERAND;
    if ((t & TBN_TRAIT_BIAS) && op->bias != TBN_NONE_ID && op->bias >= m->n_biases) return TBN_ERR_OPERAND;
    if (TBN_BUILT_TRAIT(TABLE) && (t & TBN_TRAIT_TABLE) && op->table != TBN_NONE_ID && op->table >= m->n_dense)
        return TBN_ERR_OPERAND;
    for (int r = 0; r < 2; r++)
        if (producer(m, reads[r], index) < 0) return TBN_ERR_OPERAND;
    if (op->output == 0 || producer(m, op->output, index) >= 0) return TBN_ERR_OPERAND;
    /* scratch: working memory that no op writes as an output, so that none can read it */
    if (op->scratch != TBN_NONE_ID &&
        (op->scratch >= m->n_tensors || op->scratch == 0 || producer(m, op->scratch, m->n_ops) >= 0))
        return TBN_ERR_OPERAND;
    return TBN_OK;
}

/* What holds for every op (traits, arena, dtypes, quantisation), then its kernel's prepare. */
static tbn_status check_op(tbn_model *m, const tbn_op *op, uint32_t index) {
    int int8 = tbn_int8(m);
    uint32_t t = op->traits;
    if (!TBN_BUILT(op->opcode)) FAIL(TBN_ERR_NOT_BUILT, index); /* decoded no further */
    if (op->act > TBN_ACT_RELU6) FAIL(TBN_ERR_OPCODE, index);
    if (op->act != TBN_ACT_NONE && !(t & TBN_TRAIT_FUSABLE) && op->opcode != TBN_OP_ACTIVATION)
        FAIL(TBN_ERR_SHAPE, index);
    if (int8 && (t & TBN_TRAIT_F32_ONLY)) FAIL(TBN_ERR_SHAPE, index);
    tbn_status s = check_operands(m, op, index, int8);
    if (s != TBN_OK) FAIL(s, index);

    tbn_io io;
    io.int8 = int8;
    tbn_get_tensor(m, op->input, &io.in);
    tbn_get_tensor(m, (t & TBN_TRAIT_TWO_INPUTS) ? op->b : op->input, &io.b);
    tbn_get_tensor(m, op->output, &io.out);
    int alias = op->opcode == TBN_OP_RESHAPE && io.in.offset == io.out.offset; /* a free reshape */
    int in_place = (m->flags & TBN_FLAG_IN_PLACE) && (t & TBN_TRAIT_IN_PLACE); /* over an exact slot */
    if (!alias && (clashes(&io.in, &io.out, in_place) || clashes(&io.b, &io.out, in_place)))
        FAIL(TBN_ERR_ARENA_PLAN, index);
    io.has_scratch = op->scratch != TBN_NONE_ID;
    if (io.has_scratch) {
        tbn_get_tensor(m, op->scratch, &io.scratch);
        if (overlaps(&io.scratch, &io.in) || overlaps(&io.scratch, &io.b) || overlaps(&io.scratch, &io.out))
            FAIL(TBN_ERR_ARENA_PLAN, index);
    }
    if (op->opcode != TBN_OP_ARGMAX && io.out.dtype != io.in.dtype) FAIL(TBN_ERR_SHAPE, index);
    if (int8 && (t & TBN_TRAIT_SAME_QUANT) &&
        (memcmp(&io.in.scale, &io.out.scale, sizeof io.in.scale) || io.in.zero_point != io.out.zero_point))
        FAIL(TBN_ERR_SHAPE, index);

    switch (op->opcode) {
#define TBN_PREPARE(NAME, code, size, traits, kernel) \
    case code: s = TBN_BUILT(code) ? tbn_prepare_##kernel(m, op, &io) : TBN_ERR_NOT_BUILT; break;
        TBN_OP_LIST(TBN_PREPARE)
#undef TBN_PREPARE
    default: s = TBN_ERR_OPCODE; break;
    }
    if (s != TBN_OK) FAIL(s, index);
    return TBN_OK;
}

/* The header's fields, and the table offsets they imply (sizes checked against the file). */
static tbn_status read_header(tbn_model *m, const TBN_ROM uint8_t *p, size_t size) {
    if (size < TBN_HEADER_SIZE) return TBN_ERR_TRUNCATED;
#if SIZE_MAX > 0xFFFFFFFFu
    if (size > 0xFFFFFFFFu) return TBN_ERR_TRUNCATED;
#endif
    for (int i = 0; i < 4; i++)
        if (p[TBN_HDR_MAGIC + i] != (uint8_t)TBN_MAGIC[i]) return TBN_ERR_MAGIC;
    if (tbn_rd16(p + TBN_HDR_MAJOR) != TBN_VERSION_MAJOR) return TBN_ERR_VERSION;
    m->minor = tbn_rd16(p + TBN_HDR_MINOR);
    m->size = tbn_rd32(p + TBN_HDR_FILE_SIZE);
    if (m->size != size) return TBN_ERR_TRUNCATED;
    if (tbn_crc32(p + TBN_CRC_START, m->size - TBN_CRC_START) != tbn_rd32(p + TBN_HDR_CRC32)) return TBN_ERR_CRC;
    m->flags = tbn_rd32(p + TBN_HDR_FLAGS);
    if (m->flags & TBN_REQUIRED_FLAGS_MASK & ~TBN_KNOWN_FLAGS) return TBN_ERR_FLAGS;
    if ((m->flags & TBN_FLAG_INT8) ? !TBN_BUILD_INT8 : !TBN_BUILD_F32) return TBN_ERR_NOT_BUILT;
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
    return TBN_OK;
}

static tbn_status check_tensors(tbn_model *m) {
    int int8 = (m->flags & TBN_FLAG_INT8) != 0;
    uint8_t act = int8 ? TBN_DTYPE_I8 : TBN_DTYPE_F32;
    for (uint32_t i = 0; i < m->n_tensors; i++) {
        const TBN_ROM uint8_t *e = m->data + m->off_tensors + i * TBN_TENSOR_ENTRY_SIZE;
        uint8_t dtype = e[TBN_TENSOR_DTYPE], ndim = e[TBN_TENSOR_NDIM];
        if (dtype != act && dtype != TBN_DTYPE_I32) FAIL(dtype > TBN_DTYPE_MAX ? TBN_ERR_OPCODE : TBN_ERR_TENSOR, i);
        if (i == 0 && dtype != act) FAIL(TBN_ERR_TENSOR, i);
        if (ndim < 1 || ndim > TBN_MAX_DIMS || tbn_rd16(e + TBN_TENSOR_RESERVED)) FAIL(TBN_ERR_TENSOR, i);
        uint64_t numel = 1;
        for (int d = 0; d < TBN_MAX_DIMS; d++) {
            uint16_t dim = tbn_rd16(e + TBN_TENSOR_DIMS + 2 * d);
            if ((d < ndim) ? dim == 0 : dim != 0) FAIL(TBN_ERR_TENSOR, i);
            if (d < ndim) numel *= dim;
        }
        const TBN_ROM uint8_t *a = m->data + m->off_arena + i * TBN_ARENA_ENTRY_SIZE;
        uint32_t offset = tbn_rd32(a + TBN_ARENA_OFFSET), nbytes = tbn_rd32(a + TBN_ARENA_SIZE);
        if (numel * tbn_dtype_size(dtype) != nbytes || offset % 4 || (uint64_t)offset + nbytes > m->arena_size)
            FAIL(TBN_ERR_ARENA_PLAN, i);
        if (int8 && dtype == TBN_DTYPE_I8) {
            tbn_tensor t;
            tbn_get_tensor(m, i, &t);
            if (!finite_f32(t.scale) || !(t.scale > 0.0f) || t.zero_point < t.qmin || t.zero_point > 127 ||
                t.qmin > t.qmax)
                FAIL(TBN_ERR_QUANT, i);
        }
    }
    return TBN_OK;
}

/* Tiles, scales, biases and dense weights: entries well formed, data inside the data region. */
static tbn_status check_constants(tbn_model *m, uint32_t data_start) {
    for (uint32_t i = 0; i < m->n_tiles; i++) {
        const TBN_ROM uint8_t *e = m->data + m->off_tiles + i * TBN_TILE_ENTRY_SIZE;
        uint32_t n_bits = tbn_rd32(e + TBN_TILE_N_BITS);
        if (n_bits == 0 ||
            check_blob(m, data_start, tbn_rd32(e + TBN_TILE_OFFSET), 4 * (((uint64_t)n_bits + 31) / 32)) != TBN_OK)
            FAIL(TBN_ERR_CONST, i);
    }
    tbn_status s = check_vectors(m, m->off_scales, m->n_scales, data_start, TBN_SCALE_DTYPES);
    if (s != TBN_OK) return s;
    s = check_vectors(m, m->off_biases, m->n_biases, data_start, TBN_BIAS_DTYPES);
    if (s != TBN_OK) return s;
    for (uint32_t i = 0; i < m->n_dense; i++) {
        const TBN_ROM uint8_t *e = m->data + m->off_dense + i * TBN_DENSE_ENTRY_SIZE;
        uint32_t count = tbn_rd32(e + TBN_DENSE_COUNT);
        if (count == 0 || check_blob(m, data_start, tbn_rd32(e + TBN_DENSE_OFFSET), count) != TBN_OK)
            FAIL(TBN_ERR_CONST, i);
    }
    return TBN_OK;
}

static tbn_status check_ops(tbn_model *m) {
    uint32_t at = m->off_ops, end = m->off_ops + m->ops_size;
    for (uint32_t i = 0; i < m->n_ops; i++) {
        tbn_op op;
        if (!tbn_decode_op(m->data + at, end - at, &op)) {
            if (end - at < 2 || (m->data[at] <= TBN_OP_MAX && op_sizes[m->data[at]])) /* a known op cut short */
                FAIL(TBN_ERR_TRUNCATED, i);
            FAIL(TBN_ERR_OPCODE, i);
        }
        tbn_status s = check_op(m, &op, i);
        if (s != TBN_OK) return s;
        at += op.size;
        m->output = op.output;
    }
    return at == end ? TBN_OK : TBN_ERR_TRUNCATED;
}

tbn_status tbn_model_init(tbn_model *m, const TBN_ROM void *data, size_t size) {
    if (!m || !data || !tbn_aligned4(data)) return TBN_ERR_ARG;
    memset(m, 0, sizeof *m);
    m->data = (const TBN_ROM uint8_t *)data;
    tbn_status s = read_header(m, m->data, size);
    if (s == TBN_OK) s = check_tensors(m);
    if (s == TBN_OK) s = check_constants(m, m->off_ops + m->ops_size);
    if (s == TBN_OK) s = check_ops(m);
    return s;
}

uint32_t tbn_arena_size(const tbn_model *m) { return m->arena_size; }
int tbn_is_int8(const tbn_model *m) { return tbn_int8(m); }
uint32_t tbn_op_count(const tbn_model *m) { return m->n_ops; }

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

static void io_info(const tbn_model *m, uint32_t id, tbn_io_info *info) {
    tbn_tensor t;
    tbn_get_tensor(m, id, &t);
    info->dtype = t.dtype;
    info->ndim = t.ndim;
    memcpy(info->dims, t.dims, sizeof info->dims);
    info->numel = t.numel;
    info->nbytes = t.nbytes;
    info->scale = t.scale;
    info->zero_point = t.zero_point;
}

void tbn_input_info(const tbn_model *m, tbn_io_info *info) { io_info(m, 0, info); }

void tbn_output_info(const tbn_model *m, tbn_io_info *info) { io_info(m, m->output, info); }

/* rint() in the default rounding mode, without libm: |v| < 2^23 here, so v - trunc(v) is exact. */
static int32_t round_half_even(float v) {
    int32_t i = (int32_t)v;
    float frac = v - (float)i;
    if (frac > 0.5f || (frac == 0.5f && (i & 1))) i++;
    else if (frac < -0.5f || (frac == -0.5f && (i & 1))) i--;
    return i;
}

int32_t tbn_quantize(const tbn_io_info *info, const float *x, int8_t *q, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        float v = x[i] / info->scale;
        if (!(v - v == 0.0f)) return (int32_t)i; /* NaN or infinite (x, or x / scale) */
        if (v > 1e6f) v = 1e6f; /* far outside int8 either way; keeps the int conversion defined */
        if (v < -1e6f) v = -1e6f;
        int32_t r = round_half_even(v) + info->zero_point;
        q[i] = (int8_t)(r < -128 ? -128 : r > 127 ? 127 : r);
    }
    return -1;
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
