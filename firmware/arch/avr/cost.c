/* cost.c (AVR) -- Timer1 counting core clock cycles (no prescaler) as the tick clock and the cost
 * counter: exact cycles on a real part and under simavr, which is cycle-accurate. Its overflow
 * interrupt counts wraps and wakes the core every 65,536 cycles. */
#include <avr/interrupt.h>
#include <avr/io.h>

#include "cost.h"

static volatile uint32_t wraps;

ISR(TIMER1_OVF_vect) { wraps++; }

void cost_clock_init(void) {
    TCCR1A = 0;
    TCNT1 = 0;
    TIFR1 = _BV(TOV1);
    TIMSK1 = _BV(TOIE1);
    TCCR1B = _BV(CS10); /* clk/1 */
}

uint64_t cost_ticks(void) {
    uint8_t sreg = SREG;
    cli();
    uint16_t count = TCNT1;
    uint32_t w = wraps;
    if ((TIFR1 & _BV(TOV1)) && count < 0x8000u) w++; /* wrapped since interrupts were masked */
    SREG = sreg;
    return ((uint64_t)w << 16) | count;
}

uint64_t cost_ms_ticks(uint32_t ms) { return (uint64_t)(TBN_CLOCK_HZ / 1000u) * ms; }

uint64_t cost_begin(void) { return cost_ticks(); }

uint64_t cost_end(uint64_t start) { return cost_ticks() - start; }

uint8_t cost_unit(void) { return TBN_COST_UNIT_CYCLES; }

uint32_t cost_resolution(void) { return 1u; }

uint32_t cost_wake_ms(void) { return (uint32_t)(65536ull * 1000u / TBN_CLOCK_HZ + 1u); }
