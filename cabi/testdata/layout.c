/*
 * Static checks of every size and offset of <demi/types.h> against
 * Demikernel's ABI (packed, x86-64 and arm64). C99: a failed check is a
 * negative array size, a compile error.
 */
#include <stddef.h>
#include <stdio.h>

#include <demi/types.h>

#define ASSERT(name, cond) typedef char assert_##name[(cond) ? 1 : -1]

ASSERT(qtoken, sizeof(demi_qtoken_t) == 8);
ASSERT(maxsize, DEMI_SGARRAY_MAXSIZE == 1);
ASSERT(opcode_size, sizeof(demi_opcode_t) == 4);
ASSERT(opcodes, DEMI_OPC_INVALID == 0 && DEMI_OPC_PUSH == 1 && DEMI_OPC_POP == 2 && DEMI_OPC_ACCEPT == 3 &&
                    DEMI_OPC_CONNECT == 4 && DEMI_OPC_CLOSE == 5 && DEMI_OPC_FAILED == 6);

ASSERT(sgaseg_size, sizeof(demi_sgaseg_t) == 12);
ASSERT(sgaseg_buf, offsetof(demi_sgaseg_t, sgaseg_buf) == 0);
ASSERT(sgaseg_len, offsetof(demi_sgaseg_t, sgaseg_len) == 8);

ASSERT(sga_size, sizeof(demi_sgarray_t) == 40);
ASSERT(sga_buf, offsetof(demi_sgarray_t, sga_buf) == 0);
ASSERT(sga_numsegs, offsetof(demi_sgarray_t, sga_numsegs) == 8);
ASSERT(sga_segs, offsetof(demi_sgarray_t, sga_segs) == 12);
ASSERT(sga_addr, offsetof(demi_sgarray_t, sga_addr) == 24);

ASSERT(ares_size, sizeof(demi_accept_result_t) == 20);
ASSERT(ares_qd, offsetof(demi_accept_result_t, qd) == 0);
ASSERT(ares_addr, offsetof(demi_accept_result_t, addr) == 4);

ASSERT(qr_size, sizeof(demi_qresult_t) == 64);
ASSERT(qr_opcode, offsetof(demi_qresult_t, qr_opcode) == 0);
ASSERT(qr_qd, offsetof(demi_qresult_t, qr_qd) == 4);
ASSERT(qr_qt, offsetof(demi_qresult_t, qr_qt) == 8);
ASSERT(qr_ret, offsetof(demi_qresult_t, qr_ret) == 16);
ASSERT(qr_value, offsetof(demi_qresult_t, qr_value) == 24);
ASSERT(qr_value_size, sizeof(((demi_qresult_t *)0)->qr_value) == 40);

ASSERT(args_size, sizeof(struct demi_args) == 20);
ASSERT(args_argc, offsetof(struct demi_args, argc) == 0);
ASSERT(args_argv, offsetof(struct demi_args, argv) == 4);
ASSERT(args_callback, offsetof(struct demi_args, callback) == 12);

int main(void) {
    printf("layout ok: sgarray %u qresult %u\n", (unsigned)sizeof(demi_sgarray_t), (unsigned)sizeof(demi_qresult_t));
    return 0;
}
