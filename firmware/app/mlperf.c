/* mlperf.c -- the device side of MLCommons' MLPerf Tiny runner protocol (EEMBC's text
 * protocol, mlcommons/tiny api/internally_implemented.cpp), in place of commands.c when the
 * build asks for it (tbn-flash --protocol mlperf; docs/mlperf.md).
 *
 * Commands end with '%'; every reply ends with "m-ready", errors are "e-[...]":
 *   name                 m-name-dut-[tbn <board>]
 *   profile              m-profile-[...] and m-model-[<TBN_MLPERF_MODEL>]
 *   timestamp            m-lap-us-<microseconds of the board's timer>; in energy mode
 *                        (TBN_MLPERF_ENERGY: UART at 9600 baud) a pulse on the timestamp pin
 *   db load N            expect N bytes (N must be the model's input size)
 *   db HHHH..            those bytes, two hex digits each; m-load-done with the last
 *   db print             the bytes loaded, 8 to a line
 *   infer N W            W warm-ups, then N timed inferences between two timestamps, then results
 *   results              m-results-[v,...]: the last inference's outputs as reals
 * The input stays in its own buffer, copied into the arena before each inference (the arena's
 * memory plan may reuse the input's bytes); the copy is inside the timed loop.
 */
#include "commands.h"

#if TBN_PROTOCOL_MLPERF

#include <string.h>

#include "cost.h"
#include "hal.h"
#include "tbn.h"
#include "uart_rx.h"

#if defined(__AVR__)
#error "the MLPerf protocol app runs on 32-bit cores (its model is read from flash as ordinary memory)"
#endif
#ifndef TBN_MLPERF_MODEL
#error "TBN_MLPERF_MODEL (kws01, vww01, ic01, ad01, ...) must come from the build (tbn-flash --mlperf-model)"
#endif
#if !TBN_EMBEDDED_MODEL
#error "the MLPerf protocol has no upload: embed the model (tbn-flash --model)"
#endif
#ifndef TBN_DB_BYTES
#error "TBN_DB_BYTES (the model's input bytes) must come from the build"
#endif

#define CMD_BYTES 80u /* EE_CMD_SIZE */
#define MAX_RUNS 1000000L

extern const uint8_t tbn_embedded_model[];
extern const uint32_t tbn_embedded_model_size;

static uint32_t g_arena[TBN_ARENA_BYTES / 4];
static uint8_t g_db[TBN_DB_BYTES];

static struct {
    tbn_model model;
    int ready; /* the model validated and fits the arena */
    uint32_t db_size, db_pos;
    int ran; /* an inference has run: results are there */
} g;

static void put_str(const char *s) {
    while (*s) hal_uart_put((uint8_t)*s++);
}

