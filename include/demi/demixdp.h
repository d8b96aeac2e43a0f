/*
 * <demi/demixdp.h>: demixdp's additions to the Demikernel C ABI. Programs
 * that use them do not build against Demikernel.
 */
#ifndef DEMI_DEMIXDP_H_IS_INCLUDED
#define DEMI_DEMIXDP_H_IS_INCLUDED

#include <demi/cc.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Counters of the C ABI layer. */
typedef struct demixdp_stats {
    uint64_t push_copies;     /* pushes of arrays larger than a frame, copied once */
    uint64_t push_copy_bytes; /* bytes those copies moved */
    uint64_t sgas_live;       /* arrays allocated or popped and not yet released */
} demixdp_stats_t;

/* Reads the counters. EINVAL for NULL, ENOSYS before demi_init. */
extern int demixdp_get_stats(demixdp_stats_t *out);

#ifdef __cplusplus
}
#endif

#endif /* DEMI_DEMIXDP_H_IS_INCLUDED */
