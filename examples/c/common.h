/*
 * Helpers shared by the C examples: command line, addresses, clock,
 * latency summary, the stop flag servers poll. Plain C99 + POSIX on top
 * of the demi headers.
 */
#ifndef EXAMPLES_COMMON_H
#define EXAMPLES_COMMON_H

#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/wait.h>

/* Exits with status 1 after printing what failed and its errno. */
static void die(const char *what, int err) {
    fprintf(stderr, "%s: %s (%d)\n", what, strerror(err), err);
    exit(1);
}

/* Calls demi_* function call and dies on a non-zero return. */
#define CHECK(call)                    \
    do {                               \
        int rc_ = (call);              \
        if (rc_ != 0)                  \
            die(#call, rc_);           \
    } while (0)

struct options {
    int server;                 /* --server, else --client */
    struct sockaddr_in addr;    /* IP PORT */
    size_t size;                /* client: bytes per message */
    unsigned long iterations;   /* client: round trips */
};

static void usage(const char *prog) {
    fprintf(stderr, "usage: %s --server IP PORT\n       %s --client IP PORT [SIZE [ITERATIONS]]\n", prog, prog);
    exit(2);
}

/* Parses the command line; size and iterations default as given. */
static struct options parse(int argc, char **argv, size_t size, unsigned long iterations) {
    struct options o;
    char *end;
    long port;
    memset(&o, 0, sizeof o);
    o.size = size;
    o.iterations = iterations;
    if (argc < 4)
        usage(argv[0]);
    if (strcmp(argv[1], "--server") == 0)
        o.server = 1;
    else if (strcmp(argv[1], "--client") != 0)
        usage(argv[0]);
    if ((o.server && argc != 4) || argc > 6)
        usage(argv[0]);
    o.addr.sin_family = AF_INET;
    if (inet_pton(AF_INET, argv[2], &o.addr.sin_addr) != 1)
        usage(argv[0]);
    port = strtol(argv[3], &end, 10);
    if (*end != '\0' || port < 0 || port > 65535)
        usage(argv[0]);
    o.addr.sin_port = htons((uint16_t)port);
    if (argc >= 5) {
        unsigned long v = strtoul(argv[4], &end, 10);
        if (*end != '\0' || v == 0 || v > 65535)
            usage(argv[0]);
        o.size = v;
    }
    if (argc == 6) {
        o.iterations = strtoul(argv[5], &end, 10);
        if (*end != '\0' || o.iterations == 0)
            usage(argv[0]);
    }
    return o;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The byte at offset k of message i: every message differs. */
static uint8_t pattern(unsigned long i, size_t k) { return (uint8_t)(i * 131u + k * 7u + (k >> 8)); }

static void fill(uint8_t *p, size_t n, unsigned long i) {
    size_t k;
    for (k = 0; k < n; k++)
        p[k] = pattern(i, k);
}

/* Number of bytes of p (at offset off of message i) that are wrong. */
static size_t mismatches(const uint8_t *p, size_t n, unsigned long i, size_t off) {
    size_t k, bad = 0;
    for (k = 0; k < n; k++)
        bad += p[k] != pattern(i, off + k);
    return bad;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Prints the client's summary line from n round-trip times. */
static void summary(const char *name, uint64_t *rtt, unsigned long n, size_t size, uint64_t elapsed, unsigned long bad) {
    qsort(rtt, n, sizeof rtt[0], cmp_u64);
    printf("%s: n=%lu size=%zu p50_us=%.2f p99_us=%.2f p999_us=%.2f rate=%.0f mbytes=%.1f bad=%lu\n", name, n, size,
           rtt[n / 2] / 1e3, rtt[n * 99 / 100] / 1e3, rtt[n * 999 / 1000] / 1e3, n / (elapsed / 1e9),
           2.0 * n * size / 1e6, bad);
}

/* Set by SIGINT and SIGTERM; servers check it between waits. */
static volatile sig_atomic_t stop;

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static void catch_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static void init(int argc, char **argv) {
    struct demi_args args;
    memset(&args, 0, sizeof args);
    args.argc = argc;
    args.argv = argv;
    CHECK(demi_init(&args));
}

#endif
