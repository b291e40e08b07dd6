/* cost.h -- the price of one inference, deterministic where the board allows it.
 *
 * On a real core the cost is core clock cycles. Under QEMU with `-icount shift=0`
 * (TBN_COST_ICOUNT builds) every instruction advances virtual time by exactly 1 ns, so
 * SysTick ticks convert to executed instructions: 1e9 / TBN_CLOCK_HZ per tick (40 on
 * the 25 MHz MPS2 boards). That is the resolution; docs/protocol.md says so.
 */
#ifndef TBN_COST_H
#define TBN_COST_H

#include <stdint.h>

#include "tbn_protocol.h" /* TBN_COST_UNIT_* */

/* SysTick as a 64-bit tick clock: the reload interrupt counts wraps. */
void cost_clock_init(void);

/* Ticks since cost_clock_init, TBN_CLOCK_HZ per second. */
uint64_t cost_ticks(void);

/* Start a measurement on a tick edge, so equal work gives equal counts. */
uint64_t cost_begin(void);

/* Cost since `start`, in the unit of cost_unit(). */
uint64_t cost_end(uint64_t start);

uint8_t cost_unit(void);

/* Cost units per tick (the resolution). */
uint32_t cost_resolution(void);

/* The longest the core sleeps between two looks at the clock: one SysTick wrap, in ms
 * (rounded up). A timeout is noticed at most this late. */
uint32_t cost_wake_ms(void);

#endif /* TBN_COST_H */
