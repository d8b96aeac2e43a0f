/*
 * <demi/types.h>: the types of the Demikernel C ABI, as demixdp builds it.
 *
 * Layouts match Demikernel's on x86-64 and arm64 (every structure packed):
 *   demi_sgaseg_t 12 bytes, demi_sgarray_t 40, demi_accept_result_t 20,
 *   demi_qresult_t 64, struct demi_args 20.
 */
#ifndef DEMI_TYPES_H_IS_INCLUDED
#define DEMI_TYPES_H_IS_INCLUDED

#include <demi/cc.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Segments in one scatter-gather array. */
#define DEMI_SGARRAY_MAXSIZE 1

/* Names one asynchronous operation until a wait returns its result. */
typedef uint64_t demi_qtoken_t;

/* One contiguous piece of a scatter-gather array. */
typedef struct DEMI_PACKED demi_sgaseg {
    void *sgaseg_buf;     /* the bytes */
    uint32_t sgaseg_len;  /* how many */
} demi_sgaseg_t;

/* A scatter-gather array: memory the libOS sends from and receives into. */
typedef struct DEMI_PACKED demi_sgarray {
    void *sga_buf;                                /* the libOS's handle: do not change */
    uint32_t sga_numsegs;                         /* segments in use (1) */
    demi_sgaseg_t sga_segs[DEMI_SGARRAY_MAXSIZE]; /* the segments */
    struct sockaddr_in sga_addr;                  /* popped datagram: its sender */
} demi_sgarray_t;

/* What a completed operation was. */
typedef enum demi_opcode {
    DEMI_OPC_INVALID = 0, /* no operation */
    DEMI_OPC_PUSH,        /* demi_push or demi_pushto */
    DEMI_OPC_POP,         /* demi_pop: qr_value.sga holds the data */
    DEMI_OPC_ACCEPT,      /* demi_accept: qr_value.ares holds the connection */
    DEMI_OPC_CONNECT,     /* demi_connect */
    DEMI_OPC_CLOSE,       /* an asynchronous close (demixdp closes synchronously) */
    DEMI_OPC_FAILED       /* the operation failed: qr_ret is the errno */
} demi_opcode_t;

/* The connection an accept returns. */
typedef struct DEMI_PACKED demi_accept_result {
    int32_t qd;              /* its queue descriptor */
    struct sockaddr_in addr; /* the peer */
} demi_accept_result_t;

/* The result of a completed operation. */
typedef struct DEMI_PACKED demi_qresult {
    demi_opcode_t qr_opcode; /* what completed */
    int32_t qr_qd;           /* on which queue */
    demi_qtoken_t qr_qt;     /* its token */
    int64_t qr_ret;          /* 0, or the positive errno of a failed operation */
    union {
        demi_sgarray_t sga;        /* DEMI_OPC_POP */
        demi_accept_result_t ares; /* DEMI_OPC_ACCEPT */
    } qr_value;
} demi_qresult_t;

/* A callback an application may pass to demi_init (demixdp never calls it). */
typedef void (*demi_callback_t)(const char *, uint32_t, uint64_t);

/* What demi_init receives. */
struct DEMI_PACKED demi_args {
    int argc;                 /* the program's arguments (not used by demixdp) */
    char *const *argv;
    demi_callback_t callback; /* not used by demixdp */
};

#ifdef __cplusplus
}
#endif

#endif /* DEMI_TYPES_H_IS_INCLUDED */
