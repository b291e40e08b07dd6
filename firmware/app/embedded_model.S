/* embedded_model.S -- a .tbn built into flash (tbn-flash --model passes TBN_MODEL_PATH). */
#if defined(TBN_MODEL_PATH)
    .section .rodata.tbn_model, "a"
    .balign 4
    .global tbn_embedded_model
tbn_embedded_model:
    .incbin TBN_MODEL_PATH
tbn_embedded_model_end:
    .balign 4
    .global tbn_embedded_model_size
tbn_embedded_model_size:
    .word tbn_embedded_model_end - tbn_embedded_model
#endif
