/* commands.c -- answer each request frame; layouts are in docs/protocol.md. */
#include "commands.h"

#if !TBN_PROTOCOL_MLPERF /* else mlperf.c answers the MLPerf runner instead */

#include <string.h>

#include "cost.h"
#include "link.h"
#include "tbn.h"

#ifndef TBN_BOARD_NAME
#error "TBN_BOARD_NAME must come from the board description"
#endif

#if TBN_SLOT_BYTES > 0
static uint32_t g_slot[TBN_SLOT_BYTES / 4];
#define SLOT_BYTES ((uint32_t)sizeof g_slot)
#else
static uint32_t g_slot[1]; /* no room to upload a model (LOAD_BEGIN answers TOO_LARGE) */
#define SLOT_BYTES 0u
#endif
static uint32_t g_arena[TBN_ARENA_BYTES / 4];
/* the board's frame buffer: the protocol's largest unless its description asks for less (INFO
 * reports it, and the host sizes LOAD chunks and inputs by it) */
#ifndef TBN_FRAME_BYTES
#define TBN_FRAME_BYTES TBN_MAX_PAYLOAD
#endif
#if TBN_FRAME_BYTES > TBN_MAX_PAYLOAD || TBN_FRAME_BYTES % 4
#error "TBN_FRAME_BYTES must be a multiple of 4, at most TBN_MAX_PAYLOAD"
#endif
static uint32_t g_frame[TBN_FRAME_BYTES / 4];

#if TBN_EMBEDDED_MODEL
/* in flash (embedded_model.S); on AVR a separate address space, read through __flash */
#if defined(__AVR__)
#define APP_FLASH __flash
#else
#define APP_FLASH
#endif
extern const APP_FLASH uint8_t tbn_embedded_model[];
extern const APP_FLASH uint32_t tbn_embedded_model_size;
#endif

static struct {
    tbn_model model;
    uint8_t source;
    uint8_t loading;
    uint32_t load_total, load_crc, load_received;
    uint32_t model_crc; /* CRC32 of the whole active file: the host's "is it already here?" */
} g;

/* Each handler keeps its reply buffers in its own frame, so the stack under an inference holds
 * INFER's alone (the Uno has 2 KB of RAM for everything). */
#define HANDLER static __attribute__((noinline))

