/* The table kernel of tiled linear and conv ops (docs/c-runtime.md, "Kernels").
 *
 * A tile of `rows` whole rows gives o / rows outputs per distinct row, and every row of one
 * output position reads the same inputs. So, 32 inputs at a time, the kernel builds for each
 * group of 4 inputs the table of its 16 signed sums (bit set: +x, clear: -x), and a row then
 * costs one lookup per 4 inputs instead of 4 sign-adds. Tables, one accumulator per row and,
 * for a convolution, the gathered input patch live in the op's scratch tensor, which the
 * compiler planned in the arena (tbn.format.spec.lut_scratch_size). INT8 ops of many rows
 * also combine pairs of tables into wide ones of 256 entries: one lookup per byte of bits.
 *
 * Portable C everywhere; on Thumb-2 cores the INT8 row loops and requantisation are
 * hand-scheduled assembly, and DSP cores build INT8 tables with SADD16 (docs/c-runtime.md).
 *
 * INT8 sums are exact, so the outputs are those of the direct kernel bit for bit. F32 tables
 * add pairs first ((+-a +-b) + (+-c +-d)), so each entry is rounded twice whatever its bits. */
#include "tbn_matmul.h"

#if TBN_LUT_GROUP != 4 || TBN_LUT_WIDE_GROUP != 8 || TBN_LUT_CHUNK != 32
#error "the table kernel is written for groups of 4 and 8 inputs, chunks of 32 (tbn.format.spec)"
#endif
#define N_TABLES (TBN_LUT_CHUNK / TBN_LUT_GROUP)    /* narrow tables of 16 entries a chunk */
#define N_WIDE (TBN_LUT_CHUNK / TBN_LUT_WIDE_GROUP) /* wide tables of 256 entries a chunk */

/* The 16 sums of one group: t[b] = sum_j (bit j of b ? +v_j : -v_j), exact in int16
 * (|v| <= 255). Each entry from an earlier one, t[b | 1 << j] = t[b] + 2 v_j. With the DSP
 * extension two entries are one word and one SADD16 makes the next two. */
#if defined(__ARM_FEATURE_SIMD32) && !defined(__ARM_BIG_ENDIAN) && !defined(TBN_PORTABLE)
#define TBN_SIMD_TABLES 1
#include <arm_acle.h>
TBN_ALWAYS_INLINE uint32_t pack16(int32_t lo, int32_t hi) { /* the low halves of lo and hi */
    uint32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(lo), "r"(hi));
    return r;
}

TBN_ALWAYS_INLINE void put2(int16_t *t, uint32_t w) { memcpy(t, &w, sizeof w); } /* one STR */

TBN_ALWAYS_INLINE void table_i8(int16_t *t, int32_t v0, int32_t v1, int32_t v2, int32_t v3) {
    int32_t a0 = -v0 - v1 - v2 - v3, d1 = 2 * v1, d2 = 2 * v2, d3 = 2 * v3;
    uint32_t e1 = pack16(d1, d1), e2 = pack16(d2, d2), e3 = pack16(d3, d3);
    uint32_t w0 = pack16(a0, a0 + 2 * v0); /* (t[0], t[1]) */
    uint32_t w1 = __sadd16(w0, e1), w2 = __sadd16(w0, e2), w3 = __sadd16(w1, e2);
    put2(t, w0), put2(t + 2, w1), put2(t + 4, w2), put2(t + 6, w3);
    put2(t + 8, __sadd16(w0, e3)), put2(t + 10, __sadd16(w1, e3));
    put2(t + 12, __sadd16(w2, e3)), put2(t + 14, __sadd16(w3, e3));
}
#else
TBN_ALWAYS_INLINE void table_i8(int16_t *t, int32_t v0, int32_t v1, int32_t v2, int32_t v3) {
    int32_t d1 = 2 * v1, d2 = 2 * v2, d3 = 2 * v3;
    int32_t a0 = -v0 - v1 - v2 - v3, a1 = a0 + 2 * v0, a2 = a0 + d1, a3 = a1 + d1;
    int32_t a4 = a0 + d2, a5 = a1 + d2, a6 = a2 + d2, a7 = a3 + d2;
    t[0] = (int16_t)a0, t[1] = (int16_t)a1, t[2] = (int16_t)a2, t[3] = (int16_t)a3;
    t[4] = (int16_t)a4, t[5] = (int16_t)a5, t[6] = (int16_t)a6, t[7] = (int16_t)a7;
    t[8] = (int16_t)(a0 + d3), t[9] = (int16_t)(a1 + d3), t[10] = (int16_t)(a2 + d3);
    t[11] = (int16_t)(a3 + d3), t[12] = (int16_t)(a4 + d3), t[13] = (int16_t)(a5 + d3);
    t[14] = (int16_t)(a6 + d3), t[15] = (int16_t)(a7 + d3);
}
#endif

TBN_ALWAYS_INLINE void table_f32(float *t, float a, float b, float c, float d) {
    float lo[4] = {-a - b, a - b, b - a, a + b}, hi[4] = {-c - d, c - d, d - c, c + d};
    for (int j = 0; j < 4; j++)
        for (int i = 0; i < 4; i++) t[4 * j + i] = lo[i] + hi[j];
}

/* Tables for inputs x[0..n) (n <= 32); inputs past n count as zero in both signs. */
static void build_i8(int16_t *t, const int8_t *x, uint32_t n, int32_t zp) {
    if (n == TBN_LUT_CHUNK) {
        for (uint32_t g = 0; g < N_TABLES; g++, x += 4, t += 16)
            table_i8(t, x[0] - zp, x[1] - zp, x[2] - zp, x[3] - zp);
        return;
    }
    for (uint32_t g = 0; g < N_TABLES; g++, t += 16) {
        int32_t v[4];
        for (uint32_t j = 0; j < 4; j++) v[j] = 4 * g + j < n ? x[4 * g + j] - zp : 0;
        table_i8(t, v[0], v[1], v[2], v[3]);
    }
}

static void build_f32(float *t, const float *x, uint32_t n) {
    if (n == TBN_LUT_CHUNK) {
        for (uint32_t g = 0; g < N_TABLES; g++, x += 4, t += 16) table_f32(t, x[0], x[1], x[2], x[3]);
        return;
    }
    for (uint32_t g = 0; g < N_TABLES; g++, t += 16) {
        float v[4];
        for (uint32_t j = 0; j < 4; j++) v[j] = 4 * g + j < n ? x[4 * g + j] : 0.0f;
        table_f32(t, v[0], v[1], v[2], v[3]);
    }
}

/* Pair tables (INT8 convs, two output positions at once): an entry is P(a, b) = a + 2^16 b
 * (mod 2^32), which adds as a pair does and reads back exactly while both halves lie in
 * [0, 2^16). Each sum (|t| <= 4 * 255) is biased by PAIR_BIAS, so a half lies in [4, 2044]
 * and the lookups of PAIR_BLOCK chunks (32) add in one word without a carry between halves. */
