/* Internal helpers shared by the loader, the interpreter and the kernels. */
#ifndef TBN_INTERNAL_H
#define TBN_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "tbn.h"

/* What this build runs, TFLite Micro's op resolver decided at compile time: TBN_BUILD_OPS is a
 * mask of opcodes (bit n: opcode n), TBN_BUILD_F32 and TBN_BUILD_INT8 the activation types,
 * TBN_BUILD_TABLES the lookup-table kernel of tiled ops (ops with scratch), TBN_BUILD_TOKENS
 * linear ops over tokens (an output of more than one axis), TBN_BUILD_REQUANT the wide INT8
 * rescaling (REQUANT vectors: 64-bit products, about 800 bytes of AVR code beside RQ16).
 * Firmware for a small board passes its one model's (tbn-flash --model-ops); the compiler
 * folds the other paths away and the linker drops every kernel nothing calls. A model that
 * needs more is refused at load: TBN_ERR_NOT_BUILT. By default everything is built. */
#ifndef TBN_BUILD_OPS
#define TBN_BUILD_OPS 0xFFFFFFFFu
#endif
#ifndef TBN_BUILD_F32
#define TBN_BUILD_F32 1
#endif
#ifndef TBN_BUILD_INT8
#define TBN_BUILD_INT8 1
#endif
#ifndef TBN_BUILD_TABLES
#define TBN_BUILD_TABLES 1
#endif
#ifndef TBN_BUILD_TOKENS
#define TBN_BUILD_TOKENS 1
#endif
#ifndef TBN_BUILD_REQUANT
#define TBN_BUILD_REQUANT 1
#endif
#if !TBN_BUILD_F32 && !TBN_BUILD_INT8
#error "TBN_BUILD_F32 and TBN_BUILD_INT8 are both 0: the runtime would run nothing"
#endif
#define TBN_BUILT(opcode) (((uint32_t)(TBN_BUILD_OPS) >> (opcode)) & 1u)
/* Whether any op built in has the trait (TBN_OPS_<TRAIT>, tbn_format.h): a constant. */
#define TBN_BUILT_TRAIT(NAME) (((uint32_t)(TBN_BUILD_OPS) & TBN_OPS_##NAME) != 0u)
/* "The model's activations are int8", a constant where the build has one type only. */
#define TBN_INT8(flag) (TBN_BUILD_F32 ? (TBN_BUILD_INT8 ? (flag) : 0) : 1)
static inline int tbn_int8(const tbn_model *m) { return TBN_INT8((m->flags & TBN_FLAG_INT8) != 0); }

/* Little-endian loads from byte pointers. On a little-endian target memcpy compiles to one
 * (unaligned where allowed) load, where byte loads and shifts cost seven instructions. On AVR
 * a __memx load of 2 or 4 bytes is one call to libgcc's __xload_N, at any alignment (the
 * AVR build has -fno-strict-aliasing). */
