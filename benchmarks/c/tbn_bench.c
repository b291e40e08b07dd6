/* tbn_bench MODEL.tbn N: load a model and run N inferences on a fixed input (for callgrind). */
#include <stdio.h>
#include <stdlib.h>

#include "tbn.h"

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: tbn_bench MODEL.tbn N\n"); return 2; }
    FILE *f = fopen(argv[1], "rb");
    if (!f) { perror(argv[1]); return 2; }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint32_t *model = malloc((size_t)size + 4);
    if (!model || fread(model, 1, (size_t)size, f) != (size_t)size) return 2;
    fclose(f);
    tbn_model m;
    tbn_status s = tbn_model_init(&m, model, (size_t)size);
    if (s != TBN_OK) { fprintf(stderr, "%s: %s\n", argv[1], tbn_strerror(s)); return 1; }
    uint32_t *arena = calloc(tbn_arena_size(&m) / 4 + 1, 4);
    uint8_t *in = malloc(tbn_input_size(&m)), *out = malloc(tbn_output_size(&m));
    for (uint32_t i = 0; i < tbn_input_size(&m); i++) in[i] = (uint8_t)(i * 37u + 11u); /* fixed pattern */
    if (!tbn_is_int8(&m)) /* a sane float pattern instead of raw bytes */
        for (uint32_t i = 0; i < tbn_input_size(&m) / 4; i++) ((float *)(void *)in)[i] = (float)((i * 37u) % 17u) / 8.0f - 1.0f;
    long n = atol(argv[2]);
    for (long i = 0; i < n; i++) {
        s = tbn_run(&m, arena, tbn_arena_size(&m), in, tbn_input_size(&m), out, tbn_output_size(&m));
        if (s != TBN_OK) { fprintf(stderr, "%s\n", tbn_strerror(s)); return 1; }
    }
    printf("%u\n", (unsigned)out[0]);
    return 0;
}