static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put64(uint8_t *p, uint64_t v) {
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void reply_status(uint8_t cmd, uint8_t seq, uint8_t status, uint8_t detail) {
    uint8_t head[TBN_STATUS_REPLY_SIZE];
    head[TBN_STATUS_REPLY_STATUS] = status;
    head[TBN_STATUS_REPLY_DETAIL] = detail;
    link_send((uint8_t)(cmd | TBN_CMD_REPLY), seq, head, sizeof head, 0, 0);
}

/* The active model's sizes (TBN_MODEL_INFO_SIZE bytes at p). */
static void put_model_info(uint8_t *p) {
    int active = g.source != TBN_SOURCE_NONE;
    put32(p + TBN_MODEL_INFO_MODEL_BYTES, active ? g.model.size : 0);
    put32(p + TBN_MODEL_INFO_CRC32, active ? g.model_crc : 0);
    put32(p + TBN_MODEL_INFO_INPUT_BYTES, active ? tbn_input_size(&g.model) : 0);
    put32(p + TBN_MODEL_INFO_OUTPUT_BYTES, active ? tbn_output_size(&g.model) : 0);
    put32(p + TBN_MODEL_INFO_ARENA_BYTES, active ? tbn_arena_size(&g.model) : 0);
    p[TBN_MODEL_INFO_INT8] = (uint8_t)(active && tbn_is_int8(&g.model));
}

/* Validate a model and check it fits the arena; 0 = ok, else the reply status. `crc` is the
 * file's CRC32, already known for an upload. */
static uint8_t activate(const TBN_ROM void *data, uint32_t size, uint32_t crc, uint8_t source, uint8_t *detail) {
    tbn_status s = tbn_model_init(&g.model, data, size);
    *detail = (uint8_t)s;
    if (s != TBN_OK) return TBN_ST_ERR_MODEL;
    if (tbn_arena_size(&g.model) > sizeof g_arena) return TBN_ST_ERR_TOO_LARGE;
    g.source = source;
    g.model_crc = crc;
    return TBN_ST_OK;
}

void commands_init(void) {
    g.source = TBN_SOURCE_NONE;
#if TBN_EMBEDDED_MODEL
    uint8_t detail;
    const TBN_ROM uint8_t *model = tbn_embedded_model;
    uint32_t crc = tbn_crc32(model, tbn_embedded_model_size);
    if (activate(model, tbn_embedded_model_size, crc, TBN_SOURCE_EMBEDDED, &detail) != TBN_ST_OK)
        g.source = TBN_SOURCE_NONE;
#endif
}

HANDLER void do_info(uint8_t seq) {
    static const char name[] = TBN_BOARD_NAME;
    uint8_t head[TBN_INFO_REPLY_NAME + sizeof name - 1];
    memset(head, 0, sizeof head);
    head[TBN_INFO_REPLY_STATUS] = TBN_ST_OK;
    head[TBN_INFO_REPLY_PROTOCOL] = TBN_PROTOCOL_VERSION;
    head[TBN_INFO_REPLY_FORMAT_MAJOR] = TBN_VERSION_MAJOR;
    head[TBN_INFO_REPLY_FORMAT_MINOR] = TBN_VERSION_MINOR;
    head[TBN_INFO_REPLY_COST_UNIT] = cost_unit();
    head[TBN_INFO_REPLY_MODEL_SOURCE] = g.source;
    head[TBN_INFO_REPLY_NAME_LEN] = (uint8_t)(sizeof name - 1);
    put32(head + TBN_INFO_REPLY_FIRMWARE_VERSION, TBN_FIRMWARE_VERSION);
    put32(head + TBN_INFO_REPLY_CLOCK_HZ, TBN_CLOCK_HZ);
    put32(head + TBN_INFO_REPLY_ARENA_BYTES, sizeof g_arena);
    put32(head + TBN_INFO_REPLY_SLOT_BYTES, SLOT_BYTES);
    put32(head + TBN_INFO_REPLY_MAX_PAYLOAD, TBN_FRAME_BYTES);
    put32(head + TBN_INFO_REPLY_COST_RESOLUTION, cost_resolution());
    put_model_info(head + TBN_INFO_REPLY_MODEL);
    put16(head + TBN_INFO_REPLY_FRAME_TIMEOUT_MS, TBN_FRAME_TIMEOUT_MS);
    put16(head + TBN_INFO_REPLY_WAKE_MS, (uint16_t)cost_wake_ms());
    memcpy(head + TBN_INFO_REPLY_NAME, name, sizeof name - 1);
    link_send(TBN_CMD_INFO | TBN_CMD_REPLY, seq, head, sizeof head, 0, 0);
}

HANDLER void do_load_begin(uint8_t seq, const uint8_t *p, uint16_t len) {
    if (len != TBN_LOAD_BEGIN_REQUEST_SIZE) {
        reply_status(TBN_CMD_LOAD_BEGIN, seq, TBN_ST_ERR_ARGS, 0);
        return;
    }
    uint32_t total = get32(p + TBN_LOAD_BEGIN_REQUEST_TOTAL);
    uint8_t head[TBN_LOAD_BEGIN_REPLY_SIZE] = {0};
    head[TBN_LOAD_BEGIN_REPLY_STATUS] = TBN_ST_OK;
    put32(head + TBN_LOAD_BEGIN_REPLY_SLOT_BYTES, SLOT_BYTES);
    if (total == 0 || total > SLOT_BYTES) {
        head[TBN_LOAD_BEGIN_REPLY_STATUS] = TBN_ST_ERR_TOO_LARGE;
    } else {
        if (g.source == TBN_SOURCE_LOADED) commands_init(); /* the slot is about to change */
        g.loading = 1;
        g.load_total = total;
        g.load_crc = get32(p + TBN_LOAD_BEGIN_REQUEST_CRC32);
        g.load_received = 0;
    }
    link_send(TBN_CMD_LOAD_BEGIN | TBN_CMD_REPLY, seq, head, sizeof head, 0, 0);
}

HANDLER void do_load_chunk(uint8_t seq, const uint8_t *p, uint16_t len) {
    uint8_t head[TBN_LOAD_CHUNK_REPLY_SIZE] = {0};
    if (len < TBN_LOAD_CHUNK_REQUEST_SIZE) {
        reply_status(TBN_CMD_LOAD_CHUNK, seq, TBN_ST_ERR_ARGS, 0);
        return;
    }
    uint32_t offset = get32(p + TBN_LOAD_CHUNK_REQUEST_OFFSET), n = (uint32_t)len - TBN_LOAD_CHUNK_REQUEST_SIZE;
    head[TBN_LOAD_CHUNK_REPLY_STATUS] = TBN_ST_OK;
    /* chunks arrive in order; a repeated chunk (a lost acknowledgement) is acknowledged again */
    if (SLOT_BYTES == 0 || !g.loading || offset > g.load_received || n > g.load_total - offset) {
        head[TBN_LOAD_CHUNK_REPLY_STATUS] = TBN_ST_ERR_LOAD_ORDER;
    } else if (offset == g.load_received) {
        memcpy((uint8_t *)g_slot + offset, p + TBN_LOAD_CHUNK_REQUEST_SIZE, n);
        g.load_received += n;
    }
    put32(head + TBN_LOAD_CHUNK_REPLY_RECEIVED, g.load_received);
    link_send(TBN_CMD_LOAD_CHUNK | TBN_CMD_REPLY, seq, head, sizeof head, 0, 0);
}

HANDLER void do_load_end(uint8_t seq, uint16_t len) {
    uint8_t head[TBN_LOAD_END_REPLY_SIZE + TBN_MODEL_INFO_SIZE] = {0};
    uint8_t *status = &head[TBN_LOAD_END_REPLY_STATUS];
    if (len != 0) {
        reply_status(TBN_CMD_LOAD_END, seq, TBN_ST_ERR_ARGS, 0);
        return;
    }
    *status = TBN_ST_OK;
    if (g.source == TBN_SOURCE_LOADED) {
        /* a repeated LOAD_END: the model is already active */
    } else if (SLOT_BYTES == 0 || !g.loading || g.load_received != g.load_total) {
        *status = TBN_ST_ERR_LOAD_ORDER;
    } else if (tbn_crc32(g_slot, g.load_total) != g.load_crc) {
        *status = TBN_ST_ERR_LOAD_CRC;
    } else {
        *status = activate(g_slot, g.load_total, g.load_crc, TBN_SOURCE_LOADED, &head[TBN_LOAD_END_REPLY_DETAIL]);
        if (*status != TBN_ST_OK) commands_init();
    }
    if (*status == TBN_ST_OK) g.loading = 0;
    put_model_info(head + TBN_LOAD_END_REPLY_SIZE);
    link_send(TBN_CMD_LOAD_END | TBN_CMD_REPLY, seq, head, sizeof head, 0, 0);
}

/* Copy the input in and invoke once; returns a reply status. */
static uint8_t run_once(const uint8_t *input, uint16_t n, uint64_t *cost, uint8_t *detail) {
    *detail = 0;
    if (g.source == TBN_SOURCE_NONE) return TBN_ST_ERR_NO_MODEL;
    if (n != tbn_input_size(&g.model)) return TBN_ST_ERR_ARGS;
    uint8_t *in = tbn_input_ptr(&g.model, g_arena);
    if (input != in) memcpy(in, input, n); /* else it streamed straight there (payload_sink) */
    uint64_t start = cost_begin();
    tbn_status s = tbn_invoke(&g.model, g_arena, sizeof g_arena);
    *cost = cost_end(start);
    *detail = (uint8_t)s;
    return s == TBN_OK ? TBN_ST_OK : TBN_ST_ERR_MODEL;
}

HANDLER void do_infer(uint8_t seq, const uint8_t *p, uint16_t len) {
    uint8_t head[TBN_INFER_REPLY_SIZE] = {0};
    uint64_t cost = 0;
    uint8_t status = run_once(p, len, &cost, &head[TBN_INFER_REPLY_DETAIL]);
    if (status != TBN_ST_OK) {
        reply_status(TBN_CMD_INFER, seq, status, head[TBN_INFER_REPLY_DETAIL]);
        return;
    }
    head[TBN_INFER_REPLY_STATUS] = status;
    put64(head + TBN_INFER_REPLY_COST, cost);
    link_send(TBN_CMD_INFER | TBN_CMD_REPLY, seq, head, sizeof head, tbn_output_ptr(&g.model, g_arena),
              (uint16_t)tbn_output_size(&g.model));
}

HANDLER void do_bench(uint8_t seq, const uint8_t *p, uint16_t len) {
    uint8_t head[TBN_BENCH_REPLY_SIZE] = {0};
    uint32_t runs = len < TBN_BENCH_REQUEST_SIZE ? 0 : get32(p + TBN_BENCH_REQUEST_RUNS);
    if (runs == 0 || runs > TBN_MAX_BENCH_RUNS) {
        reply_status(TBN_CMD_BENCH, seq, TBN_ST_ERR_ARGS, 0);
        return;
    }
    uint64_t total = 0, lo = UINT64_MAX, hi = 0;
    for (uint32_t i = 0; i < runs; i++) {
        uint64_t cost = 0;
        uint8_t detail;
        uint8_t status = run_once(p + TBN_BENCH_REQUEST_SIZE, (uint16_t)(len - TBN_BENCH_REQUEST_SIZE), &cost, &detail);
        if (status != TBN_ST_OK) {
            reply_status(TBN_CMD_BENCH, seq, status, detail);
            return;
        }
        total += cost;
        lo = cost < lo ? cost : lo;
        hi = cost > hi ? cost : hi;
    }
    head[TBN_BENCH_REPLY_STATUS] = TBN_ST_OK;
    put32(head + TBN_BENCH_REPLY_RUNS, runs);
    put64(head + TBN_BENCH_REPLY_TOTAL, total);
    put64(head + TBN_BENCH_REPLY_MIN, lo);
    put64(head + TBN_BENCH_REPLY_MAX, hi);
    link_send(TBN_CMD_BENCH | TBN_CMD_REPLY, seq, head, sizeof head, 0, 0);
}

/* One inference, op by op: each op's cost measured alone (tbn_invoke_ops), so kernels can be
 * tuned layer by layer. The costs overwrite the request's input in the frame buffer, which
 * has been copied into the arena by then. */
HANDLER void do_profile(uint8_t seq, const uint8_t *p, uint16_t len) {
    uint8_t head[TBN_PROFILE_REPLY_SIZE] = {0};
    if (g.source == TBN_SOURCE_NONE) {
        reply_status(TBN_CMD_PROFILE, seq, TBN_ST_ERR_NO_MODEL, 0);
        return;
    }
    uint32_t n_ops = tbn_op_count(&g.model);
    if (len != tbn_input_size(&g.model)) {
        reply_status(TBN_CMD_PROFILE, seq, TBN_ST_ERR_ARGS, 0);
        return;
    }
    if ((uint64_t)n_ops * TBN_PROFILE_COST_SIZE > TBN_FRAME_BYTES - TBN_PROFILE_REPLY_SIZE) {
        reply_status(TBN_CMD_PROFILE, seq, TBN_ST_ERR_TOO_LARGE, 0);
        return;
    }
    uint8_t *in = tbn_input_ptr(&g.model, g_arena);
    if (p != in) memcpy(in, p, len);
    uint8_t *costs = (uint8_t *)g_frame;
    for (uint32_t i = 0; i < n_ops; i++) {
        uint64_t start = cost_begin();
        tbn_status s = tbn_invoke_ops(&g.model, g_arena, sizeof g_arena, i, i + 1);
        uint64_t cost = cost_end(start);
        if (s != TBN_OK) {
            reply_status(TBN_CMD_PROFILE, seq, TBN_ST_ERR_MODEL, (uint8_t)s);
            return;
        }
        put64(costs + (size_t)i * TBN_PROFILE_COST_SIZE, cost);
    }
    head[TBN_PROFILE_REPLY_STATUS] = TBN_ST_OK;
    put16(head + TBN_PROFILE_REPLY_OPS, (uint16_t)n_ops);
    link_send(TBN_CMD_PROFILE | TBN_CMD_REPLY, seq, head, sizeof head, costs,
              (uint16_t)(n_ops * TBN_PROFILE_COST_SIZE));
}

/* A payload goes to the frame buffer, or, when it is an input larger than that buffer (INFER
 * or PROFILE of exactly the model's input size), straight into the arena's input slot: so a
 * board with little RAM needs no frame buffer as large as its inputs (docs/protocol.md). */
static uint8_t *payload_sink(uint8_t cmd, uint16_t len) {
    if (len <= TBN_FRAME_BYTES) return (uint8_t *)g_frame;
    if ((cmd == TBN_CMD_INFER || cmd == TBN_CMD_PROFILE) && g.source != TBN_SOURCE_NONE &&
        len == tbn_input_size(&g.model))
        return tbn_input_ptr(&g.model, g_arena);
    return 0;
}

void commands_serve_one(void) {
    link_frame f;
    link_result r = link_receive(&f, payload_sink, cost_ms_ticks(TBN_FRAME_TIMEOUT_MS));
    uint8_t *payload = f.payload;
    if (r != LINK_OK) {
        /* the frame is unreadable: say why; the host retries */
        uint8_t status = r == LINK_ERR_CRC      ? TBN_ST_ERR_CRC
                         : r == LINK_ERR_LENGTH ? TBN_ST_ERR_LENGTH
                                                : TBN_ST_ERR_TIMEOUT;
        reply_status(TBN_CMD_ERROR, f.seq, status, 0);
        return;
    }
    switch (f.cmd) {
    case TBN_CMD_INFO:
        do_info(f.seq);
        return;
    case TBN_CMD_LOAD_BEGIN:
        do_load_begin(f.seq, payload, f.len);
        return;
    case TBN_CMD_LOAD_CHUNK:
        do_load_chunk(f.seq, payload, f.len);
        return;
    case TBN_CMD_LOAD_END:
        do_load_end(f.seq, f.len);
        return;
    case TBN_CMD_INFER:
        do_infer(f.seq, payload, f.len);
        return;
    case TBN_CMD_BENCH:
        do_bench(f.seq, payload, f.len);
        return;
    case TBN_CMD_PROFILE:
        do_profile(f.seq, payload, f.len);
        return;
    default:
        reply_status(f.cmd, f.seq, TBN_ST_ERR_COMMAND, 0);
        return;
    }
}

#endif /* !TBN_PROTOCOL_MLPERF */
