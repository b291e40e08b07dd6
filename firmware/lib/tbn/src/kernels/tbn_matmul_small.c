/* The small-core kernel: INT8 linear and conv ops, tiled or dense, in 8- and 16-bit steps where
 * the direct kernel's 32-bit bit reads cost the most (AVR, about 470 cycles a MAC there, where
 * it is the only INT8 matmul kernel; RISC-V and Cortex-M0 without tables). It needs no memory
 * beyond a few locals: the Uno has 2 KB.
 *
 * Each output reads its weights in order (a tile row as a stream of bits, one byte load per 8
 * taps) and the window's inputs where they lie; taps in the padding are skipped, as they hold
 * zp and x - zp is 0 there. With u = x + 128 (the input as an unsigned byte) and c = zp + 128,
 *     sum w_j (x_j - zp) = sum w_j u_j - c sum w_j
 * over the taps inside. For tile bits (w = +1 or -1) sum w u = 2 P - U, where P sums u over the
 * set bits and U over all taps (once per position), and sum w = 2 B - N (B counts the set
 * bits, N the taps): a MAC is a bit test and a 16-bit add. B is counted only where c is not 0
 * (ReLU outputs have zp = -128). The sums are the reference's exactly.
 *
 * Tile reuse (one group, p > 1): the tile's distinct rows are summed once a position, each
 * stored into its o / rows outputs.
 *
 * Fast paths: on cores with stack to spare, subset-sum tables over the gathered window
 * (col_tables); on AVR, assembly for four tile rows at once, U, dense rows and RQ16 (avr_eval).
 * eval_rows takes what they do not. */
#include <stddef.h>

#include "tbn_matmul.h"
#if TBN_SMALL_KERNEL

/* A read position in the weights of an output that row_sum_bits does not take: dense int8
 * weights, or a tile row that wraps at the tile's end, read bit by bit (the next byte to load,
 * the current bit's mask, 0 to load that byte first, the loaded byte, and the bits left before
 * the tile's end). */
typedef struct {
    const TBN_ROM uint8_t *p, *tile;
    uint8_t m, b, dense;
    uint32_t left, n_bits;
} cursor;

static void cur_seek(cursor *cu, uint32_t pos) {
    cu->p = cu->tile + (pos >> 3);
    cu->b = *cu->p++;
    cu->m = (uint8_t)(1u << (pos & 7u));
}

static uint8_t cur_bit(cursor *cu) {
    if (!cu->m) {
        cu->m = 1;
        cu->b = *cu->p++;
    }
    uint8_t bit = (cu->b & cu->m) != 0;
    cu->m = (uint8_t)(cu->m << 1);
    if (--cu->left == 0) {
        cu->left = cu->n_bits;
        cur_seek(cu, 0);
    }
    return bit;
}

static void cur_skip(cursor *cu, uint16_t n) {
    if (cu->dense) cu->p += n;
    else
        for (; n; n--) cur_bit(cu);
}

/* Over n (1..255) taps x[0], x[stride], ...: sum w u, and sum w added to *sw. */
static int32_t cur_taps(cursor *cu, const int8_t *x, uint16_t stride, uint8_t n, int32_t *sw) {
    int32_t s = 0, sum_w = 0;
    for (; n; n--, x += stride) {
        int8_t w = cu->dense ? (int8_t)*cu->p++ : cur_bit(cu) ? 1 : -1;
        s += (int16_t)w * (uint8_t)((uint8_t)*x ^ 0x80u);
        sum_w += w;
    }
    *sw += sum_w;
    return s;
}

/* The inputs one output reads: n_ic channels (hw values apart) from q, each ny rows of nx
 * taps (dw apart, rows row_step apart), and the weights around them to skip. A linear op is
 * one channel of one row of k taps. Every count fits 16 bits (tbn_mm_small_ok). */
typedef struct {
    const int8_t *q;
    uint16_t n_ic, ny, nx, dw, hw, row_step;
    uint16_t skip_ic0, skip_x0, skip_x1, skip_ic1; /* weights before/after each channel and row */
    uint32_t u;                                     /* U: the sum of u over the window */
} window;

/* One output's sum of w_j (x_j - zp) over the window, its weights from `cu`. */
static TBN_NOINLINE int32_t row_sum(const window *wi, cursor *cu, int16_t cz) {
    int32_t su = 0, sw = 0;
    const int8_t *q = wi->q;
    for (uint16_t ic = 0; ic < wi->n_ic; ic++, q += wi->hw) {
        const int8_t *x = q;
        cur_skip(cu, wi->skip_ic0);
        for (uint16_t y = 0; y < wi->ny; y++, x += wi->row_step) {
            cur_skip(cu, wi->skip_x0);
            const int8_t *t = x;
            for (uint16_t left = wi->nx; left;) {
                uint8_t k = (uint8_t)(left < 255u ? left : 255u);
                su += cur_taps(cu, t, wi->dw, k, &sw);
                t += (uint16_t)(k * wi->dw);
                left = (uint16_t)(left - k);
            }
            cur_skip(cu, wi->skip_x1);
        }
        cur_skip(cu, wi->skip_ic1);
    }
    return su - (int32_t)cz * sw;
}

/* P and B (when counting) over n (1..8) taps from x, their bits the low bits of w. */
static inline uint16_t bit_taps(uint8_t w, const int8_t *x, uint16_t stride, uint8_t n, uint16_t *nb, int counting) {
    uint16_t s = 0;
    do {
        if (w & 1u) {
            s += (uint8_t)((uint8_t)*x ^ 0x80u);
            if (counting) (*nb)++;
        }
        w >>= 1;
        x += stride;
    } while (--n);
    return s;
}

