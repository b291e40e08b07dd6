/* commands.c -- answer each request frame; layouts are in docs/protocol.md. */
#include "commands.h"

#include <string.h>

#include "cost.h"
#include "link.h"
#include "tbn.h"

#ifndef TBN_BOARD_NAME
#error "TBN_BOARD_NAME must come from the board description"
#endif
#define TBN_MAX_PAYLOAD 8192u
#define MODEL_SOURCE_NONE 0u
#define MODEL_SOURCE_EMBEDDED 1u
#define MODEL_SOURCE_LOADED 2u
#define MAX_BENCH_RUNS 100000u
#define INFO_HEAD_BYTES 52u

static uint32_t g_slot[TBN_SLOT_BYTES / 4];
static uint32_t g_arena[TBN_ARENA_BYTES / 4];
static uint32_t g_frame[TBN_MAX_PAYLOAD / 4];

#if TBN_EMBEDDED_MODEL
extern const uint8_t tbn_embedded_model[];
extern const uint32_t tbn_embedded_model_size;
#endif

static struct {
    tbn_model model;
    uint8_t source;
    uint8_t loading;
    uint32_t load_total, load_crc, load_received;
} g;

static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put64(uint8_t *p, uint64_t v) {
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void reply_status(uint8_t cmd, uint8_t seq, uint8_t status, uint8_t detail) {
    uint8_t head[2] = {status, detail};
    link_send((uint8_t)(cmd | CMD_REPLY), seq, head, 2, 0, 0);
}

/* model_bytes, input, output, arena needed, int8 flag: 17 bytes at p */
static void put_model_info(uint8_t *p) {
    int active = g.source != MODEL_SOURCE_NONE;
    put32(p, active ? g.model.size : 0);
    put32(p + 4, active ? tbn_input_size(&g.model) : 0);
    put32(p + 8, active ? tbn_output_size(&g.model) : 0);
    put32(p + 12, active ? tbn_arena_size(&g.model) : 0);
    p[16] = (uint8_t)(active && tbn_is_int8(&g.model));
}

/* Validate a model and check it fits the arena; 0 = ok, else the reply status. */
static uint8_t activate(const void *data, uint32_t size, uint8_t source, uint8_t *detail) {
    tbn_status s = tbn_model_init(&g.model, data, size);
    *detail = (uint8_t)s;
    if (s != TBN_OK) return ST_ERR_MODEL;
    if (tbn_arena_size(&g.model) > sizeof g_arena) return ST_ERR_TOO_LARGE;
    g.source = source;
    return ST_OK;
}

void commands_init(void) {
    g.source = MODEL_SOURCE_NONE;
#if TBN_EMBEDDED_MODEL
    uint8_t detail;
    if (activate(tbn_embedded_model, tbn_embedded_model_size, MODEL_SOURCE_EMBEDDED, &detail) != ST_OK)
        g.source = MODEL_SOURCE_NONE;
#endif
}

static void do_info(uint8_t seq) {
    static const char name[] = TBN_BOARD_NAME;
    uint8_t head[INFO_HEAD_BYTES + sizeof name];
    head[0] = ST_OK;
    head[1] = TBN_PROTOCOL_VERSION;
    head[2] = TBN_VERSION_MAJOR;
    head[3] = TBN_VERSION_MINOR;
    head[4] = cost_unit();
    head[5] = g.source;
    head[6] = 0; /* reserved */
    head[7] = (uint8_t)(sizeof name - 1);
    put32(head + 8, TBN_FIRMWARE_VERSION);
    put32(head + 12, TBN_CLOCK_HZ);
    put32(head + 16, sizeof g_arena);
    put32(head + 20, sizeof g_slot);
    put32(head + 24, TBN_MAX_PAYLOAD);
    put32(head + 28, cost_resolution());
    put_model_info(head + 32);
    for (unsigned i = 49; i < INFO_HEAD_BYTES; i++) head[i] = 0; /* reserved */
    memcpy(head + INFO_HEAD_BYTES, name, sizeof name - 1);
    link_send(CMD_INFO | CMD_REPLY, seq, head, (uint16_t)(INFO_HEAD_BYTES + sizeof name - 1), 0, 0);
}

static void do_load_begin(uint8_t seq, const uint8_t *p, uint16_t len) {
    if (len != 8) {
        reply_status(CMD_LOAD_BEGIN, seq, ST_ERR_ARGS, 0);
        return;
    }
    uint32_t total = get32(p);
    uint8_t head[6] = {ST_OK, 0};
    put32(head + 2, sizeof g_slot);
    if (total == 0 || total > sizeof g_slot) {
        head[0] = ST_ERR_TOO_LARGE;
        link_send(CMD_LOAD_BEGIN | CMD_REPLY, seq, head, sizeof head, 0, 0);
        return;
    }
    if (g.source == MODEL_SOURCE_LOADED) commands_init(); /* the slot is about to change */
    g.loading = 1;
    g.load_total = total;
    g.load_crc = get32(p + 4);
    g.load_received = 0;
    link_send(CMD_LOAD_BEGIN | CMD_REPLY, seq, head, sizeof head, 0, 0);
}

static void do_load_chunk(uint8_t seq, const uint8_t *p, uint16_t len) {
    uint8_t head[6] = {ST_OK, 0};
    if (len < 4) {
        reply_status(CMD_LOAD_CHUNK, seq, ST_ERR_ARGS, 0);
        return;
    }
    uint32_t offset = get32(p), n = (uint32_t)len - 4;
    /* chunks arrive in order; a repeated chunk (a lost acknowledgement) is acknowledged again */
    if (!g.loading || offset > g.load_received || n > g.load_total - offset) {
        head[0] = ST_ERR_LOAD_ORDER;
    } else if (offset == g.load_received) {
        memcpy((uint8_t *)g_slot + offset, p + 4, n);
        g.load_received += n;
    }
    put32(head + 2, g.load_received);
    link_send(CMD_LOAD_CHUNK | CMD_REPLY, seq, head, sizeof head, 0, 0);
}

static void do_load_end(uint8_t seq, uint16_t len) {
    uint8_t head[2 + 17] = {ST_OK, 0};
    if (len != 0) {
        reply_status(CMD_LOAD_END, seq, ST_ERR_ARGS, 0);
        return;
    }
    if (g.source == MODEL_SOURCE_LOADED) {
        /* a repeated LOAD_END: the model is already active */
    } else if (!g.loading || g.load_received != g.load_total) {
        head[0] = ST_ERR_LOAD_ORDER;
    } else if (tbn_crc32(g_slot, g.load_total) != g.load_crc) {
        head[0] = ST_ERR_LOAD_CRC;
    } else {
        head[0] = activate(g_slot, g.load_total, MODEL_SOURCE_LOADED, &head[1]);
        if (head[0] != ST_OK) commands_init();
    }
    if (head[0] == ST_OK) g.loading = 0;
    put_model_info(head + 2);
    link_send(CMD_LOAD_END | CMD_REPLY, seq, head, sizeof head, 0, 0);
}

/* Copy the input in and invoke once; returns a reply status. */
static uint8_t run_once(const uint8_t *input, uint16_t n, uint64_t *cost, uint8_t *detail) {
    *detail = 0;
    if (g.source == MODEL_SOURCE_NONE) return ST_ERR_NO_MODEL;
    if (n != tbn_input_size(&g.model)) return ST_ERR_ARGS;
    memcpy(tbn_input_ptr(&g.model, g_arena), input, n);
    uint64_t start = cost_begin();
    tbn_status s = tbn_invoke(&g.model, g_arena, sizeof g_arena);
    *cost = cost_end(start);
    *detail = (uint8_t)s;
    return s == TBN_OK ? ST_OK : ST_ERR_MODEL;
}

static void do_infer(uint8_t seq, const uint8_t *p, uint16_t len) {
    uint8_t head[12] = {0};
    uint64_t cost = 0;
    head[0] = run_once(p, len, &cost, &head[1]);
    if (head[0] != ST_OK) {
        link_send(CMD_INFER | CMD_REPLY, seq, head, 2, 0, 0);
        return;
    }
    put64(head + 4, cost);
    link_send(CMD_INFER | CMD_REPLY, seq, head, sizeof head, tbn_output_ptr(&g.model, g_arena),
              (uint16_t)tbn_output_size(&g.model));
}

static void do_bench(uint8_t seq, const uint8_t *p, uint16_t len) {
    uint8_t head[32] = {0};
    if (len < 4 || get32(p) == 0 || get32(p) > MAX_BENCH_RUNS) {
        reply_status(CMD_BENCH, seq, ST_ERR_ARGS, 0);
        return;
    }
    uint32_t runs = get32(p);
    uint64_t total = 0, lo = UINT64_MAX, hi = 0;
    for (uint32_t i = 0; i < runs; i++) {
        uint64_t cost = 0;
        head[0] = run_once(p + 4, (uint16_t)(len - 4), &cost, &head[1]);
        if (head[0] != ST_OK) {
        link_send(CMD_BENCH | CMD_REPLY, seq, head, 2, 0, 0);
        return;
    }
        total += cost;
        lo = cost < lo ? cost : lo;
        hi = cost > hi ? cost : hi;
    }
    put32(head + 4, runs);
    put64(head + 8, total);
    put64(head + 16, lo);
    put64(head + 24, hi);
    link_send(CMD_BENCH | CMD_REPLY, seq, head, sizeof head, 0, 0);
}

void commands_serve_one(void) {
    link_frame f;
    uint8_t *payload = (uint8_t *)g_frame;
    link_result r = link_receive(&f, payload, TBN_MAX_PAYLOAD, (uint64_t)TBN_CLOCK_HZ * TBN_FRAME_TIMEOUT_MS / 1000u);
    if (r != LINK_OK) {
        /* the frame is unreadable: say why; the host retries */
        uint8_t status = r == LINK_ERR_CRC ? ST_ERR_CRC : r == LINK_ERR_LENGTH ? ST_ERR_LENGTH : ST_ERR_TIMEOUT;
        reply_status(CMD_ERROR, f.seq, status, 0);
        return;
    }
    switch (f.cmd) {
    case CMD_INFO:
        do_info(f.seq);
        return;
    case CMD_LOAD_BEGIN:
        do_load_begin(f.seq, payload, f.len);
        return;
    case CMD_LOAD_CHUNK:
        do_load_chunk(f.seq, payload, f.len);
        return;
    case CMD_LOAD_END:
        do_load_end(f.seq, f.len);
        return;
    case CMD_INFER:
        do_infer(f.seq, payload, f.len);
        return;
    case CMD_BENCH:
        do_bench(f.seq, payload, f.len);
        return;
    default:
        reply_status(f.cmd, f.seq, ST_ERR_COMMAND, 0);
        return;
    }
}
