/*
 * <demi/wait.h>: waiting for operations to complete.
 *
 * A timeout of NULL waits for ever, {0, 0} polls once. Each call returns 0
 * with the result in *qr_out (a failed operation has qr_opcode
 * DEMI_OPC_FAILED and its errno in qr_ret), or a positive errno about the
 * wait itself: ETIMEDOUT (the operation goes on and its token stays valid),
 * EINVAL (a NULL out-pointer, a bad timeout, an unknown or already consumed
 * token), ENOSYS (no demi_init).
 */
#ifndef DEMI_WAIT_H_IS_INCLUDED
#define DEMI_WAIT_H_IS_INCLUDED

#include <demi/cc.h>
#include <demi/types.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Declared here too, for strict ISO C modes where <time.h> leaves it out. */
struct timespec;

/* Waits for the operation qt and consumes its token. */
extern int demi_wait(demi_qresult_t *qr_out, demi_qtoken_t qt, const struct timespec *timeout);

/*
 * Waits for the first of num_qts operations to complete and consumes its
 * token only; *ready_offset is its index in qts (the lowest if several have
 * completed).
 */
extern int demi_wait_any(demi_qresult_t *qr_out, int *ready_offset, const demi_qtoken_t qts[], int num_qts,
                         const struct timespec *timeout);

/*
 * Waits until at least one operation, any of them, has completed and stores
 * up to num_qrs results, oldest first, in qr_out[0..*num_qrs_out-1].
 */
extern int demi_wait_next_n(demi_qresult_t *qr_out, int num_qrs, int *num_qrs_out, const struct timespec *timeout);

#ifdef __cplusplus
}
#endif

#endif /* DEMI_WAIT_H_IS_INCLUDED */