#if !defined(__AVR__) /* AVR: avr_plus4 below, else row_sum */
/* row_sum for a tile row that does not wrap, without a gathered window: each window row's bits
 * read as one or two bytes (16-bit offsets from the row's first byte: skips are additions),
 * the sums 2 P - U and 2 B - N from the window's U and N. */
static TBN_NOINLINE int32_t row_sum_bits(const window *wi, const TBN_ROM uint8_t *tile, uint32_t pos, int16_t cz) {
    const TBN_ROM uint8_t *row = tile + (pos >> 3);
    uint16_t bit = (uint16_t)(pos & 7u), nb = 0; /* k <= TBN_SMALL_MAX_COUNT: bit stays in 16 bits */
    uint32_t plus = 0;
    int counting = cz != 0;
    const int8_t *q = wi->q;
    for (uint16_t ic = 0; ic < wi->n_ic; ic++, q += wi->hw) {
        const int8_t *x = q;
        bit = (uint16_t)(bit + wi->skip_ic0);
        for (uint16_t y = 0; y < wi->ny; y++, x += wi->row_step) {
            bit = (uint16_t)(bit + wi->skip_x0);
            const int8_t *t = x;
            uint16_t s = 0;
            for (uint16_t left = wi->nx; left;) { /* 8 taps a read, at most 2,040: a 16-bit s */
                uint8_t k = (uint8_t)(left < 8u ? left : 8u), sh = (uint8_t)(bit & 7u);
                const TBN_ROM uint8_t *b = row + (bit >> 3);
                uint16_t w = *b; /* the second byte only where the bits reach it: none past the tile */
                if (sh + k > 8u) w |= (uint16_t)b[1] << 8;
                s += counting ? bit_taps((uint8_t)(w >> sh), t, wi->dw, k, &nb, 1)
                              : bit_taps((uint8_t)(w >> sh), t, wi->dw, k, &nb, 0);
                t += (uint16_t)(k * wi->dw);
                bit = (uint16_t)(bit + k);
                left = (uint16_t)(left - k);
                if (s > 0xFFFFu - 2040u) plus += s, s = 0;
            }
            plus += s;
            bit = (uint16_t)(bit + wi->skip_x1);
        }
        bit = (uint16_t)(bit + wi->skip_ic1);
    }
    int32_t n = (int32_t)wi->n_ic * wi->ny * wi->nx;
    return 2 * (int32_t)plus - (int32_t)wi->u - (int32_t)cz * (2 * (int32_t)nb - n);
}
#endif

/* On cores with stack to spare, a window of at most TBN_SMALL_COL_BYTES taps is first
 * gathered in row order (im2col), so a row is 8 taps a byte of its bits with no per-window-row
 * set-up. Not on AVR, whose 2 KB has no room for it. */
#ifndef TBN_SMALL_COL_BYTES
#if defined(__AVR__)
#define TBN_SMALL_COL_BYTES 0
#else
#define TBN_SMALL_COL_BYTES 512
#endif
#endif

#if TBN_SMALL_COL_BYTES
#define COL_MARGIN 8 /* zeros on each side: the bits of a row's first and last byte outside it */

/* The window's k taps as u into col + COL_MARGIN, the padding as cu (x = zp); their sum. */
static TBN_NOINLINE uint32_t col_gather(const window *wi, uint8_t *col, uint32_t k, uint8_t cu) {
    uint8_t *d = col + COL_MARGIN;
    uint32_t sum = 0;
    memset(col, 0, COL_MARGIN);
    memset(d + k, 0, COL_MARGIN);
    const int8_t *q = wi->q;
    for (uint16_t ic = 0; ic < wi->n_ic; ic++, q += wi->hw) {
        const int8_t *x = q;
        memset(d, cu, wi->skip_ic0);
        d += wi->skip_ic0;
        for (uint16_t y = 0; y < wi->ny; y++, x += wi->row_step) {
            memset(d, cu, wi->skip_x0);
            d += wi->skip_x0;
            for (uint16_t j = 0, at = 0; j < wi->nx; j++, at = (uint16_t)(at + wi->dw)) {
                uint8_t u = (uint8_t)((uint8_t)x[at] ^ 0x80u);
                *d++ = u;
                sum += u;
            }
            memset(d, cu, wi->skip_x1);
            d += wi->skip_x1;
        }
        memset(d, cu, wi->skip_ic1);
        d += wi->skip_ic1;
    }
    return sum + (uint32_t)cu * (k - (uint32_t)wi->n_ic * wi->ny * wi->nx);
}

static uint32_t pop8(uint32_t v) {
    uint32_t n = 0;
    for (; v; v &= v - 1) n++;
    return n;
}

/* P over the row's set bits (from bit pos, k of them) against the gathered window, 8 taps a
 * byte; B too when counting (the bits of the first and last byte outside the row taken off). */
TBN_ALWAYS_INLINE uint32_t col_plus(const uint8_t *col, const TBN_ROM uint8_t *tile, uint32_t pos, uint32_t k,
                                uint32_t *nb, int counting) {
    uint32_t sh = pos & 7u, nbytes = (sh + k + 7u) >> 3, s = 0, n = 0;
    const uint8_t *x = col + COL_MARGIN - sh;
    const TBN_ROM uint8_t *b = tile + (pos >> 3);
    for (uint32_t i = 0; i < nbytes; i++, x += 8) {
        uint32_t w = b[i];
#define TAP(j)                                                                                                          \
    if (w & (1u << (j))) {                                                                                              \
        s += x[j];                                                                                                      \
        if (counting) n++;                                                                                              \
    }
        TAP(0) TAP(1) TAP(2) TAP(3) TAP(4) TAP(5) TAP(6) TAP(7)
#undef TAP
    }
    if (counting) {
        uint32_t end = (sh + k) & 7u;
        n -= pop8(b[0] & ((1u << sh) - 1u));
        if (end) n -= pop8(b[nbytes - 1] >> end);
        *nb = n;
    }
    return s;
}

