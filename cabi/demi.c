/*
 * The demi_* functions of libdemikernel.so, with the prototypes of the
 * headers in include/demi. Each checks that the calling thread is the one that started
 * the libOS (as Demikernel's libOS is thread-local; any other thread gets
 * ENOSYS) and calls the Go function that implements it (cabi*, in the .go
 * files of this directory).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <demi/demixdp.h>
#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/wait.h>

#include "_cgo_export.h"

/* Set on the thread whose demi_init succeeded. */
static __thread int demi_owner;

static void demi_atexit(void) { cabiExit(); }

int demi_init(const struct demi_args *args) {
    static int registered;
    int rc;
    (void)args; /* argc, argv and the callback mean nothing to demixdp */
    rc = cabiInit();
    if (rc == 0) {
        demi_owner = 1;
        if (!registered) {
            registered = 1;
            atexit(demi_atexit);
        }
    }
    return rc;
}

#define OWNER_ONLY()          \
    do {                      \
        if (!demi_owner)      \
            return ENOSYS;    \
    } while (0)

int demi_socket(int *sockqd_out, int domain, int type, int protocol) {
    OWNER_ONLY();
    return cabiSocket(sockqd_out, domain, type, protocol);
}

int demi_listen(int sockqd, int backlog) {
    OWNER_ONLY();
    return cabiListen(sockqd, backlog);
}

int demi_bind(int sockqd, const struct sockaddr *addr, socklen_t size) {
    OWNER_ONLY();
    return cabiBind(sockqd, (void *)addr, size);
}

int demi_accept(demi_qtoken_t *qt_out, int sockqd) {
    OWNER_ONLY();
    return cabiAccept(qt_out, sockqd);
}

int demi_connect(demi_qtoken_t *qt_out, int sockqd, const struct sockaddr *addr, socklen_t size) {
    OWNER_ONLY();
    return cabiConnect(qt_out, sockqd, (void *)addr, size);
}

int demi_close(int qd) {
    OWNER_ONLY();
    return cabiClose(qd);
}

int demi_push(demi_qtoken_t *qt_out, int qd, const demi_sgarray_t *sga) {
    OWNER_ONLY();
    return cabiPush(qt_out, qd, (void *)sga);
}

int demi_pushto(demi_qtoken_t *qt_out, int sockqd, const demi_sgarray_t *sga, const struct sockaddr *dest_addr,
                socklen_t size) {
    OWNER_ONLY();
    return cabiPushTo(qt_out, sockqd, (void *)sga, (void *)dest_addr, size);
}

int demi_pop(demi_qtoken_t *qt_out, int qd) {
    OWNER_ONLY();
    return cabiPop(qt_out, qd);
}

int demi_setsockopt(int qd, int level, int optname, const void *optval, socklen_t optlen) {
    OWNER_ONLY();
    return cabiSetSockOpt(qd, level, optname, (void *)optval, optlen);
}

int demi_getsockopt(int qd, int level, int optname, void *optval, socklen_t *optlen) {
    OWNER_ONLY();
    return cabiGetSockOpt(qd, level, optname, optval, optlen);
}

int demi_getpeername(int qd, struct sockaddr *addr, socklen_t *addrlen) {
    OWNER_ONLY();
    return cabiGetPeerName(qd, addr, addrlen);
}

demi_sgarray_t demi_sgaalloc(size_t size) {
    demi_sgarray_t sga;
    memset(&sga, 0, sizeof sga);
    if (demi_owner)
        cabiSGAAlloc(&sga, size);
    return sga;
}

int demi_sgafree(demi_sgarray_t *sga) {
    OWNER_ONLY();
    return cabiSGAFree(sga);
}

int demi_wait(demi_qresult_t *qr_out, demi_qtoken_t qt, const struct timespec *timeout) {
    OWNER_ONLY();
    return cabiWait(qr_out, qt, (struct timespec *)timeout);
}

int demi_wait_any(demi_qresult_t *qr_out, int *ready_offset, const demi_qtoken_t qts[], int num_qts,
                  const struct timespec *timeout) {
    OWNER_ONLY();
    return cabiWaitAny(qr_out, ready_offset, (demi_qtoken_t *)qts, num_qts, (struct timespec *)timeout);
}

int demi_wait_next_n(demi_qresult_t *qr_out, int num_qrs, int *num_qrs_out, const struct timespec *timeout) {
    OWNER_ONLY();
    return cabiWaitNextN(qr_out, num_qrs, num_qrs_out, (struct timespec *)timeout);
}

int demixdp_get_stats(demixdp_stats_t *out) {
    OWNER_ONLY();
    if (out == NULL)
        return EINVAL;
    return cabiGetStats(&out->push_copies, &out->push_copy_bytes, &out->sgas_live);
}
