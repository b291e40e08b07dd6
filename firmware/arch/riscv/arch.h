/* arch.h (RISC-V, machine mode) -- masking interrupts and sleeping until one, for uart_rx.c;
 * the same contract as arch/cortexm/arch.h. */
#ifndef TBN_ARCH_H
#define TBN_ARCH_H

#define ARCH_MSTATUS_MIE 0x8u

static inline void arch_irq_off(void) { __asm volatile("csrc mstatus, %0" ::"r"(ARCH_MSTATUS_MIE) : "memory"); }
static inline void arch_irq_on(void) { __asm volatile("csrs mstatus, %0" ::"r"(ARCH_MSTATUS_MIE) : "memory"); }
/* WFI resumes when an interrupt enabled in mie is pending, whatever mstatus.MIE says. */
static inline void arch_sleep(void) { __asm volatile("wfi" ::: "memory"); }

/* Route the UART's PLIC source (TBN_UART_IRQ) to uart_rx_isr and unmask it. */
void arch_uart_irq_enable(void);
/* Mask (1) or unmask (0) that source at the PLIC (trap.c: how); it stays pending while masked. */
void arch_uart_irq_mask(int masked);

#endif /* TBN_ARCH_H */
