/* The quad kernel of INT8 tiled convs of few rows or inputs on DSP cores: pointwise convs (1x1,
 * stride 1, no padding) and convs with a window at stride 1 or 2.
 *
 * A conv's input is channel planes, so one word of a plane holds four consecutive positions of
 * one input channel. A binary weight only adds or subtracts that channel: with m = 0 for +1
 * and all ones for -1, x ^ m is x or -x - 1 in each byte, and SXTAB16 adds bytes 0 and 2 (or,
 * rotated, 1 and 3) of it to two 16-bit sums. Four sums then cost a load, an EOR and two
 * SXTAB16 an input (eight sums, two inputs: 21 instructions), with no per-position set-up; the
 * -1 of each negative weight and the zero point's term are one constant a row, added at the
 * store. The table kernel builds its tables per position (two positions a build), which for
 * few rows or inputs costs more than the sums it saves (docs/c-runtime.md gives the figures).
 *
 * Rows are taken one at a time (their masks computed once), positions in blocks whose 16-bit
 * sums each channel sharing the row stores (tbn_chan_store16_i8). |sum| <= 128 k fits 16 bits
 * for k <= 255. Which ops it takes: tbn.format.spec, QUAD_*. */
#include "tbn_matmul.h"
#if TBN_QUAD_KERNEL

#define QUAD_BLOCK 128 /* positions a block: their int16 sums on the stack */

/* Row r's masks (0 for a +1 weight, -1 for -1; the tile holds whole rows, so row r is bits
 * r * k .. r * k + k - 1) and the constant its sums of x ^ m take at the store:
 * sum_j w_j (x_j - zp) = sum_j (x_j ^ m_j) + neg - zp * (k - 2 neg), neg the -1 weights. */
static int32_t row_signs(const mm_ctx *c, uint32_t r, int8_t *m) {
    uint32_t neg = 0, k = c->k, pos = r * k;
    for (uint32_t j = 0; j < k; j++, pos++) {
        uint32_t bit = bits_at(c->tile.bits, pos, 1) & 1u;
        m[j] = (int8_t)(bit - 1u);
        neg += 1u - bit;
    }
    return (int32_t)neg - c->in_zp * ((int32_t)k - 2 * (int32_t)neg);
}

/* What sums_octets reads; it advances x and acc a group at a time. */
typedef struct {
    const int8_t *x; /* the first input plane at the block's first position */
    uint32_t npix;   /* bytes from one plane to the next */
    const uint32_t *m;
    uint32_t pairs, odd; /* k / 2 and k % 2 */
    int16_t *acc;        /* 4-byte aligned */
    uint32_t groups;     /* groups of 8 positions, at least 1 */
} octets_args;

/* One input: its mask in M, its 8 positions' words in r8, r9; sums (0, 2), (1, 3), (4, 6), (5, 7)
 * in r4..r7 */
#define TBN_OCT_INPUT(W0, W1, M)                                                                 \
    "eor " W0 ", " W0 ", " M "\n" "eor " W1 ", " W1 ", " M "\n"                                   \
    "sxtab16 r4, r4, " W0 "\n" "sxtab16 r5, r5, " W0 ", ror #8\n"                                \
    "sxtab16 r6, r6, " W1 "\n" "sxtab16 r7, r7, " W1 ", ror #8\n"

/* acc = sum_j (x_j ^ m_j) at 8 positions a group: two inputs a step, 21 instructions for 16
 * sums (an odd input first, alone), then the sums stored in position order. */
