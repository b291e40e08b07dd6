/* The per-channel kernel of convolutions whose every output reads one input channel: depthwise
 * convs (groups = input channels) and convs of a single input channel (a network's first).
 *
 * The direct kernel reads a window's tile bits 32 at a time per kernel row, so a 3x3 depthwise
 * conv pays its set-up for three MACs (about 68 instructions a MAC on a Cortex-M7). Here each
 * output channel's K weights are decoded once into signed values (+1/-1 for a tile, the int8
 * weights of a dense op) and its requantisation parameters read once. The input rows a window
 * row reads are copied, once each, into a small ring of rows padded on both sides (the zero
 * point, or 0), so that every window lies inside: an output is then K loads and
 * multiply-adds, with no border case. INT8 sums are exact (the padding holds the zero point,
 * which each tap's weight times x - zp turns into 0), so the outputs equal the direct kernel's
 * bit for bit; F32 adds the taps in row order.
 *
 * Tile reuse (one group, p > 1): the tile's `rows` distinct rows are computed, each stored into
 * its o / rows outputs. */
#include "tbn_matmul.h"
#if TBN_CHANNEL_KERNEL

/* Stack the kernel takes (sifive_e's firmware has 2 KB): kernels of more taps or rows, and
 * padded rows that the ring cannot hold, take the direct kernel. */
#ifndef TBN_CHANNEL_MAX_TAPS
#define TBN_CHANNEL_MAX_TAPS 49 /* a 7x7 window (the Mixer's patch embedding); DS-CNN's first conv is 10x4 */
#endif
#define TBN_CHANNEL_RING_BYTES 512
#define TBN_CHANNEL_CHUNK 32 /* outputs summed before they are stored */
#define MAX_ROWS 16 /* kernel rows */

/* The ring: padded row y (input row y - pt, or padding) lives in slot y % n, as pl + w + pr
 * values; n is every padded row where they fit (each copied once a channel), else the rows
 * one window spans, (kh - 1) * dh + 1. Output rows only move down, so the rows are filled in
 * order and a window's rows are never evicted while it needs them. */
typedef struct {
    uint32_t n, len, esize, filled; /* slots, values a padded row, bytes a value, rows filled */
    int resident;                   /* every padded row: filled at a channel's start */
    int padded;                     /* resident, and its padding already written (once an op) */
    const uint8_t *plane;           /* resident: the input plane it holds (convs of one input
                                     * channel read one plane for every output channel) */
    union {
        uint32_t align;
        uint8_t bytes[TBN_CHANNEL_RING_BYTES + 4]; /* + a word past the last row (sums3x3_pairs) */
    } buf;
} ring;

static uint32_t ring_rows(const tbn_op *op) { return ((uint32_t)op->kh - 1u) * op->dh + 1u; }

int tbn_mm_channel_ok(const mm_ctx *c) {
    const tbn_op *op = c->op;
    if (!(op->traits & TBN_TRAIT_CONV) || c->cg != 1 || c->k > TBN_CHANNEL_MAX_TAPS ||
        op->kh > MAX_ROWS)
        return 0;
    uint32_t esize = TBN_INT8(c->int8) ? 1u : 4u, len = (uint32_t)op->pl + c->w + op->pr;
    if (ring_rows(op) * len * esize > TBN_CHANNEL_RING_BYTES) return 0;
    /* F32 scales per repetition apply per channel only where no channel straddles two */
    return !c->per_rep || (c->tiled && c->tile.n_bits % c->k == 0);
}

/* Row `row`'s K weights as signed values (wt holds K + 3: tile bits are written four at a time,
 * a nibble's bytes by lookup); their sum. Tile bits are read up to 24 at a time, each run
 * ending where the tile wraps. */
static int32_t row_weights(const mm_ctx *c, uint32_t row, int8_t *wt) {
    static const uint32_t signs[16] = {
        0xFFFFFFFFu, 0xFFFFFF01u, 0xFFFF01FFu, 0xFFFF0101u, 0xFF01FFFFu, 0xFF01FF01u, 0xFF0101FFu, 0xFF010101u,
        0x01FFFFFFu, 0x01FFFF01u, 0x01FF01FFu, 0x01FF0101u, 0x0101FFFFu, 0x0101FF01u, 0x010101FFu, 0x01010101u};
    static const uint8_t ones[16] = {0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4};
    uint32_t f = row * c->k, t = c->tiled ? c->tile.n_bits : 0u, pos = f < t || !t ? f : f % t;
    int32_t sum = 0;
    if (!t) {
        for (uint32_t j = 0; j < c->k; j++) sum += wt[j] = c->dense[f + j];
        return sum;
    }
    for (uint32_t j = 0; j < c->k;) {
        uint32_t n = c->k - j < 24u ? c->k - j : 24u;
        n = n < t - pos ? n : t - pos;
        uint32_t bits = bits_at(c->tile.bits, pos, n) & ((1u << n) - 1u); /* n < 32 */
        for (uint32_t i = 0; i < n; i += 4, bits >>= 4) { /* bytes past n are rewritten or unused */
            wt[j + i + 0] = (int8_t)signs[bits & 15u], wt[j + i + 1] = (int8_t)(signs[bits & 15u] >> 8);
            wt[j + i + 2] = (int8_t)(signs[bits & 15u] >> 16), wt[j + i + 3] = (int8_t)(signs[bits & 15u] >> 24);
            sum += ones[bits & 15u];
        }
        j += n;
        pos = pos + n == t ? 0 : pos + n;
    }
    return 2 * sum - (int32_t)c->k;
}

/* Padded rows up to `last` copied into the ring: the padding (the zero point, or 0.0f: zero
 * bits) at both ends, the input row between. */
