package main

// demi_init, and the close at exit.

/*
#include <stdint.h>
#include <stdlib.h>
*/
import "C"

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"unsafe"

	"github.com/demixdp/demixdp/libos"
)

// cabiInit implements demi_init: it reads the configuration and starts the
// libOS. Any failure is a message on stderr and a positive errno; nothing
// aborts the process.
//
//export cabiInit
func cabiInit() C.int {
	if lib != nil {
		return eEXIST
	}
	s, err := loadSettings(cgetenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "demi_init: %v\n", err)
		return errno(err)
	}
	if _, err := net.InterfaceByName(s.cfg.Interface); err != nil {
		fmt.Fprintf(os.Stderr, "demi_init: interface %q: %v (configuration from %s)\n", s.cfg.Interface, err, s.source)
		return eNODEV
	}
	l, err := libos.New(s.cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "demi_init: %v (configuration from %s)\n", err, s.source)
		return errno(err)
	}
	if s.linkAddr != nil && !bytes.Equal(s.linkAddr, l.HardwareAddr()) {
		l.Close()
		err = badConfig("local_link_addr %v is not the address of %s (%v): demixdp sends from the interface's own address",
			s.linkAddr, s.cfg.Interface, l.HardwareAddr())
		fmt.Fprintf(os.Stderr, "demi_init: %v\n", err)
		return errno(err)
	}
	// The libOS's MTU is the interface's, bounded by the UMEM frame; it
	// cannot send larger frames, and a smaller configured MTU is reported
	// rather than silently obeyed (libos.Config has no MTU of its own).
	if s.mtu > l.MTU() {
		l.Close()
		err = badConfig("mtu %d is larger than the libOS's MTU on %s (%d)", s.mtu, s.cfg.Interface, l.MTU())
		fmt.Fprintf(os.Stderr, "demi_init: %v\n", err)
		return errno(err)
	}
	if s.mtu != 0 && s.mtu < l.MTU() {
		fmt.Fprintf(os.Stderr, "demi_init: warning: mtu %d is smaller than %s's MTU %d, which demixdp uses; set the interface's MTU to change it\n",
			s.mtu, s.cfg.Interface, l.MTU())
	}
	lib, sockDefaults, frameSize = l, s.tcp, uintptr(s.cfg.FrameSize)
	return 0
}

// cgetenv reads the C environment: a program may setenv(3) before
// demi_init, and Go's os.Getenv only sees the environment the process
// started with.
func cgetenv(key string) string {
	k := C.CString(key)
	defer C.free(unsafe.Pointer(k))
	if v := C.getenv(k); v != nil {
		return C.GoString(v)
	}
	return ""
}

// cabiExit closes the libOS: the atexit handler demi_init registers, so
// that the FINs of queues the program closed leave before the process
// does. Calls after it return ENOSYS.
//
//export cabiExit
func cabiExit() {
	if lib == nil {
		return
	}
	lib.Close()
	lib = nil
	sgas = sgaTable{}
}

// cabiGetStats implements demixdp_get_stats.
//
//export cabiGetStats
func cabiGetStats(copies, copyBytes, live *C.uint64_t) C.int {
	if lib == nil {
		return eNOSYS
	}
	*copies, *copyBytes, *live = C.uint64_t(pushCopies), C.uint64_t(pushCopyBytes), C.uint64_t(sgas.live)
	return 0
}
