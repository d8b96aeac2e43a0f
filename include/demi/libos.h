/*
 * <demi/libos.h>: the Demikernel queue API on demixdp (Linux AF_XDP).
 *
 * Every call returns 0 on success or a positive errno. Before demi_init,
 * and on a thread other than the one that called it, every call returns
 * ENOSYS. A NULL out-pointer or address is EINVAL; an address length other
 * than sizeof(struct sockaddr_in) is EINVAL; a bad queue descriptor is EBADF.
 */
#ifndef DEMI_LIBOS_H_IS_INCLUDED
#define DEMI_LIBOS_H_IS_INCLUDED

#include <demi/cc.h>
#include <demi/types.h>
#include <stddef.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Starts the libOS from the configuration (CONFIG_PATH and the environment)
 * on the calling thread. EEXIST if it already runs; on a bad or missing
 * configuration, a message on stderr and an errno (EINVAL, ENOENT...).
 */
extern int demi_init(const struct demi_args *args);

/* Opens a socket queue: AF_INET, SOCK_DGRAM or SOCK_STREAM (else ENOTSUP). */
extern int demi_socket(int *sockqd_out, int domain, int type, int protocol);

/* Makes a bound TCP queue accept connections (backlog 1 or more). */
extern int demi_listen(int sockqd, int backlog);

/* Binds a queue to a local address (INADDR_ANY and port 0 allowed). */
extern int demi_bind(int sockqd, const struct sockaddr *addr, socklen_t size);

/* Asks for the next connection of a listening queue. */
extern int demi_accept(demi_qtoken_t *qt_out, int sockqd);

/* Connects a queue: TCP completes once established, UDP at once. */
extern int demi_connect(demi_qtoken_t *qt_out, int sockqd, const struct sockaddr *addr, socklen_t size);

/* Closes a queue at once; its pending operations fail with ECANCELED. */
extern int demi_close(int qd);

/*
 * Sends a scatter-gather array: UDP to the connected peer, TCP as the next
 * bytes of the stream. The array may be released at once.
 */
extern int demi_push(demi_qtoken_t *qt_out, int qd, const demi_sgarray_t *sga);

/* Sends a scatter-gather array as one datagram to dest_addr. */
extern int demi_pushto(demi_qtoken_t *qt_out, int sockqd, const demi_sgarray_t *sga,
                       const struct sockaddr *dest_addr, socklen_t size);

/* Asks for the queue's next data: a datagram, or the next bytes of a stream. */
extern int demi_pop(demi_qtoken_t *qt_out, int qd);

/*
 * Sets a socket option of a TCP queue: SOL_SOCKET SO_LINGER (struct linger)
 * and SO_KEEPALIVE (int), IPPROTO_TCP TCP_NODELAY (int); ENOPROTOOPT for
 * others, EINVAL for a short optlen or a UDP queue.
 */
extern int demi_setsockopt(int qd, int level, int optname, const void *optval, socklen_t optlen);

/* Reads a socket option (the same ones); *optlen is in/out. */
extern int demi_getsockopt(int qd, int level, int optname, void *optval, socklen_t *optlen);

/* Stores the peer of a connected queue (ENOTCONN if none); *addrlen is in/out. */
extern int demi_getpeername(int qd, struct sockaddr *addr, socklen_t *addrlen);

#ifdef __cplusplus
}
#endif

#endif /* DEMI_LIBOS_H_IS_INCLUDED */
