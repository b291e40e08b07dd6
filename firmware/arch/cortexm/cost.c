/* cost.c (Cortex-M) -- SysTick as a 64-bit clock (the reload interrupt counts wraps), and per-inference cost from it (see cost.h). */
#include "cost.h"

#include "arch.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SYST_RELOAD 0x00FFFFFFu

#define ICSR (*(volatile uint32_t *)0xE000ED04u)
#define ICSR_PENDSTCLR (1u << 25)

static volatile uint32_t systick_wraps;
static uint64_t g_base; /* ticks before the SysTick period under way (cost_begin restarts it) */

void SysTick_Handler(void);
void SysTick_Handler(void) { systick_wraps++; }

void cost_clock_init(void) {
    SYST_RVR = SYST_RELOAD;
    SYST_CVR = 0;
    SYST_CSR = 7u; /* processor clock, interrupt on wrap, enabled */
}

uint64_t cost_ticks(void) {
    uint32_t wraps, value;
    do {
        wraps = systick_wraps;
        value = SYST_CVR;
    } while (wraps != systick_wraps);
    return g_base + (uint64_t)wraps * (SYST_RELOAD + 1u) + (SYST_RELOAD - value);
}

uint64_t cost_ms_ticks(uint32_t ms) { return (uint64_t)TBN_CLOCK_HZ * ms / 1000u; }

static uint64_t g_excluded; /* ticks cost_exclude took out of the measurement under way */

/* Restart SysTick's period on a tick edge: its wrap interrupt (every 2^24 ticks) then falls at
 * the same offsets from every measurement's start, so equal work gives equal counts. Left free
 * running, a wrap landed inside some runs and not others, and its handler's instructions made
 * equal runs differ by two ticks on netduinoplus2. The 64-bit clock loses the restart's tick. */
uint64_t cost_begin(void) {
    arch_irq_off();
    g_base = cost_ticks();
    systick_wraps = 0;
    SYST_CVR = 0; /* any write zeroes the counter; it reloads from SYST_RVR on the next tick */
    ICSR = ICSR_PENDSTCLR; /* a wrap since cost_ticks() is in g_base already */
    uint32_t value = SYST_CVR;
    while (SYST_CVR == value) {
    }
    arch_irq_on();
    g_excluded = 0;
    return cost_ticks();
}

uint64_t cost_mark(void) { return cost_ticks(); }

void cost_exclude(uint64_t mark) { g_excluded += cost_ticks() - mark; }

uint32_t cost_resolution(void) {
#if TBN_COST_ICOUNT
    return (uint32_t)((1000000000u + TBN_CLOCK_HZ - 1u) / TBN_CLOCK_HZ); /* rounded up */
#else
    return 1u;
#endif
}

uint32_t cost_wake_ms(void) {
    return (uint32_t)(((uint64_t)SYST_RELOAD + 1u) * 1000u / TBN_CLOCK_HZ + 1u);
}

uint64_t cost_end(uint64_t start) {
    uint64_t ticks = cost_ticks() - start - g_excluded;
#if TBN_COST_ICOUNT
    /* 1 ns of virtual time per instruction under -icount shift=0 */
    return ticks * 1000000000ull / TBN_CLOCK_HZ;
#else
    return ticks;
#endif
}

uint8_t cost_unit(void) {
#if TBN_COST_ICOUNT
    return TBN_COST_UNIT_INSTRUCTIONS;
#else
    return TBN_COST_UNIT_CYCLES;
#endif
}
