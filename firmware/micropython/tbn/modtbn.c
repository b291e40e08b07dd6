/* MicroPython's `tbn` module: the C runtime (firmware/lib/tbn) behind a small Python API.
 *
 *   m = tbn.Model(buffer, arena=None)  # validates in place; keeps a reference, copies nothing
 *   m.info()                           # dict: input/output shape and dtype, arena, version...
 *   y = m.predict(x, out=None)         # x: array('f') | array('b') | bytes; y: array
 *
 * One source, two builds: a user C module (micropython.mk / micropython.cmake: the module is
 * part of the firmware) and a dynamic native module (natmod/Makefile: a .mpy per architecture),
 * told apart by MICROPY_ENABLE_DYNRUNTIME. Every refusal is a ValueError with the runtime's
 * own message; nothing the caller passes can make the runtime read or write out of bounds. */
#if MICROPY_ENABLE_DYNRUNTIME
#include "py/dynruntime.h"
#else
#include "py/obj.h"
#include "py/objarray.h"
#include "py/runtime.h"
#endif

#include "tbn.h"

typedef struct {
    mp_obj_base_t base;
    mp_obj_t buffer; /* the model's bytes: kept alive while the model is */
    mp_obj_t arena_obj; /* a caller's bytearray, or None: then `arena` is ours, from the GC heap */
    uint32_t *arena;
    size_t arena_bytes;
    tbn_model model;
    tbn_io_info in, out;
} tbn_model_obj_t;

/* ---- messages with numbers (mp_raise_msg wants a constant string) ---------------------- */

typedef struct {
    char text[160];
    size_t len;
} msg_t;

static void msg_str(msg_t *m, const char *s) {
    while (*s && m->len < sizeof m->text - 1) m->text[m->len++] = *s++;
}

