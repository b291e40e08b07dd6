/* uart_rx.c -- a single-producer (the UART interrupt), single-consumer ring of received bytes. */
#include "uart_rx.h"

#include "arch.h"
#include "hal.h"

#ifndef TBN_UART_IRQ
#error "TBN_UART_IRQ must come from the board description"
#endif

/* a power of two; boards with little RAM ask for less (rx_ring_bytes) */
#ifndef TBN_RX_RING_BYTES
#define TBN_RX_RING_BYTES 512u
#endif
#define RX_RING_BYTES TBN_RX_RING_BYTES
#if RX_RING_BYTES & (RX_RING_BYTES - 1u)
#error "TBN_RX_RING_BYTES must be a power of two"
#endif
#ifndef RX_SPIN_POLLS
#define RX_SPIN_POLLS 2000u
#endif

static uint8_t ring[RX_RING_BYTES];
static volatile uint32_t head; /* written by the interrupt only */
static volatile uint32_t tail; /* written by the main loop only */
static volatile uint8_t held;  /* the interrupt masked itself: the ring was full */

void uart_rx_init(void) { arch_uart_irq_enable(); }

/* Flow control instead of loss: with the ring full the handler leaves further bytes in the
 * UART and masks its own line, so they wait in the UART's FIFO and then with the sender (an
 * emulator's socket, or a host's buffer behind a real UART's overrun). Draining the UART until
 * it is empty is not enough: an emulator refills it as fast as it is read, the handler then
 * never returns, and the main loop, starved, let a 512-byte ring overflow within a 3 KB frame. */
void uart_rx_isr(void) {
    uint8_t byte;
    while (head - tail < RX_RING_BYTES) {
        if (!hal_uart_read(&byte)) return;
        uint32_t h = head;
        ring[h % RX_RING_BYTES] = byte;
        head = h + 1u;
    }
    held = 1u;
    arch_uart_irq_mask(1);
}

int uart_rx_pop(uint8_t *byte) {
    uint32_t t = tail;
    arch_irq_off(); /* an 8-bit core reads head in four loads; the interrupt must not move it between */
    uint32_t h = head;
    arch_irq_on();
    if (t == h) return 0;
    *byte = ring[t % RX_RING_BYTES];
    tail = t + 1u;
    /* the line is masked, so the handler cannot race this; unmask once half the ring is free,
     * not at every byte, so the handler runs for many bytes, not one */
    if (held && h - tail <= RX_RING_BYTES / 2u) {
        held = 0u;
        arch_uart_irq_mask(0);
    }
    return 1;
}

void uart_rx_wait(void) {
    /* the next byte of a frame is usually microseconds away: spin a little before sleeping */
    for (uint32_t i = 0; i < RX_SPIN_POLLS; i++) {
        if (tail != head) return;
    }
    arch_irq_off();
    if (tail == head) arch_sleep();
    arch_irq_on();
}
