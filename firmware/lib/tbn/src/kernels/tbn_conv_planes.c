/* The plane-table kernel of INT8 tiled convs of many rows on DSP cores: pointwise convs, and
 * convs with a window at stride 1 or 2.
 *
 * A conv's input is channel planes, so a word of a plane holds four consecutive positions of
 * one input channel. For a group of four inputs (channels, or a window's taps read from its
 * staged input rows) and a block of positions (8, or 4), the 16 signed sums +-x0 +-x1 +-x2
 * +-x3 of every position are built once, as 16-bit lanes (SXTB16, then one SADD16 or SSUB16 an
 * entry in Gray-code order): a table whose entries are vectors of positions. A distinct row of
 * the tile then costs, per group, one lookup of its four weight bits: a nibble, an address and
 * the entry's words added to the row's sums (8 instructions for 32 MACs), where the table
 * kernel looks up one position at a time and the quad kernel adds each input (42 for the same
 * 32). The table's build (about 150 instructions a group and block) is shared by every row, so
 * the kernel pays from tbn.format.spec.PLANE_MIN_ROWS rows on (PLANE_MIN_ROWS_WINDOW with a
 * window). A pointwise row's outputs are requantised in the same assembly (RQ16, the quad
 * kernel's four-at-a-time form: a multiply-add, a shift, SSAT and a store an output) for each
 * channel that shares the row; a window's rows add their sums of each chunk of taps into 32-bit
 * ones, stored by the per-channel kernel's store.
 *
 * Exact: a table sum is sum_j s_j x_j over the group (|.| <= 512), a chunk's sum over at most
 * 128 inputs fits 16 bits, and the zero point's term -zp * sum_j s_j is one constant a row,
 * folded with the bias into each channel's constant (pointwise) or where a row's sums start. */
#include "tbn_matmul.h"
#if TBN_QUAD_KERNEL

#define PLANE_TABLE_BYTES 4096 /* a block's tables: 16 entries of 16 bytes a group (8 positions) or of 8 */
#define PLANE_MAX_OUT 128      /* output channels: their requantisation constants on the stack */

/* The build's arguments: the first group's first plane at the block's first position (or a
 * window's stage at the block), bytes from one plane to the next (or the window's taps'
 * offsets, int16_t *), the first group's entries and the end of the last. */
typedef struct {
    const int8_t *x;
    uintptr_t step;
    uint32_t *tbl, *end;
} build_args;

/* One half of a group's build (8-position blocks take two): four planes' words at byte O of
 * the block (r2..r5), their even and odd positions in 16-bit lanes (A: r6..r9, B: r2..r5),
 * the entry with every weight +1, each input doubled, then the other 15 entries in Gray-code
 * order, one SADD16 or SSUB16 a lane word, stored at entry * S + E of the group's (lr). */
#define TBN_PLANE_DA_0 "r6"
#define TBN_PLANE_DA_1 "r7"
#define TBN_PLANE_DA_2 "r8"
#define TBN_PLANE_DA_3 "r9"
#define TBN_PLANE_DB_0 "r2"
#define TBN_PLANE_DB_1 "r3"
#define TBN_PLANE_DB_2 "r4"
#define TBN_PLANE_DB_3 "r5"
#define TBN_PLANE_OP_ADD "sadd16"
#define TBN_PLANE_OP_SUB "ssub16"
#define TBN_PLANE_STEP(OP, B, PAT, S, E)                                                         \
    TBN_PLANE_OP_##OP " r10, r10, " TBN_PLANE_DA_##B "\n" TBN_PLANE_OP_##OP " r11, r11, " TBN_PLANE_DB_##B "\n" \
    "strd r10, r11, [lr, #(" #PAT "*" #S "+" #E ")]\n"
#define TBN_PLANE_HALF(O, S, E)                                                                  \
    "ldr r2, [r0, #" #O "]\n" "add r12, r0, r1\n" "ldr r3, [r12, #" #O "]\n" "add r12, r12, r1\n" \
    "ldr r4, [r12, #" #O "]\n" "add r12, r12, r1\n" "ldr r5, [r12, #" #O "]\n" TBN_PLANE_SUMS(S, E)
/* a window's four taps: their offsets from the int16 array at r1, the words at r0 plus each */
#define TBN_PLANE_TAPS                                                                           \
    "ldrsh r12, [r1], #2\n" "ldr r2, [r0, r12]\n" "ldrsh r12, [r1], #2\n" "ldr r3, [r0, r12]\n"   \
    "ldrsh r12, [r1], #2\n" "ldr r4, [r0, r12]\n" "ldrsh r12, [r1], #2\n" "ldr r5, [r0, r12]\n"   \
    TBN_PLANE_SUMS(8, 0)