__attribute__((naked, noinline)) static void sums_octets(TBN_ASM_ARG octets_args *a) {
    __asm__ volatile("push {r4-r11, lr}\n"
                     "sub sp, sp, #8\n"
                     "str r0, [sp]\n"
                     "ldr r1, [r0, #24]\n"
                     "str r1, [sp, #4]\n"
                     "2:\n"
                     "ldr lr, [sp]\n"
                     "ldm lr, {r0-r3}\n" /* x npix m pairs */
                     "ldr r12, [lr, #16]\n"
                     "movs r4, #0\n" "movs r5, #0\n" "movs r6, #0\n" "movs r7, #0\n"
                     "cmp r12, #0\n"
                     "beq 3f\n"
                     "ldr r12, [r2], #4\n"
                     "ldr r8, [r0]\n" "ldr r9, [r0, #4]\n" "add r0, r0, r1\n"
                     TBN_OCT_INPUT("r8", "r9", "r12")
                     "3:\n"
                     "cmp r3, #0\n"
                     "beq 4f\n"
                     "1:\n"
                     "ldrd r12, lr, [r2], #8\n"
                     "ldr r8, [r0]\n" "ldr r9, [r0, #4]\n" "add r0, r0, r1\n"
                     "ldr r10, [r0]\n" "ldr r11, [r0, #4]\n" "add r0, r0, r1\n"
                     TBN_OCT_INPUT("r8", "r9", "r12")
                     TBN_OCT_INPUT("r10", "r11", "lr")
                     "subs r3, r3, #1\n"
                     "bne 1b\n"
                     "4:\n"
                     "ldr lr, [sp]\n"
                     "ldr r12, [lr, #20]\n"
                     "pkhbt r8, r4, r5, lsl #16\n"
                     "pkhtb r9, r5, r4, asr #16\n"
                     "pkhbt r10, r6, r7, lsl #16\n"
                     "pkhtb r11, r7, r6, asr #16\n"
                     "stm r12!, {r8-r11}\n"
                     "str r12, [lr, #20]\n"
                     "ldr r0, [lr]\n"
                     "adds r0, r0, #8\n"
                     "str r0, [lr]\n"
                     "ldr r0, [sp, #4]\n"
                     "subs r0, r0, #1\n"
                     "str r0, [sp, #4]\n"
                     "bne 2b\n"
                     "add sp, sp, #8\n"
                     "pop {r4-r11, pc}\n");
}

/* acc[i] = sum_j (x_j[i] ^ m_j) for positions [from, n) one at a time (a block's last, fewer
 * than 8). */
static void sums_tail(const int8_t *x, uint32_t npix, const uint32_t *m, uint32_t k, int16_t *acc, uint32_t from,
                      uint32_t n) {
    for (uint32_t i = from; i < n; i++) {
        int32_t s = 0;
        for (uint32_t j = 0; j < k; j++) s += (int8_t)((uint8_t)x[j * npix + i] ^ (uint8_t)m[j]);
        acc[i] = (int16_t)s;
    }
}

/* Convs with a window (any kh x kw, stride 1 or 2, padding): each output row's input rows,
 * every input channel's, are staged padded (the zero point) in one buffer, channel c's row ky
 * at (c kh + ky) len, so that a tap (c, ky, kx) is one offset from a group's first column.
 * Eight positions a group take two words a tap at stride 1, four at stride 2 (the even bytes of
 * each: SXTAB16 without rotation). Windows three wide (3x3, 1x3) walk the staged rows, their
 * three taps at fixed offsets (10 instructions a tap at stride 1, 14 at stride 2); others read a
 * tap as (mask byte, offset) (13 and 17). */
typedef struct {
    const int8_t *x;        /* the stage at the group's first input column; advanced a group */
    const int8_t *m, *mend; /* the row's masks: 0 or -1 a tap, three-wide a kernel row's bits */
    uintptr_t off;          /* the taps' offsets in the stage (int16_t *), or rows3's staged row length */
    int16_t *acc;           /* 4-byte aligned; advanced a group */
    uint32_t groups;        /* at least 1 */
} taps_args;

#define TBN_TAPS_S1(A, B)                                                                        \
    "ldr r8, [r1, #" #A "]\n" "ldr r9, [r1, #" #B "]\n"                                          \
    "eor r8, r8, r12\n" "eor r9, r9, r12\n"                                                      \
    "sxtab16 r4, r4, r8\n" "sxtab16 r5, r5, r8, ror #8\n"                                        \
    "sxtab16 r6, r6, r9\n" "sxtab16 r7, r7, r9, ror #8\n"