#define PAIR_BIAS 1024u
#define PAIR_BLOCK 4u

TBN_ALWAYS_INLINE uint32_t pair_of(int32_t a, int32_t b) { return (uint32_t)a + ((uint32_t)b << 16); }

#ifdef TBN_SIMD_TABLES
/* With the DSP extension each position is a half of the word and SADD16/SSUB16 keep them
 * apart (no carry between halves): the same bits as P() once both are non-negative, which
 * every entry is. v_j = (xa_j - zp, xb_j - zp), from a word of each: about 55 instructions a
 * table of two positions on the M4, where the portable code takes about 80. */
TBN_ALWAYS_INLINE uint32_t pack_top(uint32_t hi, uint32_t lo) { /* (lo >> 16, hi's top half) */
    uint32_t r;
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(hi), "r"(lo));
    return r;
}

TBN_ALWAYS_INLINE void table_pair(uint32_t *t, uint32_t a, uint32_t b, uint32_t z) {
    uint32_t ae = __sxtb16(a), ao = __sxtb16(a >> 8 | a << 24), be = __sxtb16(b), bo = __sxtb16(b >> 8 | b << 24);
    uint32_t v0 = __ssub16(pack16((int32_t)ae, (int32_t)be), z), v1 = __ssub16(pack16((int32_t)ao, (int32_t)bo), z);
    uint32_t v2 = __ssub16(pack_top(be, ae), z), v3 = __ssub16(pack_top(bo, ao), z);
    uint32_t d1 = __sadd16(v1, v1), d2 = __sadd16(v2, v2), d3 = __sadd16(v3, v3);
    uint32_t a0 = __ssub16(__ssub16(pack16(PAIR_BIAS, PAIR_BIAS), __sadd16(v0, v1)), __sadd16(v2, v3));
    uint32_t a1 = __sadd16(a0, __sadd16(v0, v0)), a2 = __sadd16(a0, d1), a3 = __sadd16(a1, d1);
    uint32_t a4 = __sadd16(a0, d2), a5 = __sadd16(a1, d2), a6 = __sadd16(a2, d2), a7 = __sadd16(a3, d2);
    t[0] = a0, t[1] = a1, t[2] = a2, t[3] = a3, t[4] = a4, t[5] = a5, t[6] = a6, t[7] = a7;
    t[8] = __sadd16(a0, d3), t[9] = __sadd16(a1, d3), t[10] = __sadd16(a2, d3), t[11] = __sadd16(a3, d3);
    t[12] = __sadd16(a4, d3), t[13] = __sadd16(a5, d3), t[14] = __sadd16(a6, d3), t[15] = __sadd16(a7, d3);
}
#else
/* Portable: v_j = P(xa_j - zp, xb_j - zp), the sums in modular 32-bit arithmetic. */
TBN_ALWAYS_INLINE void table_pair(uint32_t *t, uint32_t a, uint32_t b, uint32_t z) {
    uint32_t v[4];
    for (uint32_t j = 0; j < 4; j++, a >>= 8, b >>= 8) /* byte j as int8, less the zero point */
        v[j] = pair_of((int32_t)((a & 0xFFu) ^ 0x80u) - 128 - (int32_t)z,
                       (int32_t)((b & 0xFFu) ^ 0x80u) - 128 - (int32_t)z);
    uint32_t d1 = 2 * v[1], d2 = 2 * v[2], d3 = 2 * v[3];
    uint32_t a0 = pair_of(PAIR_BIAS, PAIR_BIAS) - v[0] - v[1] - v[2] - v[3], a1 = a0 + 2 * v[0], a2 = a0 + d1;
    uint32_t a3 = a1 + d1, a4 = a0 + d2, a5 = a1 + d2, a6 = a2 + d2, a7 = a3 + d2;
    t[0] = a0, t[1] = a1, t[2] = a2, t[3] = a3, t[4] = a4, t[5] = a5, t[6] = a6, t[7] = a7;
    t[8] = a0 + d3, t[9] = a1 + d3, t[10] = a2 + d3, t[11] = a3 + d3;
    t[12] = a4 + d3, t[13] = a5 + d3, t[14] = a6 + d3, t[15] = a7 + d3;
}
#endif

/* Pair tables for inputs xa[0..n) and xb[0..n) (n <= 32): the ceil(n / 4) groups that hold
 * inputs (past n: the zero point, whose x - zp is 0 in both signs), the rest all zero, so a
 * lookup there adds nothing and a row may skip it. Returns the groups built. */
static TBN_NOINLINE uint32_t build_pair(uint32_t *t, const int8_t *xa, const int8_t *xb, uint32_t n, int32_t zp) {
    int8_t pa[TBN_LUT_CHUNK], pb[TBN_LUT_CHUNK];
    uint32_t groups = (n + 3u) / 4u;
    if (n < TBN_LUT_CHUNK) {
        memset(pa, zp, 4u * groups), memset(pb, zp, 4u * groups);
        memcpy(pa, xa, n), memcpy(pb, xb, n);
        xa = pa, xb = pb;
        memset(t + 16u * groups, 0, 64u * (N_TABLES - groups));
    }
#ifdef TBN_SIMD_TABLES
    uint32_t z = pack16(zp, zp);
#else
    uint32_t z = (uint32_t)zp;
#endif
    for (uint32_t g = 0; g < groups; g++, xa += 4, xb += 4, t += 16)
        table_pair(t, tbn_rd32((const uint8_t *)xa), tbn_rd32((const uint8_t *)xb), z);
    return groups;
}

/* Wide tables from pairs of narrow ones: wide[j][h * 16 + l] = t[2j][l] + t[2j + 1][h], so
 * a byte of tile bits indexes the signed sum of its 8 inputs. */
#if defined(TBN_SIMD_TABLES) && defined(__thumb2__) && defined(__GNUC__)
/* One wide table from t[0..32) with the DSP extension: the 8 (t[2i], t[2i+1]) pairs stay in
 * r2..r9, each t[16 + h] is duplicated into both halves and added by SADD16, two entries an
 * instruction: 16 instructions per 16 entries. wide and t are 4-byte aligned. */
__attribute__((naked, noinline)) static void widen_one_dsp(__attribute__((unused)) int16_t *wide,
                                                           __attribute__((unused)) const int16_t *t) {
    __asm__ volatile(
        "push {r4-r11, lr}\n"
        "ldm r1, {r2-r9}\n"
        "add r1, r1, #30\n"
        "mov r12, #16\n"
        "1:\n"
        "ldrsh r10, [r1, #2]!\n"
        "pkhbt r10, r10, r10, lsl #16\n"
        "sadd16 r11, r2, r10\n"
        "sadd16 lr, r3, r10\n"
        "strd r11, lr, [r0], #8\n"
        "sadd16 r11, r4, r10\n"
        "sadd16 lr, r5, r10\n"
        "strd r11, lr, [r0], #8\n"
        "sadd16 r11, r6, r10\n"
        "sadd16 lr, r7, r10\n"
        "strd r11, lr, [r0], #8\n"
        "sadd16 r11, r8, r10\n"
        "sadd16 lr, r9, r10\n"
        "strd r11, lr, [r0], #8\n"
        "subs r12, r12, #1\n"
        "bne 1b\n"
        "pop {r4-r11, pc}\n");
}
#endif

