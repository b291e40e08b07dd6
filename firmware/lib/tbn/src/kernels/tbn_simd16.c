/* 16-bit SIMD dot products on cores with the DSP extension (tbn_internal.h, TBN_SIMD16): int8
 * operands widened once into SXTB16's order, then SMLAD over halfword pairs. Shared by the
 * product of two activations and the dense convs. */
#include "../tbn_internal.h"

#ifdef TBN_SIMD16
#include <arm_acle.h>

static inline uint32_t sxtb16_ror8(uint32_t v) { /* bytes 1 and 3, sign-extended */
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}

/* k int8 values `step` apart, widened to 16 bits in SXTB16's order (each quad as (v0, v2),
 * (v1, v3): one order for both operands, so pairs of halves multiply alike) with zeros up to
 * k4; returns their sum. */
int32_t tbn_widen16(const int8_t *x, uint32_t step, uint32_t k, uint32_t k4, int16_t *w) {
    int32_t sum = 0;
    uint32_t i = 0;
    if (step == 1u)
        for (; i + 4u <= k; i += 4u) {
            uint32_t v, e, o;
            memcpy(&v, x + i, sizeof v);
            e = __sxtb16(v), o = sxtb16_ror8(v);
            memcpy(w + i, &e, sizeof e);
            memcpy(w + i + 2, &o, sizeof o);
            sum = __smlad(e, 0x00010001u, __smlad(o, 0x00010001u, sum));
        }
    for (; i < k4; i++) {
        int16_t v = i < k ? x[(size_t)i * step] : 0;
        w[TBN_SLOT16(i)] = v;
        sum += v;
    }
    return sum;
}

/* Two rows' dot products with n columns `words` words apart: four SMLADs for four loads, two
 * words a turn, over a 2x2 block of outputs at a time (an odd last column pairs with itself). */
TBN_NOINLINE void tbn_dots_2xn(const uint32_t *a0, const uint32_t *a1, const uint32_t *cols, uint32_t words,
                               uint32_t n, int32_t *s0, int32_t *s1) {
    for (uint32_t p = 0; p < n; p += 2u) {
        const uint32_t *b0 = cols + p * words, *b1 = p + 1u < n ? b0 + words : b0, *x0 = a0, *x1 = a1;
        int32_t s00 = 0, s01 = 0, s10 = 0, s11 = 0;
        uint32_t turns = words / 2u, x, y, u, v;
        /* in assembly: in C, GCC -Os spilled the four sums and pointers beside the outer loop */
#define TBN_DOTS_WORD                                                                           \
    "ldr %[x], [%[x0]], #4\n" "ldr %[y], [%[x1]], #4\n" "ldr %[u], [%[b0]], #4\n" "ldr %[v], [%[b1]], #4\n" \
    "smlad %[s00], %[x], %[u], %[s00]\n" "smlad %[s01], %[x], %[v], %[s01]\n"                        \
    "smlad %[s10], %[y], %[u], %[s10]\n" "smlad %[s11], %[y], %[v], %[s11]\n"
        __asm__ volatile("1:\n" TBN_DOTS_WORD TBN_DOTS_WORD "subs %[n], %[n], #1\n" "bne 1b\n"
                         : [s00] "+r"(s00), [s01] "+r"(s01), [s10] "+r"(s10), [s11] "+r"(s11), [x0] "+r"(x0),
                           [x1] "+r"(x1), [b0] "+r"(b0), [b1] "+r"(b1), [n] "+r"(turns), [x] "=&r"(x), [y] "=&r"(y),
                           [u] "=&r"(u), [v] "=&r"(v)
                         :
                         : "cc", "memory");
#undef TBN_DOTS_WORD
        s0[p] = s00, s1[p] = s10;
        if (p + 1u < n) s0[p + 1u] = s01, s1[p + 1u] = s11;
    }
}
#endif