/* An output's sum of w (x - zp) from the gathered window (U: the sum of its k taps). */
static TBN_NOINLINE int32_t col_sum(const uint8_t *col, const TBN_ROM uint8_t *tile, uint32_t pos, uint32_t k,
                                    uint32_t u, int16_t cz) {
    uint32_t nb = 0;
    if (!cz) return 2 * (int32_t)col_plus(col, tile, pos, k, &nb, 0) - (int32_t)u;
    int32_t plus = (int32_t)col_plus(col, tile, pos, k, &nb, 1);
    return 2 * plus - (int32_t)u - (int32_t)cz * (2 * (int32_t)nb - (int32_t)k);
}

/* Rows summed at once by col_tables: their sums stay on the stack beside the tables. */
#define TABLE_ROWS 32

/* P of the n rows from bit pos (k apart, n_bits in the tile) over k taps u = x ^ flip (a
 * gathered window: flip 0; a linear op's int8 input: 0x80), 32 at a time: the 16 sums of each
 * group of 4 taps, then one lookup a row and group, where col_plus tests each bit (on RV32 about
 * 3 instructions a MAC with the tables' set-up on a 3x3 conv of 32 channels, against 4.6). The
 * sums are exact: the same integers added in another order. */
static TBN_NOINLINE void col_tables(const uint8_t *x, uint8_t flip, uint32_t k, const TBN_ROM uint8_t *tile,
                                   uint32_t n_bits, uint32_t pos, uint32_t n, uint32_t *p) {
    uint16_t t[8][16];
    uint8_t last[32];
    memset(p, 0, n * sizeof *p);
    for (uint32_t c0 = 0; c0 < k; c0 += 32, x += 32, pos += 32) {
        const uint8_t *v = x;
        uint32_t f = flip;
        if (k - c0 < 32u) { /* the last taps, zeros after them: the rest of the chunk adds 0 */
            memset(last, 0, sizeof last);
            for (uint32_t j = 0; j < k - c0; j++) last[j] = (uint8_t)(x[j] ^ flip);
            v = last;
            f = 0;
        }
        for (uint32_t g = 0; g < 8; g++) { /* t[b] = the sum of the taps whose bits b holds */
            uint16_t *e = t[g];
            uint32_t v0 = v[4 * g] ^ f, v1 = v[4 * g + 1] ^ f, v2 = v[4 * g + 2] ^ f, v3 = v[4 * g + 3] ^ f;
            uint32_t a1 = v0, a2 = v1, a3 = v0 + v1, a4 = v2, a5 = v0 + v2, a6 = v1 + v2, a7 = a3 + v2;
            e[0] = 0, e[1] = (uint16_t)a1, e[2] = (uint16_t)a2, e[3] = (uint16_t)a3, e[4] = (uint16_t)a4;
            e[5] = (uint16_t)a5, e[6] = (uint16_t)a6, e[7] = (uint16_t)a7, e[8] = (uint16_t)v3;
            e[9] = (uint16_t)(a1 + v3), e[10] = (uint16_t)(a2 + v3), e[11] = (uint16_t)(a3 + v3);
            e[12] = (uint16_t)(a4 + v3), e[13] = (uint16_t)(a5 + v3), e[14] = (uint16_t)(a6 + v3);
            e[15] = (uint16_t)(a7 + v3);
        }
        const uint8_t *tb = (const uint8_t *)t; /* entry b of table g at byte 32 g + 2 b */
#if defined(__GNUC__)
        __asm__("" : "+r"(tb)); /* held in a register: GCC otherwise rebuilds it from sp at each lookup */
#endif
#define LOOK(g, sh) (*(const uint16_t *)(tb + 32 * (g) + (sh < 0 ? (w << 1) & 30u : (w >> (sh)) & 30u)))
        uint32_t at = pos, whole = ((pos | k) & 31u) == 0; /* every row's chunk one tile word */
        for (uint32_t i = 0; i < n; i++, at += k) { /* bits past the row meet zero taps */
            uint32_t w = whole ? tbn_rd32a(tile + (at >> 3)) : bits_at(tile, at, n_bits - at < 32u ? n_bits - at : 32u);
            p[i] += (uint32_t)LOOK(0, -1) + LOOK(1, 3) + LOOK(2, 7) + LOOK(3, 11) + LOOK(4, 15) + LOOK(5, 19) +
                    LOOK(6, 23) + LOOK(7, 27);
        }
#undef LOOK
    }
}
#endif

#if defined(__AVR__)
/* On AVR the sums P of four outputs at once, in assembly: their tile rows start at the same bit
 * of a byte, kb bytes apart (outputs m apart, m k a multiple of 8: the four streams cross a byte
 * at the same tap, so one count reloads them all). A tap is one load of x, then for each stream
 * a shift of its weight byte and, on a set bit, a 24-bit add: about 7 cycles a MAC, 8 to 10
 * with the loops, where row_sum_bits took 84 to 99. The weights are read with LPM: the tile in flash
 * below 64 KB (an Uno's model always is); else the C path. */
