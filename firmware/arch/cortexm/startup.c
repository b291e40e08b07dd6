/* startup.c -- Cortex-M reset (copy .data, clear .bss, enable the FPU, call main), the vector
 * table, and the NVIC line of the UART.
 * The memory map comes from the linker script scripts/board.py generates per board. */
#include <stdint.h>

#include "arch.h"
#include "uart_rx.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);
void Reset_Handler(void);
void Default_Handler(void);
void SysTick_Handler(void);

void Default_Handler(void) {
    for (;;) {
    }
}

/* The 16 system exceptions, then external interrupts up to the UART's (TBN_UART_IRQ). */
__attribute__((section(".isr_vector"), used)) static void (*const vectors[16 + TBN_UART_IRQ + 1])(void) = {
    (void (*)(void))(uintptr_t)&_estack,
    Reset_Handler,
    Default_Handler, /* NMI */
    Default_Handler, /* HardFault */
    Default_Handler, /* MemManage */
    Default_Handler, /* BusFault */
    Default_Handler, /* UsageFault */
    0, 0, 0, 0,
    Default_Handler, /* SVCall */
    Default_Handler, /* DebugMonitor */
    0,
    Default_Handler, /* PendSV */
    SysTick_Handler,
    [16 + TBN_UART_IRQ] = uart_rx_isr,
};

void Reset_Handler(void) {
    const uint32_t *src = &_sidata;
    for (uint32_t *dst = &_sdata; dst < &_edata;) *dst++ = *src++;
    for (uint32_t *dst = &_sbss; dst < &_ebss;) *dst++ = 0;
#if defined(__ARM_FP)
    /* CP10 and CP11 full access, before any floating-point instruction runs */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm volatile("dsb\n isb");
#endif
    main();
    for (;;) {
    }
}

#define NVIC_ISER ((volatile uint32_t *)0xE000E100u)
#define NVIC_ICER ((volatile uint32_t *)0xE000E180u)

void arch_uart_irq_enable(void) { arch_uart_irq_mask(0); }

void arch_uart_irq_mask(int masked) {
    volatile uint32_t *reg = masked ? NVIC_ICER : NVIC_ISER;
    reg[TBN_UART_IRQ / 32u] = 1u << (TBN_UART_IRQ % 32u);
}
