/* irq.c (AVR) -- the UART's receive vector; avr-libc's start-up code provides the rest of the
 * vector table, copies .data and clears .bss. */
#include <avr/interrupt.h>
#include <avr/io.h>

#include "arch.h"
#include "uart_rx.h"

ISR(USART_RX_vect) { uart_rx_isr(); }

void arch_uart_irq_enable(void) { sei(); }

void arch_uart_irq_mask(int masked) {
    if (masked)
        UCSR0B &= (uint8_t)~_BV(RXCIE0);
    else
        UCSR0B |= _BV(RXCIE0);
}
