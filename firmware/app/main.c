/* main.c -- the tbn device app: answer framed requests on the board's UART forever. */
#include "commands.h"
#include "cost.h"
#include "hal.h"
#include "uart_rx.h"

int main(void) {
    hal_init();
    cost_clock_init();
    uart_rx_init();
    commands_init();
    for (;;) commands_serve_one();
}
