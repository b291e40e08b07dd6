/* startup.S (RISC-V) -- reset: global pointer, stack, copy .data, clear .bss, call main.
 * The memory map comes from the linker script scripts/board.py generates per board. */
    .section .text.reset, "ax"
    .global _start
_start:
    .option push
    .option norelax
    la gp, __global_pointer$
    .option pop
    la sp, _estack
    la t0, arch_trap
    csrw mtvec, t0          /* direct mode: every trap enters arch_trap (trap.c) */
    la a0, _sidata
    la a1, _sdata
    la a2, _edata
1:  bgeu a1, a2, 2f
    lw t0, 0(a0)
    sw t0, 0(a1)
    addi a0, a0, 4
    addi a1, a1, 4
    j 1b
2:  la a1, _sbss
    la a2, _ebss
3:  bgeu a1, a2, 4f
    sw zero, 0(a1)
    addi a1, a1, 4
    j 3b
4:  call main
5:  wfi
    j 5b
