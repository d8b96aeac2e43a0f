package main

// The packed structures of <demi/types.h>, read and written by offset:
// cgo cannot describe packed structures with misaligned fields, so the
// Go side names their offsets here, checks them against the C compiler's
// at build time, and moves their fields through byte views in native byte
// order (little-endian on both x86-64 and arm64).

/*
#include <stddef.h>
#include <time.h>
#include <demi/types.h>

enum {
	cabi_sizeof_sgaseg = sizeof(demi_sgaseg_t),
	cabi_sizeof_sga = sizeof(demi_sgarray_t),
	cabi_off_sga_buf = offsetof(demi_sgarray_t, sga_buf),
	cabi_off_sga_numsegs = offsetof(demi_sgarray_t, sga_numsegs),
	cabi_off_sga_segbuf = offsetof(demi_sgarray_t, sga_segs) + offsetof(demi_sgaseg_t, sgaseg_buf),
	cabi_off_sga_seglen = offsetof(demi_sgarray_t, sga_segs) + offsetof(demi_sgaseg_t, sgaseg_len),
	cabi_off_sga_addr = offsetof(demi_sgarray_t, sga_addr),
	cabi_sizeof_ares = sizeof(demi_accept_result_t),
	cabi_off_ares_qd = offsetof(demi_accept_result_t, qd),
	cabi_off_ares_addr = offsetof(demi_accept_result_t, addr),
	cabi_sizeof_qr = sizeof(demi_qresult_t),
	cabi_off_qr_opcode = offsetof(demi_qresult_t, qr_opcode),
	cabi_off_qr_qd = offsetof(demi_qresult_t, qr_qd),
	cabi_off_qr_qt = offsetof(demi_qresult_t, qr_qt),
	cabi_off_qr_ret = offsetof(demi_qresult_t, qr_ret),
	cabi_off_qr_value = offsetof(demi_qresult_t, qr_value),
	cabi_sizeof_args = sizeof(struct demi_args),
	cabi_sizeof_sockaddr_in = sizeof(struct sockaddr_in),
	cabi_sizeof_opcode = sizeof(demi_opcode_t),
	cabi_sizeof_qtoken = sizeof(demi_qtoken_t),
	cabi_sgarray_maxsize = DEMI_SGARRAY_MAXSIZE,
	cabi_opc_push = DEMI_OPC_PUSH,
	cabi_opc_pop = DEMI_OPC_POP,
	cabi_opc_accept = DEMI_OPC_ACCEPT,
	cabi_opc_connect = DEMI_OPC_CONNECT,
	cabi_opc_failed = DEMI_OPC_FAILED,
};
*/
import "C"