static void ring_fill(ring *rg, const mm_ctx *c, const uint8_t *plane, uint32_t last) {
    uint32_t es = rg->esize, pl = c->op->pl * es, row = c->w * es, len = rg->len * es, pt = c->op->pt;
    uint8_t pad = TBN_INT8(c->int8) ? (uint8_t)c->in_zp : 0u;
    for (; rg->filled <= last; rg->filled++) {
        uint8_t *dst = rg->buf.bytes + (rg->filled % rg->n) * len;
        uint32_t iy = rg->filled - pt;
        if (rg->filled < pt || iy >= c->h) {
            memset(dst, pad, len);
            continue;
        }
        memset(dst, pad, pl);
        memcpy(dst + pl, plane + iy * row, row);
        memset(dst + pl + row, pad, len - pl - row);
    }
}

static const uint8_t *ring_slot(const ring *rg, uint32_t y) {
    return rg->buf.bytes + (y % rg->n) * rg->len * rg->esize;
}

#if defined(__GNUC__) && defined(__thumb2__) && defined(__ARM_FEATURE_DSP) && !defined(TBN_PORTABLE)
#define TBN_CHANNEL_DSP 1
#include <arm_acle.h>
/* A 3x3 window's rows, packed weights (w0 | w1 << 16, w2 | w3 << 16, w4 | w5 << 16,
 * w6 | w7 << 16, w8) and -zsum, as the assembly below reads them. */
typedef struct {
    const int8_t *a, *b, *d;
    uint32_t w01, w23, w45, w67, w8;
    int32_t zneg;
} dsp3x3;

/* acc[i] = the window sum for acc <= &acc[i] < end, the rows advancing S inputs an output: the
 * weights stay in r5..r9, each tap a load and one SMLABB/SMLABT (21 instructions an output,
 * where GCC's -Os code takes about 45, the weights spilled). */
#define TBN_DSP3X3(S)                                                                             \
    __attribute__((naked, noinline)) static void sums3x3_s##S(TBN_ASM_ARG int32_t *acc,           \
                                                               TBN_ASM_ARG int32_t *end,           \
                                                               TBN_ASM_ARG const dsp3x3 *arg) {    \
        __asm__ volatile("push {r4-r11, lr}\n"                                                    \
                         "ldm r2, {r2-r10}\n"                                                     \
                         "1:\n"                                                                   \
                         "ldrsb r12, [r2, #1]\n"                                                  \
                         "ldrsb lr, [r2, #2]\n"                                                   \
                         "smlabt r11, r12, r5, r10\n"                                             \
                         "smlabb r11, lr, r6, r11\n"                                              \
                         "ldrsb r12, [r2], #" #S "\n"                                             \
                         "ldrsb lr, [r3, #1]\n"                                                   \
                         "smlabb r11, r12, r5, r11\n"                                             \
                         "smlabb r11, lr, r7, r11\n"                                              \
                         "ldrsb r12, [r3, #2]\n"                                                  \
                         "ldrsb lr, [r3], #" #S "\n"                                              \
                         "smlabt r11, r12, r7, r11\n"                                             \
                         "smlabt r11, lr, r6, r11\n"                                              \
                         "ldrsb r12, [r4, #1]\n"                                                  \
                         "ldrsb lr, [r4, #2]\n"                                                   \
                         "smlabt r11, r12, r8, r11\n"                                             \
                         "smlabb r11, lr, r9, r11\n"                                              \
                         "ldrsb r12, [r4], #" #S "\n"                                             \
                         "smlabb r11, r12, r8, r11\n"                                             \
                         "str r11, [r0], #4\n"                                                    \
                         "cmp r0, r1\n"                                                           \
                         "bne 1b\n"                                                               \
                         "pop {r4-r11, pc}\n");                                                   \
    }
TBN_DSP3X3(1)
TBN_DSP3X3(2)

/* Two outputs at a time: one word of a row's inputs x0..x3 gives (x0, x2) and (x1, x3) by
 * SXTB16, and SMLAD adds x0 w0 + x2 w2 to one output; at stride 1 another SMLAD adds
 * x1 w0 + x3 w2 to the next, and w1's taps are one SMLA each (7 instructions a row and pair;
 * 25 a pair where sums3x3_s1 takes 42); at stride 2 the next output's taps are x2, x3 and x4,
 * one SMLA each with x4 loaded alone (9 a row and pair; 31 a pair where sums3x3_s2 takes 42).
 * A row's middle weight is the bottom (H b) or top (H t) half of W1; ACC1 is the next
 * output's sum so far (r11, the zero-point term, on the first row). */
typedef struct {
    const int8_t *a, *b, *d;
    uint32_t w02a, w02b, w02d, w1ab, w1d; /* w0 | w2 << 16 of each row; w1 | w4 << 16; w7 */
    int32_t zneg;
    uint32_t pairs, skip, back; /* a row's pairs; bytes to the next output row's inputs past
                                 * them; bytes acc steps back after a row (a sum for an odd one) */
} dsp3x3_pairs;

#define TBN_PAIR_ROW_S1(R, W, W1, H, ACC1)                                                      \
    "ldr lr, [" R "], #2\n" "sxtb16 r10, lr\n" "sxtb16 lr, lr, ror #8\n"                      \
    "smlad r12, lr, " W ", " ACC1 "\n" "smlad r11, r10, " W ", r11\n"                         \
    "smlab" H " r11, lr, " W1 ", r11\n" "smlat" H " r12, r10, " W1 ", r12\n"
#define TBN_PAIR_ROW_S2(R, W, W1, H, ACC1)                                                      \
    "ldr lr, [" R "], #4\n" "sxtb16 r10, lr\n" "sxtb16 lr, lr, ror #8\n"                      \
    "smlatb r12, r10, " W ", " ACC1 "\n" "smlad r11, r10, " W ", r11\n"                       \
    "smlab" H " r11, lr, " W1 ", r11\n" "smlat" H " r12, lr, " W1 ", r12\n"                   \
    "ldrsb r10, [" R "]\n" "smlabt r12, r10, " W ", r12\n"

/* acc = the window sums of `rows` output rows of 2 * pairs - back / 4 outputs each, one after
 * the other (an odd row's last pair writes one output past it, which the next row's first
 * overwrites: acc has an entry to spare, and the ring a word past its rows). */