static void msg_uint(msg_t *m, uint32_t v) {
    char digits[10];
    int n = 0;
    do { digits[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n && m->len < sizeof m->text - 1) m->text[m->len++] = digits[--n];
}

static MP_NORETURN void raise_msg(msg_t *m) {
    mp_raise_type_arg(&mp_type_ValueError, mp_obj_new_str(m->text, m->len));
}

static MP_NORETURN void raise_status(const char *what, tbn_status s, const tbn_model *model) {
    /* what = "bad model" or "inference failed" */
    msg_t m = {{0}, 0};
    msg_str(&m, what);
    msg_str(&m, ": ");
    msg_str(&m, tbn_strerror(s));
    if (s >= TBN_ERR_TENSOR && s <= TBN_ERR_SHAPE) { /* the tensor, entry or op it concerns */
        msg_str(&m, " (item ");
        msg_uint(&m, model->error_item);
        msg_str(&m, ")");
    }
    raise_msg(&m);
}

/* ---- Model(buffer, arena=None) ------------------------------------------------------------ */

static mp_obj_t model_make_new(const mp_obj_type_t *type, size_t n_args, size_t n_kw, const mp_obj_t *args) {
    mp_arg_check_num(n_args, n_kw, 1, 2, false);
    mp_buffer_info_t model_buf;
    mp_get_buffer_raise(args[0], &model_buf, MP_BUFFER_READ);
    tbn_model_obj_t *self = mp_obj_malloc(tbn_model_obj_t, type);
    self->buffer = args[0];
    self->arena_obj = mp_const_none;
    self->arena = NULL;
    if ((uintptr_t)model_buf.buf & 3u) {
        mp_raise_ValueError(MP_ERROR_TEXT("bad model: its bytes must be 4-byte aligned (read it into a bytearray, "
                            "or store it aligned in ROMFS)"));
    }
    tbn_status s = tbn_model_init(&self->model, model_buf.buf, model_buf.len);
    if (s != TBN_OK) raise_status("bad model", s, &self->model);
    tbn_input_info(&self->model, &self->in);
    tbn_output_info(&self->model, &self->out);
    size_t need = tbn_arena_size(&self->model);
    if (n_args > 1 && args[1] != mp_const_none) {
        mp_buffer_info_t arena_buf;
        mp_get_buffer_raise(args[1], &arena_buf, MP_BUFFER_RW);
        if (arena_buf.len < need || ((uintptr_t)arena_buf.buf & 3u)) {
            msg_t m = {{0}, 0};
            msg_str(&m, "arena too small or misaligned: the model needs ");
            msg_uint(&m, (uint32_t)need);
            msg_str(&m, " bytes, 4-byte aligned; got ");
            msg_uint(&m, (uint32_t)arena_buf.len);
            raise_msg(&m);
        }
        self->arena_obj = args[1];
        self->arena = (uint32_t *)arena_buf.buf;
        self->arena_bytes = arena_buf.len;
    } else {
        self->arena_bytes = (need + 3u) & ~(size_t)3u;
        self->arena = (uint32_t *)m_malloc(self->arena_bytes ? self->arena_bytes : 4u);
    }
    return MP_OBJ_FROM_PTR(self);
}

/* ---- info() ---------------------------------------------------------------------------------- */

static const char *dtype_name(uint8_t dtype) {
    switch (dtype) {
        case TBN_DTYPE_F32: return "f32";
        case TBN_DTYPE_I8: return "int8";
        case TBN_DTYPE_I32: return "int32";
        default: return "?";
    }
}

static void store(mp_obj_t d, const char *key, mp_obj_t value) {
    size_t n = 0;
    while (key[n]) n++;
    mp_obj_dict_store(d, mp_obj_new_str(key, n), value);
}

static mp_obj_t shape_of(const tbn_io_info *t) {
    mp_obj_t dims[TBN_MAX_DIMS];
    for (uint8_t i = 0; i < t->ndim; i++) dims[i] = mp_obj_new_int(t->dims[i]);
    return mp_obj_new_tuple(t->ndim, dims);
}

static mp_obj_t str_obj(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return mp_obj_new_str(s, n);
}

static mp_obj_t model_info(mp_obj_t self_in) {
    tbn_model_obj_t *self = MP_OBJ_TO_PTR(self_in);
    mp_obj_t d = mp_obj_new_dict(0);
    store(d, "input_shape", shape_of(&self->in));
    store(d, "input_dtype", str_obj(dtype_name(self->in.dtype)));
    store(d, "output_shape", shape_of(&self->out));
    store(d, "output_dtype", str_obj(dtype_name(self->out.dtype)));
    store(d, "arena_bytes", mp_obj_new_int(tbn_arena_size(&self->model)));
    store(d, "model_bytes", mp_obj_new_int(self->model.size));
    store(d, "ops", mp_obj_new_int(tbn_op_count(&self->model)));
    mp_obj_t version[2] = {mp_obj_new_int(TBN_VERSION_MAJOR), mp_obj_new_int(self->model.minor)};
    store(d, "version", mp_obj_new_tuple(2, version));
    if (tbn_is_int8(&self->model)) {
        mp_obj_t in_q[2] = {mp_obj_new_float(self->in.scale), mp_obj_new_int(self->in.zero_point)};
        mp_obj_t out_q[2] = {mp_obj_new_float(self->out.scale), mp_obj_new_int(self->out.zero_point)};
        store(d, "input_quant", mp_obj_new_tuple(2, in_q));
        store(d, "output_quant", mp_obj_new_tuple(2, out_q));
    }
    return d;
}
static MP_DEFINE_CONST_FUN_OBJ_1(model_info_obj, model_info);

/* ---- predict(x, out=None) ----------------------------------------------------------------- */

static MP_NORETURN void raise_size(const char *what, uint32_t got, const tbn_io_info *t, const char *unit) {
    msg_t m = {{0}, 0};
    msg_str(&m, what);
    msg_str(&m, " has ");
    msg_uint(&m, got);
    msg_str(&m, unit);
    msg_str(&m, ", the model's has ");
    msg_uint(&m, unit[1] == 'v' ? t->numel : t->nbytes);
    msg_str(&m, unit);
    raise_msg(&m);
}

static MP_NORETURN void raise_not_finite(uint32_t index) {
    msg_t m = {{0}, 0};
    msg_str(&m, "the input holds NaN or infinity at index ");
    msg_uint(&m, index);
    raise_msg(&m);
}

/* Copy n float32 values, refusing NaN and infinity (all exponent bits set). Four at a time,
 * with one test each: x = exponent bits not set is 0 only for NaN and infinity, and x - 1
 * then borrows into bit 31, so or-ing four of them flags any such value in the group. */
static void copy_finite(void *dst, const void *src, uint32_t n) {
    const uint32_t exp = 0x7F800000u;
    const uint8_t *s = (const uint8_t *)src;
    uint32_t *d = (uint32_t *)dst; /* the arena's input slot: 4-aligned */
    uint32_t i = 0;
    if (((uintptr_t)src & 3u) == 0) { /* arrays are aligned: whole words */
        const uint32_t *w = (const uint32_t *)src;
        for (; i + 4 <= n; i += 4) {
            uint32_t a = w[i], b = w[i + 1], c = w[i + 2], e = w[i + 3];
            if ((((exp & ~a) - 1u) | ((exp & ~b) - 1u) | ((exp & ~c) - 1u) | ((exp & ~e) - 1u)) >> 31) break;
            d[i] = a;
            d[i + 1] = b;
            d[i + 2] = c;
            d[i + 3] = e;
        }
    }
    for (; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, s + 4 * i, 4);
        if ((bits & exp) == exp) raise_not_finite(i);
        d[i] = bits;
    }
}

