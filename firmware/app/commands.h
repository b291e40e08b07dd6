/* commands.h -- the device side of docs/protocol.md: INFO, LOAD_*, INFER, BENCH. */
#ifndef TBN_COMMANDS_H
#define TBN_COMMANDS_H

#include <stdint.h>

#include "tbn_protocol.h" /* commands, statuses and layouts, generated from the host's definition */

/* Activate the model embedded at build time, if there is one. */
void commands_init(void);

/* Receive one frame and answer it. */
void commands_serve_one(void);

#endif /* TBN_COMMANDS_H */