static void widen_i8(int16_t *wide, const int16_t *t) {
    for (uint32_t j = 0; j < N_WIDE; j++, t += 32, wide += 256) {
#if defined(TBN_SIMD_TABLES) && defined(__thumb2__) && defined(__GNUC__)
        widen_one_dsp(wide, t);
#else
        for (uint32_t h = 0; h < 16; h++)
            for (uint32_t l = 0; l < 16; l++) wide[16 * h + l] = (int16_t)(t[l] + t[16 + h]);
#endif
    }
}

/* Row r's bits for the chunk at c0: with K % 8 == 0 they start on a byte, 4 bytes past
 * the previous row's; otherwise anywhere (bits_at). The fast loads may cover bytes up to
 * `limit` (the tile's whole words), so the last rows of a chunk can need bits_at. */
typedef struct {
    const TBN_ROM uint8_t *tile;
    uint32_t k, fast_rows; /* rows [0, fast_rows) take one 32-bit load */
} row_bits;

static row_bits chunk_bits(const mm_ctx *c, uint32_t rows, uint32_t c0) {
    row_bits rb = {c->tile.bits, c->k, 0};
    if (c->k % 8 == 0) {
        uint64_t limit = 32u * (((uint64_t)c->tile.n_bits + 31u) / 32u); /* bits stored */
        if (c0 + 32u <= c->k) {
            rb.fast_rows = rows; /* r * K + c0 + 32 <= rows * K <= limit for every row */
        } else if (c0 + 32u <= limit) { /* rows r with r * K + c0 + 32 <= limit */
            uint64_t room = limit - c0 - 32u; /* below rows * K < 2^32 when it matters: 32-bit division */
            rb.fast_rows = room >= (uint64_t)rows * c->k ? rows : (uint32_t)room / c->k + 1u;
        }
    }
    return rb;
}

static inline uint32_t row_bits_at(const row_bits *rb, uint32_t r, uint32_t c0, uint32_t n) {
    uint32_t pos = r * rb->k + c0;
    return r < rb->fast_rows ? tbn_rd32(rb->tile + pos / 8) : bits_at(rb->tile, pos, n);
}

/* The signed sum of 32 inputs under tile bits b: eight narrow lookups (t0..t7) or four wide
 * ones (`wide`). The narrow tables' bases are named one by one so that the compiler keeps
 * them in registers: a lookup is then an extract, a load and an add. */
#define NARROW(b)                                                                              \
    (t0[(b) & 15u] + t1[((b) >> 4) & 15u] + t2[((b) >> 8) & 15u] + t3[((b) >> 12) & 15u] +      \
     t4[((b) >> 16) & 15u] + t5[((b) >> 20) & 15u] + t6[((b) >> 24) & 15u] + t7[(b) >> 28])
#define WIDE(b) (wide[(b) & 255u] + wide[256 + (((b) >> 8) & 255u)] + wide[512 + (((b) >> 16) & 255u)] + \
                 wide[768 + ((b) >> 24)])

#if defined(__GNUC__) && defined(__thumb2__) && defined(__ARM_FEATURE_UNALIGNED) && !defined(TBN_PORTABLE)
#define TBN_LUT_THUMB2 1
typedef struct {
    const void *tables;
    uint32_t stride; /* bytes from one row's bits to the next's: K / 8 */
} thumb2_rows;

/* acc[r] += the lookups of the 32 bits at p + r * stride, for acc <= &acc[r] < end (end >
 * acc). Thumb-2 (Cortex-M3/M4/M7/M33): the table bases t0, t2..t7 stay in r4..r10, so a
 * lookup is ubfx, a load with a shifted register index, add; 31 instructions a row of 8
 * lookups where GCC's -Os code takes about 46. Unaligned word loads are allowed on these
 * cores. LD loads an entry of 2^SH bytes (ldrsh 1: int16 entries; ldr 2: pair entries), T is
 * a table's bytes. A loop of fewer lookups serves a chunk of fewer inputs. */
#define TBN_ROWS_HEAD(T)                                                                        \
    "push {r4-r11, lr}\n"                                                                     \
    "ldr r4, [r3, #0]\n"                                                                      \
    "ldr r12, [r3, #4]\n"                                                                     \
    "add r5, r4, #(2 * " T ")\n"                                                              \
    "add r6, r4, #(3 * " T ")\n"                                                              \
    "add r7, r4, #(4 * " T ")\n"                                                              \
    "add r8, r4, #(5 * " T ")\n"                                                              \
    "add r9, r4, #(6 * " T ")\n"                                                              \
    "add r10, r4, #(7 * " T ")\n"                                                             \
    "1:\n"                                                                                    \
    "ldr r3, [r2]\n"                                                                          \
    "add r2, r2, r12\n"                                                                       \
    "ldr r11, [r0]\n"
#define TBN_LOOKUP0(LD, SH) "and lr, r3, #15\n" LD " lr, [r4, lr, lsl #" SH "]\n" "add r11, r11, lr\n"
#define TBN_LOOKUP1(LD, SH, T)                                                                  \
    "ubfx lr, r3, #4, #4\n" "add lr, r4, lr, lsl #" SH "\n" LD " lr, [lr, #" T "]\n" "add r11, r11, lr\n"
#define TBN_LOOKUP(LD, SH, BASE, POS)                                                           \
    "ubfx lr, r3, #" POS ", #4\n" LD " lr, [" BASE ", lr, lsl #" SH "]\n" "add r11, r11, lr\n"
#define TBN_LOOKUP7(LD, SH) "lsr lr, r3, #28\n" LD " lr, [r10, lr, lsl #" SH "]\n" "add r11, r11, lr\n"
#define TBN_LOOKUPS8(LD, SH, T)                                                                 \
    TBN_LOOKUP0(LD, SH) TBN_LOOKUP1(LD, SH, T) TBN_LOOKUP(LD, SH, "r5", "8") TBN_LOOKUP(LD, SH, "r6", "12") \
    TBN_LOOKUP(LD, SH, "r7", "16") TBN_LOOKUP(LD, SH, "r8", "20") TBN_LOOKUP(LD, SH, "r9", "24") TBN_LOOKUP7(LD, SH)
#define TBN_ROWS_TAIL "str r11, [r0], #4\n" "cmp r0, r1\n" "bne 1b\n" "pop {r4-r11, pc}\n"
#define TBN_ROWS_ASM(NAME, BODY)                                                                \
    __attribute__((naked, noinline)) static void NAME(TBN_ASM_ARG void *acc, TBN_ASM_ARG void *end, \
                                                      TBN_ASM_ARG const uint8_t *p,             \
                                                      TBN_ASM_ARG const thumb2_rows *arg) {     \
        __asm__ volatile(BODY);                                                                 \
    }
