// Command cabi is the Demikernel C ABI of demixdp: built with
// -buildmode=c-shared (make libdemi) it is build/libdemikernel.so, the
// library behind <demi/libos.h>, <demi/sga.h> and <demi/wait.h> in
// include/, so that C and C++ programs written for Demikernel run on
// demixdp's libOS unchanged.
//
// The package only converts: it reads and writes the packed C structures by
// offset (layout.go), maps C values to libos calls and libos errors to
// positive errnos. Every rule of the protocol lives in package libos.
// demi.c holds the C definitions of the demi_* functions, with the exact
// prototypes of the headers; each calls one of the Go functions exported
// here, named after it (demi_push calls cabiPush).
//
// One libOS per process, bound to the thread that called demi_init (as
// Demikernel's LibOS is thread-local): calls from any other thread return
// ENOSYS, so no two threads ever run the libOS at once. A process that
// exits normally (return from main, exit(3)) closes the libOS from an
// atexit handler, which sends the FINs of closed connections and detaches
// the XDP program; one killed by a signal leaves the kernel to clean up
// (the XDP program is attached as a bpf_link and goes with the process).
//
// Files follow the families of manual pages: init.go and config.go
// (demi_init), sockets.go, pushpop.go, wait.go, sga.go.
package main

// #cgo CFLAGS: -I${SRCDIR}/../include -O2
import "C"

import (
	"errors"

	"golang.org/x/sys/unix"

	"github.com/demixdp/demixdp/libos"
)

// main is never called: c-shared libraries start the Go runtime from a
// constructor and enter Go through the exported functions.
func main() {}

// lib is the process's libOS, nil before demi_init (and after the atexit
// close).
var lib *libos.LibOS

// errno returns err as the positive errno the C ABI returns: 0 for nil,
// the errno of an error that wraps one, EIO otherwise. The datapath's
// errors are bare errnos and take the first, allocation-free branch.
func errno(err error) C.int {
	if err == nil {
		return 0
	}
	if e, ok := err.(unix.Errno); ok {
		return C.int(e)
	}
	var e unix.Errno
	if errors.As(err, &e) {
		return C.int(e)
	}
	return C.int(unix.EIO)
}

// Positive errnos as C.int, for the returns.
const (
	eINVAL       = C.int(unix.EINVAL)
	eNOSYS       = C.int(unix.ENOSYS)
	eEXIST       = C.int(unix.EEXIST)
	eNODEV       = C.int(unix.ENODEV)
	eNOTCONN     = C.int(unix.ENOTCONN)
	eNOPROTOOPT  = C.int(unix.ENOPROTOOPT)
	eAFNOSUPPORT = C.int(unix.EAFNOSUPPORT)
)