typedef struct {
    const int8_t *x;                              /* 0: the window's first tap */
    uint16_t z, kb;                               /* 2: flash address of stream 0's first byte; 4 */
    uint8_t row_delta, sh;                        /* 6: x after a row's taps; 7: the rows' first bit */
    int16_t ic_delta;                             /* 8: x after a channel's rows */
    uint8_t n_ic, ny, nx;                         /* 10, 11, 12: the window's shape (each >= 1) */
    uint8_t skip_ic0, skip_x0, skip_x1, skip_ic1; /* 13..16: weight bits to pass over */
    uint8_t unused;
    uint32_t p[4];                                /* 18..33: P of each stream, out */
} avr_job;
_Static_assert(offsetof(avr_job, p) == 18, "avr_plus4's assembly reads avr_job at these offsets");

/* r2..r13 the four P; r14:r15 kb; r16 taps left in the row, r17 rows, r18 channels; r19 bits left
 * in r20..r23 (the streams' bytes); r24 the tap; r0 row_delta; T: a row skips some of its bits;
 * X the input, Y the job, Z the weights. */
#define AVR_LOAD4 /* the streams' next bytes: Z, Z + kb, Z + 2 kb, Z + 3 kb; then Z + 1 */         \
    "movw r24, r30\n lpm r20, Z\n add r30, r14\n adc r31, r15\n lpm r21, Z\n add r30, r14\n"      \
    "adc r31, r15\n lpm r22, Z\n add r30, r14\n adc r31, r15\n lpm r23, Z\n movw r30, r24\n"      \
    "adiw r30, 1\n ldi r19, 7\n"
#define AVR_SKIP(OFF) "ldd r25, Y+" #OFF "\n tst r25\n breq 1f\n rcall 20f\n1:\n"
#define AVR_TAP(W, A0, A1, A2, NEXT) "lsr " W "\n brcc " NEXT "f\n add " A0 ", r24\n adc " A1 ", r1\n adc " A2 ", r1\n"

__attribute__((naked, noinline)) static void avr_plus4(TBN_ASM_ARG avr_job *j) {
    __asm__ volatile(
        "push r2\n push r3\n push r4\n push r5\n push r6\n push r7\n push r8\n push r9\n push r10\n"
        "push r11\n push r12\n push r13\n push r14\n push r15\n push r16\n push r17\n push r28\n push r29\n"
        "movw r28, r24\n ld r26, Y\n ldd r27, Y+1\n ldd r30, Y+2\n ldd r31, Y+3\n ldd r14, Y+4\n"
        "ldd r15, Y+5\n ldd r18, Y+10\n clr r2\n clr r3\n clr r4\n clr r5\n clr r6\n clr r7\n clr r8\n"
        "clr r9\n clr r10\n clr r11\n clr r12\n clr r13\n clr r19\n"
        AVR_SKIP(7)                                        /* the first byte's bits before the rows */
        "ldd r0, Y+6\n clt\n ldd r24, Y+14\n ldd r25, Y+15\n or r24, r25\n breq 10f\n set\n rjmp 10f\n"
        "8:\n" AVR_LOAD4 "rjmp 3f\n"                       /* a tap that starts new bytes */
        "10:\n" AVR_SKIP(13) "ldd r17, Y+11\n"             /* a channel */
        "11:\n brtc 1f\n" AVR_SKIP(14) "ldd r16, Y+12\n"   /* a row */
        "2:\n dec r19\n brmi 8b\n"                         /* a tap */
        "3:\n ld r24, X+\n subi r24, 0x80\n"               /* u = x + 128 */
        AVR_TAP("r20", "r2", "r3", "r4", "4") "4:\n" AVR_TAP("r21", "r5", "r6", "r7", "5")
        "5:\n" AVR_TAP("r22", "r8", "r9", "r10", "6") "6:\n" AVR_TAP("r23", "r11", "r12", "r13", "7")
        "7:\n dec r16\n brne 2b\n"
        "brtc 1f\n" AVR_SKIP(15) "add r26, r0\n adc r27, r1\n dec r17\n brne 11b\n"
        AVR_SKIP(16) "ldd r24, Y+8\n add r26, r24\n ldd r24, Y+9\n adc r27, r24\n dec r18\n breq 13f\n"
        "rjmp 10b\n"
        "13:\n std Y+18, r2\n std Y+19, r3\n std Y+20, r4\n std Y+21, r1\n std Y+22, r5\n std Y+23, r6\n"
        "std Y+24, r7\n std Y+25, r1\n std Y+26, r8\n std Y+27, r9\n std Y+28, r10\n std Y+29, r1\n"
        "std Y+30, r11\n std Y+31, r12\n std Y+32, r13\n std Y+33, r1\n"
        "pop r29\n pop r28\n pop r17\n pop r16\n pop r15\n pop r14\n pop r13\n pop r12\n pop r11\n"
        "pop r10\n pop r9\n pop r8\n pop r7\n pop r6\n pop r5\n pop r4\n pop r3\n pop r2\n ret\n"
        "20:\n dec r19\n brpl 21f\n push r25\n" AVR_LOAD4 "pop r25\n" /* pass over r25 bits */
        "21:\n lsr r20\n lsr r21\n lsr r22\n lsr r23\n dec r25\n brne 20b\n ret\n");
}
/* U, the sum of u over the job's window (its taps as avr_plus4 walks them), into p[0]: 9 cycles a
 * tap, where window_totals' C takes 28. */