#define TBN_TAPS_S2(A, B, C, D)                                                                  \
    "ldr r8, [r1, #" #A "]\n" "ldr r9, [r1, #" #B "]\n"                                          \
    "ldr r10, [r1, #" #C "]\n" "ldr r11, [r1, #" #D "]\n"                                        \
    "eor r8, r8, r12\n" "eor r9, r9, r12\n" "eor r10, r10, r12\n" "eor r11, r11, r12\n"          \
    "sxtab16 r4, r4, r8\n" "sxtab16 r5, r5, r9\n" "sxtab16 r6, r6, r10\n" "sxtab16 r7, r7, r11\n"
/* stride 1: sums (0, 2), (1, 3), (4, 6), (5, 7) put in order; stride 2: (0, 1) .. (6, 7) */
#define TBN_TAPS_ORDER_S1                                                                        \
    "pkhbt r8, r4, r5, lsl #16\n" "pkhtb r9, r5, r4, asr #16\n"                                  \
    "pkhbt r10, r6, r7, lsl #16\n" "pkhtb r11, r7, r6, asr #16\n" "stm r12!, {r8-r11}\n"
#define TBN_TAPS_ORDER_S2 "stm r12!, {r4-r7}\n"

/* The loop over groups of eight positions around BODY, which sums one group's taps into
 * r4..r7 from r0 (x), r2 (m), r3 (mend) and lr (off), and may use r1, r8-r12. */
#define TBN_TAPS(NAME, BODY, STORE, STEP)                                                        \
    __attribute__((naked, noinline)) static void NAME(TBN_ASM_ARG taps_args *a) {               \
        __asm__ volatile("push {r4-r11, lr}\n"                                                  \
                         "sub sp, sp, #8\n"                                                     \
                         "str r0, [sp]\n"                                                       \
                         "ldr r1, [r0, #20]\n"                                                  \
                         "str r1, [sp, #4]\n"                                                   \
                         "2:\n"                                                                 \
                         "ldr lr, [sp]\n"                                                       \
                         "ldm lr, {r0, r2, r3, lr}\n" /* x m mend off */                        \
                         "movs r4, #0\n" "movs r5, #0\n" "movs r6, #0\n" "movs r7, #0\n"        \
                         BODY                                                                   \
                         "ldr lr, [sp]\n"                                                       \
                         "ldr r12, [lr, #16]\n"                                                 \
                         STORE                                                                  \
                         "str r12, [lr, #16]\n"                                                 \
                         "ldr r0, [lr]\n"                                                       \
                         "adds r0, r0, #" #STEP "\n"                                            \
                         "str r0, [lr]\n"                                                       \
                         "ldr r0, [sp, #4]\n"                                                   \
                         "subs r0, r0, #1\n"                                                    \
                         "str r0, [sp, #4]\n"                                                   \
                         "bne 2b\n"                                                             \
                         "add sp, sp, #8\n"                                                     \
                         "pop {r4-r11, pc}\n");                                                 \
    }
/* any window: a tap is its mask byte and its offset */
#define TBN_TAPS_ANY(TAP)                                                                        \
    "1:\n" "ldrsb r12, [r2], #1\n" "ldrsh r1, [lr], #2\n" "add r1, r0, r1\n" TAP "cmp r2, r3\n" "bne 1b\n"
/* three wide: a staged row's three taps at offsets 0, 1, 2, their signs bits 0..2 of a byte
 * (1 for -1), then the next row (lr: its length) */
#define TBN_TAPS_ROWS3(T0, T1, T2)                                                               \
    "mov r1, r0\n"                                                                               \
    "1:\n" "ldrb r0, [r2], #1\n"                                                                 \
    "sbfx r12, r0, #0, #1\n" T0 "sbfx r12, r0, #1, #1\n" T1 "sbfx r12, r0, #2, #1\n" T2           \
    "add r1, r1, lr\n" "cmp r2, r3\n" "bne 1b\n"