TBN_ROWS_ASM(rows_i8_thumb2, TBN_ROWS_HEAD("32") TBN_LOOKUPS8("ldrsh", "1", "32") TBN_ROWS_TAIL)
TBN_ROWS_ASM(rows_pair_thumb2, TBN_ROWS_HEAD("64") TBN_LOOKUPS8("ldr", "2", "64") TBN_ROWS_TAIL)
/* pair tables of a chunk of at most 8 or 16 inputs: 2 or 4 lookups a row */
TBN_ROWS_ASM(rows_pair2_thumb2, TBN_ROWS_HEAD("64") TBN_LOOKUP0("ldr", "2") TBN_LOOKUP1("ldr", "2", "64")
             TBN_ROWS_TAIL)
TBN_ROWS_ASM(rows_pair4_thumb2, TBN_ROWS_HEAD("64") TBN_LOOKUP0("ldr", "2") TBN_LOOKUP1("ldr", "2", "64")
             TBN_LOOKUP("ldr", "2", "r5", "8") TBN_LOOKUP("ldr", "2", "r6", "12") TBN_ROWS_TAIL)

/* The same over the four wide tables (arg->tables is the first): a byte of bits per lookup,
 * 18 instructions a row. */
__attribute__((naked, noinline)) static void rows_i8_wide_thumb2(TBN_ASM_ARG void *acc, TBN_ASM_ARG void *end,
                                                                 TBN_ASM_ARG const uint8_t *p,
                                                                 TBN_ASM_ARG const thumb2_rows *arg) {
    __asm__ volatile(
        "push {r4-r7, r11, lr}\n"
        "ldr r4, [r3, #0]\n"
        "ldr r12, [r3, #4]\n"
        "add r5, r4, #512\n"
        "add r6, r4, #1024\n"
        "add r7, r4, #1536\n"
        "1:\n"
        "ldr r3, [r2]\n"
        "add r2, r2, r12\n"
        "ldr r11, [r0]\n"
        "uxtb lr, r3\n"
        "ldrsh lr, [r4, lr, lsl #1]\n"
        "add r11, r11, lr\n"
        "ubfx lr, r3, #8, #8\n"
        "ldrsh lr, [r5, lr, lsl #1]\n"
        "add r11, r11, lr\n"
        "ubfx lr, r3, #16, #8\n"
        "ldrsh lr, [r6, lr, lsl #1]\n"
        "add r11, r11, lr\n"
        "lsr lr, r3, #24\n"
        "ldrsh lr, [r7, lr, lsl #1]\n"
        "add r11, r11, lr\n"
        "str r11, [r0], #4\n"
        "cmp r0, r1\n"
        "bne 1b\n"
        "pop {r4-r7, r11, pc}\n");
}
#endif

/* acc[r] += LOOKUP(bits of row r in the chunk), for rows r .. rows - 1: one load for the
 * fast rows, bits_at for the rest (INT8 and F32 alike). */
#define CHUNK_ROWS(acc, r, rb, p, c0, n, LOOKUP)                          \
    do {                                                                  \
        for (; (r) < (rb).fast_rows; (r)++, (p) += c->k / 8) {            \
            uint32_t b_ = tbn_rd32(p);                                    \
            (acc)[r] += LOOKUP(b_);                                       \
        }                                                                 \
        for (; (r) < rows; (r)++) {                                       \
            uint32_t b_ = row_bits_at(&(rb), (r), (c0), (n));             \
            (acc)[r] += LOOKUP(b_);                                       \
        }                                                                 \
    } while (0)

/* acc[r] = signed sum of row r over the K inputs at x, for r < rows; `wide` (NULL: narrow
 * tables only) holds the wide tables. */
static void rows_i8(const mm_ctx *c, uint32_t rows, const int8_t *x, int32_t *acc, int16_t *t, int16_t *wide) {
    const int16_t *t0 = t, *t1 = t + 16, *t2 = t + 32, *t3 = t + 48, *t4 = t + 64, *t5 = t + 80,
                  *t6 = t + 96, *t7 = t + 112;
    memset(acc, 0, sizeof *acc * rows);
    for (uint32_t c0 = 0; c0 < c->k; c0 += TBN_LUT_CHUNK) {
        uint32_t n = c->k - c0 < TBN_LUT_CHUNK ? c->k - c0 : TBN_LUT_CHUNK;
        build_i8(t, x + c0, n, c->in_zp);
        if (wide) widen_i8(wide, t);
        row_bits rb = chunk_bits(c, rows, c0);
        const TBN_ROM uint8_t *p = c->tile.bits + c0 / 8;
        uint32_t r = 0;
#ifdef TBN_LUT_THUMB2
        if (rb.fast_rows) {
            thumb2_rows arg = {wide ? wide : t, c->k / 8};
            (wide ? rows_i8_wide_thumb2 : rows_i8_thumb2)(acc, acc + rb.fast_rows, p, &arg);
            r = rb.fast_rows;
        }
#endif
        if (wide)
            CHUNK_ROWS(acc, r, rb, p, c0, n, WIDE);
        else
            CHUNK_ROWS(acc, r, rb, p, c0, n, NARROW);
    }
}

static void rows_f32(const mm_ctx *c, uint32_t rows, const float *x, float *acc, float *t) {
    const float *t0 = t, *t1 = t + 16, *t2 = t + 32, *t3 = t + 48, *t4 = t + 64, *t5 = t + 80,
                *t6 = t + 96, *t7 = t + 112;
    for (uint32_t r = 0; r < rows; r++) acc[r] = 0.0f;
    for (uint32_t c0 = 0; c0 < c->k; c0 += TBN_LUT_CHUNK) {
        uint32_t n = c->k - c0 < TBN_LUT_CHUNK ? c->k - c0 : TBN_LUT_CHUNK;
        build_f32(t, x + c0, n);
        row_bits rb = chunk_bits(c, rows, c0);
        const TBN_ROM uint8_t *p = c->tile.bits + c0 / 8;
        uint32_t r = 0;
        CHUNK_ROWS(acc, r, rb, p, c0, n, NARROW);
    }
}

/* s[r] = both positions' packed sums of row r over the chunks from c0 on, up to PAIR_BLOCK
 * of them (each half biased by PAIR_BIAS a table with inputs); returns those tables. */
