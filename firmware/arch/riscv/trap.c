/* trap.c (RISC-V) -- the machine-mode trap handler: the timer's wake-up (cost.c) and the
 * UART's interrupt through the PLIC (SiFive's layout: FE310 and QEMU's sifive_e). A fault
 * parks the core, as Cortex-M's Default_Handler does. */
#include <stdint.h>

#include "arch.h"
#include "uart_rx.h"

#define PLIC_BASE 0x0C000000u
#define PLIC_PRIORITY(irq) (*(volatile uint32_t *)(PLIC_BASE + 4u * (irq)))
#define PLIC_ENABLE(irq) (*(volatile uint32_t *)(PLIC_BASE + 0x2000u + 4u * ((irq) / 32u)))
#define PLIC_THRESHOLD (*(volatile uint32_t *)(PLIC_BASE + 0x200000u))
#define PLIC_CLAIM (*(volatile uint32_t *)(PLIC_BASE + 0x200004u))
#define MCAUSE_INTERRUPT 0x80000000u
#define MCAUSE_TIMER 7u
#define MCAUSE_EXTERNAL 11u
#define MIE_MEIE 0x800u

void arch_trap(void) __attribute__((interrupt("machine"), aligned(4)));
void cost_timer_isr(void); /* cost.c */

/* The UART is the only source enabled, so the threshold masks it alone. Not its enable bit: the
 * PLIC ignores the completion of a disabled source (the spec), which would leave the UART's
 * claimed for good, and QEMU's PLIC re-evaluates its output on a threshold write but not on an
 * enable write, so a source that became pending while disabled would stay silent once enabled. */
void arch_uart_irq_mask(int masked) { PLIC_THRESHOLD = masked ? 1u : 0u; }

void arch_uart_irq_enable(void) {
    PLIC_PRIORITY(TBN_UART_IRQ) = 1u;
    PLIC_ENABLE(TBN_UART_IRQ) |= 1u << (TBN_UART_IRQ % 32u);
    PLIC_THRESHOLD = 0u;
    __asm volatile("csrs mie, %0" ::"r"(MIE_MEIE));
    arch_irq_on();
}

void arch_trap(void) {
    uint32_t cause;
    __asm volatile("csrr %0, mcause" : "=r"(cause));
    if (cause == (MCAUSE_INTERRUPT | MCAUSE_TIMER)) {
        cost_timer_isr();
    } else if (cause == (MCAUSE_INTERRUPT | MCAUSE_EXTERNAL)) {
        uint32_t irq;
        while ((irq = PLIC_CLAIM) != 0u) {
            if (irq == TBN_UART_IRQ) uart_rx_isr();
            PLIC_CLAIM = irq; /* complete */
        }
    } else {
        for (;;) {
        }
    }
}
