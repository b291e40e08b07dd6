/* tbn_simavr.c -- run AVR firmware under simavr with its UART on a TCP port, the way the QEMU
 * boards run: what tbn.device.emulator starts for boards whose emulator is "tbn-simavr".
 *
 *   tbn-simavr -M atmega328p [-f HZ] [-stack-guard ADDR] -kernel FIRMWARE.elf -serial tcp:HOST:PORT[,options]
 *
 * It listens on HOST:PORT and waits for a client before the core starts (QEMU's wait=on: no
 * byte the firmware sends is lost), and for the next one, the core paused, whenever a client
 * goes (QEMU's server=on). It moves bytes both ways: the client's into USART0's
 * receive FIFO while simavr signals room (XON), the firmware's out to the client. simavr is
 * cycle-accurate, so the firmware's Timer1 counts exact cycles. While the core sleeps, time
 * follows the host clock and a byte from the client wakes it at once (poll on the socket), so
 * the firmware's link timeouts mean wall-clock time. With -stack-guard (the end of static RAM,
 * the linker's _end), a stack that grows into the statics stops the core, named: on 2 KB
 * of RAM that is the failure to catch. Runs until killed; exits 1 on a crash, a stack overflow
 * or a usage error. (Built by tbn.device.simavr; needs libsimavr-dev.)
 */
#define _GNU_SOURCE /* ppoll */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <simavr/avr_uart.h>
#include <simavr/sim_avr.h>
#include <simavr/sim_elf.h>
#include <simavr/sim_time.h>

static int g_listen = -1, g_client = -1;
static int g_room;               /* simavr's receive FIFO has room (XON) */
static uint8_t g_in[4096];       /* from the client, not yet in the FIFO */
static size_t g_in_head, g_in_len;
static avr_irq_t *g_uart_input;

static void die(const char *what) {
    fprintf(stderr, "tbn-simavr: %s\n", what);
    exit(1);
}