/* Put x into the arena's input slot: float values (quantised for an INT8 model), int8 values
 * for an INT8 model, or raw bytes of exactly the input's size. */
static void load_input(tbn_model_obj_t *self, mp_obj_t x) {
    mp_buffer_info_t b;
    mp_get_buffer_raise(x, &b, MP_BUFFER_READ);
    void *dst = tbn_input_ptr(&self->model, self->arena);
    const tbn_io_info *in = &self->in;
    if (b.typecode == 'f') {
        uint32_t n = (uint32_t)(b.len / sizeof(float));
        if (n != in->numel) raise_size("the input", n, in, " values");
        const float *v = (const float *)b.buf;
        if (in->dtype == TBN_DTYPE_I8) {
            int32_t bad = tbn_quantize(in, v, (int8_t *)dst, n);
            if (bad >= 0) raise_not_finite((uint32_t)bad);
            return;
        }
        copy_finite(dst, v, n);
    } else if (b.typecode == 'b' && in->dtype == TBN_DTYPE_I8) {
        if (b.len != in->numel) raise_size("the input", (uint32_t)b.len, in, " values");
        memcpy(dst, b.buf, in->nbytes);
    } else if (b.typecode == 'B' || (b.typecode == 'b' && in->dtype != TBN_DTYPE_I8)) {
        if (b.typecode == 'b') mp_raise_ValueError(MP_ERROR_TEXT("int8 input for an f32 model: pass array('f')"));
        if (b.len != in->nbytes) raise_size("the input", (uint32_t)b.len, in, " bytes");
        if (in->dtype == TBN_DTYPE_F32) copy_finite(dst, b.buf, in->numel);
        else memcpy(dst, b.buf, in->nbytes);
    } else {
        mp_raise_ValueError(MP_ERROR_TEXT("the input must be array('f'), array('b') (int8 models) or bytes"));
    }
}

static char out_typecode(const tbn_io_info *t) {
    return t->dtype == TBN_DTYPE_F32 ? 'f' : t->dtype == TBN_DTYPE_I8 ? 'b' : 'i';
}

static mp_obj_t new_array(char typecode, const void *data, size_t n_bytes) {
    mp_obj_t array_mod = mp_import_name(MP_QSTR_array, mp_const_none, MP_OBJ_NEW_SMALL_INT(0));
    mp_obj_t array_cls = mp_load_attr(array_mod, MP_QSTR_array);
    char tc[1] = {typecode};
    mp_obj_t args[2] = {mp_obj_new_str(tc, 1), mp_obj_new_bytes((const byte *)data, n_bytes)};
    return mp_call_function_n_kw(array_cls, 2, 0, args);
}

