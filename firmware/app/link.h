/* link.h -- the framed serial link of docs/protocol.md.
 *
 *   A5 5A | cmd u8 | seq u8 | len u16 LE | payload[len] | crc32 u32 LE over cmd..payload
 *
 * Receiving never blocks forever once a frame has begun: a gap longer than the
 * inter-byte timeout ends it with LINK_ERR_TIMEOUT, and the caller answers with an
 * error frame. Nothing read from the wire is trusted before its CRC checks.
 */
#ifndef TBN_LINK_H
#define TBN_LINK_H

#include <stdint.h>

#include "tbn_protocol.h"

typedef enum {
    LINK_OK = 0,
    LINK_ERR_CRC,     /* the frame's CRC32 does not match its bytes */
    LINK_ERR_LENGTH,  /* the length field exceeds the device's maximum payload */
    LINK_ERR_TIMEOUT, /* the frame stopped arriving part-way */
} link_result;

typedef struct {
    uint8_t cmd;
    uint8_t seq;
    uint16_t len;
    uint8_t *payload; /* where the payload landed */
} link_frame;

/* Where a frame's payload goes, asked once its header is in: a buffer of at least len bytes,
 * or NULL to refuse the frame (LINK_ERR_LENGTH). */
typedef uint8_t *(*link_sink)(uint8_t cmd, uint16_t len);

/* Wait for the next frame; its payload lands where sink says. */
link_result link_receive(link_frame *frame, link_sink sink, uint64_t timeout_ticks);

/* Send one frame whose payload is head[0..n_head) followed by body[0..n_body). */
void link_send(uint8_t cmd, uint8_t seq, const uint8_t *head, uint16_t n_head, const uint8_t *body,
               uint16_t n_body);

#endif /* TBN_LINK_H */