static uint32_t pair_block(const mm_ctx *c, uint32_t rows, const int8_t *xa, const int8_t *xb, uint32_t *s,
                           uint32_t *t, uint32_t c0) {
    const uint32_t *t0 = t, *t1 = t + 16, *t2 = t + 32, *t3 = t + 48, *t4 = t + 64, *t5 = t + 80,
                   *t6 = t + 96, *t7 = t + 112;
    uint32_t nb = 0, tables = 0;
    memset(s, 0, sizeof *s * rows);
    for (; nb < PAIR_BLOCK && c0 < c->k; nb++, c0 += TBN_LUT_CHUNK) {
        uint32_t n = c->k - c0 < TBN_LUT_CHUNK ? c->k - c0 : TBN_LUT_CHUNK, g = build_pair(t, xa + c0, xb + c0, n,
                                                                                        c->in_zp);
        row_bits rb = chunk_bits(c, rows, c0);
        const TBN_ROM uint8_t *p = c->tile.bits + c0 / 8;
        uint32_t r = 0;
        tables += g;
#ifdef TBN_LUT_THUMB2
        if (rb.fast_rows) {
            thumb2_rows arg = {t, c->k / 8};
            (g <= 2 ? rows_pair2_thumb2 : g <= 4 ? rows_pair4_thumb2 : rows_pair_thumb2)(s, s + rb.fast_rows, p,
                                                                                         &arg);
            r = rb.fast_rows;
        }
#endif
        CHUNK_ROWS(s, r, rb, p, c0, n, NARROW);
    }
    return tables;
}

/* a[r] and b[r] = signed sums of row r over the K inputs at xa and at xb, for r < rows: the
 * packed sums of each block, split. */
static TBN_NOINLINE void rows_pair(const mm_ctx *c, uint32_t rows, const int8_t *xa, const int8_t *xb, int32_t *a,
                                   int32_t *b, uint32_t *s, uint32_t *t) {
    memset(a, 0, sizeof *a * rows);
    memset(b, 0, sizeof *b * rows);
    for (uint32_t c0 = 0; c0 < c->k; c0 += PAIR_BLOCK * TBN_LUT_CHUNK) {
        int32_t off = (int32_t)(pair_block(c, rows, xa, xb, s, t, c0) * PAIR_BIAS);
        for (uint32_t r = 0; r < rows; r++) {
            a[r] += (int32_t)(s[r] & 0xFFFFu) - off;
            b[r] += (int32_t)(s[r] >> 16) - off;
        }
    }
}

/* The receptive field of output position (oy, ox) as one contiguous row of K inputs, in the
 * weights' order (channel, ky, kx); padding is the zero point (INT8) or 0. The columns inside
 * the input are found once per position (kx_range), then each kernel row is a plain copy. */
#define GATHER(T, pad)                                                                        \
    do {                                                                                      \
        const T *src_ = (const T *)(const void *)c->src;                                      \
        T *out_ = (T *)(void *)patch;                                                         \
        for (uint32_t ic = 0; ic < c->cg; ic++)                                               \
            for (uint32_t ky = 0; ky < op->kh; ky++, out_ += op->kw) {                        \
                int32_t iy = iy0 + (int32_t)(ky * op->dh), kx = 0;                            \
                if (iy < 0 || iy >= (int32_t)h) {                                             \
                    for (; kx < op->kw; kx++) out_[kx] = (pad);                               \
                    continue;                                                                 \
                }                                                                             \
                const T *line = src_ + ((size_t)ic * h + (uint32_t)iy) * w;                   \
                for (; kx < lo; kx++) out_[kx] = (pad);                                       \
                for (; kx < hi; kx++) out_[kx] = line[ix0 + kx * op->dw];                     \
                for (; kx < op->kw; kx++) out_[kx] = (pad);                                   \
            }                                                                                 \
    } while (0)

/* A window inside the input (most of them): no bounds, the pointers only step. A 1x1 window
 * is one value a channel, hw apart; a wider one kh runs of kw values a channel. About 3
 * instructions a value on the M7, where the general path above takes about 25. */
#define GATHER_INSIDE(T)                                                                      \
    do {                                                                                      \
        const T *src_ = (const T *)(const void *)c->src + (uint32_t)iy0 * w + (uint32_t)ix0;  \
        T *out_ = (T *)(void *)patch;                                                         \
        uint32_t hw_ = h * w, kw_ = op->kw, dw_ = op->dw, rstep_ = op->dh * w;                \
        if (op->kh == 1 && kw_ == 1) {                                                        \
            for (T *end_ = out_ + c->cg; out_ < end_; src_ += hw_) *out_++ = *src_;           \
            break;                                                                            \
        }                                                                                     \
        if (op->kh == 3 && kw_ == 3 && dw_ == 1) { /* the common window: unrolled */          \
            for (T *end_ = out_ + 9u * c->cg; out_ < end_; out_ += 9, src_ += hw_) {          \
                const T *l1_ = src_ + rstep_, *l2_ = l1_ + rstep_;                            \
                out_[0] = src_[0], out_[1] = src_[1], out_[2] = src_[2], out_[3] = l1_[0];    \
                out_[4] = l1_[1], out_[5] = l1_[2], out_[6] = l2_[0], out_[7] = l2_[1];       \
                out_[8] = l2_[2];                                                             \
            }                                                                                 \
            break;                                                                            \
        }                                                                                     \
        for (uint32_t ic = 0; ic < c->cg; ic++, src_ += hw_) {                                \
            const T *line_ = src_;                                                            \
            for (uint32_t ky = 0; ky < op->kh; ky++, line_ += rstep_, out_ += kw_)            \
                for (uint32_t kx = 0; kx < kw_; kx++) out_[kx] = line_[kx * dw_];             \
        }                                                                                     \
    } while (0)

static void gather(const mm_ctx *c, uint32_t oy, uint32_t ox, uint8_t *patch) {
    const tbn_op *op = c->op;
    uint32_t h = c->h, w = c->w;
    int32_t iy0 = (int32_t)(oy * op->sh) - op->pt, ix0 = (int32_t)(ox * op->sw) - op->pl, lo, hi;
    if (iy0 >= 0 && iy0 + (int32_t)((op->kh - 1u) * op->dh) < (int32_t)h && ix0 >= 0 &&
        ix0 + (int32_t)((op->kw - 1u) * op->dw) < (int32_t)w) {
        if (TBN_INT8(c->int8))
            GATHER_INSIDE(int8_t);
        else
            GATHER_INSIDE(float);
        return;
    }
    kx_range(op, ix0, w, &lo, &hi);
    if (TBN_INT8(c->int8))
        GATHER(int8_t, (int8_t)c->in_zp);
    else
        GATHER(float, 0.0f);
}

#ifdef TBN_LUT_THUMB2
typedef struct {
    const int32_t *acc, *end;
    const TBN_ROM uint8_t *bias, *rq; /* I32 or I16 biases, (multiplier, shift) pairs: 4-byte aligned */
    int8_t *out;
    uint32_t step;
    int32_t zp, qmin, qmax;
} rq_args;

/* requant_i8 for acc[0..n) with a bias and a scale per output, in 27 instructions an output:
 * y = ((2 hi + bit 31 of lo) + 2^t) >> (t + 1), t = shift - 32, which is the reference's
 * floor((prod + 2^(shift-1)) / 2^shift) for |prod| < 2^62. A shift of 1 to 31 (label 3, 14
 * more) rounds and shifts both words of prod and keeps y where it fits 32 bits. It stops,
 * returning the acc it did not store, at a sum that overflows 32 bits, a shift of 0 or a y
 * past 32 bits (the C path's cases); otherwise it returns end. LDB loads the bias: ldr #4 for
 * I32, ldrsh #2 for I16. */
