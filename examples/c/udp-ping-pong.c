/*
 * UDP echo server and ping-pong client on <demi/libos.h>.
 *
 *   udp-ping-pong --server IP PORT
 *   udp-ping-pong --client IP PORT [SIZE [ITERATIONS]]
 *
 * The server pops each datagram and pushes the very same array back to its
 * sender (no copy), until SIGINT or SIGTERM. The client sends ITERATIONS
 * datagrams of SIZE bytes (default 64 and 100000), one at a time, checks
 * every byte of every reply and prints the round-trip percentiles; any
 * lost or wrong reply makes it exit 1.
 */
#include "common.h"

/* A second without the reply is a lost datagram. */
static const struct timespec reply_timeout = {2, 0};
/* Servers look at the stop flag this often. */
static const struct timespec tick = {0, 100000000};

static int server(struct options *o) {
    int qd;
    unsigned long echoed = 0;
    demi_qtoken_t qt;
    demi_qresult_t qr;
    CHECK(demi_socket(&qd, AF_INET, SOCK_DGRAM, 0));
    CHECK(demi_bind(qd, (const struct sockaddr *)&o->addr, sizeof o->addr));
    printf("udp-ping-pong: listening on %s:%u\n", inet_ntoa(o->addr.sin_addr), ntohs(o->addr.sin_port));
    fflush(stdout);
    CHECK(demi_pop(&qt, qd));
    while (!stop) {
        demi_qtoken_t push;
        demi_sgarray_t sga;
        struct sockaddr_in from;
        int rc = demi_wait(&qr, qt, &tick);
        if (rc == ETIMEDOUT)
            continue;
        if (rc != 0)
            die("demi_wait(pop)", rc);
        if (qr.qr_opcode != DEMI_OPC_POP)
            die("pop failed", (int)qr.qr_ret);
        sga = qr.qr_value.sga;
        memcpy(&from, &sga.sga_addr, sizeof from); /* a packed member: copy, do not point */
        /*
         * The reply leaves on the next turn of the libOS's loop, in the
         * wait: as few calls as possible before it.
         */
        rc = demi_pushto(&push, qd, &sga, (const struct sockaddr *)&from, sizeof from);
        if (rc == 0) {
            CHECK(demi_wait(&qr, push, NULL));
            echoed += qr.qr_opcode == DEMI_OPC_PUSH;
        }
        CHECK(demi_sgafree(&sga));
        CHECK(demi_pop(&qt, qd));
    }
    printf("udp-ping-pong: echoed=%lu\n", echoed);
    CHECK(demi_close(qd));
    return 0;
}

static int client(struct options *o) {
    int qd;
    unsigned long i, bad = 0;
    struct sockaddr_in local;
    demi_qtoken_t push, pop;
    demi_qresult_t qr;
    demi_sgarray_t sga;
    uint64_t start, *rtt = malloc(o->iterations * sizeof *rtt);
    if (rtt == NULL)
        die("malloc", ENOMEM);
    CHECK(demi_socket(&qd, AF_INET, SOCK_DGRAM, 0));
    memset(&local, 0, sizeof local);
    local.sin_family = AF_INET; /* INADDR_ANY, port 0: demixdp picks */
    CHECK(demi_bind(qd, (const struct sockaddr *)&local, sizeof local));
    sga = demi_sgaalloc(o->size);
    if (sga.sga_numsegs != 1)
        die("demi_sgaalloc", ENOMEM);
    CHECK(demi_pop(&pop, qd)); /* a pop is always posted: a reply never waits for one */
    start = now_ns();
    for (i = 0; i < o->iterations; i++) {
        demi_sgarray_t got;
        uint64_t t0;
        int rc;
        fill(sga.sga_segs[0].sgaseg_buf, o->size, i);
        t0 = now_ns();
        /*
         * The same array every time: its previous push has completed. The
         * datagram leaves in the first turn of the wait for the reply; the
         * push's own completion is collected after it, off the round trip.
         */
        CHECK(demi_pushto(&push, qd, &sga, (const struct sockaddr *)&o->addr, sizeof o->addr));
        rc = demi_wait(&qr, pop, &reply_timeout);
        rtt[i] = now_ns() - t0;
        if (rc == ETIMEDOUT) {
            fprintf(stderr, "udp-ping-pong: no reply to datagram %lu\n", i);
            return 1;
        }
        if (rc != 0)
            die("demi_wait(pop)", rc);
        if (qr.qr_opcode != DEMI_OPC_POP)
            die("pop failed", (int)qr.qr_ret);
        got = qr.qr_value.sga;
        if (got.sga_numsegs != 1 || got.sga_segs[0].sgaseg_len != o->size ||
            mismatches(got.sga_segs[0].sgaseg_buf, o->size, i, 0) != 0 ||
            got.sga_addr.sin_addr.s_addr != o->addr.sin_addr.s_addr || got.sga_addr.sin_port != o->addr.sin_port)
            bad++;
        CHECK(demi_sgafree(&got));
        CHECK(demi_pop(&pop, qd));
        CHECK(demi_wait(&qr, push, NULL));
        if (qr.qr_opcode != DEMI_OPC_PUSH)
            die("push failed", (int)qr.qr_ret);
    }
    summary("udp-ping-pong", rtt, o->iterations, o->size, now_ns() - start, bad);
    CHECK(demi_sgafree(&sga));
    CHECK(demi_close(qd));
    free(rtt);
    return bad != 0;
}

int main(int argc, char **argv) {
    struct options o = parse(argc, argv, 64, 100000);
    init(argc, argv);
    if (o.server) {
        catch_signals();
        return server(&o);
    }
    return client(&o);
}
