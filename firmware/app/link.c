/* link.c -- frame receive and send (see link.h and docs/protocol.md). */
#include "link.h"

#include "cost.h"
#include "hal.h"
#include "tbn.h"
#include "uart_rx.h"

/* One byte, or -1 when none arrives within timeout_ticks. The core sleeps between checks;
 * the core timer's wake-up (a SysTick wrap on Cortex-M) ends each sleep, so a timeout is noticed
 * at most one wake period late. */
static int read_byte(uint64_t timeout_ticks) {
    uint8_t byte;
    if (uart_rx_pop(&byte)) return byte;
    uint64_t start = cost_ticks();
    while (!uart_rx_pop(&byte)) {
        if (cost_ticks() - start > timeout_ticks) return -1;
        uart_rx_wait();
    }
    return byte;
}

static int read_bytes(uint8_t *dst, uint32_t n, uint64_t timeout_ticks) {
    for (uint32_t i = 0; i < n; i++) {
        int byte = read_byte(timeout_ticks);
        if (byte < 0) return 0;
        dst[i] = (uint8_t)byte;
    }
    return 1;
}

link_result link_receive(link_frame *frame, link_sink sink, uint64_t timeout_ticks) {
    uint8_t header[TBN_LINK_HEADER_BYTES - 2], trailer[TBN_LINK_CRC_BYTES];
    /* hunt for the sync pair; idle time between frames is unbounded */
    uint8_t prev = 0, byte = 0;
    for (;;) {
        while (!uart_rx_pop(&byte)) uart_rx_wait();
        if (prev == TBN_LINK_SYNC0 && byte == TBN_LINK_SYNC1) break;
        prev = byte;
    }
    if (!read_bytes(header, sizeof header, timeout_ticks)) return LINK_ERR_TIMEOUT;
    frame->cmd = header[0];
    frame->seq = header[1];
    frame->len = (uint16_t)(header[2] | (header[3] << 8));
    uint8_t *buf = frame->payload = sink(frame->cmd, frame->len);
    if (!buf) return LINK_ERR_LENGTH;
    if (!read_bytes(buf, frame->len, timeout_ticks)) return LINK_ERR_TIMEOUT;
    if (!read_bytes(trailer, sizeof trailer, timeout_ticks)) return LINK_ERR_TIMEOUT;
    uint32_t crc = tbn_crc32_update(tbn_crc32(header, sizeof header), buf, frame->len);
    uint32_t sent = (uint32_t)trailer[0] | ((uint32_t)trailer[1] << 8) | ((uint32_t)trailer[2] << 16) |
                    ((uint32_t)trailer[3] << 24);
    return crc == sent ? LINK_OK : LINK_ERR_CRC;
}

static void put_all(const uint8_t *p, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) hal_uart_put(p[i]);
}

void link_send(uint8_t cmd, uint8_t seq, const uint8_t *head, uint16_t n_head, const uint8_t *body,
               uint16_t n_body) {
    uint16_t len = (uint16_t)(n_head + n_body);
    uint8_t header[TBN_LINK_HEADER_BYTES] = {TBN_LINK_SYNC0, TBN_LINK_SYNC1, cmd, seq, (uint8_t)len,
                                         (uint8_t)(len >> 8)};
    uint32_t crc = tbn_crc32(header + 2, TBN_LINK_HEADER_BYTES - 2);
    crc = tbn_crc32_update(crc, head, n_head);
    crc = tbn_crc32_update(crc, body, n_body);
    uint8_t trailer[TBN_LINK_CRC_BYTES] = {(uint8_t)crc, (uint8_t)(crc >> 8), (uint8_t)(crc >> 16),
                                       (uint8_t)(crc >> 24)};
    put_all(header, sizeof header);
    put_all(head, n_head);
    put_all(body, n_body);
    put_all(trailer, sizeof trailer);
}