#define TBN_REQUANT_ROWS(NAME, LDB)                                                             \
    __attribute__((naked, noinline)) static const int32_t *NAME(TBN_ASM_ARG const rq_args *a) { \
        __asm__ volatile(                                                                   \
            "push {r4-r11, lr}\n"                                                            \
            "ldm r0, {r0-r8}\n" /* acc end bias rq out step zp qmin qmax */                  \
            "1:\n"                                                                           \
            "ldr r9, [r0]\n"                                                                 \
            LDB "\n"                                                                         \
            "adds r9, r9, r10\n"                                                             \
            "bvs 2f\n"                                                                       \
            "ldrd r10, r11, [r3], #8\n"                                                      \
            "subs r11, r11, #32\n"                                                           \
            "bmi 3f\n"                                                                       \
            "smull r12, lr, r9, r10\n"                                                       \
            "lsl lr, lr, #1\n"                                                               \
            "orr lr, lr, r12, lsr #31\n"                                                     \
            "movs r12, #1\n"                                                                 \
            "lsl r12, r12, r11\n"                                                            \
            "add lr, lr, r12\n"                                                              \
            "add r11, r11, #1\n"                                                             \
            "asr lr, lr, r11\n"                                                              \
            "4:\n"                                                                           \
            "add lr, lr, r6\n"                                                               \
            "cmp lr, r7\n"                                                                   \
            "it lt\n"                                                                        \
            "movlt lr, r7\n"                                                                 \
            "cmp lr, r8\n"                                                                   \
            "it gt\n"                                                                        \
            "movgt lr, r8\n"                                                                 \
            "strb lr, [r4]\n"                                                                \
            "add r4, r4, r5\n"                                                               \
            "add r0, r0, #4\n"                                                               \
            "cmp r0, r1\n"                                                                   \
            "bne 1b\n"                                                                       \
            "2:\n"                                                                           \
            "pop {r4-r11, pc}\n"                                                             \
            "3:\n"                       /* shift s = r11 + 32 in 1..31 */                   \
            "adds r11, r11, #32\n"                                                           \
            "beq 2b\n"                                                                       \
            "smull r12, lr, r9, r10\n"   /* prod: lo r12, hi lr */                           \
            "sub r10, r11, #1\n"                                                             \
            "movs r9, #1\n"                                                                  \
            "lsl r9, r9, r10\n"                                                              \
            "adds r12, r12, r9\n"        /* + 2^(s-1), carried into hi */                    \
            "adc lr, lr, #0\n"                                                               \
            "lsr r12, r12, r11\n"                                                            \
            "rsb r10, r11, #32\n"                                                            \
            "lsl r9, lr, r10\n"                                                              \
            "orr r12, r12, r9\n"         /* y's low word */                                  \
            "asr r9, lr, r11\n"          /* its high word: y fits 32 bits where it is the sign */ \
            "cmp r9, r12, asr #31\n"                                                         \
            "bne 2b\n"                                                                       \
            "mov lr, r12\n"                                                                  \
            "b 4b\n");                                                                       \
    }
TBN_REQUANT_ROWS(requant_rows_thumb2, "ldr r10, [r2], #4")
TBN_REQUANT_ROWS(requant_rows_i16_thumb2, "ldrsh r10, [r2], #2")
#endif

/* requant16_parts for acc[0..rows) with every parameter in a register; `bias` is 0 (none), 2
 * (I16) or 4 (I32) bytes an output, a constant where this is inlined. */
TBN_ALWAYS_INLINE void rq16_rows(const mm_epilogue *e, uint32_t ch0, uint32_t rows, const int32_t *acc, int8_t *out,
                                 uint32_t step, uint32_t bias) {
    const TBN_ROM uint8_t *mult = e->scale + ch0 * e->scale_stride, *b = bias ? e->bias + bias * ch0 : NULL;
    uint32_t mstep = e->scale_stride, pre = e->pre_shift, shift = e->shift;
    int32_t pre_half = e->pre_half, half = e->half, zp = e->zp, lo = e->qmin, hi = e->qmax;
    for (const int32_t *end = acc + rows; acc < end; acc++, mult += mstep, out += step) {
        int32_t v = *acc;
        if (bias) { /* no pointer arithmetic on a NULL bias */
            v += bias == 2 ? (int16_t)tbn_rd16(b) : tbn_rds32(b);
            b += bias;
        }
        int32_t t = tbn_rshift_round32(v, pre_half, pre);
        int32_t z = zp + tbn_rshift_round32(t * (int16_t)tbn_rd16(mult), half, shift);
        z = z < lo ? lo : z;
        *out = (int8_t)(z > hi ? hi : z);
    }
}

#ifdef TBN_LUT_THUMB2
typedef struct {
    const int32_t *acc, *end;
    const TBN_ROM uint8_t *bias, *mult; /* I32 or I16 biases, int16 multipliers: one an output */
    int8_t *out;
    uint32_t step;
    int32_t pre_half, pre_shift, half, shift, zp, qmin;
} rq16_args;

/* rq16_rows for an output of qmax 127 with a bias and a multiplier each (LDB loads the bias:
 * ldr #4 for I32, ldrsh #2 for I16): every parameter in a register, SSAT clamps the top and
 * CLAMP the bottom where qmin is not -128, 18 instructions an output (15 without CLAMP) where
 * GCC's -Os loop takes about 25. */
#define TBN_RQ16_ROWS(NAME, LDB, CLAMP)                                                                \
    __attribute__((naked, noinline)) static void NAME(TBN_ASM_ARG const rq16_args *a) {       \
        __asm__ volatile("push {r4-r11, lr}\n"                                               \
                         "ldm r0, {r0-r11}\n" /* acc end bias mult out step ph pre h sh zp lo */ \
                         "1:\n"                                                              \
                         "ldr r12, [r0], #4\n"                                               \
                         LDB "\n"                                                            \
                         "add r12, r12, lr\n"                                                \
                         "add r12, r12, r6\n"                                                \
                         "asr r12, r12, r7\n"                                                \
                         "ldrsh lr, [r3], #2\n"                                              \
                         "mla r12, r12, lr, r8\n"                                            \
                         "asr r12, r12, r9\n"                                                \
                         "add r12, r12, r10\n"                                               \
                         "ssat r12, #8, r12\n"                                               \
                         CLAMP                                                               \
                         "strb r12, [r4]\n"                                                  \
                         "add r4, r4, r5\n"                                                  \
                         "cmp r0, r1\n"                                                      \
                         "bne 1b\n"                                                          \
                         "pop {r4-r11, pc}\n");                                              \
    }