/* the same for 8 positions: the second half's words 4 bytes on, the offsets read again */
#define TBN_PLANE_TAPS8                                                                          \
    "ldrsh r12, [r1], #2\n" "ldr r2, [r0, r12]\n" "ldrsh r12, [r1], #2\n" "ldr r3, [r0, r12]\n"   \
    "ldrsh r12, [r1], #2\n" "ldr r4, [r0, r12]\n" "ldrsh r12, [r1], #2\n" "ldr r5, [r0, r12]\n"   \
    TBN_PLANE_SUMS(16, 0) "adds r0, r0, #4\n"                                                     \
    "ldrsh r12, [r1, #-8]\n" "ldr r2, [r0, r12]\n" "ldrsh r12, [r1, #-6]\n" "ldr r3, [r0, r12]\n" \
    "ldrsh r12, [r1, #-4]\n" "ldr r4, [r0, r12]\n" "ldrsh r12, [r1, #-2]\n" "ldr r5, [r0, r12]\n" \
    TBN_PLANE_SUMS(16, 8) "subs r0, r0, #4\n"
/* At stride 2 a tap's four positions are the even bytes of two words (A: bytes 0, 2; B: bytes
 * 4, 6), packed into the lanes stride 1 gives: (0, 2) in A, (1, 3) in B. */
#define TBN_PLANE_S2_LOAD(A, B, OFF)                                                             \
    "ldrsh r12, " OFF "\n" "ldr " A ", [r0, r12]\n" "ldr " B ", [r10, r12]\n"
#define TBN_PLANE_S2_PACK(A, B)                                                                  \
    "pkhtb r12, " B ", " A ", asr #16\n" "pkhbt " A ", " A ", " B ", lsl #16\n" "sxtb16 " A ", " A "\n" \
    "sxtb16 " B ", r12\n"
#define TBN_PLANE_S2_TAPS(O1, O2, O3, O4, S, E)                                                  \
    "add r10, r0, #4\n" TBN_PLANE_S2_LOAD("r6", "r2", O1) TBN_PLANE_S2_LOAD("r7", "r3", O2)     \
    TBN_PLANE_S2_LOAD("r8", "r4", O3) TBN_PLANE_S2_LOAD("r9", "r5", O4)                         \
    TBN_PLANE_S2_PACK("r6", "r2") TBN_PLANE_S2_PACK("r7", "r3") TBN_PLANE_S2_PACK("r8", "r4")   \
    TBN_PLANE_S2_PACK("r9", "r5") TBN_PLANE_TAIL(S, E)
#define TBN_PLANE_POST "[r1], #2"
#define TBN_PLANE_TAPS_S2 TBN_PLANE_S2_TAPS(TBN_PLANE_POST, TBN_PLANE_POST, TBN_PLANE_POST, TBN_PLANE_POST, 8, 0)
#define TBN_PLANE_TAPS8_S2                                                                       \
    TBN_PLANE_S2_TAPS(TBN_PLANE_POST, TBN_PLANE_POST, TBN_PLANE_POST, TBN_PLANE_POST, 16, 0)     \
    "adds r0, r0, #8\n"                                                                          \
    TBN_PLANE_S2_TAPS("[r1, #-8]", "[r1, #-6]", "[r1, #-4]", "[r1, #-2]", 16, 8) "subs r0, r0, #8\n"
#define TBN_PLANE_SUMS(S, E)                                                                     \
    "sxtb16 r6, r2\n" "sxtb16 r2, r2, ror #8\n" "sxtb16 r7, r3\n" "sxtb16 r3, r3, ror #8\n"      \
    "sxtb16 r8, r4\n" "sxtb16 r4, r4, ror #8\n" "sxtb16 r9, r5\n" "sxtb16 r5, r5, ror #8\n"      \
    TBN_PLANE_TAIL(S, E)
#define TBN_PLANE_TAIL(S, E)                                                                     \
    "sadd16 r10, r6, r7\n" "sadd16 r10, r10, r8\n" "sadd16 r10, r10, r9\n"                       \
    "sadd16 r11, r2, r3\n" "sadd16 r11, r11, r4\n" "sadd16 r11, r11, r5\n"                       \
    "sadd16 r6, r6, r6\n" "sadd16 r7, r7, r7\n" "sadd16 r8, r8, r8\n" "sadd16 r9, r9, r9\n"      \
    "sadd16 r2, r2, r2\n" "sadd16 r3, r3, r3\n" "sadd16 r4, r4, r4\n" "sadd16 r5, r5, r5\n"      \
    "strd r10, r11, [lr, #(15*" #S "+" #E ")]\n"                                                 \
    TBN_PLANE_STEP(SUB, 0, 14, S, E) TBN_PLANE_STEP(SUB, 1, 12, S, E) TBN_PLANE_STEP(ADD, 0, 13, S, E) \
    TBN_PLANE_STEP(SUB, 2, 9, S, E) TBN_PLANE_STEP(SUB, 0, 8, S, E) TBN_PLANE_STEP(ADD, 1, 10, S, E) \
    TBN_PLANE_STEP(ADD, 0, 11, S, E) TBN_PLANE_STEP(SUB, 3, 3, S, E) TBN_PLANE_STEP(SUB, 0, 2, S, E) \
    TBN_PLANE_STEP(SUB, 1, 0, S, E) TBN_PLANE_STEP(ADD, 0, 1, S, E) TBN_PLANE_STEP(ADD, 2, 5, S, E) \
    TBN_PLANE_STEP(SUB, 0, 4, S, E) TBN_PLANE_STEP(ADD, 1, 6, S, E) TBN_PLANE_STEP(ADD, 0, 7, S, E)