static void put_u64(uint64_t v) {
    char buf[21];
    int i = (int)sizeof buf - 1;
    buf[i] = 0;
    do {
        buf[--i] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    put_str(buf + i);
}

/* A real in 9 significant digits (enough to give a float32 back exactly): d.dddddddde[+-]XX. */
static void put_real(double v) {
    if (v != v) {
        put_str("nan");
        return;
    }
    if (v < 0) {
        hal_uart_put('-');
        v = -v;
    }
    if (v > 3.5e38) {
        put_str("inf");
        return;
    }
    int e = 0;
    if (v != 0) {
        while (v >= 10.0) v /= 10.0, e++;
        while (v < 1.0) v *= 10.0, e--;
    }
    uint64_t digits = (uint64_t)(v * 1e8 + 0.5);
    if (digits >= 1000000000u) digits /= 10u, e++;
    char buf[11];
    for (int i = 9; i >= 0; i--) {
        if (i == 1) {
            buf[i] = '.';
            continue;
        }
        buf[i] = (char)('0' + digits % 10u);
        digits /= 10u;
    }
    buf[10] = 0;
    put_str(buf);
    hal_uart_put('e');
    hal_uart_put(e < 0 ? '-' : '+');
    put_u64((uint64_t)(e < 0 ? -e : e));
}

static void error(const char *what) {
    put_str("e-[");
    put_str(what);
    put_str("]\r\n");
}

#ifndef TBN_MLPERF_ENERGY
#define TBN_MLPERF_ENERGY 0
#endif

#if TBN_MLPERF_ENERGY
#define TIMESTAMP_MODE "m-timestamp-mode-energy\r\n"
/* th_timestamp in energy mode: the energy monitor sees the pin low for at least 1 us. */
static void timestamp(void) {
    uint64_t hold = cost_ms_ticks(1) / 1000u + 1u, t0 = cost_ticks();
    hal_timestamp_pin(0);
    while (cost_ticks() - t0 < hold) {
    }
    hal_timestamp_pin(1);
}
#else
#define TIMESTAMP_MODE "m-timestamp-mode-performance\r\n"
static void timestamp(void) {
    put_str("m-lap-us-");
    put_u64(cost_ticks() * 1000000u / cost_ms_ticks(1000)); /* exact for any timer of whole Hz */
    put_str("\r\n");
}
#endif

void commands_init(void) {
    g.ready = tbn_model_init(&g.model, tbn_embedded_model, tbn_embedded_model_size) == TBN_OK &&
              tbn_arena_size(&g.model) <= sizeof g_arena && tbn_input_size(&g.model) == sizeof g_db;
    if (TBN_MLPERF_ENERGY) hal_timestamp_pin(1); /* idle high */
    put_str(TIMESTAMP_MODE "m-init-done\r\nm-ready\r\n");
}

/* A decimal count in [lo, MAX_RUNS], or -1. */
static long parse_count(const char *s, long lo) {
    long v = 0;
    if (!s || !*s) return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > MAX_RUNS) return -1;
        v = v * 10 + (*s - '0');
    }
    return v < lo || v > MAX_RUNS ? -1 : v;
}