__attribute__((naked, noinline)) static void avr_totals(TBN_ASM_ARG avr_job *j) {
    __asm__ volatile(
        "movw r30, r24\n ld r26, Z\n ldd r27, Z+1\n ldd r18, Z+10\n ldd r0, Z+6\n clr r20\n clr r21\n clr r22\n"
        "1:\n ldd r19, Z+11\n"
        "2:\n ldd r25, Z+12\n"
        "3:\n ld r24, X+\n subi r24, 0x80\n add r20, r24\n adc r21, r1\n adc r22, r1\n dec r25\n brne 3b\n"
        "add r26, r0\n adc r27, r1\n dec r19\n brne 2b\n"
        "ldd r24, Z+8\n add r26, r24\n ldd r24, Z+9\n adc r27, r24\n dec r18\n brne 1b\n"
        "std Z+18, r20\n std Z+19, r21\n std Z+20, r22\n std Z+21, r1\n ret\n");
}
/* A dense int8 row (flash address z) over the job's window: P' = sum (w u + 2^15) into p[0]
 * and S' = sum (w + 128) into p[1], each product biased to 16 unsigned bits so that the sums
 * need no sign extension (the caller takes the biases off). About 20 cycles a tap, where C
 * took about 60. MULSU: w in r23, u in r22; r21 0x80, r20 zero. */
__attribute__((naked, noinline)) static void avr_dense(TBN_ASM_ARG avr_job *j) {
    __asm__ volatile(
        "push r2\n push r3\n push r4\n push r5\n push r6\n push r7\n push r8\n push r28\n push r29\n"
        "movw r28, r24\n ld r26, Y\n ldd r27, Y+1\n ldd r30, Y+2\n ldd r31, Y+3\n ldd r18, Y+10\n"
        "clr r2\n clr r3\n clr r4\n clr r5\n clr r6\n clr r7\n clr r8\n ldi r21, 0x80\n clr r20\n"
        "1:\n ldd r24, Y+13\n add r30, r24\n adc r31, r20\n ldd r19, Y+11\n"          /* a channel */
        "2:\n ldd r24, Y+14\n add r30, r24\n adc r31, r20\n ldd r25, Y+12\n"          /* a row */
        "3:\n lpm r23, Z+\n ld r22, X+\n subi r22, 0x80\n mulsu r23, r22\n eor r1, r21\n" /* a tap */
        "add r2, r0\n adc r3, r1\n adc r4, r20\n adc r5, r20\n"
        "subi r23, 0x80\n add r6, r23\n adc r7, r20\n adc r8, r20\n dec r25\n brne 3b\n"
        "ldd r24, Y+15\n add r30, r24\n adc r31, r20\n ldd r24, Y+6\n add r26, r24\n adc r27, r20\n"
        "dec r19\n brne 2b\n"
        "ldd r24, Y+16\n add r30, r24\n adc r31, r20\n ldd r24, Y+8\n add r26, r24\n ldd r24, Y+9\n"
        "adc r27, r24\n dec r18\n brne 1b\n"
        "std Y+18, r2\n std Y+19, r3\n std Y+20, r4\n std Y+21, r5\n std Y+22, r6\n std Y+23, r7\n"
        "std Y+24, r8\n std Y+25, r20\n clr r1\n"
        "pop r29\n pop r28\n pop r8\n pop r7\n pop r6\n pop r5\n pop r4\n pop r3\n pop r2\n ret\n");
}
#undef AVR_LOAD4
#undef AVR_SKIP
#undef AVR_TAP

static int avr_flash(const TBN_ROM uint8_t *p) { return ((__uint24)p >> 16) == 0; }

/* RQ16 of one output on AVR (requant16_parts' arithmetic), the op's constants gathered once:
 * about 210 cycles, where tbn_mm_store_i8's 32-bit C takes about 500. For multipliers, and I16
 * biases or none, in flash. */
typedef struct {
    uint16_t bias, scale; /* 0, 2: flash addresses of the I16 biases (0: none) and the multipliers */
    uint8_t step;         /* 4: 2, or 0 for one multiplier */
    int32_t pre_half;     /* 5 */
    uint8_t pre;          /* 9 */
    int32_t half;         /* 10 */
    uint8_t shift;        /* 14 */
    int8_t zp, lo, hi;    /* 15, 16, 17 */
    int8_t *dst;          /* 18: where the output goes */
} avr_rq;
_Static_assert(offsetof(avr_rq, dst) == 18, "avr_rq16's assembly reads avr_rq at these offsets");

/* The low 32 bits of t * m: t's bytes r20..r23 by m's r18:r19 (unsigned), then m's sign taken
 * off as t << 16; the product in r24, r25, r30, r31 (r16 zero: MUL writes r1). */
