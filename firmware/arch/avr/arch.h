/* arch.h (AVR) -- masking interrupts and sleeping until one, for uart_rx.c; the same contract as
 * arch/cortexm/arch.h. */
#ifndef TBN_ARCH_H
#define TBN_ARCH_H

#include <avr/interrupt.h>
#include <avr/sleep.h>

static inline void arch_irq_off(void) { cli(); }
static inline void arch_irq_on(void) { sei(); }
/* Called with interrupts masked: the instruction after SEI always runs before a pending
 * interrupt is taken, so SLEEP cannot miss one that arrived since the check. */
static inline void arch_sleep(void) {
    sleep_enable();
    sei();
    sleep_cpu();
    sleep_disable();
}

/* The UART's receive interrupt (USART_RX_vect) goes to uart_rx_isr; enable interrupts. */
void arch_uart_irq_enable(void);

#endif /* TBN_ARCH_H */
