/* stm32f7_usart3.c -- HAL for NUCLEO-F767ZI: the core at 216 MHz from the PLL on the 16 MHz
 * HSI (always present, unlike the ST-LINK's 8 MHz clock output, which a solder bridge
 * decides), and USART3 on PD8 (TX) / PD9 (RX), the ST-LINK virtual COM port, its baud
 * divisor from the resulting APB1 clock. Register addresses and sequences: RM0410 (STM32F76x).
 * Untested on hardware: built and checked here (tests/test_nucleo.py), not run on a board. */
#include <stdint.h>

#include "hal.h"
#include "tbn_protocol.h"

#define REG(addr) (*(volatile uint32_t *)(addr))
#define RCC_CR REG(0x40023800u)
#define RCC_PLLCFGR REG(0x40023804u)
#define RCC_CFGR REG(0x40023808u)
#define RCC_AHB1ENR REG(0x40023830u)
#define RCC_APB1ENR REG(0x40023840u)
#define PWR_CR1 REG(0x40007000u)
#define PWR_CSR1 REG(0x40007004u)
#define FLASH_ACR REG(0x40023C00u)
#define GPIOD_MODER REG(0x40020C00u)
#define GPIOD_AFRH REG(0x40020C24u)
#define GPIOB_MODER REG(0x40020400u)
#define GPIOB_BSRR REG(0x40020418u)
#define USART3_CR1 REG(0x40004800u)
#define USART3_BRR REG(0x4000480Cu)
#define USART3_ISR REG(0x4000481Cu)
#define USART3_ICR REG(0x40004820u)
#define USART3_RDR REG(0x40004824u)
#define USART3_TDR REG(0x40004828u)
#define ISR_ORE (1u << 3)
#define ISR_RXNE (1u << 5)
#define ISR_TXE (1u << 7)

/* SYSCLK = HSI / M * N / P; APB1 (USART3's clock) = SYSCLK / 4, at most 54 MHz */
#define HSI_HZ 16000000u
#define PLL_M 8u
#define PLL_N 216u
#define PLL_P 2u
#define PLL_Q 9u /* 48 MHz domain: 432 / 9 */
#define SYSCLK_HZ (HSI_HZ / PLL_M * PLL_N / PLL_P)
#define APB1_DIV 4u
#define APB1_HZ (SYSCLK_HZ / APB1_DIV)
/* The board description's clock_hz (TBN_CLOCK_HZ: timeouts, INFO) must be what this sets. */
typedef char tbn_clock_matches_the_board_description[SYSCLK_HZ == TBN_CLOCK_HZ ? 1 : -1];

static void wait_set(volatile uint32_t *reg, uint32_t mask) {
    while (!(*reg & mask)) {
    }
}

/* 216 MHz needs voltage scale 1 with over-drive and 7 flash wait states (RM0410 3.3.2, 5.1.4). */
static void clock_init(void) {
    RCC_APB1ENR |= 1u << 28;                         /* PWR */
    PWR_CR1 = (PWR_CR1 & ~(3u << 14)) | (3u << 14);  /* VOS: scale 1 */
    RCC_PLLCFGR = PLL_M | (PLL_N << 6) | (((PLL_P / 2u) - 1u) << 16) | (PLL_Q << 24); /* source HSI */
    RCC_CR |= 1u << 24;                              /* PLLON */
    wait_set(&RCC_CR, 1u << 25);                     /* PLLRDY */
    PWR_CR1 |= 1u << 16;                             /* ODEN */
    wait_set(&PWR_CSR1, 1u << 16);                   /* ODRDY */
    PWR_CR1 |= 1u << 17;                             /* ODSWEN */
    wait_set(&PWR_CSR1, 1u << 17);                   /* ODSWRDY */
    FLASH_ACR = 7u | (1u << 8) | (1u << 9);          /* 7 wait states, prefetch, ART */
    RCC_CFGR = (5u << 10) | (4u << 13) | 2u;         /* APB1 /4, APB2 /2, SYSCLK from the PLL */
    while (((RCC_CFGR >> 2) & 3u) != 2u) {           /* SWS: the PLL drives SYSCLK */
    }
}

void hal_init(void) {
    clock_init();
    RCC_AHB1ENR |= 1u << 3;  /* GPIOD */
    RCC_APB1ENR |= 1u << 18; /* USART3 */
    GPIOD_MODER = (GPIOD_MODER & ~(0xFu << 16)) | (0xAu << 16); /* PD8, PD9: alternate function */
    GPIOD_AFRH = (GPIOD_AFRH & ~0xFFu) | 0x77u;                  /* AF7 = USART3 */
    USART3_BRR = (APB1_HZ + TBN_UART_BAUD / 2u) / TBN_UART_BAUD;   /* 16x oversampling, rounded */
    USART3_CR1 = (1u << 5) | (1u << 3) | (1u << 2) | 1u;         /* RXNEIE, TE, RE, UE */
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

/* The timestamp pin is PB0 (LD1, green; CN10's D33 on the Nucleo-144). */
void hal_timestamp_pin(int high) {
    RCC_AHB1ENR |= 1u << 1; /* GPIOB */
    GPIOB_BSRR = high ? 1u : 1u << 16;
    GPIOB_MODER = (GPIOB_MODER & ~0x3u) | 0x1u;
}