#define TBN_PAIRS3X3(NAME, ROW, STORE)                                                          \
    __attribute__((naked, noinline)) static void NAME(TBN_ASM_ARG int32_t *acc, TBN_ASM_ARG uint32_t rows, \
                                                      TBN_ASM_ARG const dsp3x3_pairs *arg) {    \
        __asm__ volatile("push {r4-r11, lr}\n"                                               \
                         "sub sp, sp, #20\n"                                                 \
                         "str r1, [sp, #16]\n"                                               \
                         "add r3, r2, #32\n"                                                 \
                         "ldm r3, {r3-r6}\n" /* zneg pairs skip back */                      \
                         "stm sp, {r3-r6}\n"                                                 \
                         "ldm r2, {r2-r9}\n" /* a b d w02a w02b w02d w1ab w1d */             \
                         "2:\n"                                                              \
                         "ldr r1, [sp, #4]\n"                                                \
                         "1:\n"                                                              \
                         "ldr r11, [sp]\n"                                                   \
                         ROW("r2", "r5", "r8", "b", "r11")                                   \
                         ROW("r3", "r6", "r8", "t", "r12")                                   \
                         ROW("r4", "r7", "r9", "b", "r12")                                   \
                         STORE                                                               \
                         "subs r1, r1, #1\n"                                                 \
                         "bne 1b\n"                                                          \
                         "ldr lr, [sp, #8]\n"                                                \
                         "add r2, r2, lr\n"                                                  \
                         "add r3, r3, lr\n"                                                  \
                         "add r4, r4, lr\n"                                                  \
                         "ldr lr, [sp, #12]\n"                                               \
                         "sub r0, r0, lr\n"                                                  \
                         "ldr lr, [sp, #16]\n"                                               \
                         "subs lr, lr, #1\n"                                                 \
                         "str lr, [sp, #16]\n"                                               \
                         "bne 2b\n"                                                          \
                         "add sp, sp, #20\n"                                                 \
                         "pop {r4-r11, pc}\n");                                              \
    }
/* int32 sums (dense weights), or 16-bit ones (binary: |sum| <= 9 * 255) for the four-at-a-time
 * store; back is then in halfwords */
#define TBN_PAIR_STORE32 "strd r11, r12, [r0], #8\n"
#define TBN_PAIR_STORE16 "pkhbt r11, r11, r12, lsl #16\n" "str r11, [r0], #4\n"
TBN_PAIRS3X3(sums3x3_pairs_s1, TBN_PAIR_ROW_S1, TBN_PAIR_STORE32)
TBN_PAIRS3X3(sums3x3_pairs_s2, TBN_PAIR_ROW_S2, TBN_PAIR_STORE32)
TBN_PAIRS3X3(sums3x3_pairs16_s1, TBN_PAIR_ROW_S1, TBN_PAIR_STORE16)
TBN_PAIRS3X3(sums3x3_pairs16_s2, TBN_PAIR_ROW_S2, TBN_PAIR_STORE16)