static int hex(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static void db(char *sub, char *arg) {
    if (!sub) {
        error("Command 'db' requires a subcommand");
    } else if (strcmp(sub, "load") == 0) {
        long n = parse_count(arg, 1);
        if (n != (long)sizeof g_db) {
            put_str("e-[db load: the model's input is ");
            put_u64(sizeof g_db);
            put_str(" bytes]\r\n");
            return;
        }
        g.db_size = (uint32_t)n;
        g.db_pos = 0;
        put_str("m-[Expecting ");
        put_u64((uint64_t)n);
        put_str(" bytes]\r\n");
    } else if (strcmp(sub, "print") == 0) {
        static const char digits[] = "0123456789abcdef";
        for (uint32_t i = 0; i < g.db_pos; i++) {
            if (i % 8u == 0) put_str("m-buffer-");
            hal_uart_put((uint8_t)digits[g_db[i] >> 4]);
            hal_uart_put((uint8_t)digits[g_db[i] & 15]);
            put_str(i % 8u == 7u || i + 1 == g.db_pos ? "\r\n" : "-");
        }
    } else if (g.db_size == 0) {
        error("db: no 'db load N' before the bytes");
    } else {
        size_t n = strlen(sub);
        if (n & 1u) {
            error("Insufficent number of hex digits");
            return;
        }
        for (size_t i = 0; i < n; i += 2) { /* check every digit before taking any byte */
            if (hex(sub[i]) < 0 || hex(sub[i + 1]) < 0) {
                error("Invalid hex digit");
                return;
            }
        }
        for (size_t i = 0; i < n && g.db_pos < g.db_size; i += 2)
            g_db[g.db_pos++] = (uint8_t)(hex(sub[i]) << 4 | hex(sub[i + 1]));
        if (g.db_pos == g.db_size) put_str("m-load-done\r\n");
    }
}

static int infer_once(void) {
    memcpy(tbn_input_ptr(&g.model, g_arena), g_db, sizeof g_db);
    return tbn_invoke(&g.model, g_arena, sizeof g_arena) == TBN_OK;
}

static void results(void) {
    if (!g.ran) {
        error("results: no inference has run");
        return;
    }
    tbn_io_info out;
    tbn_output_info(&g.model, &out);
    const uint8_t *p = tbn_output_ptr(&g.model, g_arena);
    put_str("m-results-[");
    for (uint32_t i = 0; i < out.numel; i++) {
        float v;
        if (out.dtype == TBN_DTYPE_I8) {
            v = out.scale * (float)((int32_t)(int8_t)p[i] - out.zero_point);
        } else {
            memcpy(&v, p + 4u * i, 4);
        }
        if (i) hal_uart_put(',');
        put_real(v);
    }
    put_str("]\r\n");
}

static void infer(char *n_arg, char *w_arg) {
    long n = n_arg ? parse_count(n_arg, 1) : 1, w = w_arg ? parse_count(w_arg, 0) : 10;
    if (n < 0 || w < 0) {
        error("infer N W: N from 1 and W from 0, at most 1000000");
    } else if (!g.ready) {
        error("the embedded model does not fit this build");
    } else if (g.db_size == 0 || g.db_pos != g.db_size) {
        error("infer: load the input first (db load N, then its bytes)");
    } else {
        put_str("m-warmup-start-");
        put_u64((uint64_t)w);
        put_str("\r\n");
        int ok = 1;
        while (ok && w-- > 0) ok = infer_once();
        put_str("m-warmup-done\r\nm-infer-start-");
        put_u64((uint64_t)n);
        put_str("\r\n");
        timestamp();
        while (ok && n-- > 0) ok = infer_once();
        timestamp();
        put_str("m-infer-done\r\n");
        g.ran = ok;
        if (ok) results();
        else error("the model failed to run");
    }
}

/* The next word of *s (space-separated), or NULL; *s moves past it. */
static char *word(char **s) {
    while (**s == ' ') (*s)++;
    if (!**s) return 0;
    char *start = *s;
    while (**s && **s != ' ') (*s)++;
    if (**s) *(*s)++ = 0;
    return start;
}

static void dispatch(char *line) {
    char *cmd = word(&line), *a = word(&line), *b = word(&line);
    if (!cmd) {
        error("Unknown command: ");
    } else if (strcmp(cmd, "name") == 0) {
        put_str("m-name-dut-[tbn " TBN_BOARD_NAME "]\r\n");
    } else if (strcmp(cmd, "profile") == 0) {
        put_str("m-profile-[ULPMark for tinyML Firmware V0.0.1]\r\nm-model-[" TBN_MLPERF_MODEL "]\r\n");
    } else if (strcmp(cmd, "help") == 0) {
        put_str("tbn " TBN_BOARD_NAME ": name, profile, timestamp, db load N, db HH.., db print, infer N W, "
                "results\r\n");
    } else if (strcmp(cmd, "timestamp") == 0) {
        timestamp();
    } else if (strcmp(cmd, "db") == 0) {
        db(a, b);
    } else if (strcmp(cmd, "infer") == 0) {
        infer(a, b);
    } else if (strcmp(cmd, "results") == 0) {
        results();
    } else {
        put_str("e-[Unknown command: ");
        put_str(cmd);
        put_str("]\r\n");
    }
    put_str("m-ready\r\n");
}

void commands_serve_one(void) {
    static char line[CMD_BYTES + 1];
    uint32_t n = 0;
    int overlong = 0;
    for (;;) {
        uint8_t c;
        while (!uart_rx_pop(&c)) uart_rx_wait();
        if (c == '%') break;
        if (c == '\r' || c == '\n') continue; /* a terminal's line ends */
        if (c < 0x20 || c > 0x7e) c = '?';   /* printable only: the reply echoes the command */
        if (n < CMD_BYTES) line[n++] = (char)c;
        else overlong = 1;
    }
    line[n] = 0;
    if (overlong) {
        error("command longer than 80 characters");
        put_str("m-ready\r\n");
        return;
    }
    dispatch(line);
}

#endif /* TBN_PROTOCOL_MLPERF */
