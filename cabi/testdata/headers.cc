// Every demi header in one C++ translation unit, compiled with
// -Wall -Wextra -Werror -pedantic: the headers are C++-clean and their
// declarations have C linkage.
#include <demi/cc.h>
#include <demi/demixdp.h>
#include <demi/libos.h>
#include <demi/sga.h>
#include <demi/types.h>
#include <demi/wait.h>

static_assert(sizeof(demi_sgarray_t) == 40, "demi_sgarray_t");
static_assert(sizeof(demi_qresult_t) == 64, "demi_qresult_t");
static_assert(sizeof(demi_accept_result_t) == 20, "demi_accept_result_t");
static_assert(sizeof(demi_args) == 20, "demi_args");

int use_them(demi_qresult_t *qr) {
    demi_sgarray_t sga = demi_sgaalloc(16);
    demi_qtoken_t qt = 0;
    int (*wait)(demi_qresult_t *, demi_qtoken_t, const struct timespec *) = demi_wait;
    int (*push)(demi_qtoken_t *, int, const demi_sgarray_t *) = demi_push;
    return wait(qr, qt, nullptr) + push(&qt, 0, &sga) + demi_sgafree(&sga);
}
