package main

// demi_push, demi_pushto and demi_pop.

/*
#include <demi/types.h>
*/
import "C"

import (
	"net/netip"
	"unsafe"

	"github.com/demixdp/demixdp/libos"
)

// Counters of the copies made for arrays larger than a frame.
var pushCopies, pushCopyBytes uint64

// cabiPush implements demi_push.
//
//export cabiPush
func cabiPush(qtOut *C.demi_qtoken_t, qd C.int, sga unsafe.Pointer) C.int {
	return push(qtOut, qd, sga, netip.AddrPort{})
}

// cabiPushTo implements demi_pushto.
//
//export cabiPushTo
func cabiPushTo(qtOut *C.demi_qtoken_t, qd C.int, sga unsafe.Pointer, addr unsafe.Pointer, size C.socklen_t) C.int {
	if qtOut == nil || sga == nil {
		return eINVAL
	}
	to, rc := readSockaddr4(addr, size)
	if rc != 0 {
		return rc
	}
	return push(qtOut, qd, sga, to)
}

// push sends the array at sga: an array in a UMEM frame as it is (the
// segment the application may have moved or shortened within its frame),
// a larger one through one copy.
//
//demixdp:hotpath — allocates nothing.
func push(qtOut *C.demi_qtoken_t, qd C.int, sga unsafe.Pointer, to netip.AddrPort) C.int {
	if qtOut == nil || sga == nil {
		return eINVAL
	}
	if lib == nil {
		return eNOSYS
	}
	sl, seg, rc := segment(sga)
	if rc != 0 {
		return rc
	}
	var qt libos.QToken
	var err error
	if sl.s != nil {
		sl.s.Segs[0] = seg
		qt, err = lib.PushTo(libos.QD(qd), sl.s, to)
	} else {
		if qt, err = lib.PushCopy(libos.QD(qd), seg, to); err == nil {
			pushCopies++
			pushCopyBytes += uint64(len(seg))
		}
	}
	if err != nil {
		return errno(err)
	}
	*qtOut = C.demi_qtoken_t(qt)
	return 0
}

// cabiPop implements demi_pop.
//
//export cabiPop
func cabiPop(qtOut *C.demi_qtoken_t, qd C.int) C.int {
	if qtOut == nil {
		return eINVAL
	}
	if lib == nil {
		return eNOSYS
	}
	qt, err := lib.Pop(libos.QD(qd))
	if err != nil {
		return errno(err)
	}
	*qtOut = C.demi_qtoken_t(qt)
	return 0
}