TBN_TAPS(sums_taps_s1, TBN_TAPS_ANY(TBN_TAPS_S1(0, 4)), TBN_TAPS_ORDER_S1, 8)
TBN_TAPS(sums_taps_s2, TBN_TAPS_ANY(TBN_TAPS_S2(0, 4, 8, 12)), TBN_TAPS_ORDER_S2, 16)
TBN_TAPS(sums_rows3_s1, TBN_TAPS_ROWS3(TBN_TAPS_S1(0, 4), TBN_TAPS_S1(1, 5), TBN_TAPS_S1(2, 6)), TBN_TAPS_ORDER_S1,
         8)
TBN_TAPS(sums_rows3_s2,
         TBN_TAPS_ROWS3(TBN_TAPS_S2(0, 4, 8, 12), TBN_TAPS_S2(1, 5, 9, 13), TBN_TAPS_S2(2, 6, 10, 14)),
         TBN_TAPS_ORDER_S2, 16)

#define QUAD_STAGE_BYTES 2048 /* a window's padded input rows, every channel's */
#define QUAD_CHUNK_STAGE 1024 /* past 255 inputs: a chunk's rows, then the rows' 32-bit sums */
#define QUAD_MAX_WO 128       /* outputs a row */

/* Bytes a staged row: the padded row, then room for the last group's reads past it. */
static uint32_t stage_row(const mm_ctx *c) {
    uint32_t groups = ((uint32_t)c->wo + 7u) / 8u;
    return (groups * 8u - 1u) * c->op->sw + c->op->kw + 4u;
}

/* Mask bytes of all rows: one a tap, or for three-wide windows one a kernel row (k / 3). */
#define QUAD_MASK_BYTES (TBN_QUAD_MAX_CONV_ROWS * TBN_QUAD_MAX_CONV_FAN_IN / 3u)
#if QUAD_MASK_BYTES < TBN_QUAD_MAX_CONV_ROW_INPUTS || QUAD_STAGE_BYTES < TBN_QUAD_MAX_CONV_FAN_IN
#error "the quad kernel's masks or stage are smaller than its rule allows"
#endif

/* Input channels a chunk where the fan-in passes 255 (three-wide windows): each chunk's sums
 * fit 16 bits and its staged rows QUAD_CHUNK_STAGE; 0 where none fits. */
static uint32_t chunk_channels(const mm_ctx *c) {
    uint32_t per = TBN_QUAD_MAX_CONV_FAN_IN / (c->op->kh * 3u), fit = QUAD_CHUNK_STAGE / (c->op->kh * stage_row(c));
    return per < fit ? per : fit;
}

int tbn_mm_quads_ok(const mm_ctx *c, uint32_t rows) {
    const tbn_op *op = c->op;
    if (!TBN_INT8(c->int8) || !c->tiled || !rows || !(op->traits & TBN_TRAIT_CONV) || op->groups != 1) return 0;
    if (tbn_pointwise(op)) return c->k <= TBN_QUAD_MAX_FAN_IN && rows * c->k <= TBN_QUAD_MAX_ROW_INPUTS;
    if (!(op->kh * op->kw > 1 && op->dh == 1 && op->dw == 1 && op->sh == op->sw && (op->sw == 1 || op->sw == 2) &&
          rows <= TBN_QUAD_MAX_CONV_ROWS && c->wo >= TBN_QUAD_MIN_CONV_WIDTH && c->wo <= QUAD_MAX_WO))
        return 0;
    if (c->k <= TBN_QUAD_MAX_CONV_FAN_IN)
        return (op->kw == 3 || rows * c->k <= TBN_QUAD_MAX_CONV_ROW_INPUTS) &&
               c->cg * op->kh * stage_row(c) <= QUAD_STAGE_BYTES;
    /* chunks: masks a byte a kernel row, the rows' 32-bit sums after the chunk's stage */
    uint32_t n8 = ((uint32_t)c->wo + 7u) / 8u * 8u;
    return op->kw == 3 && rows * (c->k / 3u) <= QUAD_MASK_BYTES && c->k <= QUAD_STAGE_BYTES &&
           rows * n8 * 4u <= QUAD_STAGE_BYTES - QUAD_CHUNK_STAGE && chunk_channels(c) > 0;
}

