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
/* Mask (1) or unmask (0) the receive interrupt alone (RXCIE0: the AVR has no interrupt
 * controller; a received byte keeps RXC0 set, so it is taken once unmasked). */
void arch_uart_irq_mask(int masked);

#endif /* TBN_ARCH_H */
