/* irq.c (AVR) -- the UART's receive vector; avr-libc's start-up code provides the rest of the
 * vector table, copies .data and clears .bss. */
#include <avr/interrupt.h>

#include "arch.h"
#include "uart_rx.h"

ISR(USART_RX_vect) { uart_rx_isr(); }

void arch_uart_irq_enable(void) { sei(); }