__attribute__((naked, noinline)) static void avr_rq16(TBN_ASM_ARG avr_rq *q, TBN_ASM_ARG int32_t acc,
                                                      TBN_ASM_ARG uint16_t ch) {
    __asm__ volatile(
        "push r16\n clr r16\n movw r26, r24\n ld r30, X+\n ld r31, X+\n"
        "mov r0, r30\n or r0, r31\n breq 1f\n"            /* + the bias */
        "add r30, r18\n adc r31, r19\n add r30, r18\n adc r31, r19\n lpm r24, Z+\n lpm r25, Z\n"
        "mov r0, r25\n lsl r0\n sbc r0, r0\n add r20, r24\n adc r21, r25\n adc r22, r0\n adc r23, r0\n"
        "1:\n ld r30, X+\n ld r31, X+\n ld r0, X+\n tst r0\n breq 2f\n" /* the multiplier */
        "add r30, r18\n adc r31, r19\n add r30, r18\n adc r31, r19\n"
        "2:\n lpm r18, Z+\n lpm r19, Z\n"
        "ld r0, X+\n add r20, r0\n ld r0, X+\n adc r21, r0\n ld r0, X+\n adc r22, r0\n ld r0, X+\n adc r23, r0\n"
        "ld r24, X+\n tst r24\n breq 4f\n"                /* >> pre */
        "3:\n asr r23\n ror r22\n ror r21\n ror r20\n dec r24\n brne 3b\n"
        "4:\n mul r20, r18\n movw r24, r0\n mul r22, r18\n movw r30, r0\n"   /* t * m */
        "mul r21, r18\n add r25, r0\n adc r30, r1\n adc r31, r16\n"
        "mul r20, r19\n add r25, r0\n adc r30, r1\n adc r31, r16\n"
        "mul r21, r19\n add r30, r0\n adc r31, r1\n"
        "mul r22, r19\n add r31, r0\n mul r23, r18\n add r31, r0\n"
        "sbrs r19, 7\n rjmp 5f\n sub r30, r20\n sbc r31, r21\n"              /* m < 0 */
        "5:\n ld r0, X+\n add r24, r0\n ld r0, X+\n adc r25, r0\n ld r0, X+\n adc r30, r0\n ld r0, X+\n"
        "adc r31, r0\n ld r18, X+\n"                                          /* + half, >> shift */
        "sbrs r18, 4\n rjmp 6f\n movw r24, r30\n mov r30, r31\n lsl r30\n sbc r30, r30\n mov r31, r30\n"
        "6:\n sbrs r18, 3\n rjmp 7f\n mov r24, r25\n mov r25, r30\n mov r30, r31\n lsl r31\n sbc r31, r31\n"
        "7:\n andi r18, 7\n breq 9f\n"
        "8:\n asr r31\n ror r30\n ror r25\n ror r24\n dec r18\n brne 8b\n"
        "9:\n ld r0, X+\n mov r18, r0\n lsl r18\n sbc r18, r18\n"            /* + zp */
        "add r24, r0\n adc r25, r18\n adc r30, r18\n adc r31, r18\n"
        "ld r19, X+\n ld r18, X+\n mov r0, r18\n lsl r0\n sbc r0, r0\n"      /* clamp to [lo, hi] */
        "cp r18, r24\n cpc r0, r25\n cpc r0, r30\n cpc r0, r31\n brge 10f\n mov r24, r18\n rjmp 11f\n"
        "10:\n mov r0, r19\n lsl r0\n sbc r0, r0\n"
        "cp r24, r19\n cpc r25, r0\n cpc r30, r0\n cpc r31, r0\n brge 11f\n mov r24, r19\n"
        "11:\n ld r30, X+\n ld r31, X\n st Z, r24\n clr r1\n pop r16\n ret\n");
}

/* The op's constants for avr_rq16; NULL where it does not take them (REQUANT, I32 biases,
 * vectors outside flash): tbn_mm_store_i8 then. */
static avr_rq *avr_rq_init(const mm_ctx *c, avr_rq *q) {
    const mm_epilogue *e = &c->ep;
    if (!e->rq16 || !avr_flash(e->scale) || (e->bias && (!e->bias16 || !avr_flash(e->bias)))) return NULL;
    q->bias = e->bias ? (uint16_t)(__uint24)e->bias : 0u;
    q->scale = (uint16_t)(__uint24)e->scale;
    q->step = e->scale_stride ? 2u : 0u;
    q->pre_half = e->pre_half;
    q->pre = (uint8_t)e->pre_shift;
    q->half = e->half;
    q->shift = (uint8_t)e->shift;
    q->zp = (int8_t)e->zp;
    q->lo = (int8_t)e->qmin;
    q->hi = (int8_t)e->qmax;
    return q;
}

/* Output channel ch at pix from its sum (either call a tail call: no frame). */
static void avr_store(const mm_ctx *c, avr_rq *q, uint16_t ch, uint16_t pix, int32_t acc) {
    if (!q) {
        tbn_mm_store_i8(c, ch, pix, acc);
        return;
    }
    q->dst = (int8_t *)c->dst + (uint16_t)(ch * (uint16_t)c->npix + pix);
    avr_rq16(q, acc, ch);
}

/* A linear op's k taps as runs of nx <= 255 for avr_plus4's 8-bit counts (at most 255 runs);
 * 0 where k has no such split. */
static uint16_t avr_run(uint16_t k) {
    uint16_t nx = 255u;
    while (k % nx) nx--;
    return k / nx <= 255u ? nx : 0u;
}

/* Whether avr_eval takes the op: unit dilation and every window's counts in avr_job's bytes;
 * dense rows in flash; or tile rows in flash that never wrap (one group, whole rows) and an
 * input whose zero point is -128 (cz = 0, as after ReLU: B, the set bits among a window's taps,
 * is not counted). */
static int avr_fast(const mm_ctx *c, uint32_t rows, int16_t cz) {
    const tbn_op *op = c->op;
    int conv = (op->traits & TBN_TRAIT_CONV) != 0;
    if (conv ? op->dw != 1 || c->cg > 255u || c->w > 256u / op->dh || c->h > 32767u / c->w /* the deltas */
             : !avr_run((uint16_t)c->k))
        return 0;
    if (!c->tiled) return avr_flash((const TBN_ROM uint8_t *)c->dense);
    return rows && !cz && avr_flash(c->tile.bits) && (!conv || op->groups == 1);
}
#endif

#if !defined(__AVR__) /* AVR: avr_totals */
/* U of the window. */
static TBN_NOINLINE void window_totals(window *wi) {
    uint32_t u = 0;
    const int8_t *q = wi->q;
    for (uint16_t ic = 0; ic < wi->n_ic; ic++, q += wi->hw) {
        const int8_t *x = q;
        for (uint16_t y = 0; y < wi->ny; y++, x += wi->row_step)
            for (uint16_t j = 0, at = 0; j < wi->nx; j++, at = (uint16_t)(at + wi->dw))
                u += (uint8_t)((uint8_t)x[at] ^ 0x80u);
    }
    wi->u = u;
}
#endif

