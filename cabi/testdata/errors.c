/*
 * Every call of the C ABI with its documented errors, run on the veth lab
 * by TestCErrors (lab_test.go), in namespace A with the interface in
 * LINUX_INTERFACE_NAME.
 *
 *   errors GOOD.yaml BAD.yaml PEER_IP LISTEN_PORT CLOSED_PORT
 *
 * GOOD.yaml is a valid Demikernel configuration, BAD.yaml a malformed one;
 * the kernel in namespace B listens on PEER_IP:LISTEN_PORT (it checks what
 * arrives) and has nothing on CLOSED_PORT. Prints one line per failed
 * check and "errors: N checks, M failed"; exits 1 if any failed.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <demi/demixdp.h>
#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/wait.h>

static int checks, failed;

static void check(int line, const char *what, long got, long want) {
    checks++;
    if (got != want) {
        failed++;
        printf("FAIL line %d: %s = %ld (%s), want %ld (%s)\n", line, what, got, strerror((int)got), want,
               strerror((int)want));
    }
}

/* EQ(call, want): the call returns want. */
#define EQ(call, want) check(__LINE__, #call, (long)(call), (long)(want))
#define TRUE(cond) check(__LINE__, #cond, !!(cond), 1)

static const struct timespec poll_once = {0, 0};
static const struct timespec one_ms = {0, 1000000};
static const struct timespec five_s = {5, 0};

