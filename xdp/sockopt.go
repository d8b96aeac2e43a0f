package xdp

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// x/sys/unix has no typed helpers for the SOL_XDP structs, so these wrap the
// raw system calls. val must point to a value of length n that stays live for
// the call.

func setsockopt(fd, opt int, val unsafe.Pointer, n uintptr) error {
	_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(val), n, 0)
	if e != 0 {
		return e
	}
	return nil
}

// getsockopt returns the length the kernel wrote.
func getsockopt(fd, opt int, val unsafe.Pointer, n uintptr) (uintptr, error) {
	l := uint32(n)
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(val), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return 0, e
	}
	return uintptr(l), nil
}

// xdpOptions mirrors struct xdp_options from <linux/if_xdp.h>.
type xdpOptions struct {
	Flags uint32
}
