/* Arithmetic the runtime calls out of line on AVR, where avr-gcc's own code is slow. */
#include "tbn_internal.h"
#if defined(__AVR__)

/* v >> s, arithmetic, s < 32: byte steps first. avr-gcc shifts 32 bits by a variable count one
 * bit a loop pass (about 6 cycles a bit), which made RQ16 requantisation a third of the Uno's
 * cycles once the sums got fast. */
int32_t tbn_avr_sra32(int32_t v, uint8_t s) {
    if (s & 16u) v >>= 16;
    if (s & 8u) v >>= 8;
    for (s &= 7u; s; s--) v >>= 1;
    return v;
}

#else
typedef int tbn_avr_unused; /* ISO C: a translation unit holds a declaration */
#endif