/* Every group's table of one block: entry e of group g at tbl + g * 16 * S + e * S, bit j of
 * e the sign of input 4g + j (1: +1). STEP moves r0 to the next group's planes (pointwise). */
#define TBN_PLANE_BUILD(NAME, HALVES, STEP, GROUP)                                               \
    __attribute__((naked, noinline)) static void NAME(TBN_ASM_ARG const build_args *a) {        \
        __asm__ volatile("push {r4-r11, lr}\n"                                                  \
                         "sub sp, sp, #8\n"                                                     \
                         "ldr r12, [r0, #12]\n"                                                 \
                         "str r12, [sp]\n"                                                      \
                         "ldm r0, {r0, r1, lr}\n" /* x step tbl */                              \
                         "1:\n"                                                                 \
                         HALVES                                                                 \
                         STEP                                                                   \
                         "add lr, lr, #" #GROUP "\n"                                            \
                         "ldr r12, [sp]\n"                                                      \
                         "cmp lr, r12\n"                                                        \
                         "bne 1b\n"                                                             \
                         "add sp, sp, #8\n"                                                     \
                         "pop {r4-r11, pc}\n");                                                 \
    }
#define TBN_PLANE_NEXT "add r0, r0, r1, lsl #2\n"
TBN_PLANE_BUILD(build8, TBN_PLANE_HALF(0, 16, 0) TBN_PLANE_HALF(4, 16, 8), TBN_PLANE_NEXT, 256)
TBN_PLANE_BUILD(build4, TBN_PLANE_HALF(0, 8, 0), TBN_PLANE_NEXT, 128)
/* a window's: x is the stage at the block, step the taps' offsets (int16_t *) */
TBN_PLANE_BUILD(build4_taps, TBN_PLANE_TAPS, "", 128)
TBN_PLANE_BUILD(build8_taps, TBN_PLANE_TAPS8, "", 256)
TBN_PLANE_BUILD(build4_taps_s2, TBN_PLANE_TAPS_S2, "", 128)
TBN_PLANE_BUILD(build8_taps_s2, TBN_PLANE_TAPS8_S2, "", 256)

/* The rows' arguments: the block's tables; the first row's tile bits (a halfword for four
 * groups) and their end; for each channel sharing the row, its constants (add, mult), the step
 * to the next channel's, its outputs at the block and the step to the next's; the channels a
 * row; RQ16's shift; the rows; a row's bits in bytes and its outputs' step. bits, bits_end, q
 * and out advance a row at a time. */
typedef struct {
    const uint32_t *tbl;
    const uint16_t *bits, *bits_end;
    const int32_t *q;
    uint32_t qstep;
    int8_t *out;
    uint32_t ostep, nch, shift, rows, row_bytes, npix;
} row_args;

/* One group's lookup: its nibble of r12 selects an entry, whose lane words are added to the
 * sums (r4..r7, or r4..r5). */
#define TBN_PLANE_LOOK8(I) TBN_PLANE_LOOK8_T(I, "r3")
#define TBN_PLANE_LOOK8_T(I, T)                                                                  \
    "ubfx " T ", r12, #(4*" #I "), #4\n" "add " T ", r0, " T ", lsl #4\n"                        \
    "ldrd r8, r9, [" T ", #(" #I "*256)]\n" "ldrd r10, r11, [" T ", #(" #I "*256+8)]\n"          \
    "sadd16 r4, r4, r8\n" "sadd16 r5, r5, r9\n" "sadd16 r6, r6, r10\n" "sadd16 r7, r7, r11\n"
#define TBN_PLANE_LOOK4(I) TBN_PLANE_LOOK4_T(I, "r3")
#define TBN_PLANE_LOOK4_T(I, T)                                                                  \
    "ubfx " T ", r12, #(4*" #I "), #4\n" "add " T ", r0, " T ", lsl #3\n"                        \
    "ldrd r8, r9, [" T ", #(" #I "*128)]\n" "sadd16 r4, r4, r8\n" "sadd16 r5, r5, r9\n"
/* One channel's outputs at positions P and Q from the lane word R (bottom P, top Q). */
#define TBN_PLANE_RQ(R, P, Q)                                                                    \
    "smlabb r10, " R ", r9, r8\n" "smlatb r11, " R ", r9, r8\n" "asr r10, r10, lr\n"             \
    "asr r11, r11, lr\n" "ssat r10, #8, r10\n" "ssat r11, #8, r11\n"                             \
    "strb r10, [r2, #" #P "]\n" "strb r11, [r2, #" #Q "]\n"

