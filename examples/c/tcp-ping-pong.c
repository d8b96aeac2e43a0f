/*
 * TCP echo server and ping-pong client on <demi/libos.h>.
 *
 *   tcp-ping-pong --server IP PORT
 *   tcp-ping-pong --client IP PORT [SIZE [ITERATIONS]]
 *
 * The server accepts any number of connections and echoes each popped
 * array back on its connection (no copy), driven by demi_wait_next_n; it
 * closes a connection when its client does, and stops on SIGINT or
 * SIGTERM. The client connects, then ITERATIONS times pushes a message of
 * SIZE bytes (default 64 and 10000; up to 65535, an array larger than a
 * frame) and pops until the whole echo is back, checking every byte; it
 * prints the round-trip percentiles and exits 1 on any mismatch.
 */
#include "common.h"

#define MAX_QD 4096

static const struct timespec tick = {0, 100000000};
static const struct timespec reply_timeout = {10, 0};

/* A connection's echo that the send buffer could not take yet. */
static demi_sgarray_t held[MAX_QD];
static int holding[MAX_QD];

/*
 * Echoed arrays, released after the next wait: the echoes leave on the
 * next turn of the libOS's loop, so as few calls as possible come before
 * it (free-protection would allow releasing them at once).
 */
static demi_sgarray_t pushed[64];
static int npushed;

static void release_pushed(void) {
    while (npushed > 0)
        demi_sgafree(&pushed[--npushed]);
}

static void close_conn(int qd) {
    if (holding[qd]) {
        demi_sgafree(&held[qd]);
        holding[qd] = 0;
    }
    demi_close(qd);
}

/* Echoes sga on qd; on EAGAIN keeps it for the next push completion. */
static void echo(int qd, demi_sgarray_t *sga) {
    demi_qtoken_t qt;
    int rc = demi_push(&qt, qd, sga);
    if (rc == EAGAIN) {
        held[qd] = *sga;
        holding[qd] = 1;
        return; /* no new pop until it goes */
    }
    if (rc != 0) {
        demi_sgafree(sga);
        close_conn(qd);
        return;
    }
    CHECK(demi_pop(&qt, qd));
    if (npushed == (int)(sizeof pushed / sizeof pushed[0]))
        release_pushed();
    pushed[npushed++] = *sga;
}

static int server(struct options *o) {
    int lqd, i, n;
    unsigned long conns = 0, bytes = 0;
    demi_qtoken_t qt;
    static demi_qresult_t qrs[64];
    CHECK(demi_socket(&lqd, AF_INET, SOCK_STREAM, 0));
    CHECK(demi_bind(lqd, (const struct sockaddr *)&o->addr, sizeof o->addr));
    CHECK(demi_listen(lqd, 128));
    printf("tcp-ping-pong: listening on %s:%u\n", inet_ntoa(o->addr.sin_addr), ntohs(o->addr.sin_port));
    fflush(stdout);
    CHECK(demi_accept(&qt, lqd));
    while (!stop) {
        int rc = demi_wait_next_n(qrs, 64, &n, &tick);
        release_pushed();
        if (rc == ETIMEDOUT)
            continue;
        if (rc != 0)
            die("demi_wait_next_n", rc);
        for (i = 0; i < n; i++) {
            demi_qresult_t *qr = &qrs[i];
            int qd = qr->qr_qd;
            demi_sgarray_t sga;
            switch (qr->qr_opcode) {
            case DEMI_OPC_ACCEPT: {
                int cqd = qr->qr_value.ares.qd;
                conns++;
                if (cqd >= MAX_QD) {
                    demi_close(cqd);
                } else {
                    int one = 1;
                    CHECK(demi_setsockopt(cqd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one));
                    CHECK(demi_pop(&qt, cqd));
                }
                CHECK(demi_accept(&qt, lqd));
                break;
            }
            case DEMI_OPC_POP:
                sga = qr->qr_value.sga;
                if (sga.sga_segs[0].sgaseg_len == 0) { /* the client closed */
                    demi_sgafree(&sga);
                    close_conn(qd);
                    break;
                }
                bytes += sga.sga_segs[0].sgaseg_len;
                echo(qd, &sga);
                break;
            case DEMI_OPC_PUSH:
                if (qd < MAX_QD && holding[qd]) {
                    holding[qd] = 0;
                    sga = held[qd];
                    echo(qd, &sga);
                }
                break;
            case DEMI_OPC_FAILED:
                /* A reset connection fails its pop; a closed one its pushes. */
                if (qd != lqd && qr->qr_ret != ECANCELED)
                    close_conn(qd);
                break;
            default:
                break;
            }
        }
    }
    printf("tcp-ping-pong: connections=%lu echoed_bytes=%lu\n", conns, bytes);
    CHECK(demi_close(lqd));
    return 0;
}

static int client(struct options *o) {
    int qd;
    unsigned long i, bad = 0;
    demi_qtoken_t qt, push;
    demi_qresult_t qr;
    demi_sgarray_t sga;
    int one = 1;
    uint64_t start, *rtt = malloc(o->iterations * sizeof *rtt);
    if (rtt == NULL)
        die("malloc", ENOMEM);
    CHECK(demi_socket(&qd, AF_INET, SOCK_STREAM, 0));
    CHECK(demi_setsockopt(qd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one));
    CHECK(demi_connect(&qt, qd, (const struct sockaddr *)&o->addr, sizeof o->addr));
    CHECK(demi_wait(&qr, qt, &reply_timeout));
    if (qr.qr_opcode != DEMI_OPC_CONNECT)
        die("connect failed", (int)qr.qr_ret);
    CHECK(demi_pop(&qt, qd)); /* a pop is always posted */
    start = now_ns();
    for (i = 0; i < o->iterations; i++) {
        size_t got = 0;
        uint64_t t0;
        /* A new array per message, released once the echo is back. */
        sga = demi_sgaalloc(o->size);
        if (sga.sga_numsegs != 1)
            die("demi_sgaalloc", ENOMEM);
        fill(sga.sga_segs[0].sgaseg_buf, o->size, i);
        t0 = now_ns();
        CHECK(demi_push(&push, qd, &sga));
        while (got < o->size) {
            demi_sgarray_t r;
            size_t len;
            int rc = demi_wait(&qr, qt, &reply_timeout);
            if (rc != 0)
                die("demi_wait(pop)", rc);
            if (qr.qr_opcode != DEMI_OPC_POP)
                die("pop failed", (int)qr.qr_ret);
            r = qr.qr_value.sga;
            len = r.sga_segs[0].sgaseg_len;
            if (len == 0) {
                fprintf(stderr, "tcp-ping-pong: the server closed after %lu messages\n", i);
                return 1;
            }
            if (got + len > o->size || mismatches(r.sga_segs[0].sgaseg_buf, len, i, got) != 0)
                bad++;
            got += len;
            if (got >= o->size)
                rtt[i] = now_ns() - t0;
            CHECK(demi_sgafree(&r));
            CHECK(demi_pop(&qt, qd));
        }
        CHECK(demi_sgafree(&sga));
        CHECK(demi_wait(&qr, push, &reply_timeout));
        if (qr.qr_opcode != DEMI_OPC_PUSH)
            die("push failed", (int)qr.qr_ret);
    }
    summary("tcp-ping-pong", rtt, o->iterations, o->size, now_ns() - start, bad);
    CHECK(demi_close(qd));
    free(rtt);
    return bad != 0;
}

int main(int argc, char **argv) {
    struct options o = parse(argc, argv, 64, 10000);
    init(argc, argv);
    if (o.server) {
        catch_signals();
        return server(&o);
    }
    return client(&o);
}
