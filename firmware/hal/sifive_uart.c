/* sifive_uart.c -- HAL for SiFive FE310 boards (HiFive1; QEMU's sifive_e): UART0, and the core
 * clock from the 16 MHz crystal with the PLL bypassed, so TBN_CLOCK_HZ is known at build time.
 * The timestamp pin is GPIO 19 (the HiFive1's green LED, lit while the pin is low). */
#include <stdint.h>

#include "hal.h"
#include "tbn_protocol.h"

#define PRCI_BASE 0x10008000u
#define PRCI_HFXOSCCFG (*(volatile uint32_t *)(PRCI_BASE + 0x04u))
#define PRCI_PLLCFG (*(volatile uint32_t *)(PRCI_BASE + 0x08u))
#define HFXOSC_EN (1u << 30)
#define HFXOSC_RDY (1u << 31)
#define PLL_SEL (1u << 16)
#define PLL_REFSEL (1u << 17)
#define PLL_BYPASS (1u << 18)
#define HFXOSC_HZ 16000000u

#define UART0_BASE 0x10013000u
#define UART_TXDATA (*(volatile uint32_t *)(UART0_BASE + 0x00u))
#define UART_RXDATA (*(volatile uint32_t *)(UART0_BASE + 0x04u))
#define UART_TXCTRL (*(volatile uint32_t *)(UART0_BASE + 0x08u))
#define UART_RXCTRL (*(volatile uint32_t *)(UART0_BASE + 0x0Cu))
#define UART_IE (*(volatile uint32_t *)(UART0_BASE + 0x10u))
#define UART_DIV (*(volatile uint32_t *)(UART0_BASE + 0x18u))
#define TXDATA_FULL (1u << 31)
#define RXDATA_EMPTY (1u << 31)
#define IE_RXWM 2u /* receive watermark: pending while the FIFO holds more than rxcnt (0) bytes */

/* GPIO0 pins 16 and 17 carry UART0 (IOF0) on the HiFive1 */
#define GPIO_BASE 0x10012000u
#define GPIO_IOF_EN (*(volatile uint32_t *)(GPIO_BASE + 0x38u))
#define GPIO_IOF_SEL (*(volatile uint32_t *)(GPIO_BASE + 0x3Cu))
#define UART0_PINS ((1u << 16) | (1u << 17))
#define GPIO_OUTPUT_EN (*(volatile uint32_t *)(GPIO_BASE + 0x08u))
#define GPIO_OUTPUT_VAL (*(volatile uint32_t *)(GPIO_BASE + 0x0Cu))
#define TIMESTAMP_PIN (1u << 19)

/* The board description's clock_hz (TBN_CLOCK_HZ: INFO, the baud divisor) must be what this sets. */
typedef char tbn_clock_matches_the_board_description[HFXOSC_HZ == TBN_CLOCK_HZ ? 1 : -1];

void hal_init(void) {
    PRCI_HFXOSCCFG |= HFXOSC_EN;
    while (!(PRCI_HFXOSCCFG & HFXOSC_RDY)) {
    }
    PRCI_PLLCFG = PLL_SEL | PLL_REFSEL | PLL_BYPASS; /* hfclk = the crystal */
    GPIO_IOF_SEL &= ~UART0_PINS;
    GPIO_IOF_EN |= UART0_PINS;
    /* baud = tlclk / (div + 1), rounded to the nearest divisor */
    UART_DIV = (TBN_CLOCK_HZ + TBN_UART_BAUD / 2u) / TBN_UART_BAUD - 1u;
    UART_TXCTRL = 1u; /* txen, one stop bit */
    UART_RXCTRL = 1u; /* rxen, watermark 0 */
    UART_IE = IE_RXWM;
}

void hal_uart_put(uint8_t byte) {
    while (UART_TXDATA & TXDATA_FULL) {
    }
    UART_TXDATA = byte;
}

int hal_uart_read(uint8_t *byte) {
    uint32_t data = UART_RXDATA; /* one read: the empty flag and the byte together */
    if (data & RXDATA_EMPTY) return 0;
    *byte = (uint8_t)data;
    return 1;
}

void hal_timestamp_pin(int high) {
    if (high) GPIO_OUTPUT_VAL |= TIMESTAMP_PIN;
    else GPIO_OUTPUT_VAL &= ~TIMESTAMP_PIN;
    GPIO_OUTPUT_EN |= TIMESTAMP_PIN;
}