#define TBN_RQ16_CLAMP "cmp r12, r11\n" "it lt\n" "movlt r12, r11\n"
TBN_RQ16_ROWS(rq16_rows_i32_thumb2, "ldr lr, [r2], #4", TBN_RQ16_CLAMP)
TBN_RQ16_ROWS(rq16_rows_i16_thumb2, "ldrsh lr, [r2], #2", TBN_RQ16_CLAMP)
TBN_RQ16_ROWS(rq16_rows_i32_ssat_thumb2, "ldr lr, [r2], #4", "")
TBN_RQ16_ROWS(rq16_rows_i16_ssat_thumb2, "ldrsh lr, [r2], #2", "")

/* The same for both positions of a pair, straight from the packed sums of one block (s[r]:
 * halves biased by `off`, folded into the first rounding term with the bias: UXTAH and an add
 * with LSR #16 give each position's v + pre_half), for qmin -128 and qmax 127 (SSAT clamps
 * both ends): 21 instructions a pair of outputs, where splitting the sums and rq16_rows take
 * 49. A conv's outputs are out[0] and out[1], then `step` on (ST2, ADV below); two tokens'
 * are out[0] and out[step], then 1 on. */
#define TBN_RQ16_PAIRS(NAME, LDB, ST2, ADV)                                                     \
    __attribute__((naked, noinline)) static void NAME(TBN_ASM_ARG const rq16_args *a) {       \
        __asm__ volatile("push {r4-r11, lr}\n"                                               \
                         "ldm r0, {r0-r10}\n" /* s end bias mult out step ph-off pre h sh zp */ \
                         "1:\n"                                                              \
                         "ldr lr, [r0], #4\n"                                                \
                         LDB "\n"                                                            \
                         "add r12, r12, r6\n"                                                \
                         "uxtah r11, r12, lr\n"                                              \
                         "add r12, r12, lr, lsr #16\n"                                       \
                         "ldrsh lr, [r3], #2\n"                                              \
                         "asr r11, r11, r7\n"                                                \
                         "mla r11, r11, lr, r8\n"                                            \
                         "asr r11, r11, r9\n"                                                \
                         "add r11, r11, r10\n"                                               \
                         "ssat r11, #8, r11\n"                                               \
                         "strb r11, [r4]\n"                                                  \
                         "asr r12, r12, r7\n"                                                \
                         "mla r12, r12, lr, r8\n"                                            \
                         "asr r12, r12, r9\n"                                                \
                         "add r12, r12, r10\n"                                               \
                         "ssat r12, #8, r12\n"                                               \
                         ST2 "\n"                                                            \
                         ADV "\n"                                                            \
                         "cmp r0, r1\n"                                                      \
                         "bne 1b\n"                                                          \
                         "pop {r4-r11, pc}\n");                                              \
    }
#ifdef __ARM_FEATURE_DSP /* UXTAH */
#define TBN_LUT_RQ_PAIRS 1
TBN_RQ16_PAIRS(rq16_pairs_i32_thumb2, "ldr r12, [r2], #4", "strb r12, [r4, #1]", "add r4, r4, r5")
TBN_RQ16_PAIRS(rq16_pairs_i16_thumb2, "ldrsh r12, [r2], #2", "strb r12, [r4, #1]", "add r4, r4, r5")
TBN_RQ16_PAIRS(rq16_tokens_i32_thumb2, "ldr r12, [r2], #4", "strb r12, [r4, r5]", "add r4, r4, #1")
TBN_RQ16_PAIRS(rq16_tokens_i16_thumb2, "ldrsh r12, [r2], #2", "strb r12, [r4, r5]", "add r4, r4, #1")
#endif
#endif

TBN_NOINLINE static void store_rows_rq16(const mm_epilogue *e, uint32_t ch0, uint32_t rows, const int32_t *acc,
                                         int8_t *out, uint32_t step) {
#ifdef TBN_LUT_THUMB2
    if (e->bias && e->scale_stride == 2 && e->qmax == 127 && rows) {
        uint32_t bsize = e->bias16 ? 2u : 4u;
        rq16_args a = {acc, acc + rows, e->bias + bsize * ch0, e->scale + 2u * ch0, out, step, e->pre_half,
                       (int32_t)e->pre_shift, e->half, (int32_t)e->shift, e->zp, e->qmin};
        if (e->qmin == -128)
            (e->bias16 ? rq16_rows_i16_ssat_thumb2 : rq16_rows_i32_ssat_thumb2)(&a);
        else
            (e->bias16 ? rq16_rows_i16_thumb2 : rq16_rows_i32_thumb2)(&a);
        return;
    }
#endif
    if (!e->bias) rq16_rows(e, ch0, rows, acc, out, step, 0);
    else if (e->bias16) rq16_rows(e, ch0, rows, acc, out, step, 2);
    else rq16_rows(e, ch0, rows, acc, out, step, 4);
}

TBN_NOINLINE static void store_rows_i8(const mm_epilogue *ep, uint32_t ch0, uint32_t rows, const int32_t *acc,
                                       int8_t *out, uint32_t step) {
    if (ep->rq16) { /* 32-bit requantisation: a short loop of its own */
        store_rows_rq16(ep, ch0, rows, acc, out, step);
        return;
    }
    mm_epilogue e = *ep;
    uint32_t r = 0;
#ifdef TBN_LUT_THUMB2
    while (e.bias && e.scale_stride == 8 && r < rows) { /* per-output scales, a bias */
        uint32_t bsize = e.bias16 ? 2u : 4u;
        rq_args a = {acc + r, acc + rows, e.bias + bsize * (ch0 + r), e.scale + 8 * (ch0 + r), out + r * step, step,
                     e.zp, e.qmin, e.qmax};
        r = (uint32_t)((e.bias16 ? requant_rows_i16_thumb2 : requant_rows_thumb2)(&a) - acc);
        if (r < rows) { /* an output the assembly leaves to C */
            out[r * step] = requant_i8(&e, ch0 + r, acc[r]);
            r++;
        }
    }
#endif
    for (out += r * step; r < rows; r++, out += step) *out = requant_i8(&e, ch0 + r, acc[r]);
}

TBN_NOINLINE static void store_rows_f32(const mm_epilogue *ep, uint32_t ch0, uint32_t rows, const float *acc, float s,
                           float *out, uint32_t step) {
    mm_epilogue e = *ep;
    for (uint32_t r = 0; r < rows; r++, out += step) *out = finish_f32(&e, ch0 + r, acc[r] * s);
}

#ifdef TBN_LUT_RQ_PAIRS
/* rows outputs of both positions from one block's packed sums (halves biased by off). */
TBN_NOINLINE static void store_pairs_rq16(const mm_epilogue *e, uint32_t ch0, uint32_t rows, const uint32_t *s,
                                          uint32_t off, int8_t *out, uint32_t step, int tokens) {
    uint32_t bsize = e->bias16 ? 2u : 4u;
    rq16_args a = {(const int32_t *)s, (const int32_t *)s + rows, e->bias + bsize * ch0, e->scale + 2u * ch0, out,
                   step, (int32_t)((uint32_t)e->pre_half - off), (int32_t)e->pre_shift, e->half, (int32_t)e->shift,
                   e->zp, e->qmin};
    if (tokens)
        (e->bias16 ? rq16_tokens_i16_thumb2 : rq16_tokens_i32_thumb2)(&a);
    else
        (e->bias16 ? rq16_pairs_i16_thumb2 : rq16_pairs_i32_thumb2)(&a);
}

