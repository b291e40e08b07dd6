/* arch.h (Cortex-M) -- what the portable app needs from the core: masking interrupts and
 * sleeping until one, for uart_rx.c. Each arch/<arch>/ folder has one; board.py puts the
 * board's on the include path. */
#ifndef TBN_ARCH_H
#define TBN_ARCH_H

static inline void arch_irq_off(void) { __asm volatile("cpsid i" ::: "memory"); }
static inline void arch_irq_on(void) { __asm volatile("cpsie i\n isb" ::: "memory"); }
/* Sleep until an interrupt is pending, even a masked one (WFI's rule on both cores). */
static inline void arch_sleep(void) { __asm volatile("dsb\n wfi" ::: "memory"); }

/* Route the UART's interrupt (TBN_UART_IRQ) to uart_rx_isr and unmask it. */
void arch_uart_irq_enable(void);
/* Mask (1) or unmask (0) that interrupt alone: uart_rx.c holds bytes in the UART while its
 * buffer is full. A pending interrupt stays pending while masked. */
void arch_uart_irq_mask(int masked);

#endif /* TBN_ARCH_H */
