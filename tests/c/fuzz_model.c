/* libFuzzer harness: load and invoke arbitrary bytes as a .tbn model.
 *
 * Most mutations would only break the CRC, so the harness rewrites the CRC field over the
 * mutated contents first: the fuzzer then reaches every validation rule and, for files that
 * pass, every kernel. Any crash, sanitizer report or leak is a bug. `make fuzz` runs it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tbn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint32_t *buf = malloc(size + 4); /* 4-aligned copy, as a model in flash would be */
    if (!buf) return 0;
    uint8_t *bytes = (uint8_t *)buf;
    memcpy(bytes, data, size);
    if (size >= TBN_HEADER_SIZE) {
        uint32_t crc = tbn_crc32(bytes + TBN_CRC_START, size - TBN_CRC_START);
        for (int i = 0; i < 4; i++) bytes[TBN_HDR_CRC32 + i] = (uint8_t)(crc >> (8 * i));
    }
    tbn_model m;
    if (tbn_model_init(&m, bytes, size) == TBN_OK && tbn_arena_size(&m) <= (1u << 20)) {
        uint32_t *arena = calloc(tbn_arena_size(&m) / 4 + 1, 4);
        uint8_t *in = calloc(tbn_input_size(&m) + 1, 1), *out = malloc(tbn_output_size(&m) + 1);
        if (arena && in && out)
            (void)tbn_run(&m, arena, tbn_arena_size(&m), in, tbn_input_size(&m), out, tbn_output_size(&m));
        free(arena);
        free(in);
        free(out);
    }
    free(buf);
    return 0;
}