/* Row r's masks for its window: one byte a tap, or three-wide windows' signs packed three to a
 * byte (bit kx set for -1); tmp holds k bytes. Returns the row's constant (row_signs). */
static int32_t window_signs(const mm_ctx *c, uint32_t r, int rows3, int8_t *m, int8_t *tmp) {
    int32_t corr = row_signs(c, r, rows3 ? tmp : m);
    for (uint32_t j = 0; rows3 && j < c->k; j += 3)
        m[j / 3] = (int8_t)((tmp[j] & 1) | (tmp[j + 1] & 2) | (tmp[j + 2] & 4));
    return corr;
}

/* Output row oy's input rows of channels ch0 .. ch0 + nch - 1, padded with the zero point,
 * into the stage (channel ch0 + c's row ky at (c * kh + ky) * len). */
void tbn_quad_stage_rows(const mm_ctx *c, uint32_t oy, int8_t *stage, uint32_t len, uint32_t ch0, uint32_t nch) {
    const tbn_op *op = c->op;
    const int8_t *src = (const int8_t *)c->src + (size_t)ch0 * c->h * c->w;
    memset(stage, (int)c->in_zp, (size_t)nch * op->kh * len);
    for (uint32_t ch = 0; ch < nch; ch++)
        for (uint32_t ky = 0; ky < op->kh; ky++) {
            int32_t iy = (int32_t)(oy * op->sh + ky) - (int32_t)op->pt;
            if (iy >= 0 && iy < (int32_t)c->h)
                memcpy(stage + (ch * op->kh + ky) * len + op->pl, src + ((size_t)ch * c->h + (uint32_t)iy) * c->w,
                       c->w);
        }
}

static void eval_windows(const mm_ctx *c, uint32_t rows) {
    const tbn_op *op = c->op;
    int8_t stage[QUAD_STAGE_BYTES] __attribute__((aligned(4)));
    int8_t masks[QUAD_MASK_BYTES];
    int16_t off[TBN_QUAD_MAX_CONV_FAN_IN];
    int32_t corr[TBN_QUAD_MAX_CONV_ROWS];
    int16_t acc[QUAD_MAX_WO + 8] __attribute__((aligned(8)));
    uint32_t k = c->k, len = stage_row(c), groups = ((uint32_t)c->wo + 7u) / 8u, rows3 = op->kw == 3;
    uint32_t mk = rows3 ? k / 3u : k; /* mask bytes a row */
    void (*sums)(taps_args *) = op->sw == 1 ? (rows3 ? sums_rows3_s1 : sums_taps_s1)
                                            : (rows3 ? sums_rows3_s2 : sums_taps_s2);
    for (uint32_t j = 0; !rows3 && j < k; j++) { /* weight j = (channel, ky, kx); rows3 steps rows */
        uint32_t kx = j % op->kw, ky = j / op->kw % op->kh, ch = j / (op->kw * op->kh);
        off[j] = (int16_t)((ch * op->kh + ky) * len + kx);
    }
    for (uint32_t r = 0; r < rows; r++) corr[r] = window_signs(c, r, (int)rows3, masks + r * mk, stage);
    for (uint32_t oy = 0; oy < c->ho; oy++) {
        tbn_quad_stage_rows(c, oy, stage, len, 0, c->cg);
        for (uint32_t r = 0; r < rows; r++) {
            taps_args a = {stage, masks + r * mk, masks + r * mk + mk, rows3 ? len : (uintptr_t)off, acc, groups};
            sums(&a);
            tbn_chan_store16_i8(c, r, rows, acc, corr[r], c->wo, oy * c->wo);
        }
    }
}

/* Three-wide windows of more than 255 inputs: per output row, the input channels a chunk at a
 * time (staged, then every row's 16-bit sums of the chunk added into its 32-bit ones, which
 * start at the row's constant), then each row's outputs stored from 32 bits. */