static void accept_client(void) {
    int one = 1;
    g_client = accept(g_listen, NULL, NULL);
    if (g_client < 0) die(strerror(errno));
    setsockopt(g_client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Read what the client has sent (waiting up to usec microseconds); when it has gone, wait for
 * the next. */
static void pump_client(uint32_t usec) {
    if (g_in_len == sizeof g_in) return;
    struct pollfd p = {.fd = g_client, .events = POLLIN};
    struct timespec wait = {.tv_sec = usec / 1000000u, .tv_nsec = (long)(usec % 1000000u) * 1000};
    if (ppoll(&p, 1, &wait, NULL) <= 0) return;
    size_t tail = (g_in_head + g_in_len) % sizeof g_in;
    size_t room = tail >= g_in_head ? sizeof g_in - tail : g_in_head - tail; /* contiguous */
    ssize_t n = recv(g_client, g_in + tail, room, 0);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) { /* the host is done */
        close(g_client);
        accept_client();
        return;
    }
    if (n > 0) g_in_len += (size_t)n;
}

static void feed_uart(void) {
    while (g_room && g_in_len) {
        uint8_t byte = g_in[g_in_head];
        g_in_head = (g_in_head + 1) % sizeof g_in;
        g_in_len--;
        avr_raise_irq(g_uart_input, byte); /* may signal XOFF, clearing g_room */
    }
}

static void on_output(struct avr_irq_t *irq, uint32_t value, void *param) {
    (void)irq, (void)param;
    uint8_t byte = (uint8_t)value;
    while (send(g_client, &byte, 1, MSG_NOSIGNAL) < 0) {
        if (errno != EINTR) return; /* no client to hear it: a serial line with nobody on it */
    }
}

static void on_xon(struct avr_irq_t *irq, uint32_t value, void *param) {
    (void)irq, (void)value, (void)param;
    g_room = 1;
}

static void on_xoff(struct avr_irq_t *irq, uint32_t value, void *param) {
    (void)irq, (void)value, (void)param;
    g_room = 0;
}

/* The core sleeps until its next timer event: wait that long on the host clock, or less when
 * the client sends something. What arrives is fed after the sleep, in main: simavr advances the
 * clock past the whole sleep when this returns, and bytes fed before that would be due in the
 * past, so the firmware could read them all in one burst, faster than the line delivers them
 * (overrunning a small receive ring, which no real UART would). */
static void sleep_on_socket(avr_t *avr, avr_cycle_count_t how_long) {
    pump_client(avr_pending_sleep_usec(avr, how_long));
}

static void listen_on(const char *spec) {
    /* tcp:HOST:PORT[,options]: the options (server=on, wait=on, nodelay=on) are what this does */
    char host[256];
    unsigned port;
    if (sscanf(spec, "tcp:%255[^:]:%u", host, &port) != 2 || port == 0 || port > 65535)
        die("-serial wants tcp:HOST:PORT");
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
    char service[16];
    snprintf(service, sizeof service, "%u", port);
    if (getaddrinfo(host, service, &hints, &ai) != 0) die("cannot resolve the -serial host");
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (s < 0 || bind(s, ai->ai_addr, ai->ai_addrlen) < 0 || listen(s, 1) < 0) die(strerror(errno));
    freeaddrinfo(ai);
    g_listen = s;
    accept_client();
}

int main(int argc, char **argv) {
    const char *mcu = NULL, *elf = NULL, *serial = NULL;
    unsigned long hz = 0, guard = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-M")) mcu = argv[i + 1];
        else if (!strcmp(argv[i], "-f")) hz = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "-stack-guard")) guard = strtoul(argv[i + 1], NULL, 0);
        else if (!strcmp(argv[i], "-kernel")) elf = argv[i + 1];
        else if (!strcmp(argv[i], "-serial")) serial = argv[i + 1];
        else die("usage: tbn-simavr -M MCU [-f HZ] [-stack-guard ADDR] -kernel FIRMWARE.elf -serial tcp:HOST:PORT");
    }
    if (!mcu || !elf || !serial)
        die("usage: tbn-simavr -M MCU [-f HZ] [-stack-guard ADDR] -kernel FIRMWARE.elf -serial tcp:HOST:PORT");

    elf_firmware_t fw;
    memset(&fw, 0, sizeof fw);
    if (elf_read_firmware(elf, &fw) != 0) die("cannot read the firmware ELF");
    avr_t *avr = avr_make_mcu_by_name(mcu);
    if (!avr) die("simavr knows no such MCU");
    avr_init(avr);
    avr->log = getenv("TBN_SIMAVR_LOG") ? atoi(getenv("TBN_SIMAVR_LOG")) : 1; /* errors */
    avr->frequency = hz ? hz : fw.frequency ? fw.frequency : 16000000u;
    avr_load_firmware(avr, &fw);
    avr->sleep = sleep_on_socket;

    uint32_t flags = 0; /* bytes go to the socket, not simavr's console */
    avr_ioctl(avr, AVR_IOCTL_UART_GET_FLAGS('0'), &flags);
    flags &= ~AVR_UART_FLAG_STDIO;
    avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
    g_uart_input = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT), on_output, NULL);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XON), on_xon, NULL);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XOFF), on_xoff, NULL);

    listen_on(serial);
    /* A frame's prologue writes SP one byte at a time (SPH, SREG, then SPL): for the two
     * instructions between, SP holds the new high byte and the old low one, up to 255 below
     * the truth when the frame crosses a 256-byte page. So SP counts as below the guard only
     * when it stays there GUARD_STEPS instructions. */
    enum { GUARD_STEPS = 3 };
    unsigned low_sp = 0xFFFFu, below = 0;
    for (unsigned long step = 0;; step++) {
        int state = avr_run(avr);
        unsigned sp = avr->data[R_SPL] | (unsigned)avr->data[R_SPH] << 8;
        below = sp < guard ? below + 1 : 0;
        if (below == GUARD_STEPS) {
            fprintf(stderr, "tbn-simavr: stack overflow: the stack pointer reached 0x%04x, below the end "
                    "of static RAM at 0x%04lx (PC 0x%04x)\n", sp, guard, avr->pc);
            return 1;
        }
        if (sp < low_sp && !below) {
            low_sp = sp;
            if (avr->log >= 3) fprintf(stderr, "tbn-simavr: stack pointer down to 0x%04x (PC 0x%04x)\n", sp, avr->pc);
        }
        if (state == cpu_Done) return 0;
        if (state == cpu_Crashed) die("the firmware crashed");
        if ((step & 1023u) == 0) pump_client(0u); /* a running core: look at the socket now and then */
        feed_uart();
    }
}