/* The taps [lo, hi) of a window row or column from input index i0 (stride d) that fall
 * inside [0, size). */
static TBN_NOINLINE void inside(int32_t i0, uint16_t d, uint16_t k, uint16_t size, uint16_t *lo, uint16_t *hi) {
    *lo = 0;
    *hi = k;
    while (*lo < *hi && i0 + (int32_t)*lo * d < 0) (*lo)++;
    while (*hi > *lo && i0 + (int32_t)(*hi - 1) * d >= (int32_t)size) (*hi)--;
}

/* The window of output position (oy, ox) over the group's first input channel; 0 when every
 * tap lies in the padding (the sum is then 0). */
static TBN_NOINLINE int conv_window(const mm_ctx *c, uint16_t oy, uint16_t ox, window *wi) {
    const tbn_op *op = c->op;
    int32_t iy0 = (int32_t)oy * op->sh - op->pt, ix0 = (int32_t)ox * op->sw - op->pl;
    uint16_t ylo, yhi, lo, hi;
    inside(iy0, op->dh, op->kh, c->h, &ylo, &yhi);
    inside(ix0, op->dw, op->kw, c->w, &lo, &hi);
    if (lo >= hi || ylo >= yhi) return 0;
    wi->q = (const int8_t *)c->src + (uint16_t)(iy0 + ylo * op->dh) * c->w + (uint16_t)(ix0 + lo * op->dw);
    wi->n_ic = (uint16_t)c->cg;
    wi->ny = (uint16_t)(yhi - ylo);
    wi->nx = (uint16_t)(hi - lo);
    wi->dw = op->dw;
    wi->hw = (uint16_t)(c->h * c->w);
    wi->row_step = (uint16_t)(op->dh * c->w);
    wi->skip_ic0 = (uint16_t)(ylo * op->kw);
    wi->skip_ic1 = (uint16_t)((op->kh - yhi) * op->kw);
    wi->skip_x0 = lo;
    wi->skip_x1 = (uint16_t)(op->kw - hi);
    return 1;
}

/* Point the cursor at an output's weights: its dense row, or its tile row from bit `pos`
 * (read bit by bit where it wraps at the tile's end). */
static void cur_row(cursor *cu, const mm_ctx *c, uint32_t pos) {
    if (cu->dense) {
        cu->p = (const TBN_ROM uint8_t *)c->dense + pos;
        return;
    }
    cur_seek(cu, pos);
    cu->left = cu->n_bits - pos < c->k ? cu->n_bits - pos : 0u;
}

#if defined(__AVR__)
/* The `rows` distinct rows' sums 2 P - U over the job's window (u: its U), four outputs a call
 * of avr_plus4, m apart so that their rows start at the same bit of a byte (kb bytes apart);
 * the few left over one at a time (kb = 0). Each sum is stored into its outputs ch, ch + rows,
 * ... < o. */
static TBN_NOINLINE void avr_outputs(const mm_ctx *c, avr_rq *q, avr_job *j, uint16_t rows, uint16_t pix,
                                     int32_t u) {
    uint16_t k = (uint16_t)c->k, o = (uint16_t)c->o, m = 1;
    while ((uint16_t)(m * k) & 7u) m = (uint16_t)(m << 1);
    uint16_t kb = (uint16_t)(m * k / 8u);
    for (uint16_t r = 0; r < m; r++) {
        uint32_t pos = (uint32_t)r * k;
        uint16_t z = (uint16_t)((__uint24)c->tile.bits + (uint16_t)(pos >> 3));
        j->sh = (uint8_t)(pos & 7u);
        for (uint16_t ch = r; ch < rows;) {
            uint16_t n = ch + 3u * m < rows ? 4u : 1u;
            j->kb = n == 4u ? kb : 0u;
            j->z = z;
            avr_plus4(j);
            for (uint16_t s = 0; s < n; s++, ch = (uint16_t)(ch + m), z = (uint16_t)(z + kb)) {
                int32_t acc = 2 * (int32_t)j->p[s] - u;
                for (uint16_t t = ch; t < o; t = (uint16_t)(t + rows)) avr_store(c, q, t, pix, acc);
            }
        }
    }
}

/* An op avr_fast takes, at every output position: dense rows one by one, or the window's U
 * and avr_plus4's job for it, then the tile rows. Its frame is never stacked on eval_rows'
 * (the Uno's stack keeps 48 bytes to spare with it). */