static void eval_chunks(const mm_ctx *c, uint32_t rows) {
    const tbn_op *op = c->op;
    int8_t buf[QUAD_STAGE_BYTES] __attribute__((aligned(4)));
    int8_t masks[QUAD_MASK_BYTES];
    int32_t corr[TBN_QUAD_MAX_CONV_ROWS], *acc32 = (int32_t *)(void *)(buf + QUAD_CHUNK_STAGE);
    int16_t acc[QUAD_MAX_WO + 8] __attribute__((aligned(8)));
    uint32_t mk = c->k / 3u, len = stage_row(c), groups = ((uint32_t)c->wo + 7u) / 8u, n8 = groups * 8u;
    uint32_t per = chunk_channels(c);
    void (*sums)(taps_args *) = op->sw == 1 ? sums_rows3_s1 : sums_rows3_s2;
    for (uint32_t r = 0; r < rows; r++) corr[r] = window_signs(c, r, 1, masks + r * mk, buf);
    for (uint32_t oy = 0; oy < c->ho; oy++) {
        for (uint32_t r = 0; r < rows; r++)
            for (uint32_t i = 0; i < n8; i++) acc32[r * n8 + i] = corr[r];
        for (uint32_t ch0 = 0; ch0 < c->cg; ch0 += per) {
            uint32_t nch = c->cg - ch0 < per ? c->cg - ch0 : per;
            tbn_quad_stage_rows(c, oy, buf, len, ch0, nch);
            for (uint32_t r = 0; r < rows; r++) {
                const int8_t *m = masks + r * mk + ch0 * op->kh;
                taps_args a = {buf, m, m + nch * op->kh, len, acc, groups};
                sums(&a);
                for (uint32_t i = 0; i < n8; i++) acc32[r * n8 + i] += acc[i];
            }
        }
        for (uint32_t r = 0; r < rows; r++) tbn_chan_store32_i8(c, r, rows, acc32 + r * n8, c->wo, oy * c->wo);
    }
}

static void eval_pointwise(const mm_ctx *c, uint32_t rows) {
    uint32_t m[TBN_QUAD_MAX_FAN_IN] __attribute__((aligned(8))); /* words, LDRD */
    int8_t m8[TBN_QUAD_MAX_FAN_IN];
    int16_t acc[QUAD_BLOCK] __attribute__((aligned(8)));
    const int8_t *x = (const int8_t *)c->src;
    uint32_t npix = c->npix, k = c->k;
    for (uint32_t r = 0; r < rows; r++) {
        int32_t corr = row_signs(c, r, m8);
        for (uint32_t j = 0; j < k; j++) m[j] = (uint32_t)(int32_t)m8[j];
        for (uint32_t p0 = 0; p0 < npix; p0 += QUAD_BLOCK) {
            uint32_t n = npix - p0 < QUAD_BLOCK ? npix - p0 : QUAD_BLOCK, q = n & ~7u;
            if (q) {
                octets_args a = {x + p0, npix, m, k / 2u, k % 2u, acc, q / 8u};
                sums_octets(&a);
            }
            if (q < n && n >= 8u) { /* the last 8 positions again, the new ones kept */
                int16_t last[8] __attribute__((aligned(8)));
                octets_args a = {x + p0 + n - 8u, npix, m, k / 2u, k % 2u, last, 1};
                sums_octets(&a);
                memcpy(acc + q, last + 8u - (n - q), (n - q) * sizeof *acc);
            } else
                sums_tail(x + p0, npix, m, k, acc, q, n);
            tbn_chan_store16_i8(c, r, rows, acc, corr, n, p0);
        }
    }
}
void tbn_mm_eval_quads(const mm_ctx *c, uint32_t rows) {
    if (tbn_pointwise(c->op)) eval_pointwise(c, rows);
    else if (c->k <= TBN_QUAD_MAX_CONV_FAN_IN) eval_windows(c, rows);
    else eval_chunks(c, rows);
}
#endif /* TBN_QUAD_KERNEL */
