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
static volatile uint32_t overflows;

void uart_rx_init(void) { arch_uart_irq_enable(); }

void uart_rx_isr(void) {
    uint8_t byte;
    while (hal_uart_read(&byte)) {
        uint32_t h = head;
        if (h - tail == RX_RING_BYTES) {
            overflows++;
            continue;
        }
        ring[h % RX_RING_BYTES] = byte;
        head = h + 1u;
    }
}

int uart_rx_pop(uint8_t *byte) {
    uint32_t t = tail;
    arch_irq_off(); /* an 8-bit core reads head in four loads; the interrupt must not move it between */
    uint32_t h = head;
    arch_irq_on();
    if (t == h) return 0;
    *byte = ring[t % RX_RING_BYTES];
    tail = t + 1u;
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

uint32_t uart_rx_overflows(void) { return overflows; }