/* A row's sums: its tile bits from bits to bits_end a halfword (four groups) at a time, each
 * group's entry added to r4..r7 (ZERO clears them), the table pointer r0 stepping 4 groups;
 * the arguments' address stays at [sp] and the loop over rows starts at 3. */
#define TBN_PLANE_HEAD(ZERO, LOOKS, STEP4)                                                       \
    "push {r4-r11, lr}\n" "sub sp, sp, #8\n" "str r0, [sp]\n" "3:\n" "ldr lr, [sp]\n"          \
    "ldm lr, {r0-r3}\n" /* tbl bits bits_end (acc) */ ZERO "1:\n" "ldrh r12, [r1], #2\n" LOOKS  \
    "add r0, r0, #" #STEP4 "\n" "cmp r1, r2\n" "bne 1b\n"
#define TBN_PLANE_ZERO4 "movs r4, #0\n" "movs r5, #0\n"
#define TBN_PLANE_ZERO8 TBN_PLANE_ZERO4 "movs r6, #0\n" "movs r7, #0\n"

#define TBN_PLANE_ROW(NAME, LOOKS, STEP4, STORES)                                                \
    __attribute__((naked, noinline)) static void NAME(TBN_ASM_ARG const row_args *a) {          \
        __asm__ volatile(TBN_PLANE_HEAD(TBN_PLANE_ZERO8, LOOKS, STEP4)                          \
                         "ldr lr, [sp]\n"                                                       \
                         "add lr, lr, #12\n"                                                    \
                         "ldm lr, {r0-r3, r12, lr}\n" /* q qstep out ostep nch shift */         \
                         "2:\n"                                                                 \
                         "ldrd r8, r9, [r0]\n"                                                  \
                         "add r0, r0, r1\n"                                                     \
                         STORES                                                                 \
                         "add r2, r2, r3\n"                                                     \
                         "subs r12, r12, #1\n"                                                  \
                         "bne 2b\n"                                                             \
                         "ldr lr, [sp]\n" /* the next row */                                    \
                         "ldrd r0, r1, [lr, #4]\n"                                              \
                         "ldrd r2, r3, [lr, #40]\n" /* row_bytes npix */                        \
                         "mov r0, r1\n"                                                         \
                         "add r1, r1, r2\n"                                                     \
                         "strd r0, r1, [lr, #4]\n"                                              \
                         "ldr r0, [lr, #12]\n"                                                  \
                         "adds r0, r0, #8\n"                                                    \
                         "str r0, [lr, #12]\n"                                                  \
                         "ldr r0, [lr, #20]\n"                                                  \
                         "add r0, r0, r3\n"                                                     \
                         "str r0, [lr, #20]\n"                                                  \
                         "ldr r0, [lr, #36]\n"                                                  \
                         "subs r0, r0, #1\n"                                                    \
                         "str r0, [lr, #36]\n"                                                  \
                         "bne 3b\n"                                                             \
                         "add sp, sp, #8\n"                                                     \
                         "pop {r4-r11, pc}\n");                                                 \
    }
/* lane words: (0, 2), (1, 3), (4, 6), (5, 7) */
TBN_PLANE_ROW(row8,
              TBN_PLANE_LOOK8(0) TBN_PLANE_LOOK8(1) TBN_PLANE_LOOK8(2) TBN_PLANE_LOOK8(3), 1024,
              TBN_PLANE_RQ("r4", 0, 2) TBN_PLANE_RQ("r5", 1, 3) TBN_PLANE_RQ("r6", 4, 6) TBN_PLANE_RQ("r7", 5, 7))
TBN_PLANE_ROW(row4,
              TBN_PLANE_LOOK4(0) TBN_PLANE_LOOK4(1) TBN_PLANE_LOOK4(2) TBN_PLANE_LOOK4(3), 512,
              TBN_PLANE_RQ("r4", 0, 2) TBN_PLANE_RQ("r5", 1, 3))

/* A window's rows over one chunk of taps: the block's tables; the first row's chunk of tile
 * bits and its end; the first row's 32-bit sums at the block; the steps from one row's bits and
 * sums to the next's (bytes); the rows; the first row's zero-point term (int32), which a first
 * chunk's sums start from. bits, bits_end, acc and corr advance a row at a time. */
typedef struct {
    const uint32_t *tbl;
    const uint16_t *bits, *bits_end;
    int32_t *acc;
    uint32_t bits_step, acc_step, rows;
    const int32_t *corr;
} chunk_args;

/* Each row's sums of the chunk (lane words (0, 2), (1, 3) and for 8 positions (4, 6), (5, 7))
 * added by SXTAH into its 32-bit sums: those so far, or (START_*) the row's zero-point term. */
/* the four positions of lane words A and B, each added to the zero-point term in lr */
#define TBN_PLANE_FROM_CORR(A, B)                                                                \
    "sxtah r8, lr, " A "\n" "sxtah r9, lr, " B "\n" "sxtah r10, lr, " A ", ror #16\n"            \
    "sxtah r11, lr, " B ", ror #16\n"
