/* cost.h -- the price of one inference, deterministic where the board allows it.
 *
 * On a real core the cost is core clock cycles. Under QEMU with `-icount shift=0`
 * (TBN_COST_ICOUNT builds) it is executed instructions. Each arch/<arch>/cost.c implements
 * this header: on Cortex-M, SysTick ticks convert to instructions (1 ns of virtual time each),
 * 1e9 / TBN_CLOCK_HZ per tick (40 on the 25 MHz MPS2 boards), which is the resolution; on
 * RISC-V, minstret and mcycle count exactly (resolution 1). docs/protocol.md says so.
 */
#ifndef TBN_COST_H
#define TBN_COST_H

#include <stdint.h>

#include "tbn_protocol.h" /* TBN_COST_UNIT_* */

/* Start the tick clock (and its periodic wake-up interrupt). */
void cost_clock_init(void);

/* Ticks of the core's timer since cost_clock_init (SysTick at TBN_CLOCK_HZ on Cortex-M, mtime
 * at TBN_TIMER_HZ on RISC-V). */
uint64_t cost_ticks(void);

/* The ticks of cost_ticks() in `ms` milliseconds. */
uint64_t cost_ms_ticks(uint32_t ms);

/* Start a measurement on a tick edge, so equal work gives equal counts. */
uint64_t cost_begin(void);

/* Cost since `start`, in the unit of cost_unit(), less what cost_exclude took out. */
uint64_t cost_end(uint64_t start);

/* The measurement's clock now (what cost_begin and cost_end read), and: leave the count since
 * `mark` out of the measurement under way. For work that is not the model's, such as a
 * benchmark backend's layout conversions. Cortex-M only, where the CMSIS-NN backend runs. */
uint64_t cost_mark(void);
void cost_exclude(uint64_t mark);

uint8_t cost_unit(void);

/* Cost units per tick (the resolution). */
uint32_t cost_resolution(void);

/* The longest the core sleeps between two looks at the clock: one timer wake-up period, in ms
 * (rounded up). A timeout is noticed at most this late. */
uint32_t cost_wake_ms(void);

#endif /* TBN_COST_H */