import (
	"encoding/binary"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Sizes and offsets of <demi/types.h> (packed, x86-64 and arm64).
const (
	sizeSGASeg = 12
	sizeSGA    = 40
	offSGABuf  = 0
	offSGANum  = 8
	offSegBuf  = 12
	offSegLen  = 20
	offSGAAddr = 24

	sizeAres    = 20
	offAresQD   = 0
	offAresAddr = 4

	sizeQR     = 64
	offQROp    = 0
	offQRQD    = 4
	offQRQT    = 8
	offQRRet   = 16
	offQRValue = 24

	sizeArgs      = 20
	sizeSockaddr4 = 16
)

// Opcodes of demi_opcode_t.
const (
	opcPush    = 1
	opcPop     = 2
	opcAccept  = 3
	opcConnect = 4
	opcFailed  = 6
)

// same fails to compile unless a == b: the build itself checks the C
// compiler's layout against the constants above.
type same[T any] [1]T

var (
	_ = same[int]{}[C.cabi_sizeof_sgaseg-sizeSGASeg]
	_ = same[int]{}[C.cabi_sizeof_sga-sizeSGA]
	_ = same[int]{}[C.cabi_off_sga_buf-offSGABuf]
	_ = same[int]{}[C.cabi_off_sga_numsegs-offSGANum]
	_ = same[int]{}[C.cabi_off_sga_segbuf-offSegBuf]
	_ = same[int]{}[C.cabi_off_sga_seglen-offSegLen]
	_ = same[int]{}[C.cabi_off_sga_addr-offSGAAddr]
	_ = same[int]{}[C.cabi_sizeof_ares-sizeAres]
	_ = same[int]{}[C.cabi_off_ares_qd-offAresQD]
	_ = same[int]{}[C.cabi_off_ares_addr-offAresAddr]
	_ = same[int]{}[C.cabi_sizeof_qr-sizeQR]
	_ = same[int]{}[C.cabi_off_qr_opcode-offQROp]
	_ = same[int]{}[C.cabi_off_qr_qd-offQRQD]
	_ = same[int]{}[C.cabi_off_qr_qt-offQRQT]
	_ = same[int]{}[C.cabi_off_qr_ret-offQRRet]
	_ = same[int]{}[C.cabi_off_qr_value-offQRValue]
	_ = same[int]{}[C.cabi_sizeof_args-sizeArgs]
	_ = same[int]{}[C.cabi_sizeof_sockaddr_in-sizeSockaddr4]
	_ = same[int]{}[C.cabi_sizeof_opcode-4]
	_ = same[int]{}[C.cabi_sizeof_qtoken-8]
	_ = same[int]{}[C.cabi_sgarray_maxsize-1]
	_ = same[int]{}[C.cabi_opc_push-opcPush]
	_ = same[int]{}[C.cabi_opc_pop-opcPop]
	_ = same[int]{}[C.cabi_opc_accept-opcAccept]
	_ = same[int]{}[C.cabi_opc_connect-opcConnect]
	_ = same[int]{}[C.cabi_opc_failed-opcFailed]
)

// layoutC returns the C compiler's sizes and offsets by name, for the test
// that compares them with the constants (the build checks them too).
func layoutC() map[string]int {
	return map[string]int{
		"sizeSGASeg": C.cabi_sizeof_sgaseg, "sizeSGA": C.cabi_sizeof_sga,
		"offSGABuf": C.cabi_off_sga_buf, "offSGANum": C.cabi_off_sga_numsegs,
		"offSegBuf": C.cabi_off_sga_segbuf, "offSegLen": C.cabi_off_sga_seglen,
		"offSGAAddr": C.cabi_off_sga_addr, "sizeAres": C.cabi_sizeof_ares,
		"offAresQD": C.cabi_off_ares_qd, "offAresAddr": C.cabi_off_ares_addr,
		"sizeQR": C.cabi_sizeof_qr, "offQROp": C.cabi_off_qr_opcode,
		"offQRQD": C.cabi_off_qr_qd, "offQRQT": C.cabi_off_qr_qt,
		"offQRRet": C.cabi_off_qr_ret, "offQRValue": C.cabi_off_qr_value,
		"sizeArgs": C.cabi_sizeof_args, "sizeSockaddr4": C.cabi_sizeof_sockaddr_in,
	}
}

var ne = binary.NativeEndian

// view returns the n bytes at p, C memory the caller handed in.
func view(p unsafe.Pointer, n int) []byte { return unsafe.Slice((*byte)(p), n) }

// readSockaddr4 converts a struct sockaddr_in of size bytes at p: EINVAL
// for NULL or a size other than sizeof(struct sockaddr_in), EAFNOSUPPORT
// for a family other than AF_INET (as bind(2) says).
func readSockaddr4(p unsafe.Pointer, size C.socklen_t) (netip.AddrPort, C.int) {
	if p == nil || size != sizeSockaddr4 {
		return netip.AddrPort{}, eINVAL
	}
	b := view(p, sizeSockaddr4)
	if ne.Uint16(b[0:]) != unix.AF_INET {
		return netip.AddrPort{}, eAFNOSUPPORT
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), binary.BigEndian.Uint16(b[2:])), 0
}

// putSockaddr4 writes a as a struct sockaddr_in into b (16 bytes); the
// zero AddrPort writes the all-zero address.
func putSockaddr4(b []byte, a netip.AddrPort) {
	clear(b[:sizeSockaddr4])
	if !a.IsValid() {
		return
	}
	ne.PutUint16(b[0:], unix.AF_INET)
	binary.BigEndian.PutUint16(b[2:], a.Port())
	ip := a.Addr().As4()
	copy(b[4:8], ip[:])
}
