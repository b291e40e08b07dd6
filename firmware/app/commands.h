/* commands.h -- the device side of docs/protocol.md: INFO, LOAD_*, INFER, BENCH. */
#ifndef TBN_COMMANDS_H
#define TBN_COMMANDS_H

#include <stdint.h>

#define TBN_PROTOCOL_VERSION 1u
#define TBN_FIRMWARE_VERSION 0x000100u /* 0.1.0 */

enum {
    CMD_INFO = 0x01,
    CMD_LOAD_BEGIN = 0x02,
    CMD_LOAD_CHUNK = 0x03,
    CMD_LOAD_END = 0x04,
    CMD_INFER = 0x05,
    CMD_BENCH = 0x06,
    CMD_ERROR = 0x7F, /* the device's answer to a frame it could not read */
    CMD_REPLY = 0x80, /* OR-ed into the command code of every reply */
};

enum {
    ST_OK = 0,
    ST_ERR_CRC = 1,
    ST_ERR_LENGTH = 2,
    ST_ERR_TIMEOUT = 3,
    ST_ERR_COMMAND = 4,
    ST_ERR_ARGS = 5,
    ST_ERR_NO_MODEL = 6,
    ST_ERR_MODEL = 7,
    ST_ERR_TOO_LARGE = 8,
    ST_ERR_LOAD_ORDER = 9,
    ST_ERR_LOAD_CRC = 10,
};

/* Activate the model embedded at build time, if there is one. */
void commands_init(void);

/* Receive one frame and answer it. */
void commands_serve_one(void);

#endif /* TBN_COMMANDS_H */