static uint32_t pack2(int32_t lo, int32_t hi) { return ((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16); }
#endif

/* acc[i] = sum_j wt[j] * x - zsum for n outputs of one row, output i's window starting at
 * column i * sw of the padded rows r[0..kh) (zsum = zp * sum_j wt[j]: the zero point taken
 * out once). 3x3 windows keep their weights in registers. */
#ifdef TBN_CHANNEL_DSP
/* Windows five wide at stride 1 on a DSP core, two outputs at a time: a row's x0..x7 as (x0, x2),
 * (x1, x3), (x4, x6), (x5, x7) by SXTB16, and with w02 = (w0, w2), w13 = (w1, w3) one SMLAD adds
 * two taps: x0 w0 + x2 w2 and x1 w1 + x3 w3 to the first output, x1 w0 + x3 w2 and (x2, x4) . w13
 * to the second, w4's taps by SMLABB (1.8 instructions a MAC in assembly, where the loop below
 * takes 10). Returns the outputs done (an even count). */
static TBN_NOINLINE uint32_t sums5_pairs(const tbn_op *op, const int8_t *const *r, uint32_t col, const int8_t *wt,
                                         int32_t zsum, int32_t *acc, uint32_t n) {
    uint32_t done = n & ~1u;
    for (uint32_t i = 0; i < done; i++) acc[i] = -zsum;
    for (uint32_t ky = 0; ky < op->kh; ky++) { /* a row's weights stay in registers across its pairs */
        const int8_t *w = wt + 5 * ky, *x = r[ky] + col;
        uint32_t w02 = ((uint32_t)w[0] & 0xFFFFu) | (uint32_t)w[2] << 16;
        uint32_t w13 = ((uint32_t)w[1] & 0xFFFFu) | (uint32_t)w[3] << 16, w4 = (uint32_t)w[4] & 0xFFFFu;
        if (!done) continue;
        int32_t *s = acc, *end = acc + done;
        uint32_t a, b, s0, s1, x02, x13, x46;
        /* 18 instructions a pair of outputs and row (GCC's loop of the same took 28) */
        __asm__ volatile("1:\n"
                         "ldr %[a], [%[x]], #2\n"
                         "ldr %[b], [%[x], #2]\n"
                         "ldrd %[s0], %[s1], [%[s]]\n"
                         "sxtb16 %[x02], %[a]\n"
                         "sxtb16 %[x13], %[a], ror #8\n"
                         "sxtb16 %[x46], %[b]\n"
                         "smlad %[s0], %[x02], %[w02], %[s0]\n"
                         "smlad %[s0], %[x13], %[w13], %[s0]\n"
                         "smlabb %[s0], %[x46], %[w4], %[s0]\n"
                         "smlad %[s1], %[x13], %[w02], %[s1]\n"
                         "lsr %[x02], %[x02], #16\n"
                         "orr %[x02], %[x02], %[x46], lsl #16\n" /* (x2, x4) */
                         "smlad %[s1], %[x02], %[w13], %[s1]\n"
                         "sxtb16 %[b], %[b], ror #8\n"
                         "smlabb %[s1], %[b], %[w4], %[s1]\n"
                         "strd %[s0], %[s1], [%[s]], #8\n"
                         "cmp %[s], %[end]\n"
                         "bne 1b\n"
                         : [x] "+r"(x), [s] "+r"(s), [a] "=&r"(a), [b] "=&r"(b), [s0] "=&r"(s0), [s1] "=&r"(s1),
                           [x02] "=&r"(x02), [x13] "=&r"(x13), [x46] "=&r"(x46)
                         : [end] "r"(end), [w02] "r"(w02), [w13] "r"(w13), [w4] "r"(w4)
                         : "cc", "memory");
    }
    return done;
}
#endif

#ifdef TBN_CHANNEL_DSP
/* Windows of other widths at stride 1 on a DSP core (sww01's 1x10 and 1x15 once turned into
 * rows), two outputs at a time: a kernel row's inputs widened once to 16 bits, so that
 * (x[a], x[a+1]) is one word at h + a, and its weights in pairs (an odd last one beside 0), so
 * one SMLAD adds two taps to an output (about 2 instructions a MAC, where the loop below takes
 * 5). The pairs read one input past an odd window, inside the ring (its rows are padded and
 * its end has a spare word), and weigh it 0. Returns the outputs done (an even count). */
static TBN_NOINLINE uint32_t sums_wide_pairs(const tbn_op *op, const int8_t *const *r, uint32_t col,
                                             const int8_t *wt, int32_t zsum, int32_t *acc, uint32_t n) {
    uint32_t kw = op->kw, done = n & ~1u, pairs = (kw + 1u) / 2u, len = done + 2u * pairs - 1u;
    int16_t h[TBN_CHANNEL_CHUNK + TBN_CHANNEL_MAX_TAPS + 1];
    uint32_t wp[TBN_CHANNEL_MAX_TAPS / 2 + 1];
    if (!done) return 0; /* one output: the loop's */
    for (uint32_t i = 0; i < done; i++) acc[i] = -zsum;
    for (uint32_t ky = 0; ky < op->kh; ky++) {
        const int8_t *x = r[ky] + col, *w = wt + ky * kw;
        for (uint32_t j = 0; j < len; j++) h[j] = x[j];
        for (uint32_t t = 0; t < pairs; t++) wp[t] = pack2(w[2 * t], 2 * t + 1 < kw ? w[2 * t + 1] : 0);
        for (uint32_t i = 0; i < done; i += 2) {
            int32_t s0 = acc[i], s1 = acc[i + 1];
            const int16_t *q = h + i;
            for (uint32_t t = 0; t < pairs; t++, q += 2) {
                uint32_t a, b;
                memcpy(&a, q, 4), memcpy(&b, q + 1, 4);
                s0 = __smlad(a, wp[t], s0), s1 = __smlad(b, wp[t], s1);
            }
            acc[i] = s0, acc[i + 1] = s1;
        }
    }
    return done;
}
#endif

static TBN_NOINLINE void sums_i8(const tbn_op *op, const int8_t *const *r, uint32_t col, const int8_t *wt,
                                 int32_t zsum, int32_t *acc, uint32_t n) {
    uint32_t sw = op->sw;
#ifndef TBN_CHANNEL_DSP /* DSP cores take the assembly (the other strides take the loop below) */
    if (op->kh == 3 && op->kw == 3 && op->dw == 1) {
        const int8_t *a = r[0] + col, *b = r[1] + col, *d = r[2] + col;
        int32_t w0 = wt[0], w1 = wt[1], w2 = wt[2], w3 = wt[3], w4 = wt[4], w5 = wt[5], w6 = wt[6], w7 = wt[7],
                w8 = wt[8];
        for (int32_t *end = acc + n; acc < end; acc++, a += sw, b += sw, d += sw)
            *acc = w0 * a[0] + w1 * a[1] + w2 * a[2] + w3 * b[0] + w4 * b[1] + w5 * b[2] + w6 * d[0] + w7 * d[1] +
                   w8 * d[2] - zsum;
        return;
    }
#endif
    uint32_t i = 0;
#ifdef TBN_CHANNEL_DSP
    if (op->kw == 5 && op->dw == 1 && sw == 1) i = sums5_pairs(op, r, col, wt, zsum, acc, n);
    else if (op->kw >= 2 && op->dw == 1 && sw == 1) i = sums_wide_pairs(op, r, col, wt, zsum, acc, n);
#endif
    for (; i < n; i++) {
        int32_t s = -zsum;
        const int8_t *w = wt;
        for (uint32_t ky = 0; ky < op->kh; ky++) {
            const int8_t *x = r[ky] + col + i * sw;
            for (uint32_t kx = 0; kx < op->kw; kx++, x += op->dw) s += *w++ * *x;
        }
        acc[i] = s;
    }
}

static TBN_NOINLINE void sums_f32(const tbn_op *op, const float *const *r, uint32_t col, const float *wt, float *acc,
                                  uint32_t n) {
    uint32_t sw = op->sw;
    for (uint32_t i = 0; i < n; i++) {
        float s = 0.0f;
        const float *w = wt;
        for (uint32_t ky = 0; ky < op->kh; ky++) {
            const float *x = r[ky] + col + i * sw;
            for (uint32_t kx = 0; kx < op->kw; kx++, x += op->dw) s += *w++ * *x;
        }
        acc[i] = s;
    }
}

/* One output channel's INT8 requantisation, its parameters read once (requant_parts and
 * requant16_parts with every value in a register). */
typedef struct {
    int fast; /* REQUANT with a shift over 32: the high word of one multiply, rounded */
    int32_t bias, mult, shift, half;
    mm_epilogue e;
} chan_rq;

static void chan_rq_init(chan_rq *q, const mm_ctx *c, uint32_t ch) {
    q->e = c->ep;
    const TBN_ROM uint8_t *rq = q->e.scale + ch * q->e.scale_stride;
    q->bias = bias_i32(&q->e, ch);
    q->mult = q->e.rq16 ? (int16_t)tbn_rd16(rq) : tbn_rds32(rq);
    q->shift = q->e.rq16 ? 0 : tbn_rds32(rq + 4) - 32;
    /* |acc| < K * 128 * 256 (K <= TBN_CHANNEL_MAX_TAPS): with |bias| < 2^30 the sum fits */
    q->fast = !q->e.rq16 && q->shift >= 1 && q->shift < 31 && q->bias > -(1L << 30) && q->bias < (1L << 30);
    q->half = q->fast ? (int32_t)1 << (q->shift - 1) : 0;
}

#ifdef TBN_CHANNEL_DSP
typedef struct {
    const void *acc, *end; /* int32_t, or int16_t for rq16_chan16 */
    int8_t *out;
    int32_t bias_half, pre_shift, mult, half, shift, zp, qmin;
} rq16_chan_args;

/* The assembly's arguments for n sums at acc of one channel with this bias and multiplier (the
 * first rounding term added to the bias: the sum the C code forms, in another order). */
static rq16_chan_args chan_args(const mm_epilogue *e, const void *acc, const void *end, int8_t *out, int32_t bias,
                                int32_t mult) {
    rq16_chan_args a = {acc, end, out, (int32_t)((uint32_t)bias + (uint32_t)e->pre_half), (int32_t)e->pre_shift,
                        mult, e->half, (int32_t)e->shift, e->zp, e->qmin};
    return a;
}

/* The RQ16 store of one channel of qmax 127 (bias and the first rounding term one constant,
 * SSAT for the top; CLAMP the bottom, where qmin is not -128): 13 instructions an output, 10
 * without CLAMP. LOAD reads a sum: int32 (this kernel's) or int16 (tbn_conv_quads.c's). */
#define TBN_RQ16_CHAN(NAME, LOAD, CLAMP)                                                        \
    __attribute__((naked, noinline)) static void NAME(TBN_ASM_ARG const rq16_chan_args *a) {  \
        __asm__ volatile("push {r4-r9, lr}\n"                                                \
                         "ldm r0, {r0-r9}\n" /* acc end out bias_half pre mult half shift zp lo */ \
                         "1:\n"                                                              \
                         LOAD "\n"                                                           \
                         "add r12, r12, r3\n"                                                \
                         "asr r12, r12, r4\n"                                                \
                         "mla r12, r12, r5, r6\n"                                            \
                         "asr r12, r12, r7\n"                                                \
                         "add r12, r12, r8\n"                                                \
                         "ssat r12, #8, r12\n"                                               \
                         CLAMP                                                               \
                         "strb r12, [r2], #1\n"                                              \
                         "cmp r0, r1\n"                                                      \
                         "bne 1b\n"                                                          \
                         "pop {r4-r9, pc}\n");                                               \
    }
#define TBN_RQ_CLAMP "cmp r12, r9\n" "it lt\n" "movlt r12, r9\n"
TBN_RQ16_CHAN(rq16_chan_thumb2, "ldr r12, [r0], #4", TBN_RQ_CLAMP)
TBN_RQ16_CHAN(rq16_chan_ssat_thumb2, "ldr r12, [r0], #4", "")
TBN_RQ16_CHAN(rq16_chan16_thumb2, "ldrsh r12, [r0], #2", TBN_RQ_CLAMP)
TBN_RQ16_CHAN(rq16_chan16_ssat_thumb2, "ldrsh r12, [r0], #2", "")

/* RQ16 of int16 sums four at a time where the first shift is 0 and the outputs span -128..127:
 * (s + corr + bias) * mult + half + (zp << shift) is s * mult (SMLABB/SMLATB on a word of two
 * sums) plus one constant, so an output is a multiply-add, a shift, SSAT and a store. */
typedef struct {
    const int16_t *acc, *end; /* acc 4-byte aligned, end - acc a multiple of 4 */
    int8_t *out;
    int32_t add, mult, shift;
} rq16_quads_args;

__attribute__((naked, noinline)) static void rq16_quads_thumb2(TBN_ASM_ARG const rq16_quads_args *a) {
    __asm__ volatile("push {r4-r9, lr}\n"
                     "ldm r0, {r0-r5}\n" /* acc end out add mult shift */
                     "1:\n"
                     "ldrd r7, r8, [r0], #8\n"
                     "smlabb r9, r7, r4, r3\n"
                     "smlatb r7, r7, r4, r3\n"
                     "smlabb r12, r8, r4, r3\n"
                     "smlatb r8, r8, r4, r3\n"
                     "asr r9, r9, r5\n" "asr r7, r7, r5\n"
                     "asr r12, r12, r5\n" "asr r8, r8, r5\n"
                     "ssat r9, #8, r9\n" "ssat r7, #8, r7\n"
                     "ssat r12, #8, r12\n" "ssat r8, #8, r8\n"
                     "strb r9, [r2]\n" "strb r7, [r2, #1]\n"
                     "strb r12, [r2, #2]\n" "strb r8, [r2, #3]\n"
                     "adds r2, r2, #4\n"
                     "cmp r0, r1\n"
                     "bne 1b\n"
                     "pop {r4-r9, pc}\n");
}

#endif

static TBN_NOINLINE void store_chan_i8(const chan_rq *q, const int32_t *acc, uint32_t n, int8_t *out) {
    int32_t bias = q->bias, mult = q->mult, zp = q->e.zp, lo = q->e.qmin, hi = q->e.qmax;
    const int32_t *end = acc + n;
#ifdef TBN_CHANNEL_DSP
    if (q->e.rq16 && hi == 127 && n) {
        rq16_chan_args a = chan_args(&q->e, acc, end, out, bias, mult);
        (lo == -128 ? rq16_chan_ssat_thumb2 : rq16_chan_thumb2)(&a);
        return;
    }
#endif
    if (q->e.rq16) { /* the loader checked that it stays in 32 bits */
        int32_t pre_half = q->e.pre_half, half = q->e.half;
        uint32_t pre = q->e.pre_shift, shift = q->e.shift;
        for (; acc < end; acc++, out++) {
            int32_t z = zp + tbn_rshift_round32(tbn_rshift_round32(*acc + bias, pre_half, pre) * mult, half, shift);
            *out = (int8_t)(z < lo ? lo : (z > hi ? hi : z));
        }
    } else if (q->fast) {
        int32_t half = q->half;
        uint32_t t = (uint32_t)q->shift;
        for (; acc < end; acc++, out++) {
            int32_t z = zp + tbn_rshift_round32((int32_t)(((int64_t)(*acc + bias) * mult) >> 32), half, t);
            *out = (int8_t)(z < lo ? lo : (z > hi ? hi : z));
        }
    } else {
        for (; acc < end; acc++, out++) *out = requant_parts(&q->e, *acc, bias, mult, q->shift + 32);
    }
}

/* Whether a channel's INT8 store skips chan_rq (RQ16 with a top of 127, on DSP cores: the
 * assembly with the channel's bias and multiplier read at once), so none need be set up. */
static int store_row_lean(const mm_ctx *c) {
#ifdef TBN_CHANNEL_DSP
    return c->ep.rq16 && c->ep.qmax == 127;
#else
    (void)c;
    return 0;
#endif
}

#ifdef TBN_CHANNEL_DSP
/* RQ16 with qmax 127 (what the compiler gives INT8 convs): each channel's store in assembly,
 * its bias and multiplier read from the file and the rest the op's, with no chan_rq (about 150
 * instructions a call, most of a 3x3 map's nine outputs). */
static void store16_rq16(const mm_ctx *c, uint32_t ch, uint32_t rows, const int16_t *acc, int32_t corr,
                         uint32_t n, int8_t *out) {
    const mm_epilogue *e = &c->ep;
    int quads = !e->pre_shift && e->qmin == -128 && e->shift <= 22 && !((uintptr_t)acc & 3u);
    uint32_t n4 = quads ? n & ~3u : 0u;
    int64_t zp_term = (int64_t)e->half + (int64_t)e->zp * ((int64_t)1 << e->shift);
    for (uint32_t o = ch; o < c->o; o += rows, out += (size_t)rows * c->npix) {
        int32_t bias = bias_i32(e, o), mult = (int16_t)tbn_rd16(e->scale + o * e->scale_stride);
        int64_t add = ((int64_t)bias + corr) * mult + zp_term; /* rq16_quads' constant */
        uint32_t done = 0;
        if (n4 && add >= -(1LL << 30) && add <= (1LL << 30)) {
            rq16_quads_args a = {acc, acc + n4, out, (int32_t)add, mult, (int32_t)e->shift};
            rq16_quads_thumb2(&a);
            done = n4;
        }
        if (done < n) {
            rq16_chan_args a = chan_args(e, acc + done, acc + n, out + done,
                                         (int32_t)((uint32_t)bias + (uint32_t)corr), mult);
            (e->qmin == -128 ? rq16_chan16_ssat_thumb2 : rq16_chan16_thumb2)(&a);
        }
    }
}
#endif

/* n int16 sums, each plus corr, of distinct row ch stored at output index `at` of channel ch and
 * of every channel ch + k * rows that shares its row (tbn_conv_quads.c's store). */
void tbn_chan_store16_i8(const mm_ctx *c, uint32_t ch, uint32_t rows, const int16_t *acc, int32_t corr, uint32_t n,
                         uint32_t at) {
    int8_t *out = (int8_t *)c->dst + (size_t)ch * c->npix + at;
#ifdef TBN_CHANNEL_DSP
    if (store_row_lean(c)) {
        store16_rq16(c, ch, rows, acc, corr, n, out);
        return;
    }
#endif
    chan_rq q;
    for (uint32_t o = ch; o < c->o; o += rows, out += (size_t)rows * c->npix) {
        chan_rq_init(&q, c, o);
        for (uint32_t i = 0; i < n; i += TBN_CHANNEL_CHUNK) {
            int32_t wide[TBN_CHANNEL_CHUNK];
            uint32_t m = n - i < TBN_CHANNEL_CHUNK ? n - i : TBN_CHANNEL_CHUNK;
            for (uint32_t j = 0; j < m; j++) wide[j] = acc[i + j] + corr;
            store_chan_i8(&q, wide, m, out + i);
        }
    }
}

/* Store n F32 sums of output channel ch (and, with tile reuse, of the channels ch + k * rows
 * that share its row) at out. */
static TBN_NOINLINE void store_sums_f32(const mm_ctx *c, uint32_t ch, uint32_t rows, const float *acc, uint32_t n,
                                        float *out) {
    mm_epilogue e = c->ep;
    for (uint32_t o = c->o, step = rows * c->npix; ch < o; ch += rows, out += step) {
        float s = c->per_rep ? tbn_vector_f32(&c->scale, (ch * c->k) / c->tile.n_bits) : 1.0f;
        for (uint32_t i = 0; i < n; i++) out[i] = finish_f32(&e, ch, c->per_rep ? acc[i] * s : acc[i]);
    }
}

/* The padded rows of output row oy's windows, filled where they are not yet. */
static void window_rows(ring *rg, const mm_ctx *c, const uint8_t *plane, uint32_t oy, const uint8_t **r) {
    const tbn_op *op = c->op;
    uint32_t y0 = oy * op->sh;
    if (rg->resident) { /* rows at a fixed stride: no fill, no modulo */
        uint32_t step = op->dh * rg->len * rg->esize;
        r[0] = rg->buf.bytes + y0 * rg->len * rg->esize;
        for (uint32_t ky = 1; ky < op->kh; ky++) r[ky] = r[ky - 1] + step;
        return;
    }
    ring_fill(rg, c, plane, y0 + (op->kh - 1u) * op->dh);
    for (uint32_t ky = 0; ky < op->kh; ky++) r[ky] = ring_slot(rg, y0 + ky * op->dh);
}

/* A new input plane: the ring starts empty, or, resident, holds all of it: its padding, the
 * same for every channel, written once an op, then each input row copied in place (newlib's
 * memcpy took about 90 instructions for DS-CNN's rows of 5 and a word-then-bytes loop 27: rows
 * of 4 to 16 bytes are four words from both ends, overlapping, about 13). */
static void ring_start(ring *rg, const mm_ctx *c, const uint8_t *plane) {
    rg->filled = 0;
    if (!rg->resident || rg->plane == plane) return;
    if (!rg->padded) {
        ring_fill(rg, c, plane, rg->n - 1u);
        rg->padded = 1;
        rg->plane = plane;
        return;
    }
    rg->plane = plane;
    uint32_t es = rg->esize, row = c->w * es, len = rg->len * es;
    uint8_t *dst = rg->buf.bytes + (uint32_t)c->op->pt * len + (uint32_t)c->op->pl * es;
#if defined(__ARM_FEATURE_UNALIGNED) /* rows of 4 to 16 bytes: words from both ends, overlapping */
    if (row >= 4u && row <= 16u) {
        uint32_t tail = row - 4u, mid = row > 8u ? 4u : 0u, mid2 = row > 12u ? 8u : mid, h = c->h;
        for (uint32_t iy = 0; iy < h; iy++, dst += len, plane += row) { /* h in a local: stores alias */
            uint32_t a, b, m, m2;
            memcpy(&a, plane, 4u), memcpy(&m, plane + mid, 4u), memcpy(&m2, plane + mid2, 4u);
            memcpy(&b, plane + tail, 4u);
            memcpy(dst, &a, 4u), memcpy(dst + mid, &m, 4u), memcpy(dst + mid2, &m2, 4u);
            memcpy(dst + tail, &b, 4u);
        }
        return;
    }
#endif
    for (uint32_t iy = 0; iy < c->h; iy++, dst += len, plane += row) {
        if (row >= 16u) memcpy(dst, plane, row);
        else
            for (uint32_t i = 0; i < row; i++) dst[i] = plane[i];
    }
}

/* n sums of distinct row ch stored at output index `at` of channel ch and, with tile reuse,
 * of every channel ch + k * rows that shares its row (q is ch's requantisation after). */
static void store_row_i8(const mm_ctx *c, chan_rq *q, uint32_t ch, uint32_t rows, const int32_t *acc, uint32_t n,
                         uint32_t at) {
    int8_t *out = (int8_t *)c->dst + (size_t)ch * c->npix + at;
#ifdef TBN_CHANNEL_DSP
    const mm_epilogue *e = &c->ep;
    if (store_row_lean(c)) { /* q is not set */
        if (!n) return;
        for (uint32_t o = ch; o < c->o; o += rows, out += (size_t)rows * c->npix) {
            rq16_chan_args a = chan_args(e, acc, acc + n, out, bias_i32(e, o),
                                         (int16_t)tbn_rd16(e->scale + o * e->scale_stride));
            (e->qmin == -128 ? rq16_chan_ssat_thumb2 : rq16_chan_thumb2)(&a);
        }
        return;
    }
#endif
    for (uint32_t o = ch; o < c->o; o += rows) {
        if (o != ch) chan_rq_init(q, c, o);
        store_chan_i8(q, acc, n, out + (size_t)(o - ch) * c->npix);
    }
    if (rows != c->o) chan_rq_init(q, c, ch);
}

void tbn_chan_store32_i8(const mm_ctx *c, uint32_t ch, uint32_t rows, const int32_t *acc, uint32_t n, uint32_t at) {
    chan_rq q;
    if (!store_row_lean(c)) chan_rq_init(&q, c, ch);
    store_row_i8(c, &q, ch, rows, acc, n, at);
}

#ifdef TBN_CHANNEL_DSP
#define PAIRS_MAX_OUT 128 /* outputs a store and a call of sums3x3_pairs*, and the widest row */
/* A 3x3 conv at stride 1 or 2 on a DSP core: two outputs at a time, and with every padded
 * row in the ring (rows equally spaced) as many output rows a call as PAIRS_MAX_OUT holds;
 * either way that many rows are stored at once.
 * Binary weights' sums fit 16 bits and take tbn_chan_store16_i8 (5 instructions an output where
 * it applies, against 13). */
static void channel_i8_pairs(const mm_ctx *c, ring *rg, uint32_t ch, uint32_t rows, const int8_t *wt,
                             int32_t zsum) {
    const tbn_op *op = c->op;
    const uint8_t *plane = c->src + (size_t)(ch / c->og) * c->h * c->w;
    uint32_t wo = c->wo, per = rg->resident ? PAIRS_MAX_OUT / wo : 1u, pairs = (wo + 1u) / 2u;
    uint32_t half = c->tiled ? 2u : 4u; /* bytes a sum */
    dsp3x3_pairs arg = {0, 0, 0, pack2(wt[0], wt[2]), pack2(wt[3], wt[5]), pack2(wt[6], wt[8]),
                        pack2(wt[1], wt[4]), (uint32_t)wt[7], -zsum, pairs,
                        (uint32_t)op->sh * rg->len - 2u * op->sw * pairs, half * (2u * pairs - wo)};
    union {
        int32_t w[PAIRS_MAX_OUT + 1];
        int16_t h[PAIRS_MAX_OUT + 2];
    } acc;
    ring_start(rg, c, plane);
    for (uint32_t oy = 0, n; oy < c->ho; oy += n) { /* n rows stored at once, k a call */
        n = c->ho - oy < PAIRS_MAX_OUT / wo ? c->ho - oy : PAIRS_MAX_OUT / wo;
        for (uint32_t done = 0, k; done < n; done += k) {
            const uint8_t *r[MAX_ROWS];
            k = n - done < per ? n - done : per;
            window_rows(rg, c, plane, oy + done, r);
            arg.a = (const int8_t *)r[0], arg.b = (const int8_t *)r[1], arg.d = (const int8_t *)r[2];
            if (c->tiled) /* the asm takes an int32_t pointer either way */
                (op->sw == 1 ? sums3x3_pairs16_s1 : sums3x3_pairs16_s2)((int32_t *)(void *)(acc.h + done * wo), k,
                                                                         &arg);
            else
                (op->sw == 1 ? sums3x3_pairs_s1 : sums3x3_pairs_s2)(acc.w + done * wo, k, &arg);
        }
        if (c->tiled) tbn_chan_store16_i8(c, ch, rows, acc.h, 0, n * wo, oy * wo);
        else tbn_chan_store32_i8(c, ch, rows, acc.w, n * wo, oy * wo);
    }
}
#endif

/* One INT8 output channel (a distinct row of the tile), every output row from the ring. */
static void channel_i8(const mm_ctx *c, ring *rg, uint32_t ch, uint32_t rows) {
    const tbn_op *op = c->op;
    const uint8_t *plane = c->src + (size_t)(ch / c->og) * c->h * c->w;
    int8_t wt[TBN_CHANNEL_MAX_TAPS + 3];
    int32_t zsum = row_weights(c, ch, wt) * c->in_zp;
    chan_rq q;
#ifdef TBN_CHANNEL_DSP
    int dsp = op->kh == 3 && op->kw == 3 && op->dw == 1 && (op->sw == 1 || op->sw == 2);
    if (dsp && c->wo <= PAIRS_MAX_OUT) {
        channel_i8_pairs(c, rg, ch, rows, wt, zsum);
        return;
    }
#endif
    if (!store_row_lean(c)) chan_rq_init(&q, c, ch);
#ifdef TBN_CHANNEL_DSP
    dsp3x3 arg = {0, 0, 0, pack2(wt[0], wt[1]), pack2(wt[2], wt[3]), pack2(wt[4], wt[5]), pack2(wt[6], wt[7]),
                  (uint32_t)wt[8], -zsum};
#endif
    /* sums fill acc in output order across rows (a row's outputs follow the last row's), so a
     * narrow map stores once per TBN_CHANNEL_CHUNK outputs, not once a row */
    int32_t acc[TBN_CHANNEL_CHUNK];
    uint32_t used = 0, done = 0;
    ring_start(rg, c, plane);
    for (uint32_t oy = 0; oy < c->ho; oy++) {
        const uint8_t *r[MAX_ROWS];
        window_rows(rg, c, plane, oy, r);
        for (uint32_t ox = 0; ox < c->wo;) {
            uint32_t n = c->wo - ox < TBN_CHANNEL_CHUNK - used ? c->wo - ox : TBN_CHANNEL_CHUNK - used;
            uint32_t col = ox * op->sw;
#ifdef TBN_CHANNEL_DSP
            if (dsp) {
                arg.a = (const int8_t *)r[0] + col, arg.b = (const int8_t *)r[1] + col;
                arg.d = (const int8_t *)r[2] + col;
                (op->sw == 1 ? sums3x3_s1 : sums3x3_s2)(acc + used, acc + used + n, &arg);
            } else
#endif
                sums_i8(op, (const int8_t *const *)r, col, wt, zsum, acc + used, n);
            used += n, ox += n;
            if (used < TBN_CHANNEL_CHUNK && (ox < c->wo || oy + 1 < c->ho)) continue;
            store_row_i8(c, &q, ch, rows, acc, used, done);
            done += used, used = 0;
        }
    }
}

static void channel_f32(const mm_ctx *c, ring *rg, uint32_t ch, uint32_t rows) {
    const tbn_op *op = c->op;
    const uint8_t *plane = c->src + (size_t)(ch / c->og) * c->h * c->w * 4u;
    float *out = (float *)(void *)c->dst + (size_t)ch * c->npix, wf[TBN_CHANNEL_MAX_TAPS];
    int8_t wt[TBN_CHANNEL_MAX_TAPS + 3];
    row_weights(c, ch, wt);
    for (uint32_t j = 0; j < c->k; j++) wf[j] = (float)wt[j];
    ring_start(rg, c, plane);
    for (uint32_t oy = 0; oy < c->ho; oy++) {
        const uint8_t *r[MAX_ROWS];
        window_rows(rg, c, plane, oy, r);
        for (uint32_t ox = 0; ox < c->wo; ox += TBN_CHANNEL_CHUNK) {
            uint32_t n = c->wo - ox < TBN_CHANNEL_CHUNK ? c->wo - ox : TBN_CHANNEL_CHUNK;
            float acc[TBN_CHANNEL_CHUNK];
            sums_f32(op, (const float *const *)(const void *)r, ox * op->sw, wf, acc, n);
            store_sums_f32(c, ch, rows, acc, n, out + oy * c->wo + ox);
        }
    }
}

void tbn_mm_eval_channel(const mm_ctx *c, uint32_t rows) {
    ring rg;
    rg.esize = TBN_INT8(c->int8) ? 1u : 4u;
    rg.len = (uint32_t)c->op->pl + c->w + c->op->pr;
    uint32_t fit = TBN_CHANNEL_RING_BYTES / (rg.len * rg.esize), all = (uint32_t)c->op->pt + c->h + c->op->pb;
    rg.resident = fit >= all;
    rg.padded = 0;
    rg.plane = NULL;
    rg.n = rg.resident ? all : ring_rows(c->op); /* tbn_mm_channel_ok checked that the latter fits */
    uint32_t distinct = rows && c->op->groups == 1 ? rows : c->o;
    for (uint32_t ch = 0; ch < distinct; ch++) {
        if (TBN_INT8(c->int8)) channel_i8(c, &rg, ch, distinct);
        else channel_f32(c, &rg, ch, distinct);
    }
}
#endif /* TBN_CHANNEL_KERNEL */
