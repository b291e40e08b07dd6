/* uart_rx.h -- received bytes, buffered by the UART's interrupt, and sleeping until one comes.
 *
 * Waiting sleeps (WFI) instead of spinning on the UART. On a real board that saves power;
 * under QEMU's -icount it is what makes the link's timeouts mean wall-clock time: while the
 * core sleeps, virtual time follows the host's clock, whereas a spinning core advances it
 * by one nanosecond per instruction, however slowly the host runs those instructions (a
 * 20 ms inter-byte timeout took 2-3 s of wall time on the emulated STM32, whose status
 * register is slow to poll). It also stops an idle emulated board holding a host core.
 */
#ifndef TBN_UART_RX_H
#define TBN_UART_RX_H

#include <stdint.h>

/* Unmask the UART's interrupt line (TBN_UART_IRQ, from the board description; arch_uart_irq_enable). */
void uart_rx_init(void);

/* 1 and the oldest received byte in *byte, or 0 when none is buffered. No byte is lost to a full
 * buffer: the UART's interrupt is masked until the buffer has room (uart_rx.c). */
int uart_rx_pop(uint8_t *byte);

/* Sleep until an interrupt: a received byte or the core timer's wake-up. Returns at once when a
 * byte is buffered; free of the lost-wakeup race (the check runs with interrupts masked,
 * and WFI wakes on an interrupt that is pending while masked). */
void uart_rx_wait(void);

/* The UART's interrupt handler (arch/<arch>/ routes the interrupt to it). */
void uart_rx_isr(void);

#endif /* TBN_UART_RX_H */