#define TBN_PLANE_CORR_LR "ldr lr, [sp]\n" "ldr lr, [lr, #28]\n" "ldr lr, [lr]\n"
#define TBN_PLANE_START4                                                                         \
    TBN_PLANE_CORR_LR TBN_PLANE_FROM_CORR("r4", "r5") "strd r8, r9, [r3]\n" "strd r10, r11, [r3, #8]\n"
#define TBN_PLANE_NEXT4                                                                          \
    "ldrd r8, r9, [r3]\n" "ldrd r10, r11, [r3, #8]\n" "sxtah r8, r8, r4\n" "sxtah r9, r9, r5\n" \
    "sxtah r10, r10, r4, ror #16\n" "sxtah r11, r11, r5, ror #16\n"                              \
    "strd r8, r9, [r3]\n" "strd r10, r11, [r3, #8]\n"
#define TBN_PLANE_START8                                                                         \
    TBN_PLANE_CORR_LR TBN_PLANE_FROM_CORR("r4", "r5") "stm r3, {r8-r11}\n" TBN_PLANE_FROM_CORR("r6", "r7") \
    "strd r8, r9, [r3, #16]\n" "strd r10, r11, [r3, #24]\n"
#define TBN_PLANE_NEXT8                                                                          \
    "ldm r3, {r8-r11}\n" "sxtah r8, r8, r4\n" "sxtah r9, r9, r5\n" "sxtah r10, r10, r4, ror #16\n" \
    "sxtah r11, r11, r5, ror #16\n" "stm r3, {r8-r11}\n"                                         \
    "ldrd r8, r9, [r3, #16]\n" "ldrd r10, r11, [r3, #24]\n" "sxtah r8, r8, r6\n" "sxtah r9, r9, r7\n" \
    "sxtah r10, r10, r6, ror #16\n" "sxtah r11, r11, r7, ror #16\n"                              \
    "strd r8, r9, [r3, #16]\n" "strd r10, r11, [r3, #24]\n"
#define TBN_PLANE_CHUNK(NAME, LOOKS, STEP4, ZERO, ADD)                                           \
    __attribute__((naked, noinline)) static void NAME(TBN_ASM_ARG const chunk_args *a) {        \
        __asm__ volatile(TBN_PLANE_HEAD(ZERO, LOOKS, STEP4)                                     \
                         ADD                                                                    \
                         "ldr lr, [sp]\n" /* the next row */                                    \
                         "ldrd r0, r1, [lr, #4]\n"                                              \
                         "ldrd r2, r4, [lr, #16]\n" /* bits_step acc_step */                    \
                         "add r0, r0, r2\n"                                                     \
                         "add r1, r1, r2\n"                                                     \
                         "strd r0, r1, [lr, #4]\n"                                              \
                         "add r3, r3, r4\n"                                                     \
                         "str r3, [lr, #12]\n"                                                  \
                         "ldr r0, [lr, #28]\n"                                                  \
                         "adds r0, r0, #4\n"                                                    \
                         "str r0, [lr, #28]\n"                                                  \
                         "ldr r0, [lr, #24]\n"                                                  \
                         "subs r0, r0, #1\n"                                                    \
                         "str r0, [lr, #24]\n"                                                  \
                         "bne 3b\n"                                                             \
                         "add sp, sp, #8\n"                                                     \
                         "pop {r4-r11, pc}\n");                                                 \
    }
#define TBN_PLANE_LOOKS4_LR                                                                      \
    TBN_PLANE_LOOK4_T(0, "lr") TBN_PLANE_LOOK4_T(1, "lr") TBN_PLANE_LOOK4_T(2, "lr") TBN_PLANE_LOOK4_T(3, "lr")
#define TBN_PLANE_LOOKS8_LR                                                                      \
    TBN_PLANE_LOOK8_T(0, "lr") TBN_PLANE_LOOK8_T(1, "lr") TBN_PLANE_LOOK8_T(2, "lr") TBN_PLANE_LOOK8_T(3, "lr")
TBN_PLANE_CHUNK(chunk4_first, TBN_PLANE_LOOKS4_LR, 512, TBN_PLANE_ZERO4, TBN_PLANE_START4)
TBN_PLANE_CHUNK(chunk4_next, TBN_PLANE_LOOKS4_LR, 512, TBN_PLANE_ZERO4, TBN_PLANE_NEXT4)
TBN_PLANE_CHUNK(chunk8_first, TBN_PLANE_LOOKS8_LR, 1024, TBN_PLANE_ZERO8, TBN_PLANE_START8)
TBN_PLANE_CHUNK(chunk8_next, TBN_PLANE_LOOKS8_LR, 1024, TBN_PLANE_ZERO8, TBN_PLANE_NEXT8)

#define PLANE_PAD_BITS 256 /* halfwords of row bits padded to a multiple of 16 (fan-in not one) */