/* Whether one block's packed sums go straight to the pair requantisation: K in one block, RQ16
 * scales a channel with a bias, outputs -128..127. */
static int packed_pairs(const mm_ctx *c) {
    const mm_epilogue *e = &c->ep;
    return c->k <= PAIR_BLOCK * TBN_LUT_CHUNK && e->rq16 && e->bias && e->scale_stride == 2 && e->qmin == -128 &&
           e->qmax == 127;
}
#endif

/* Both positions' outputs of inputs xa and xb: rows_pair's sums, stored at ya and yb (channel
 * ch0 + r at + (ch0 + r) * step). scratch: a | b | s, `rows` words each, then the pair tables. */
static void pair_outputs(const mm_ctx *c, uint32_t rows, const int8_t *xa, const int8_t *xb, uint8_t *scratch,
                         int8_t *ya, int8_t *yb, uint32_t step) {
    int32_t *a = (int32_t *)(void *)scratch, *b = a + rows;
    uint32_t *s = (uint32_t *)(b + rows);
    rows_pair(c, rows, xa, xb, a, b, s, s + rows);
    for (uint32_t ch0 = 0; ch0 < c->o; ch0 += rows) {
        store_rows_i8(&c->ep, ch0, rows, a, ya + (size_t)ch0 * step, step);
        store_rows_i8(&c->ep, ch0, rows, b, yb + (size_t)ch0 * step, step);
    }
}

/* An INT8 conv with pair scratch (tbn_lut_pair_scratch_size: as pair_outputs, then two
 * patches): output positions two at a time. Returns the positions done. */
static uint32_t eval_pairs(const mm_ctx *c, uint32_t rows, uint8_t *scratch) {
    uint32_t *s = (uint32_t *)(void *)scratch + 2u * rows, *t = s + rows;
    uint8_t *pa = (uint8_t *)(t + N_TABLES * 16), *pb = pa + (c->k + 3u) / 4u * 4u;
    uint32_t wo = c->wo, npix = c->npix, pix = 0;
#ifdef TBN_LUT_RQ_PAIRS
    int packed = packed_pairs(c);
#endif
    for (; pix + 1 < npix; pix += 2) {
        int8_t *y = (int8_t *)c->dst + pix;
        gather(c, pix / wo, pix % wo, pa);
        gather(c, (pix + 1) / wo, (pix + 1) % wo, pb);
#ifdef TBN_LUT_RQ_PAIRS
        if (packed) { /* one block: the pair requantisation reads the packed sums */
            uint32_t off = pair_block(c, rows, (const int8_t *)pa, (const int8_t *)pb, s, t, 0) * PAIR_BIAS;
            for (uint32_t ch0 = 0; ch0 < c->o; ch0 += rows)
                store_pairs_rq16(&c->ep, ch0, rows, s, off, y + (size_t)ch0 * npix, npix, 0);
            continue;
        }
#endif
        pair_outputs(c, rows, (const int8_t *)pa, (const int8_t *)pb, scratch, y, y + 1, npix);
    }
    return pix;
}

uint32_t tbn_mm_eval_lut(const mm_ctx *c, uint32_t rows, uint8_t *scratch, uint32_t scratch_bytes,
                         uint32_t tokens) {
    int conv = TBN_BUILT_TRAIT(CONV) && (c->op->traits & TBN_TRAIT_CONV) != 0; /* MLP-only builds drop gather */
    if (TBN_BUILD_TOKENS && !conv && TBN_INT8(c->int8) && tokens >= 2 &&
        scratch_bytes >= tbn_lut_pair_scratch_size(rows, c->k, 0)) { /* two tokens, each input one row */
        int8_t *y = (int8_t *)c->dst;
        const int8_t *xa = (const int8_t *)c->src, *xb = xa + c->k;
#ifdef TBN_LUT_RQ_PAIRS
        if (packed_pairs(c)) { /* as eval_pairs: the second token's outputs o further on */
            uint32_t *s = (uint32_t *)(void *)scratch + 2u * rows;
            uint32_t off = pair_block(c, rows, xa, xb, s, s + rows, 0) * PAIR_BIAS;
            for (uint32_t ch0 = 0; ch0 < c->o; ch0 += rows)
                store_pairs_rq16(&c->ep, ch0, rows, s, off, y + ch0, c->o, 1);
            return 2;
        }
#endif
        pair_outputs(c, rows, xa, xb, scratch, y, y + c->o, 1);
        return 2;
    }
    /* scratch: rows accumulators | N_TABLES narrow tables | N_WIDE wide ones (INT8, many rows) |
     * patch (conv); tbn_lut_scratch_size says the same */
    uint32_t esize = TBN_INT8(c->int8) ? 2u : 4u;
    uint8_t *tables = scratch + 4u * rows, *wide = tables + N_TABLES * 16u * esize;
    uint8_t *patch = wide;
    if (TBN_INT8(c->int8) && rows >= TBN_LUT_WIDE_MIN_ROWS) {
        patch += N_WIDE * 256u * esize;
    } else {
        wide = NULL;
    }
    uint32_t wo = c->wo, npix = c->npix, pix = 0;
    if (conv && TBN_INT8(c->int8) && npix >= 2 && scratch_bytes >= tbn_lut_pair_scratch_size(rows, c->k, 1))
        pix = eval_pairs(c, rows, scratch);
    for (; pix < npix; pix++) {
        const uint8_t *x = c->src;
        if (conv) {
            gather(c, pix / wo, pix % wo, patch);
            x = patch;
        }
        if (TBN_INT8(c->int8)) {
            int32_t *acc = (int32_t *)(void *)scratch;
            rows_i8(c, rows, (const int8_t *)x, acc, (int16_t *)(void *)tables, (int16_t *)(void *)wide);
            for (uint32_t ch0 = 0; ch0 < c->o; ch0 += rows)
                store_rows_i8(&c->ep, ch0, rows, acc, (int8_t *)c->dst + (size_t)ch0 * npix + pix, npix);
        } else {
            float *acc = (float *)(void *)scratch;
            rows_f32(c, rows, (const float *)(const void *)x, acc, (float *)(void *)tables);
            for (uint32_t ch0 = 0, rep = 0; ch0 < c->o; ch0 += rows, rep++) {
                float s = c->per_rep ? tbn_vector_f32(&c->scale, rep) : 1.0f;
                store_rows_f32(&c->ep, ch0, rows, acc, s, (float *)(void *)c->dst + (size_t)ch0 * npix + pix, npix);
            }
        }
    }
    return 1;
}