#if defined(__AVR__)
static inline uint16_t tbn_rd16(const TBN_ROM uint8_t *p) { return *(const TBN_ROM uint16_t *)p; }
static inline uint32_t tbn_rd32(const TBN_ROM uint8_t *p) { return *(const TBN_ROM uint32_t *)p; }
#elif defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
static inline uint16_t tbn_rd16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline uint32_t tbn_rd32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}
#else
static inline uint16_t tbn_rd16(const TBN_ROM uint8_t *p) { return (uint16_t)(p[0] | ((uint16_t)p[1] << 8)); }
static inline uint32_t tbn_rd32(const TBN_ROM uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
#endif
/* Little-endian loads at an address aligned to their size (a tile's words, a vector's entries:
 * the loader checked their offsets): one load, where tbn_rd32 and tbn_rd16 of an address of
 * unknown alignment call memcpy on cores that trap on unaligned loads (RISC-V, Cortex-M0). */
#if defined(__GNUC__) && !defined(__AVR__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define TBN_RD_ALIGNED(T, p)                                        \
    do {                                                            \
        T v_;                                                       \
        memcpy(&v_, __builtin_assume_aligned((p), sizeof v_), sizeof v_); \
        return v_;                                                  \
    } while (0)
static inline uint32_t tbn_rd32a(const TBN_ROM uint8_t *p) { TBN_RD_ALIGNED(uint32_t, p); }
static inline uint16_t tbn_rd16a(const TBN_ROM uint8_t *p) { TBN_RD_ALIGNED(uint16_t, p); }
#undef TBN_RD_ALIGNED
#else
static inline uint32_t tbn_rd32a(const TBN_ROM uint8_t *p) { return tbn_rd32(p); }
static inline uint16_t tbn_rd16a(const TBN_ROM uint8_t *p) { return tbn_rd16(p); }
#endif
/* A model and an arena start 4-aligned (tables and tensors are laid out for 32-bit loads); AVR,
 * which loads bytes, needs no alignment (and gives uint32_t arrays none). */
static inline int tbn_aligned4(const TBN_ROM void *p) {
#if defined(__AVR__)
    (void)p;
    return 1;
#else
    return ((uintptr_t)p & 3u) == 0;
#endif
}
static inline int32_t tbn_rds32(const TBN_ROM uint8_t *p) { return (int32_t)tbn_rd32(p); }
static inline float tbn_rdf32(const TBN_ROM uint8_t *p) {
    uint32_t u = tbn_rd32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
/* An IEEE half as a float. Readers refuse non-finite halves, so this needs to be exact only
 * for finite ones: Arm FPUs convert in one instruction (VCVTB, FPv4 and later); elsewhere the
 * magnitude's bits shifted into a float's place and scaled by 2^112 rebias the exponent,
 * exactly, subnormal halves included. */
static inline float tbn_f16_to_f32(uint16_t h) {
    float f;
#if defined(__ARM_FP) && !defined(__SOFTFP__) && defined(__thumb2__) && defined(__GNUC__)
    __asm__("vcvtb.f32.f16 %0, %1" : "=t"(f) : "t"((uint32_t)h));
#else
    uint32_t u = (uint32_t)(h & 0x7FFFu) << 13;
    memcpy(&f, &u, sizeof f);
    f *= 5.192296858534828e+33f; /* 2^112 */
    memcpy(&u, &f, sizeof u);
    u |= (uint32_t)(h & 0x8000u) << 16;
    memcpy(&f, &u, sizeof f);
#endif
    return f;
}

/* Placement hints for hot kernels: GCC at -Os otherwise inlines a loop into a caller that
 * has no registers left for it, or calls a helper that belongs inside a loop. */
#if defined(__GNUC__)
#define TBN_ALWAYS_INLINE static inline __attribute__((always_inline))
#define TBN_NOINLINE __attribute__((noinline))
#else
#define TBN_ALWAYS_INLINE static inline
#define TBN_NOINLINE
#endif

/* 16-bit SIMD dot products (kernels/tbn_simd16.c), where the DSP extension's SIMD32 is: k
 * int8 values `step` apart widened to 16 bits, tap i at TBN_SLOT16(i) (each quad as (v0, v2),
 * (v1, v3), SXTB16's order) with zeros up to k4 (a multiple of 4), returning their sum; and two
 * rows' dot products with n columns so widened, `words` (even) words each and apart: a0's in s0,
 * a1's in s1. */
#if defined(__GNUC__) && defined(__ARM_FEATURE_SIMD32) && !defined(__ARM_BIG_ENDIAN) && !defined(TBN_PORTABLE)
#define TBN_SIMD16 1
#define TBN_SLOT16(i) (((i) & ~3u) | (((i) & 1u) << 1) | (((i) >> 1) & 1u))
int32_t tbn_widen16(const int8_t *x, uint32_t step, uint32_t k, uint32_t k4, int16_t *w);
void tbn_dots_2xn(const uint32_t *a0, const uint32_t *a1, const uint32_t *cols, uint32_t words, uint32_t n,
                  int32_t *s0, int32_t *s1);
#endif

/* A decoded tensor. */
typedef struct {
    uint8_t dtype, ndim;
    uint16_t dims[TBN_MAX_DIMS];
    uint32_t numel, offset, nbytes;
    float scale;
    int32_t zero_point, qmin, qmax;
} tbn_tensor;

void tbn_get_tensor(const tbn_model *m, uint32_t id, tbn_tensor *t);

/* A vector entry (scale or bias). An RQ16 vector's data starts after its header, whose two
 * shifts are decoded here. */
typedef struct {
    const TBN_ROM uint8_t *data;
    uint32_t count;
    uint8_t dtype, pre_shift, shift;
} tbn_vector;

/* The largest |multiplier| of an RQ16 vector. */
static inline uint32_t tbn_rq16_peak(const tbn_vector *v) {
    uint32_t peak = 0;
    for (uint32_t i = 0; i < v->count; i++) {
        int32_t m = (int16_t)tbn_rd16(v->data + 2 * i);
        uint32_t a = (uint32_t)(m < 0 ? -m : m);
        if (a > peak) peak = a;
    }
    return peak;
}

void tbn_get_scale(const tbn_model *m, uint32_t id, tbn_vector *v);
void tbn_get_bias(const tbn_model *m, uint32_t id, tbn_vector *v);
float tbn_vector_f32(const tbn_vector *v, uint32_t i); /* F32, F16 */

/* Tile: packed bits (LSB first), n_bits. */
typedef struct {
    const TBN_ROM uint8_t *bits;
    uint32_t n_bits;
} tbn_tile;

void tbn_get_tile(const tbn_model *m, uint32_t id, tbn_tile *t);
const TBN_ROM int8_t *tbn_get_dense(const tbn_model *m, uint32_t id, uint32_t *count);

/* A decoded op: every layout's fields by the names tbn.format.spec gives them (absent ids are
 * TBN_NONE_ID, absent geometry 1, other absent fields 0). `input` is the first tensor read
 * (ADD's `a`), `scratch` the tensor a kernel may use as working memory, `traits` the op's
 * TBN_TRAIT_* bits. */
typedef struct {
    uint8_t opcode, act;
    uint16_t input, output, a, b, tile, weight, scale, bias, scratch, table;
    uint8_t kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, axis;
    uint8_t perm0, perm1, perm2, perm3, ta, tb; /* TRANSPOSE's permutation; BATCH_MATMUL's transposes */
    uint16_t groups;
    uint32_t eps;   /* LAYERNORM: F32 epsilon's bits, or INT8's integer E */
    uint32_t alpha; /* a unary op's parameter a, float32 bits (0 where the op has none) */
    uint32_t value; /* PAD: F32 float32 bits, INT8 the int8 in the low byte */
    uint32_t size, traits;
} tbn_op;

/* Decode the op at p (avail bytes left in the ops section); returns 0 if unknown/truncated. */
int tbn_decode_op(const TBN_ROM uint8_t *p, uint32_t avail, tbn_op *op);

/* The tensors an op touches, decoded once by the loader for the op's prepare function;
 * `b` is the second input (the first again for one-input ops); the scratch tensor's slot is
 * already known to share no byte with them. */
typedef struct {
    tbn_tensor in, b, out, scratch; /* scratch: valid when has_scratch */
    int int8, has_scratch;
} tbn_io;

/* min and max of floats: the unary family's functions (tbn_format.h) call them */
static inline float tbn_minf(float a, float b) { return a < b ? a : b; }
static inline float tbn_maxf(float a, float b) { return a > b ? a : b; }

/* Shape helpers shared by the prepare functions. */
static inline int tbn_same_shape(const tbn_tensor *a, const tbn_tensor *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->dims[i] != b->dims[i]) return 0;
    return 1;
}

/* Output length of a convolution or pooling window along one axis; -1 if none fits. size is
 * a tensor dim (16 bits) and pad two 8-bit pads, so a fitting span holds in 32 bits and the
 * division stays 32-bit (no libgcc 64-bit division on 32- and 8-bit cores). */
static inline int64_t tbn_conv_out(uint32_t size, uint32_t k, uint32_t s, uint32_t d, uint32_t pad) {
    int64_t span = (int64_t)size + pad - (int64_t)d * (k - 1) - 1;
    return span < 0 || span > (int64_t)UINT32_MAX ? -1 : (int64_t)((uint32_t)span / s) + 1;
}

/* How a scale of `count` entries is meant on an op with `outputs` outputs tiled p times
 * (TBN_SCALE_*; -1 if the count fits none). The same order as tbn.format.spec.scale_mode. */
static inline int tbn_scale_mode(uint32_t count, uint32_t outputs, uint64_t p) {
    if (count == outputs) return TBN_SCALE_PER_OUTPUT;
    if (count == 1) return TBN_SCALE_ONE;
    if (count == p) return TBN_SCALE_PER_REPETITION;
    return -1;
}

/* out = floor((v + 2^(s-1)) / 2^s) for s >= 1, v for s == 0. GCC and Clang define >> of a
 * negative value as the arithmetic shift, which is that floor in three instructions; other
 * compilers get the same result without implementation-defined shifts. */
static inline int64_t tbn_rshift_round(int64_t v, int32_t s) {
    if (s <= 0) return v;
    v += (int64_t)1 << (s - 1);
#if defined(__GNUC__)
    return v >> s;
#else
    return v >= 0 ? (v >> s) : -(((-v) - 1) >> s) - 1;
#endif
}

/* A fused activation on an F32 value. */
static inline float tbn_act_f32(float v, uint8_t act) {
    if (act == TBN_ACT_NONE) return v;
    if (v < 0.0f) v = 0.0f;
    if (act == TBN_ACT_RELU6 && v > 6.0f) v = 6.0f;
    return v;
}

/* floor((2 * sum + n) / (2 * n)): the INT8 average, rounded half up (n > 0). In 32 bits on AVR,
 * whose 16-bit addresses bound n below 2^16 and |sum| below 2^23, where avr-gcc's 64-bit
 * division takes about 700 bytes of flash. */
#if defined(__AVR__)
typedef int32_t tbn_avg_int;
#else
typedef int64_t tbn_avg_int;
#endif
static inline tbn_avg_int tbn_avg_round(tbn_avg_int sum, tbn_avg_int n) {
#if !defined(__AVR__)
    if (n < ((tbn_avg_int)1 << 22)) { /* |2 sum + n| <= 257 n: 32 bits, one division (not a call) */
        int32_t num = (int32_t)(2 * sum + n), den = (int32_t)(2 * n);
        return num >= 0 ? num / den : -((-num + den - 1) / den);
    }
#endif
    tbn_avg_int num = 2 * sum + n, den = 2 * n;
    return num >= 0 ? num / den : -((-num + den - 1) / den);
}

/* (v + half) >> s as an arithmetic shift (floor), with half = 2^(s-1) or 0 for s = 0: the
 * rounding shift of RQ16 requantisation in 32 bits (the loader checked that nothing overflows). */
#if defined(__AVR__)
int32_t tbn_avr_sra32(int32_t v, uint8_t s);
#endif
static inline int32_t tbn_rshift_round32(int32_t v, int32_t half, uint32_t s) {
    v += half;
#if defined(__AVR__)
    return tbn_avr_sra32(v, (uint8_t)s); /* s < 32: the loader checked */
#elif defined(__GNUC__)
    return v >> s;
#else
    return v >= 0 ? (v >> s) : -(int32_t)((((uint32_t)-(v + 1)) >> s)) - 1;
#endif
}

static inline int8_t tbn_clamp_q(int64_t v, int32_t lo, int32_t hi) {
    return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

/* An INT8 op's rescaling: REQUANT or RQ16 of `count` entries, RQ16 only where its products of
 * values up to `bound` stay in 32 bits (tbn.format.validate._check_rescale). */
static inline int tbn_rescale_ok(const tbn_model *m, uint32_t id, uint32_t count, uint64_t bound) {
    tbn_vector v;
    tbn_get_scale(m, id, &v);
    if (!TBN_DTYPE_IN(v.dtype, TBN_INT8_SCALE_DTYPES) || v.count != count) return 0;
    return v.dtype != TBN_DTYPE_RQ16 || tbn_rq16_fits(bound, tbn_rq16_peak(&v), v.pre_shift, v.shift);
}

/* v rescaled by entry k of a REQUANT or RQ16 vector (tbn_rescale_ok checked that RQ16's
 * products stay in 32 bits): the value before the output's zero point. */
static inline int64_t tbn_rescale_entry(int32_t v, const tbn_vector *rq, uint32_t k) {
    if (TBN_BUILD_REQUANT && rq->dtype != TBN_DTYPE_RQ16) /* else the loader refused it */
        return tbn_rshift_round((int64_t)v * tbn_rds32(rq->data + 8 * k), tbn_rds32(rq->data + 8 * k + 4));
    int32_t pre_half = (int32_t)(((uint32_t)1 << rq->pre_shift) >> 1), half = (int32_t)(((uint32_t)1 << rq->shift) >> 1);
    return tbn_rshift_round32(tbn_rshift_round32(v, pre_half, rq->pre_shift) * (int16_t)tbn_rd16(rq->data + 2 * k), half,
                              rq->shift);
}

/* Each kernel family of tbn.format.spec (TBN_KERNEL_LIST), as TFLite Micro splits an op:
 * tbn_prepare_<k> checks one op's shapes, dtypes and constants once, at load, after the
 * loader has checked its ids, dataflow and arena slots (TBN_OK or TBN_ERR_SHAPE);
 * tbn_eval_<k> runs it and returns TBN_OK, since everything it relies on was prepared. */
#define TBN_DECLARE_KERNEL(k)                                                               \
    tbn_status tbn_prepare_##k(const tbn_model *m, const tbn_op *op, const tbn_io *io);     \
    tbn_status tbn_eval_##k(const tbn_model *m, const tbn_op *op, uint8_t *arena);
TBN_KERNEL_LIST(TBN_DECLARE_KERNEL)
#undef TBN_DECLARE_KERNEL

#endif /* TBN_INTERNAL_H */