/* Positions a block for this op (8 or 4), 0 where the kernel does not take it: INT8 tiled
 * pointwise convs of PLANE_MIN_ROWS rows and PLANE_MIN_POSITIONS positions or more, fan-in a
 * multiple of 4 whose groups, padded to a multiple of four groups, number at most 32 (16 for
 * blocks of 8), RQ16 in the four-at-a-time form. */
static uint32_t block_of(const mm_ctx *c, uint32_t rows) {
    const mm_epilogue *e = &c->ep;
    uint32_t k16 = (c->k + 15u) / 16u * 16u;
    if (rows < TBN_PLANE_MIN_ROWS || c->o > PLANE_MAX_OUT || c->k % 4u || k16 > 128u ||
        (c->k % 16u && rows * k16 / 16u > PLANE_PAD_BITS) || c->npix < TBN_PLANE_MIN_POSITIONS)
        return 0;
    if (!e->rq16 || e->qmax != 127 || e->qmin != -128 || e->pre_shift || e->shift > 22) return 0;
    return k16 <= 64u ? 8u : 4u;
}

/* Each channel's (add, mult): RQ16's bias, the row's zero-point term and rounding folded into
 * one constant, as rq16_quads takes them; 0 where one is past the 2^30 that keeps s * mult + add
 * in 32 bits. Row r's bits are hw halfwords at bits + r * hw. */
static int channel_constants(const mm_ctx *c, uint32_t rows, const uint16_t *bits, uint32_t hw, int32_t *q) {
    const mm_epilogue *e = &c->ep;
    int64_t zp_term = (int64_t)e->half + (int64_t)e->zp * ((int64_t)1 << e->shift);
    for (uint32_t o = 0; o < c->o; o++) {
        int32_t plus = 0;
        for (uint32_t i = 0; i < hw; i++) plus += __builtin_popcount(bits[o % rows * hw + i]);
        int32_t sum_w = 2 * plus - (int32_t)c->k, mult = (int16_t)tbn_rd16(e->scale + o * e->scale_stride);
        int64_t add = ((int64_t)bias_i32(e, o) - (int64_t)c->in_zp * sum_w) * mult + zp_term;
        if (add < -(1LL << 30) || add > (1LL << 30)) return 0;
        q[2 * o] = (int32_t)add, q[2 * o + 1] = mult;
    }
    return 1;
}

/* Each row's bits as the lookups read them, (fan-in + 15) / 16 halfwords a row: the tile itself
 * where the fan-in is a multiple of 16 (a row starts at a halfword), else copied into pad, each
 * row zero-filled to a halfword. */
static const uint16_t *row_bits(const mm_ctx *c, uint32_t rows, uint16_t *pad) {
    uint32_t k = c->k, hw = (k + 15u) / 16u;
    if (!(k % 16u)) return (const uint16_t *)(const void *)c->tile.bits;
    for (uint32_t r = 0; r < rows; r++)
        for (uint32_t i = 0; i < hw; i++) {
            uint32_t n = k - 16u * i < 16u ? k - 16u * i : 16u;
            pad[r * hw + i] = (uint16_t)(bits_at(c->tile.bits, r * k + 16u * i, n) & ((1u << n) - 1u));
        }
    return pad;
}

static TBN_NOINLINE int eval_pointwise(const mm_ctx *c, uint32_t rows) {
    uint32_t n = block_of(c, rows);
    int32_t q[2 * PLANE_MAX_OUT] __attribute__((aligned(8))); /* LDRD */
    uint32_t tbl[PLANE_TABLE_BYTES / 4];
    uint16_t pad[PLANE_PAD_BITS];
    if (!n) return 0;
    uint32_t npix = c->npix, hw = (c->k + 15u) / 16u, group = n == 8u ? 256u : 128u;
    const uint16_t *bits = row_bits(c, rows, pad);
    if (!channel_constants(c, rows, bits, hw, q)) return 0;
    /* the padding groups' tables hold zeros: their bits are 0, their inputs none */
    memset((uint8_t *)tbl + c->k / 4u * group, 0, (hw * 4u - c->k / 4u) * group);
    const int8_t *x = (const int8_t *)c->src;
    /* rows [0, split) feed one channel more than the rest, where they do not divide the outputs */
    uint32_t used = rows < c->o ? rows : c->o, nch = c->o / used, split = c->o % used;
    uint32_t from[2] = {0, split}, count[2] = {split, used - split};
    for (uint32_t p0 = 0; p0 < npix; p0 += n) {
        uint32_t at = p0 + n <= npix ? p0 : npix - n; /* the last block again, overlapping */
        build_args b = {x + at, npix, tbl, tbl + c->k / 4u * group / 4u};
        (n == 8u ? build8 : build4)(&b);
        for (uint32_t part = 0; part < 2u; part++) {
            uint32_t r = from[part];
            row_args a = {tbl, bits + r * hw, bits + (r + 1u) * hw, q + 2u * r, 8u * rows,
                          (int8_t *)c->dst + (size_t)r * npix + at, rows * npix, nch + !part, c->ep.shift,
                          count[part], 2u * hw, npix};
            if (count[part]) (n == 8u ? row8 : row4)(&a);
        }
    }
    return 1;
}

