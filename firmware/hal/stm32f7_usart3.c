/* stm32f7_usart3.c -- HAL for NUCLEO-F767ZI: USART3 on PD8 (TX) / PD9 (RX), the ST-LINK
 * virtual COM port, from the 16 MHz HSI the core runs on after reset. */
#include <stdint.h>

#include "hal.h"
#include "tbn_protocol.h"

#define REG(addr) (*(volatile uint32_t *)(addr))
#define RCC_AHB1ENR REG(0x40023830u)
#define RCC_APB1ENR REG(0x40023840u)
#define GPIOD_MODER REG(0x40020C00u)
#define GPIOD_AFRH REG(0x40020C24u)
#define USART3_CR1 REG(0x40004800u)
#define USART3_BRR REG(0x4000480Cu)
#define USART3_ISR REG(0x4000481Cu)
#define USART3_ICR REG(0x40004820u)
#define USART3_RDR REG(0x40004824u)
#define USART3_TDR REG(0x40004828u)
#define ISR_ORE (1u << 3)
#define ISR_RXNE (1u << 5)
#define ISR_TXE (1u << 7)
#define USART_CLOCK_HZ 16000000u

void hal_init(void) {
    RCC_AHB1ENR |= 1u << 3;  /* GPIOD */
    RCC_APB1ENR |= 1u << 18; /* USART3 */
    GPIOD_MODER = (GPIOD_MODER & ~(0xFu << 16)) | (0xAu << 16); /* PD8, PD9: alternate function */
    GPIOD_AFRH = (GPIOD_AFRH & ~0xFFu) | 0x77u;                  /* AF7 = USART3 */
    USART3_BRR = USART_CLOCK_HZ / TBN_BAUDRATE;
    USART3_CR1 = (1u << 5) | (1u << 3) | (1u << 2) | 1u; /* RXNEIE, TE, RE, UE */
}

void hal_uart_put(uint8_t byte) {
    while (!(USART3_ISR & ISR_TXE)) {
    }
    USART3_TDR = byte;
}

int hal_uart_read(uint8_t *byte) {
    uint32_t isr = USART3_ISR;
    if (isr & ISR_ORE) USART3_ICR = ISR_ORE; /* a lost byte: the frame's CRC will say so */
    if (!(isr & ISR_RXNE)) return 0;
    *byte = (uint8_t)USART3_RDR; /* clears RXNE and the interrupt */
    return 1;
}
