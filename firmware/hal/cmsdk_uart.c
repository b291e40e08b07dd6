/* cmsdk_uart.c -- HAL for Arm MPS2 boards (AN385/AN386/AN500): CMSDK APB UART0. */
#include <stdint.h>

#include "hal.h"

#define UART0_BASE 0x40004000u
#define UART_DATA (*(volatile uint32_t *)(UART0_BASE + 0x00u))
#define UART_STATE (*(volatile uint32_t *)(UART0_BASE + 0x04u))
#define UART_CTRL (*(volatile uint32_t *)(UART0_BASE + 0x08u))
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0_BASE + 0x10u))
#define STATE_TX_FULL 1u
#define STATE_RX_FULL 2u

void hal_init(void) {
    UART_BAUDDIV = TBN_CLOCK_HZ / 115200u;
    UART_CTRL = 3u; /* TX and RX enabled */
}

void hal_uart_put(uint8_t byte) {
    while (UART_STATE & STATE_TX_FULL) {
    }
    UART_DATA = byte;
}

int hal_uart_poll(uint8_t *byte) {
    if (!(UART_STATE & STATE_RX_FULL)) return 0;
    *byte = (uint8_t)UART_DATA;
    return 1;
}