/* The windows' frame: a chunk's staged input rows, every distinct row's 32-bit sums of the output
 * row and zero-point term, the chunk's tables and its taps' offsets; where the fan-in is not a
 * multiple of 16, the rows' bits padded and a row of zeros that the padding taps read. */
#define PLANE_WIN_BYTES 6144

/* How a conv with a window runs: positions a block (8 or 4: 256 or 128 table bytes a group),
 * taps a chunk (a multiple of 16, at most 64) and where each part of the frame starts (bytes);
 * chunk 0 where the kernel does not take the op. It takes INT8 tiled convs of
 * PLANE_MIN_ROWS_WINDOW rows or more, stride 1 or 2, dilation 1, output rows a multiple of 4
 * wide, whose frame fits PLANE_WIN_BYTES; of the plans that fit, the one plan_cost puts lowest. */
typedef struct {
    uint32_t lanes, chunk, k16; /* k16: the fan-in padded to a multiple of 16 */
    uint32_t whole;             /* every channel staged once an output row, else a chunk's */
    uint32_t all;               /* (whole) every tap's offset set once, else a chunk's each time */
    uint32_t zeros, acc, corr, bits, tbl, offs, end;
} window_plan;

/* Bytes of staged rows: every channel's or the most a chunk of n taps spans, kh padded rows
 * each, and a word past the last that stride 2's last block may read into (unused bytes). */
static uint32_t stage_bytes(const mm_ctx *c, uint32_t n, uint32_t whole) {
    const tbn_op *op = c->op;
    uint32_t kk = (uint32_t)op->kh * op->kw, span = (n + kk - 1u) / kk + 1u, len = (uint32_t)op->pl + c->w + op->pr;
    return ((whole || span > c->cg ? c->cg : span) * op->kh * len + 3u) / 4u * 4u + 4u;
}

static window_plan lay_out(const mm_ctx *c, uint32_t used, uint32_t lanes, uint32_t n, uint32_t whole,
                           uint32_t all) {
    window_plan p = {lanes, n, (c->k + 15u) / 16u * 16u, whole, all, 0, 0, 0, 0, 0, 0, 0};
    uint32_t padded = c->k % 16u != 0;
    p.zeros = stage_bytes(c, n, whole);
    p.acc = p.zeros + (padded ? (c->wo * c->op->sw + 16u + 3u) / 4u * 4u : 0u);
    p.corr = p.acc + used * c->wo * 4u;
    p.bits = p.corr + used * 4u;
    p.tbl = p.bits + (padded ? (used * p.k16 / 8u + 3u) / 4u * 4u : 0u);
    p.offs = p.tbl + n / 4u * 32u * lanes;
    p.end = p.offs + (all ? p.k16 : n) * 2u;
    return p;
}

/* An estimate of a plan's instructions an output row on the M7 (the tables' build is the same
 * for every plan): each row's lookups, 36 a step of four groups for 8 positions and 24 for 4,
 * and about 30 a chunk; staging about 40 a row; 6 a tap where offsets are set each time. */
static uint32_t plan_cost(const mm_ctx *c, const window_plan *p, uint32_t used) {
    uint32_t kk = (uint32_t)c->op->kh * c->op->kw, chunks = (p->k16 + p->chunk - 1u) / p->chunk;
    uint32_t span = (p->chunk + kk - 1u) / kk + 1u, staged = p->whole ? c->cg : chunks * (span < c->cg ? span : c->cg);
    uint32_t rows = c->wo / p->lanes * used * (p->k16 / 16u * (p->lanes == 8u ? 36u : 24u) + chunks * 30u);
    return rows + staged * c->op->kh * 40u + (p->all ? 0u : p->k16 * 6u);
}

static window_plan plan_windows(const mm_ctx *c, uint32_t rows) {
    const tbn_op *op = c->op;
    window_plan best = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    if (rows < TBN_PLANE_MIN_ROWS_WINDOW || op->sh != op->sw || op->sw > 2u || op->dh != 1 || op->dw != 1 ||
        c->wo % 4u || c->npix < TBN_PLANE_MIN_POSITIONS)
        return best;
    uint32_t used = rows < c->o ? rows : c->o, cost = 0;
    for (uint32_t lanes = c->wo % 8u ? 4u : 8u; lanes >= 4u; lanes -= 4u)
        for (uint32_t n = 64; n >= 16u; n -= 16)
            for (uint32_t mode = 0; mode < 3u; mode++) { /* staged once an output row, offsets set once */
                window_plan p = lay_out(c, used, lanes, n, mode < 2u, mode == 0u);
                uint32_t est = p.end <= PLANE_WIN_BYTES ? plan_cost(c, &p, used) : 0u;
                if (est && (!best.chunk || est < cost)) best = p, cost = est;
            }
    return best;
}