static mp_obj_t model_predict(size_t n_args, const mp_obj_t *args) {
    tbn_model_obj_t *self = MP_OBJ_TO_PTR(args[0]);
    load_input(self, args[1]);
    tbn_status s = tbn_invoke(&self->model, self->arena, self->arena_bytes);
    if (s != TBN_OK) raise_status("inference failed", s, &self->model);
    const void *y = tbn_output_ptr(&self->model, self->arena);
    if (n_args < 3 || args[2] == mp_const_none) return new_array(out_typecode(&self->out), y, self->out.nbytes);
    mp_buffer_info_t o;
    mp_get_buffer_raise(args[2], &o, MP_BUFFER_WRITE);
    if (o.typecode != out_typecode(&self->out) || o.len != self->out.nbytes) {
        msg_t m = {{0}, 0};
        msg_str(&m, "out= must be array('");
        char tc[2] = {out_typecode(&self->out), 0};
        msg_str(&m, tc);
        msg_str(&m, "') of ");
        msg_uint(&m, self->out.numel);
        msg_str(&m, " values");
        raise_msg(&m);
    }
    memcpy(o.buf, y, self->out.nbytes);
    return args[2];
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(model_predict_obj, 2, 3, model_predict);

/* ---- the type and the module, each way ------------------------------------------------------ */

#if MICROPY_ENABLE_DYNRUNTIME

/* The runtime's few libc calls, served by MicroPython's own (a native module links no libc,
 * except on RISC-V, where LINK_RUNTIME brings picolibc's: natmod/Makefile sets TBN_NATMOD_LIBC). */
#if !TBN_NATMOD_LIBC
void *memcpy(void *dst, const void *src, size_t n) { return mp_fun_table.memmove_(dst, src, n); }
void *memmove(void *dst, const void *src, size_t n) { return mp_fun_table.memmove_(dst, src, n); }
void *memset(void *s, int c, size_t n) { return mp_fun_table.memset_(s, c, n); }
size_t strlen(const char *s) {
    size_t n = 0;
    while (s[n]) n++; /* not turned back into a strlen call: natmod/Makefile says so */
    return n;
}
int memcmp(const void *a, const void *b, size_t n) {
    const unsigned char *x = a, *y = b;
    for (size_t i = 0; i < n; i++) if (x[i] != y[i]) return x[i] - y[i];
    return 0;
}
#endif

mp_obj_full_type_t tbn_type_model;
mp_map_elem_t tbn_model_locals_table[2];
static MP_DEFINE_CONST_DICT(tbn_model_locals, tbn_model_locals_table);

/* A .mpy of the wrong float ABI (armv7m's soft float on a hard-float firmware) loads, then
 * passes floats in the wrong registers: refuse to import instead of returning wrong numbers. */
static void check_float_abi(void) {
    mp_obj_t text = mp_obj_new_str("1.5", 3);
    mp_obj_t one_and_half = mp_call_function_n_kw(mp_load_global(MP_QSTR_float), 1, 0, &text);
    if (mp_obj_get_float(one_and_half) != (mp_float_t)1.5) {
        mp_raise_msg((mp_obj_type_t *)mp_load_global(MP_QSTR_ImportError), MP_ERROR_TEXT("this tbn.mpy was built for another float ABI: "
                                                         "install the one for sys.implementation._mpy"));
    }
}

mp_obj_t mpy_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY
    check_float_abi();
    tbn_type_model.base.type = (void *)&mp_type_type;
    tbn_type_model.flags = MP_TYPE_FLAG_NONE;
    tbn_type_model.name = MP_QSTR_Model;
    MP_OBJ_TYPE_SET_SLOT(&tbn_type_model, make_new, model_make_new, 0);
    tbn_model_locals_table[0] = (mp_map_elem_t){MP_OBJ_NEW_QSTR(MP_QSTR_info), MP_OBJ_FROM_PTR(&model_info_obj)};
    tbn_model_locals_table[1] = (mp_map_elem_t){MP_OBJ_NEW_QSTR(MP_QSTR_predict), MP_OBJ_FROM_PTR(&model_predict_obj)};
    MP_OBJ_TYPE_SET_SLOT(&tbn_type_model, locals_dict, (void *)&tbn_model_locals, 1);
    mp_store_global(MP_QSTR_Model, MP_OBJ_FROM_PTR(&tbn_type_model));
    mp_store_global(MP_QSTR_FORMAT_MAJOR, MP_OBJ_NEW_SMALL_INT(TBN_VERSION_MAJOR));
    mp_store_global(MP_QSTR_FORMAT_MINOR, MP_OBJ_NEW_SMALL_INT(TBN_VERSION_MINOR));
    MP_DYNRUNTIME_INIT_EXIT
}

#else

static const mp_rom_map_elem_t tbn_model_locals_table[] = {
    {MP_ROM_QSTR(MP_QSTR_info), MP_ROM_PTR(&model_info_obj)},
    {MP_ROM_QSTR(MP_QSTR_predict), MP_ROM_PTR(&model_predict_obj)},
};
static MP_DEFINE_CONST_DICT(tbn_model_locals, tbn_model_locals_table);

MP_DEFINE_CONST_OBJ_TYPE(tbn_type_model, MP_QSTR_Model, MP_TYPE_FLAG_NONE, make_new, model_make_new,
                         locals_dict, &tbn_model_locals);

static const mp_rom_map_elem_t tbn_module_globals_table[] = {
    {MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_tbn)},
    {MP_ROM_QSTR(MP_QSTR_Model), MP_ROM_PTR(&tbn_type_model)},
    {MP_ROM_QSTR(MP_QSTR_FORMAT_MAJOR), MP_ROM_INT(TBN_VERSION_MAJOR)},
    {MP_ROM_QSTR(MP_QSTR_FORMAT_MINOR), MP_ROM_INT(TBN_VERSION_MINOR)},
};
static MP_DEFINE_CONST_DICT(tbn_module_globals, tbn_module_globals_table);

const mp_obj_module_t tbn_user_cmodule = {
    .base = {&mp_type_module},
    .globals = (mp_obj_dict_t *)&tbn_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR_tbn, tbn_user_cmodule);

#endif
