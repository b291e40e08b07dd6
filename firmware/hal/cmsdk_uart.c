/* cmsdk_uart.c -- HAL for Arm MPS2 boards (AN385/AN386/AN500): CMSDK APB UART0; the
 * timestamp pin is the FPGA's LED0 (FPGAIO, the board's user LEDs). */
#include <stdint.h>

#include "hal.h"
#include "tbn_protocol.h"

#define UART0_BASE 0x40004000u
#define UART_DATA (*(volatile uint32_t *)(UART0_BASE + 0x00u))
#define UART_STATE (*(volatile uint32_t *)(UART0_BASE + 0x04u))
#define UART_CTRL (*(volatile uint32_t *)(UART0_BASE + 0x08u))
#define UART_INTCLEAR (*(volatile uint32_t *)(UART0_BASE + 0x0Cu))
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0_BASE + 0x10u))
#define STATE_TX_FULL 1u
#define STATE_RX_FULL 2u
#define CTRL_TX_EN 1u
#define CTRL_RX_EN 2u
#define CTRL_RX_INTEN 8u
#define INT_RX 2u
#define FPGAIO_LED (*(volatile uint32_t *)0x40028000u)

void hal_init(void) {
    UART_BAUDDIV = TBN_CLOCK_HZ / TBN_UART_BAUD;
    UART_CTRL = CTRL_TX_EN | CTRL_RX_EN | CTRL_RX_INTEN;
}

void hal_uart_put(uint8_t byte) {
    while (UART_STATE & STATE_TX_FULL) {
    }
    UART_DATA = byte;
}

int hal_uart_read(uint8_t *byte) {
    UART_INTCLEAR = INT_RX; /* latched: reading DATA does not clear it */
    if (!(UART_STATE & STATE_RX_FULL)) return 0;
    *byte = (uint8_t)UART_DATA;
    return 1;
}

void hal_timestamp_pin(int high) { FPGAIO_LED = high ? (FPGAIO_LED | 1u) : (FPGAIO_LED & ~1u); }
