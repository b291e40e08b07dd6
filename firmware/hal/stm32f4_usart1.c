/* stm32f4_usart1.c -- HAL for STM32F405/F407 boards: USART1 on PA9 (TX) / PA10 (RX), HSI clock;
 * the timestamp pin is PA8. */
#include <stdint.h>

#include "hal.h"
#include "tbn_protocol.h"

#define REG(addr) (*(volatile uint32_t *)(addr))
#define RCC_AHB1ENR REG(0x40023830u)
#define RCC_APB2ENR REG(0x40023844u)
#define GPIOA_MODER REG(0x40020000u)
#define GPIOA_AFRH REG(0x40020024u)
#define GPIOA_BSRR REG(0x40020018u)
#define USART1_SR REG(0x40011000u)
#define USART1_DR REG(0x40011004u)
#define USART1_BRR REG(0x40011008u)
#define USART1_CR1 REG(0x4001100Cu)
#define SR_RXNE (1u << 5)
#define SR_TXE (1u << 7)

/* The core runs from the 16 MHz HSI after reset; QEMU's model ignores clocks and pins. */
#define USART_CLOCK_HZ 16000000u

void hal_init(void) {
    RCC_AHB1ENR |= 1u << 0; /* GPIOA */
    RCC_APB2ENR |= 1u << 4; /* USART1 */
    GPIOA_MODER = (GPIOA_MODER & ~(0xFu << 18)) | (0xAu << 18);  /* PA9, PA10: alternate function */
    GPIOA_AFRH = (GPIOA_AFRH & ~(0xFFu << 4)) | (0x77u << 4);     /* AF7 = USART1 */
    USART1_BRR = USART_CLOCK_HZ / TBN_UART_BAUD;
    USART1_CR1 = (1u << 13) | (1u << 5) | (1u << 3) | (1u << 2); /* UE, RXNEIE, TE, RE */
}

void hal_uart_put(uint8_t byte) {
    while (!(USART1_SR & SR_TXE)) {
    }
    USART1_DR = byte;
}

int hal_uart_read(uint8_t *byte) {
    if (!(USART1_SR & SR_RXNE)) return 0;
    *byte = (uint8_t)USART1_DR; /* reading DR clears RXNE, the interrupt, and an overrun */
    return 1;
}

void hal_timestamp_pin(int high) {
    GPIOA_BSRR = high ? 1u << 8 : 1u << (8 + 16);                   /* the level first, then ... */
    GPIOA_MODER = (GPIOA_MODER & ~(0x3u << 16)) | (0x1u << 16);      /* ... PA8 an output */
}
