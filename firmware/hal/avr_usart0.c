/* avr_usart0.c -- HAL for ATmega328P boards (Arduino Uno; simavr): USART0 at 115200 baud in
 * double-speed mode, as Arduino's core sets it (UBRR 16 at 16 MHz: 117,647 baud, 2.1% fast). */
#include <avr/io.h>
#include <stdint.h>

#include "hal.h"
#include "tbn_protocol.h"

void hal_init(void) {
    UCSR0A = _BV(U2X0);
    UBRR0 = (uint16_t)((TBN_CLOCK_HZ / 4u / TBN_UART_BAUD - 1u) / 2u);
    UCSR0C = _BV(UCSZ01) | _BV(UCSZ00); /* 8N1 */
    UCSR0B = _BV(RXEN0) | _BV(TXEN0) | _BV(RXCIE0);
}

void hal_uart_put(uint8_t byte) {
    while (!(UCSR0A & _BV(UDRE0))) {
    }
    UDR0 = byte;
}

int hal_uart_read(uint8_t *byte) {
    if (!(UCSR0A & _BV(RXC0))) return 0;
    *byte = UDR0;
    return 1;
}