static struct sockaddr_in sin4(const char *ip, int port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    if (ip != NULL)
        inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

static int is_zero_sga(const demi_sgarray_t *s) {
    static const demi_sgarray_t zero;
    return memcmp(s, &zero, sizeof zero) == 0;
}

static void *other_thread(void *arg) {
    int qd;
    struct demi_args args;
    (void)arg;
    memset(&args, 0, sizeof args);
    /* The libOS belongs to the thread that started it. */
    EQ(demi_socket(&qd, AF_INET, SOCK_DGRAM, 0), ENOSYS);
    EQ(demi_init(&args), EEXIST);
    return NULL;
}

/* A UDP queue bound to INADDR_ANY:0. */
static int udp_queue(void) {
    int qd = -1;
    struct sockaddr_in any = sin4(NULL, 0);
    EQ(demi_socket(&qd, AF_INET, SOCK_DGRAM, 0), 0);
    EQ(demi_bind(qd, (struct sockaddr *)&any, sizeof any), 0);
    return qd;
}

int main(int argc, char **argv) {
    struct demi_args args;
    demi_qresult_t qr, qrs[4];
    demi_qtoken_t qt, qt2, qts[2];
    demi_sgarray_t sga, copy;
    demixdp_stats_t st;
    int qd, uqd, tqd, lqd, n, off, one = 1, val;
    socklen_t len;
    struct linger lg;
    struct sockaddr_in peer, closed, got, any = sin4(NULL, 0);
    pthread_t th;
    struct timespec bad_ts = {0, 2000000000L};

    if (argc != 6) {
        fprintf(stderr, "usage: errors GOOD.yaml BAD.yaml PEER_IP LISTEN_PORT CLOSED_PORT\n");
        return 2;
    }
    peer = sin4(argv[3], atoi(argv[4]));
    closed = sin4(argv[3], atoi(argv[5]));
    memset(&args, 0, sizeof args);
    args.argc = argc;
    args.argv = argv;

    /* Before demi_init: ENOSYS everywhere, the zero array from sgaalloc. */
    EQ(demi_socket(&qd, AF_INET, SOCK_DGRAM, 0), ENOSYS);
    EQ(demi_wait(&qr, 1, &poll_once), ENOSYS);
    EQ(demi_close(0), ENOSYS);
    EQ(demixdp_get_stats(&st), ENOSYS);
    sga = demi_sgaalloc(64);
    TRUE(is_zero_sga(&sga));
    EQ(demi_sgafree(&sga), ENOSYS);

    /* A configuration that cannot be read or parsed is an error, not an abort. */
    setenv("CONFIG_PATH", "/nonexistent/demixdp/config.yaml", 1);
    EQ(demi_init(&args), ENOENT);
    setenv("CONFIG_PATH", argv[2], 1);
    EQ(demi_init(&args), EINVAL);
    setenv("CONFIG_PATH", argv[1], 1);
    setenv("LINUX_INTERFACE_NAME", "dx-no-such-if", 1); /* the environment overrides the file */
    EQ(demi_init(&args), ENODEV);
    unsetenv("LINUX_INTERFACE_NAME");
    setenv("MTU", "9000", 1);
    EQ(demi_init(&args), EINVAL);
    unsetenv("MTU");
    EQ(demi_init(&args), 0);
    EQ(demi_init(&args), EEXIST);
    EQ(demi_init(NULL), EEXIST);
    pthread_create(&th, NULL, other_thread, NULL);
    pthread_join(th, NULL);

    /* demi_socket */
    EQ(demi_socket(NULL, AF_INET, SOCK_DGRAM, 0), EINVAL);
    EQ(demi_socket(&qd, AF_INET6, SOCK_DGRAM, 0), ENOTSUP);
    EQ(demi_socket(&qd, AF_INET, SOCK_RAW, 0), ENOTSUP);
    EQ(demi_socket(&qd, AF_INET, SOCK_DGRAM, IPPROTO_TCP), ENOTSUP);

    /* demi_bind: INADDR_ANY and port 0 work */
    EQ(demi_socket(&uqd, AF_INET, SOCK_DGRAM, 0), 0);
    EQ(demi_bind(uqd, NULL, sizeof any), EINVAL);
    EQ(demi_bind(uqd, (struct sockaddr *)&any, 8), EINVAL);
    EQ(demi_bind(uqd, (struct sockaddr *)&any, sizeof any + 1), EINVAL);
    any.sin_family = AF_INET6;
    EQ(demi_bind(uqd, (struct sockaddr *)&any, sizeof any), EAFNOSUPPORT);
    any.sin_family = AF_INET;
    EQ(demi_bind(4242, (struct sockaddr *)&any, sizeof any), EBADF);
    EQ(demi_bind(uqd, (struct sockaddr *)&any, sizeof any), 0);
    EQ(demi_bind(uqd, (struct sockaddr *)&any, sizeof any), EINVAL); /* already bound */

    /* demi_sgaalloc / demi_sgafree */
    sga = demi_sgaalloc(0);
    TRUE(is_zero_sga(&sga));
    sga = demi_sgaalloc(65536);
    TRUE(is_zero_sga(&sga));
    EQ(demi_sgafree(NULL), EINVAL);
    EQ(demi_sgafree(&sga), EINVAL); /* the zero array */
    sga = demi_sgaalloc(65535);
    EQ(sga.sga_numsegs, 1);
    EQ(sga.sga_segs[0].sgaseg_len, 65535);
    TRUE(sga.sga_segs[0].sgaseg_buf != NULL && sga.sga_buf != NULL);
    if (sga.sga_segs[0].sgaseg_buf != NULL)
        memset(sga.sga_segs[0].sgaseg_buf, 0x5a, 65535); /* all of it is writable */
    copy = sga;
    EQ(demi_sgafree(&sga), 0);
    EQ(demi_sgafree(&copy), EINVAL); /* double free */
    sga = demi_sgaalloc(1);
    EQ(sga.sga_numsegs, 1);
    EQ(sga.sga_segs[0].sgaseg_len, 1);
    copy = sga;
    copy.sga_buf = (void *)((uintptr_t)copy.sga_buf + 1); /* not the libOS's */
    EQ(demi_sgafree(&copy), EINVAL);
    EQ(demixdp_get_stats(NULL), EINVAL);
    EQ(demixdp_get_stats(&st), 0);
    EQ(st.sgas_live, 1);

    /* demi_push / demi_pushto */
    EQ(demi_push(NULL, uqd, &sga), EINVAL);
    EQ(demi_push(&qt, uqd, NULL), EINVAL);
    EQ(demi_push(&qt, 4242, &sga), EBADF);
    EQ(demi_push(&qt, uqd, &sga), EDESTADDRREQ); /* not connected */
    EQ(demi_pushto(&qt, uqd, &sga, NULL, sizeof peer), EINVAL);
    EQ(demi_pushto(&qt, uqd, &sga, (struct sockaddr *)&peer, 4), EINVAL);
    copy = sga;
    copy.sga_segs[0].sgaseg_len = 0;
    EQ(demi_pushto(&qt, uqd, &copy, (struct sockaddr *)&peer, sizeof peer), EINVAL); /* zero-length segment */
    copy = sga;
    copy.sga_numsegs = 2;
    EQ(demi_pushto(&qt, uqd, &copy, (struct sockaddr *)&peer, sizeof peer), EINVAL);
    copy = sga;
    copy.sga_segs[0].sgaseg_len = 100000; /* beyond its frame */
    EQ(demi_pushto(&qt, uqd, &copy, (struct sockaddr *)&peer, sizeof peer), EINVAL);
    copy = sga;
    copy.sga_segs[0].sgaseg_buf = &val; /* not its memory */
    EQ(demi_pushto(&qt, uqd, &copy, (struct sockaddr *)&peer, sizeof peer), EINVAL);
    copy = demi_sgaalloc(0);
    EQ(demi_pushto(&qt, uqd, &copy, (struct sockaddr *)&peer, sizeof peer), EINVAL); /* the zero array */
    EQ(demi_sgafree(&sga), 0);
    EQ(demi_pushto(&qt, uqd, &sga, (struct sockaddr *)&peer, sizeof peer), EINVAL); /* freed */
    sga = demi_sgaalloc(3000); /* beyond a frame: UDP cannot send it */
    EQ(demi_pushto(&qt, uqd, &sga, (struct sockaddr *)&peer, sizeof peer), EMSGSIZE);
    EQ(demi_sgafree(&sga), 0);

    /* demi_pop and demi_wait: timeouts leave the token valid; close fails it */
    EQ(demi_pop(NULL, uqd), EINVAL);
    EQ(demi_pop(&qt, 4242), EBADF);
    EQ(demi_pop(&qt, uqd), 0);
    EQ(demi_wait(NULL, qt, &poll_once), EINVAL);
    EQ(demi_wait(&qr, qt, &bad_ts), EINVAL);
    EQ(demi_wait(&qr, qt, &poll_once), ETIMEDOUT);
    EQ(demi_wait(&qr, qt, &one_ms), ETIMEDOUT);
    EQ(demi_wait(&qr, 0x123456789, &poll_once), EINVAL);
    EQ(demi_close(uqd), 0);
    EQ(demi_close(uqd), EBADF);
    EQ(demi_wait(&qr, qt, NULL), 0);
    EQ(qr.qr_opcode, DEMI_OPC_FAILED);
    EQ(qr.qr_ret, ECANCELED);
    EQ(qr.qr_qt, qt);
    EQ(qr.qr_qd, uqd);
    EQ(demi_wait(&qr, qt, NULL), EINVAL); /* consumed */

    /* demi_wait_any: the lowest completed index; only it is consumed */
    uqd = udp_queue();
    qd = udp_queue();
    EQ(demi_connect(&qt, uqd, (struct sockaddr *)&peer, sizeof peer), 0); /* UDP: completes at once */
    EQ(demi_connect(&qt2, qd, (struct sockaddr *)&peer, sizeof peer), 0);
    qts[0] = qt;
    qts[1] = qt2;
    EQ(demi_wait_any(NULL, &off, qts, 2, &poll_once), EINVAL);
    EQ(demi_wait_any(&qr, NULL, qts, 2, &poll_once), EINVAL);
    EQ(demi_wait_any(&qr, &off, NULL, 2, &poll_once), EINVAL);
    EQ(demi_wait_any(&qr, &off, qts, 0, &poll_once), EINVAL);
    EQ(demi_wait_any(&qr, &off, qts, 2, &poll_once), 0);
    EQ(off, 0);
    EQ(qr.qr_opcode, DEMI_OPC_CONNECT);
    EQ(qr.qr_qt, qt);
    EQ(demi_wait_any(&qr, &off, qts, 2, &poll_once), EINVAL); /* qts[0] is consumed */
    EQ(demi_pop(&qts[0], uqd), 0);
    EQ(demi_wait_any(&qr, &off, qts, 2, &poll_once), 0);
    EQ(off, 1);
    EQ(qr.qr_qt, qt2);
    EQ(qr.qr_qd, qd);
    EQ(demi_wait_any(&qr, &off, qts, 1, &one_ms), ETIMEDOUT);

    /* demi_wait_next_n: whatever completed, oldest first */
    EQ(demi_wait_next_n(NULL, 4, &n, &poll_once), EINVAL);
    EQ(demi_wait_next_n(qrs, 0, &n, &poll_once), EINVAL);
    EQ(demi_wait_next_n(qrs, 4, NULL, &poll_once), EINVAL);
    n = 99;
    EQ(demi_wait_next_n(qrs, 4, &n, &poll_once), ETIMEDOUT);
    EQ(n, 0);
    EQ(demi_close(qd), 0);
    EQ(demi_close(uqd), 0); /* fails the pending pop qts[0] */
    uqd = udp_queue();
    qd = udp_queue();
    EQ(demi_connect(&qt, qd, (struct sockaddr *)&peer, sizeof peer), 0);
    EQ(demi_connect(&qt2, uqd, (struct sockaddr *)&peer, sizeof peer), 0);
    EQ(demi_wait_next_n(qrs, 4, &n, NULL), 0);
    EQ(n, 3);
    EQ(qrs[0].qr_opcode, DEMI_OPC_FAILED);
    EQ(qrs[0].qr_qt, qts[0]);
    EQ(qrs[0].qr_ret, ECANCELED);
    EQ(qrs[1].qr_qt, qt);
    EQ(qrs[1].qr_opcode, DEMI_OPC_CONNECT);
    EQ(qrs[2].qr_qt, qt2);
    EQ(demi_wait(&qr, qt2, &poll_once), EINVAL); /* consumed by wait_next_n */
    EQ(demi_close(qd), 0);
    EQ(demi_close(uqd), 0);

    /* TCP: listen, accept, connect */
    EQ(demi_socket(&lqd, AF_INET, SOCK_STREAM, 0), 0);
    EQ(demi_listen(lqd, 16), EDESTADDRREQ); /* not bound */
    EQ(demi_accept(&qt, lqd), EINVAL);       /* not listening */
    EQ(demi_bind(lqd, (struct sockaddr *)&any, sizeof any), 0);
    EQ(demi_listen(lqd, 0), EINVAL);
    EQ(demi_listen(4242, 16), EBADF);
    EQ(demi_listen(lqd, 100000), 0); /* truncated, as listen(2) does */
    EQ(demi_accept(NULL, lqd), EINVAL);
    EQ(demi_accept(&qt, 4242), EBADF);
    EQ(demi_accept(&qt, lqd), 0);
    EQ(demi_wait(&qr, qt, &poll_once), ETIMEDOUT);
    EQ(demi_pop(&qt2, lqd), EINVAL); /* a listener has no data */
    EQ(demi_close(lqd), 0);
    EQ(demi_wait(&qr, qt, NULL), 0);
    EQ(qr.qr_opcode, DEMI_OPC_FAILED);
    EQ(qr.qr_ret, ECANCELED);
    uqd = udp_queue();
    EQ(demi_listen(uqd, 16), EOPNOTSUPP);
    EQ(demi_close(uqd), 0);

    /* A refused connection fails its operation with ECONNREFUSED */
    EQ(demi_socket(&tqd, AF_INET, SOCK_STREAM, 0), 0);
    EQ(demi_connect(NULL, tqd, (struct sockaddr *)&closed, sizeof closed), EINVAL);
    EQ(demi_connect(&qt, tqd, NULL, sizeof closed), EINVAL);
    EQ(demi_connect(&qt, tqd, (struct sockaddr *)&closed, 12), EINVAL);
    EQ(demi_connect(&qt, 4242, (struct sockaddr *)&closed, sizeof closed), EBADF);
    EQ(demi_connect(&qt, tqd, (struct sockaddr *)&closed, sizeof closed), 0);
    EQ(demi_wait(&qr, qt, &five_s), 0);
    EQ(qr.qr_opcode, DEMI_OPC_FAILED);
    EQ(qr.qr_ret, ECONNREFUSED);
    EQ(demi_close(tqd), 0);

    /* Socket options */
    EQ(demi_socket(&tqd, AF_INET, SOCK_STREAM, 0), 0);
    len = sizeof val;
    EQ(demi_getsockopt(tqd, IPPROTO_TCP, TCP_NODELAY, &val, &len), 0);
    EQ(val, 0);
    EQ(demi_setsockopt(tqd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
    val = 7;
    EQ(demi_getsockopt(tqd, IPPROTO_TCP, TCP_NODELAY, &val, &len), 0);
    EQ(val, 1);
    EQ(len, sizeof val);
    EQ(demi_setsockopt(tqd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one), 0);
    EQ(demi_getsockopt(tqd, SOL_SOCKET, SO_KEEPALIVE, &val, &len), 0);
    EQ(val, 1);
    len = sizeof lg;
    EQ(demi_getsockopt(tqd, SOL_SOCKET, SO_LINGER, &lg, &len), 0);
    EQ(lg.l_onoff, 0);
    lg.l_onoff = 1;
    lg.l_linger = 0;
    EQ(demi_setsockopt(tqd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    lg.l_onoff = 9;
    lg.l_linger = 9;
    EQ(demi_getsockopt(tqd, SOL_SOCKET, SO_LINGER, &lg, &len), 0);
    EQ(lg.l_onoff, 1);
    EQ(lg.l_linger, 0);
    EQ(demi_setsockopt(tqd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg - 1), EINVAL);
    EQ(demi_setsockopt(tqd, IPPROTO_TCP, TCP_NODELAY, NULL, sizeof one), EINVAL);
    EQ(demi_setsockopt(tqd, IPPROTO_TCP, TCP_NODELAY, &one, 2), EINVAL);
    EQ(demi_setsockopt(tqd, SOL_SOCKET, SO_RCVBUF, &one, sizeof one), ENOPROTOOPT);
    EQ(demi_setsockopt(tqd, IPPROTO_TCP, TCP_MAXSEG, &one, sizeof one), ENOPROTOOPT);
    len = sizeof val;
    EQ(demi_getsockopt(tqd, SOL_SOCKET, SO_RCVBUF, &val, &len), ENOPROTOOPT);
    EQ(demi_getsockopt(tqd, IPPROTO_TCP, TCP_NODELAY, &val, NULL), EINVAL);
    len = 2;
    EQ(demi_getsockopt(tqd, IPPROTO_TCP, TCP_NODELAY, &val, &len), EINVAL);
    EQ(demi_setsockopt(4242, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), EBADF);
    uqd = udp_queue();
    EQ(demi_setsockopt(uqd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), EINVAL); /* not TCP */
    EQ(demi_close(uqd), 0);

    /* demi_getpeername, and a push before the connection is up */
    len = sizeof got;
    EQ(demi_getpeername(tqd, (struct sockaddr *)&got, &len), ENOTCONN);
    EQ(demi_getpeername(tqd, NULL, &len), EINVAL);
    EQ(demi_getpeername(tqd, (struct sockaddr *)&got, NULL), EINVAL);
    EQ(demi_getpeername(4242, (struct sockaddr *)&got, &len), EBADF);
    sga = demi_sgaalloc(100);
    EQ(demi_push(&qt, tqd, &sga), ENOTCONN);
    EQ(demi_sgafree(&sga), 0);
    EQ(demi_close(tqd), 0);

    /*
     * Two connections to the peer. The first sends one 65,535-byte array
     * (larger than a frame: copied once) whose bytes the peer checks, then
     * closes gracefully; the second closes with SO_LINGER 0, a reset.
     */
    EQ(demi_socket(&tqd, AF_INET, SOCK_STREAM, 0), 0);
    EQ(demi_connect(&qt, tqd, (struct sockaddr *)&peer, sizeof peer), 0);
    EQ(demi_connect(&qt2, tqd, (struct sockaddr *)&peer, sizeof peer), EINPROGRESS);
    EQ(demi_wait(&qr, qt, &five_s), 0);
    EQ(qr.qr_opcode, DEMI_OPC_CONNECT);
    EQ(demi_connect(&qt2, tqd, (struct sockaddr *)&peer, sizeof peer), EISCONN);
    len = sizeof got;
    memset(&got, 0, sizeof got);
    EQ(demi_getpeername(tqd, (struct sockaddr *)&got, &len), 0);
    EQ(len, sizeof got);
    EQ(got.sin_family, AF_INET);
    EQ(got.sin_port, peer.sin_port);
    EQ(got.sin_addr.s_addr, peer.sin_addr.s_addr);
    sga = demi_sgaalloc(65535);
    if (sga.sga_segs[0].sgaseg_buf != NULL) {
        unsigned char *p = sga.sga_segs[0].sgaseg_buf;
        size_t k;
        for (k = 0; k < 65535; k++)
            p[k] = (unsigned char)(k * 7 + (k >> 8));
    }
    EQ(demi_pushto(&qt, tqd, &sga, (struct sockaddr *)&peer, sizeof peer), EISCONN);
    EQ(demi_push(&qt, tqd, &sga), 0);
    EQ(demi_sgafree(&sga), 0); /* free-protection: the push goes on */
    EQ(demi_wait(&qr, qt, &five_s), 0);
    EQ(qr.qr_opcode, DEMI_OPC_PUSH);
    EQ(qr.qr_ret, 0);
    EQ(demixdp_get_stats(&st), 0);
    EQ(st.push_copies, 1);
    EQ(st.push_copy_bytes, 65535);
    EQ(st.sgas_live, 0);
    /* The peer answers "ok" once it has checked every byte. */
    EQ(demi_pop(&qt, tqd), 0);
    EQ(demi_wait(&qr, qt, &five_s), 0);
    EQ(qr.qr_opcode, DEMI_OPC_POP);
    EQ(qr.qr_value.sga.sga_numsegs, 1);
    EQ(qr.qr_value.sga.sga_segs[0].sgaseg_len, 2);
    TRUE(qr.qr_value.sga.sga_segs[0].sgaseg_buf != NULL &&
         memcmp(qr.qr_value.sga.sga_segs[0].sgaseg_buf, "ok", 2) == 0);
    EQ(qr.qr_value.sga.sga_addr.sin_port, peer.sin_port);
    sga = qr.qr_value.sga;
    EQ(demi_sgafree(&sga), 0);
    /* Then it closes: a pop of length 0. */
    EQ(demi_pop(&qt, tqd), 0);
    EQ(demi_wait(&qr, qt, &five_s), 0);
    EQ(qr.qr_opcode, DEMI_OPC_POP);
    EQ(qr.qr_value.sga.sga_numsegs, 1);
    EQ(qr.qr_value.sga.sga_segs[0].sgaseg_len, 0);
    sga = qr.qr_value.sga;
    EQ(demi_push(&qt, tqd, &sga), EINVAL); /* zero-length */
    EQ(demi_sgafree(&sga), 0);
    EQ(demi_close(tqd), 0);

    EQ(demi_socket(&tqd, AF_INET, SOCK_STREAM, 0), 0);
    EQ(demi_connect(&qt, tqd, (struct sockaddr *)&peer, sizeof peer), 0);
    EQ(demi_wait(&qr, qt, &five_s), 0);
    EQ(qr.qr_opcode, DEMI_OPC_CONNECT);
    lg.l_onoff = 1;
    lg.l_linger = 0;
    EQ(demi_setsockopt(tqd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    EQ(demi_close(tqd), 0); /* the reset leaves at exit, when the libOS closes */

    printf("errors: %d checks, %d failed\n", checks, failed);
    return failed != 0;
}
