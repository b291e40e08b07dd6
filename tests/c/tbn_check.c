/* tbn_check: run a .tbn model on a batch of inputs and compare with expected outputs.
 *
 *   tbn_check MODEL.tbn INPUT.bin EXPECTED.bin    exit 0 when every output matches:
 *                                                 INT8 and I32 exactly, F32 within TBN_F32_RTOL (tbn.parity)
 *                                                 relative to the largest |expected|
 *   tbn_check --reject MODEL.tbn                  exit 0 when every truncation of MODEL is
 *                                                 refused and 2000 single-byte corruptions
 *                                                 (half with the CRC rewritten, so they reach
 *                                                 validation and the kernels) are handled
 *                                                 without a crash (run under ASan/UBSan)
 * Built by the Makefile with -fsanitize=address,undefined. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tbn.h"

#ifndef TBN_F32_RTOL
#error "build with -DTBN_F32_RTOL=... (make passes tbn.parity's F32_RTOL)"
#endif

static void *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc((size_t)n + 4); /* malloc: 4-aligned or better */
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) { fprintf(stderr, "%s: read failed\n", path); exit(2); }
    fclose(f);
    *size = (size_t)n;
    return buf;
}

static int exercise(const void *data, size_t size) {
    tbn_model m;
    if (tbn_model_init(&m, data, size) != TBN_OK) return 0;
    if (tbn_arena_size(&m) > (1u << 24)) return 1;
    void *arena = calloc(1, tbn_arena_size(&m) + 4);
    void *in = calloc(1, tbn_input_size(&m) + 1), *out = calloc(1, tbn_output_size(&m) + 1);
    tbn_status s = tbn_run(&m, arena, tbn_arena_size(&m), in, tbn_input_size(&m), out, tbn_output_size(&m));
    free(arena); free(in); free(out);
    return s == TBN_OK ? 1 : 0;
}

static int reject_mode(const char *path) {
    size_t size;
    uint8_t *data = read_file(path, &size);
    uint8_t *copy = malloc(size + 4);
    unsigned loaded = 0;
    for (size_t cut = 0; cut < size; cut++) { /* every truncation must be refused */
        memcpy(copy, data, cut);
        if (exercise(copy, cut)) { fprintf(stderr, "truncated to %zu bytes: accepted\n", cut); return 1; }
    }
    srand(1);
    for (int i = 0; i < 2000; i++) { /* corruptions: refused (CRC) or, if accepted, run safely */
        memcpy(copy, data, size);
        copy[(size_t)rand() % size] ^= (uint8_t)(1 + rand() % 255);
        if (i % 2 && size > TBN_CRC_START) {
            uint32_t crc = tbn_crc32(copy + TBN_CRC_START, size - TBN_CRC_START);
            for (int b = 0; b < 4; b++) copy[TBN_HDR_CRC32 + b] = (uint8_t)(crc >> (8 * b));
        }
        loaded += (unsigned)exercise(copy, size);
    }
    printf("%s: every truncation refused; %u of 2000 corruptions loaded\n", path, loaded);
    free(copy); free(data);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--reject") == 0) return reject_mode(argv[2]);
    if (argc != 4) { fprintf(stderr, "usage: tbn_check MODEL INPUT EXPECTED | --reject MODEL\n"); return 2; }
    size_t size, in_size, exp_size;
    void *data = read_file(argv[1], &size);
    uint8_t *in = read_file(argv[2], &in_size), *expected = read_file(argv[3], &exp_size);
    tbn_model m;
    tbn_status s = tbn_model_init(&m, data, size);
    if (s != TBN_OK) { fprintf(stderr, "%s: %s (item %u)\n", argv[1], tbn_strerror(s), m.error_item); return 1; }
    uint32_t isz = tbn_input_size(&m), osz = tbn_output_size(&m);
    size_t batch = in_size / isz;
    if (batch * isz != in_size || batch * osz != exp_size) { fprintf(stderr, "batch sizes disagree\n"); return 2; }
    void *arena = malloc(tbn_arena_size(&m) + 4);
    uint8_t *out = malloc(osz);
    int f32 = !tbn_is_int8(&m) && osz % 4 == 0 && osz != 4;
    double worst = 0.0;
    for (size_t b = 0; b < batch; b++) {
        s = tbn_run(&m, arena, tbn_arena_size(&m), in + b * isz, isz, out, osz);
        if (s != TBN_OK) { fprintf(stderr, "sample %zu: %s\n", b, tbn_strerror(s)); return 1; }
        const uint8_t *want = expected + b * osz;
        if (f32) {
            float mx = 0.0f;
            for (uint32_t i = 0; i < osz / 4; i++) { float w; memcpy(&w, want + 4 * i, 4); if (fabsf(w) > mx) mx = fabsf(w); }
            for (uint32_t i = 0; i < osz / 4; i++) {
                float g, w;
                memcpy(&g, out + 4 * i, 4);
                memcpy(&w, want + 4 * i, 4);
                double rel = fabs((double)g - w) / (mx > 0 ? mx : 1.0f);
                if (rel > worst) worst = rel;
            }
        } else if (memcmp(out, want, osz) != 0) {
            fprintf(stderr, "sample %zu: output differs from the reference\n", b);
            return 1;
        }
    }
    if (worst > TBN_F32_RTOL) {
        fprintf(stderr, "%s: relative error %.3g > %g\n", argv[1], worst, TBN_F32_RTOL);
        return 1;
    }
    printf("%s: %zu samples match (%s, worst relative error %.2g)\n", argv[1], batch, f32 ? "f32" : "exact", worst);
    free(arena); free(out); free(data); free(in); free(expected);
    return 0;
}
