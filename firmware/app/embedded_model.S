/* embedded_model.S -- a .tbn built into flash (tbn-flash --model passes TBN_MODEL_PATH). */
#if defined(TBN_MODEL_PATH)
#if defined(__AVR__)
    .section .progmem.data.tbn_model, "a" /* flash, its own address space: read through __memx */
#else
    .section .rodata.tbn_model, "a"
#endif
    .balign 4
    .global tbn_embedded_model
tbn_embedded_model:
    .incbin TBN_MODEL_PATH
tbn_embedded_model_end:
    .balign 4
    .global tbn_embedded_model_size
tbn_embedded_model_size:
    .long tbn_embedded_model_end - tbn_embedded_model
#endif