static TBN_NOINLINE void avr_eval(const mm_ctx *c, uint16_t rows) {
    int conv = (c->op->traits & TBN_TRAIT_CONV) != 0;
    uint16_t k = (uint16_t)c->k, nx = conv ? 1u : avr_run(k), pix = 0, og = (uint16_t)c->og;
    uint16_t g_in = (uint16_t)(c->cg * c->h * c->w), dense = (uint16_t)((__uint24)c->dense);
    /* a linear op's k taps as k / nx channels of one row of nx, side by side */
    window wi = {(const int8_t *)c->src, (uint16_t)(k / nx), 1, nx, 1, nx, nx, 0, 0, 0, 0, 0};
    avr_job j;
    avr_rq consts, *q = avr_rq_init(c, &consts);
    int16_t cz = (int16_t)(c->in_zp + 128);
    for (uint16_t oy = 0; oy < c->ho; oy++) {
        for (uint16_t ox = 0; ox < c->wo; ox++, pix++) {
            if (conv && !conv_window(c, oy, ox, &wi)) { /* every tap in the padding: each sum is 0 */
                for (uint16_t t = 0; t < c->o; t++) avr_store(c, q, t, pix, 0);
                continue;
            }
            j.x = wi.q;
            j.n_ic = (uint8_t)wi.n_ic;
            j.ny = (uint8_t)wi.ny;
            j.nx = (uint8_t)wi.nx;
            j.row_delta = (uint8_t)(wi.row_step - wi.nx);
            j.ic_delta = (int16_t)(wi.hw - wi.ny * wi.row_step);
            j.skip_ic0 = (uint8_t)wi.skip_ic0;
            j.skip_x0 = (uint8_t)wi.skip_x0;
            j.skip_x1 = (uint8_t)wi.skip_x1;
            j.skip_ic1 = (uint8_t)wi.skip_ic1;
            if (!c->tiled) { /* sum w u - cz sum w, group by group (og outputs each, g_in inputs apart) */
                int32_t n = (int32_t)(wi.n_ic * wi.ny * wi.nx);
                for (uint16_t ch = 0, end = og; ch < c->o; ch++) {
                    if (ch == end) end = (uint16_t)(end + og), j.x += g_in;
                    j.z = (uint16_t)(dense + ch * k);
                    avr_dense(&j);
                    int32_t wu = (int32_t)(j.p[0] - 32768u * (uint32_t)n), sw = (int32_t)j.p[1] - 128 * n;
                    avr_store(c, q, ch, pix, wu - cz * sw);
                }
                continue;
            }
            avr_totals(&j);
            avr_outputs(c, q, &j, rows, pix, (int32_t)j.p[0]);
        }
    }
}
#endif

/* Any op, output by output. */
static TBN_NOINLINE void eval_rows(const mm_ctx *c, uint32_t rows) {
    const tbn_op *op = c->op;
    int conv = (op->traits & TBN_TRAIT_CONV) != 0;
    uint16_t groups = conv ? op->groups : 1u, og = (uint16_t)c->og;
    uint16_t g_in = (uint16_t)(c->cg * c->h * c->w), step = rows ? (uint16_t)rows : (uint16_t)c->o;
    int16_t cz = (int16_t)(c->in_zp + 128);
    cursor cu = {0};
    cu.dense = !c->tiled;
    cu.tile = c->tile.bits;
    cu.n_bits = c->tile.n_bits;
    window wi = {(const int8_t *)c->src, 1, 1, (uint16_t)c->k, 1, 0, 0, 0, 0, 0, 0, 0};
#if TBN_SMALL_COL_BYTES
    uint8_t col[TBN_SMALL_COL_BYTES + 2 * COL_MARGIN];
    int gathered = !cu.dense && c->k <= TBN_SMALL_COL_BYTES, tables = rows && !cz && !cu.dense && (gathered || !conv);
    uint32_t col_u = 0, plus[TABLE_ROWS];
#endif
    uint16_t pix = 0;
    for (uint16_t oy = 0; oy < c->ho; oy++) {
        for (uint16_t ox = 0; ox < c->wo; ox++, pix++) {
            int in = !conv || conv_window(c, oy, ox, &wi);
            uint32_t pos = 0;
            for (uint16_t g = 0, end = 0; g < groups; g++, wi.q += g_in) {
#if TBN_SMALL_COL_BYTES
                if (in && gathered) col_u = col_gather(&wi, col, c->k, (uint8_t)cz);
                else
#endif
#if !defined(__AVR__) /* row_sum_bits' U; AVR's row_sum needs none */
                if (in && !cu.dense) window_totals(&wi);
#endif
                end = (uint16_t)(end + og);
                for (uint16_t ch = (uint16_t)(end - og); ch < end; ch++) {
                    if (rows && ch >= rows) break; /* tile reuse: stored with its row below */
                    cur_row(&cu, c, pos);
#if TBN_SMALL_COL_BYTES
                    if (tables && in && ch % TABLE_ROWS == 0) /* the next rows' sums at once */
                        col_tables(gathered ? col + COL_MARGIN : (const uint8_t *)wi.q, gathered ? 0u : 0x80u, c->k,
                                   cu.tile, cu.n_bits, pos, rows - ch < TABLE_ROWS ? rows - ch : TABLE_ROWS, plus);
#endif
                    int32_t acc = !in ? 0 : cu.dense || cu.left ? row_sum(&wi, &cu, cz) :
#if TBN_SMALL_COL_BYTES
                                  tables ? 2 * (int32_t)plus[ch % TABLE_ROWS] - (int32_t)(gathered ? col_u : wi.u) :
                                  gathered ? col_sum(col, cu.tile, pos, c->k, col_u, cz) :
#endif
#if defined(__AVR__)
                                  row_sum(&wi, &cu, cz);
#else
                                  row_sum_bits(&wi, cu.tile, pos, cz);
#endif
                    for (uint16_t t = ch; t < end; t = (uint16_t)(t + step)) tbn_mm_store_i8(c, t, pix, acc);
                    pos += c->k; /* the next output's weights: k <= n_bits, so one wrap at most */
                    if (!cu.dense && pos >= cu.n_bits) pos -= cu.n_bits;
                }
            }
            wi.q -= groups * g_in;
        }
    }
}

void tbn_mm_eval_small(const mm_ctx *c, uint32_t rows) {
#if defined(__AVR__) /* apart, so that the frames of the two are never stacked */
    if (avr_fast(c, rows, (int16_t)(c->in_zp + 128))) {
        avr_eval(c, (uint16_t)rows);
        return;
    }
#endif
    eval_rows(c, rows);
}

#endif /* TBN_SMALL_KERNEL */
