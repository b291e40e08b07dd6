/* cost.c (RISC-V) -- mtime as the tick clock, and per-inference cost from the core's own
 * counters (see cost.h): minstret (retired instructions) under QEMU's -icount, where it is
 * exact and repeatable; mcycle on a real core. The timer interrupt only wakes the core, so it
 * is masked while a cost is measured: its handler's instructions, counted by minstret when it
 * landed inside an inference, made equal runs differ (by 71 of 16,446 in one CI run). */
#include "cost.h"

#ifndef TBN_TIMER_HZ
#error "TBN_TIMER_HZ (the mtime frequency) must come from the board description"
#endif

#define CLINT_BASE 0x02000000u
#define MTIMECMP_LO (*(volatile uint32_t *)(CLINT_BASE + 0x4000u))
#define MTIMECMP_HI (*(volatile uint32_t *)(CLINT_BASE + 0x4004u))
#define MTIME_LO (*(volatile uint32_t *)(CLINT_BASE + 0xBFF8u))
#define MTIME_HI (*(volatile uint32_t *)(CLINT_BASE + 0xBFFCu))
#define MIE_MTIE 0x80u
#define WAKE_MS 100u /* the longest sleep between two looks at the clock */

void cost_timer_isr(void);

uint64_t cost_ticks(void) {
    uint32_t hi, lo;
    do {
        hi = MTIME_HI;
        lo = MTIME_LO;
    } while (hi != MTIME_HI);
    return ((uint64_t)hi << 32) | lo;
}

#if TBN_TIMER_HZ % 1000 != 0
#error "TBN_TIMER_HZ must be a whole number of kHz"
#endif
/* A multiplication, where ticks per second over 1000 would be a 64-bit division (libgcc's, 1 KB). */
uint64_t cost_ms_ticks(uint32_t ms) { return (uint64_t)ms * (TBN_TIMER_HZ / 1000u); }

static void arm_timer(void) {
    uint64_t next = cost_ticks() + cost_ms_ticks(WAKE_MS);
    MTIMECMP_HI = 0xFFFFFFFFu; /* no spurious match while the halves change */
    MTIMECMP_LO = (uint32_t)next;
    MTIMECMP_HI = (uint32_t)(next >> 32);
}

void cost_timer_isr(void) { arm_timer(); }

void cost_clock_init(void) {
    arm_timer();
    __asm volatile("csrs mie, %0" ::"r"(MIE_MTIE));
}

/* The cost counter: 64 bits read as two halves, consistently. */
static uint64_t counter(void) {
    uint32_t hi, lo, again;
    do {
#if TBN_COST_ICOUNT
        __asm volatile("csrr %0, minstreth\n csrr %1, minstret\n csrr %2, minstreth" : "=r"(hi), "=r"(lo), "=r"(again));
#else
        __asm volatile("csrr %0, mcycleh\n csrr %1, mcycle\n csrr %2, mcycleh" : "=r"(hi), "=r"(lo), "=r"(again));
#endif
    } while (hi != again);
    return ((uint64_t)hi << 32) | lo;
}

uint64_t cost_begin(void) {
    __asm volatile("csrc mie, %0" ::"r"(MIE_MTIE)); /* a pending tick waits for cost_end */
    return counter();
}

uint64_t cost_end(uint64_t start) {
    uint64_t n = counter() - start;
    __asm volatile("csrs mie, %0" ::"r"(MIE_MTIE));
    return n;
}

uint8_t cost_unit(void) { return TBN_COST_ICOUNT ? TBN_COST_UNIT_INSTRUCTIONS : TBN_COST_UNIT_CYCLES; }

uint32_t cost_resolution(void) { return 1u; }

uint32_t cost_wake_ms(void) { return WAKE_MS; }
