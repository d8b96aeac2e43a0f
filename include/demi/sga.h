/*
 * <demi/sga.h>: scatter-gather arrays.
 */
#ifndef DEMI_SGA_H_IS_INCLUDED
#define DEMI_SGA_H_IS_INCLUDED

#include <demi/cc.h>
#include <demi/types.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Allocates a scatter-gather array of one segment of size bytes (1 to
 * 65,535) in memory the libOS can send from. Returns the all-zero array if
 * size is 0 or above 65,535, if memory is exhausted, or before demi_init.
 */
extern demi_sgarray_t demi_sgaalloc(size_t size);

/*
 * Releases a scatter-gather array from demi_sgaalloc or a completed pop.
 * One that is still being sent is kept until its send completes. Returns 0,
 * or EINVAL (NULL, already released, not the libOS's), ENOSYS (no demi_init).
 */
extern int demi_sgafree(demi_sgarray_t *sga);

#ifdef __cplusplus
}
#endif

#endif /* DEMI_SGA_H_IS_INCLUDED */