/* Taps j0 .. j0 + n - 1's offsets in a stage whose first channel is ch0: tap (channel, ky, kx)
 * at staged row (channel - ch0, ky), column kx; taps past the fan-in at the row of zeros. */
static void set_offsets(const mm_ctx *c, uint32_t j0, uint32_t n, uint32_t ch0, uint32_t len, uint32_t zeros,
                        int16_t *offs) {
    uint32_t kw = c->op->kw, row = (j0 - ch0 * c->op->kh * kw) / kw, kx = j0 % kw;
    for (uint32_t j = 0; j < n; j++) {
        offs[j] = (int16_t)(j0 + j < c->k ? row * len + kx : zeros);
        if (++kx == kw) kx = 0, row++;
    }
}

/* Each output row: per chunk of taps, the channels it spans staged, then per block of positions
 * the tables built and every distinct row's lookups added to its 32-bit sums (the first
 * chunk's to its zero-point term); the sums stored as the per-channel kernel stores 32-bit
 * sums. Taps past the fan-in read the row of zeros. */
static TBN_NOINLINE int eval_windows(const mm_ctx *c, uint32_t rows) {
    window_plan plan = plan_windows(c, rows);
    if (!plan.chunk) return 0;
    uint32_t buf[PLANE_WIN_BYTES / 4];
    const tbn_op *op = c->op;
    uint8_t *base = (uint8_t *)buf;
    uint32_t used = rows < c->o ? rows : c->o, len = (uint32_t)op->pl + c->w + op->pr, k = c->k, wo = c->wo;
    uint32_t chunk = plan.chunk, lanes = plan.lanes, group = 32u * lanes, kk = (uint32_t)op->kh * op->kw;
    int8_t *stage = (int8_t *)base;
    int32_t *acc = (int32_t *)(void *)(base + plan.acc), *corr = (int32_t *)(void *)(base + plan.corr);
    uint32_t *tbl = (uint32_t *)(void *)(base + plan.tbl);
    int16_t *offs = (int16_t *)(void *)(base + plan.offs);
    const uint16_t *bits = row_bits(c, used, (uint16_t *)(void *)(base + plan.bits));
    void (*build)(const build_args *) = op->sw == 1 ? (lanes == 8u ? build8_taps : build4_taps)
                                                    : (lanes == 8u ? build8_taps_s2 : build4_taps_s2);
    void (*first)(const chunk_args *) = lanes == 8u ? chunk8_first : chunk4_first;
    void (*next)(const chunk_args *) = lanes == 8u ? chunk8_next : chunk4_next;
    memset(base + plan.zeros, 0, plan.acc - plan.zeros);
    for (uint32_t r = 0; r < used; r++) {
        int32_t plus = 0;
        for (uint32_t i = 0; i < plan.k16 / 16u; i++) plus += __builtin_popcount(bits[r * plan.k16 / 16u + i]);
        corr[r] = -c->in_zp * (2 * plus - (int32_t)k);
    }
    if (plan.all) set_offsets(c, 0, plan.k16, 0, len, plan.zeros, offs);
    for (uint32_t oy = 0; oy < c->ho; oy++) {
        if (plan.whole) tbn_quad_stage_rows(c, oy, stage, len, 0, c->cg);
        for (uint32_t j0 = 0; j0 < plan.k16; j0 += chunk) {
            uint32_t n = plan.k16 - j0 < chunk ? plan.k16 - j0 : chunk, ch0 = plan.whole ? 0u : j0 / kk;
            const int16_t *o = plan.all ? offs + j0 : offs;
            if (!plan.whole) {
                uint32_t last = (j0 + n < k ? j0 + n : k) - 1u;
                tbn_quad_stage_rows(c, oy, stage, len, ch0, last / kk - ch0 + 1u);
            }
            if (!plan.all) set_offsets(c, j0, n, ch0, len, plan.zeros, offs);
            for (uint32_t ox = 0; ox < wo; ox += lanes) {
                build_args b = {stage + ox * op->sw, (uintptr_t)o, tbl, tbl + n / 4u * group / 4u};
                build(&b);
                chunk_args a = {tbl, bits + j0 / 16u, bits + (j0 + n) / 16u, acc + ox, plan.k16 / 8u, wo * 4u,
                                used, corr};
                (j0 ? next : first)(&a);
            }
        }
        for (uint32_t r = 0; r < used; r++) tbn_chan_store32_i8(c, r, rows, acc + r * wo, wo, oy * wo);
    }
    return 1;
}

int tbn_mm_eval_planes(const mm_ctx *c, uint32_t rows) {
    const tbn_op *op = c->op;
    if (!TBN_INT8(c->int8) || !c->tiled || !(op->traits & TBN_TRAIT_CONV) || op->groups != 1) return 0;
    return tbn_pointwise(op) ? eval_pointwise(c, rows) : eval_windows(c, rows);
}
#endif /* TBN_QUAD_KERNEL */
