/* hal.h -- what the app needs from a board: a byte link. (Time and cost come from the core's
 * timer, arch/<arch>/cost.c; buffering and sleeping from uart_rx.c and arch/<arch>/arch.h.)
 *
 * Each board provides exactly one HAL file (boards/<board>.json names it, under
 * firmware/hal/). Everything else -- framing, commands, the model -- is portable.
 */
#ifndef TBN_HAL_H
#define TBN_HAL_H

#include <stdint.h>

#include "tbn_protocol.h"

/* The UART's rate: the protocol's, or what the build says (MLPerf Tiny's energy mode: 9600,
 * tbn.device.build.MLPERF_ENERGY_BAUD). */
#ifndef TBN_UART_BAUD
#define TBN_UART_BAUD TBN_BAUDRATE
#endif

/* Clocks, pins and the UART, with its receive interrupt enabled in the peripheral (the
 * interrupt controller's line is TBN_UART_IRQ, from the board description, routed by
 * arch/<arch>/); called once before anything else. */
void hal_init(void);

/* Send one byte (blocks while the transmitter is full). */
void hal_uart_put(uint8_t byte);

/* 1 and the byte in *byte if one has arrived, else 0 at once; also acknowledges the receive
 * interrupt. Called from the UART's interrupt handler (uart_rx.c), which buffers the bytes. */
int hal_uart_read(uint8_t *byte);

/* MLPerf Tiny's energy mode (app/mlperf.c, TBN_MLPERF_ENERGY builds only): drive the board's
 * timestamp pin, which the energy monitor watches, high (1) or low (0); the first call makes
 * it an output. Each HAL names its pin. */
void hal_timestamp_pin(int high);

#endif /* TBN_HAL_H */
