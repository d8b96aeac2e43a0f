package main

// demi_wait, demi_wait_any and demi_wait_next_n.

/*
#include <time.h>
#include <demi/types.h>
*/
import "C"

import (
	"math"
	"time"
	"unsafe"

	"github.com/demixdp/demixdp/libos"
)

// timeout converts a demi_wait timeout: NULL waits for ever (-1), {0, 0}
// polls once; a negative or denormalised timespec is EINVAL.
func timeout(ts *C.struct_timespec) (time.Duration, C.int) {
	if ts == nil {
		return -1, 0
	}
	sec, nsec := int64(ts.tv_sec), int64(ts.tv_nsec)
	if sec < 0 || nsec < 0 || nsec >= 1e9 {
		return 0, eINVAL
	}
	if sec >= math.MaxInt64/int64(time.Second)-1 {
		return -1, 0 // longer than a Duration holds: for ever
	}
	return time.Duration(sec)*time.Second + time.Duration(nsec), 0
}

// opcode maps a libos opcode to demi_opcode_t.
func opcode(o libos.Opcode) uint32 {
	switch o {
	case libos.OpPush:
		return opcPush
	case libos.OpPop:
		return opcPop
	case libos.OpAccept:
		return opcAccept
	case libos.OpConnect:
		return opcConnect
	case libos.OpFailed:
		return opcFailed
	}
	return 0
}

// putResult writes r as a demi_qresult_t at qr. A popped SGA enters the
// table (the application owns it until demi_sgafree); an accepted queue
// gets the configured TCP options that accept does not inherit.
//
//demixdp:hotpath — allocates nothing once the SGA table has grown.
func putResult(qr unsafe.Pointer, r *libos.Result) {
	b := view(qr, sizeQR)
	clear(b)
	ne.PutUint32(b[offQROp:], opcode(r.Opcode))
	ne.PutUint32(b[offQRQD:], uint32(int32(r.QD)))
	ne.PutUint64(b[offQRQT:], uint64(r.QT))
	switch r.Opcode {
	case libos.OpFailed:
		ne.PutUint64(b[offQRRet:], uint64(errno(r.Err)))
	case libos.OpPop:
		if r.SGA != nil {
			registerPopped(b[offQRValue:], r.SGA)
		}
	case libos.OpAccept:
		ne.PutUint32(b[offQRValue+offAresQD:], uint32(int32(r.NewQD)))
		putSockaddr4(b[offQRValue+offAresAddr:], r.Addr)
		sockDefaults.applyAccepted(r.NewQD)
	}
}

// cabiWait implements demi_wait.
//
//export cabiWait
func cabiWait(qrOut unsafe.Pointer, qt C.demi_qtoken_t, ts *C.struct_timespec) C.int {
	if qrOut == nil {
		return eINVAL
	}
	if lib == nil {
		return eNOSYS
	}
	d, rc := timeout(ts)
	if rc != 0 {
		return rc
	}
	r, err := lib.Wait(libos.QToken(qt), d)
	if err != nil {
		return errno(err)
	}
	putResult(qrOut, &r)
	return 0
}

// cabiWaitAny implements demi_wait_any.
//
//export cabiWaitAny
func cabiWaitAny(qrOut unsafe.Pointer, readyOffset *C.int, qts *C.demi_qtoken_t, n C.int, ts *C.struct_timespec) C.int {
	if qrOut == nil || readyOffset == nil || qts == nil || n <= 0 {
		return eINVAL
	}
	if lib == nil {
		return eNOSYS
	}
	d, rc := timeout(ts)
	if rc != 0 {
		return rc
	}
	// demi_qtoken_t is a uint64_t, as libos.QToken: the C array is used
	// in place.
	i, r, err := lib.WaitAny(unsafe.Slice((*libos.QToken)(unsafe.Pointer(qts)), int(n)), d)
	if err != nil {
		return errno(err)
	}
	putResult(qrOut, &r)
	*readyOffset = C.int(i)
	return 0
}

// maxNext bounds the results one demi_wait_next_n returns (it may return
// fewer than asked for).
const maxNext = 1024

// nextBuf receives WaitNext's results; it grows once to the largest batch
// asked for, up to maxNext.
var nextBuf []libos.Result

// cabiWaitNextN implements demi_wait_next_n.
//
//export cabiWaitNextN
func cabiWaitNextN(qrOut unsafe.Pointer, numQRs C.int, numOut *C.int, ts *C.struct_timespec) C.int {
	if qrOut == nil || numOut == nil || numQRs <= 0 {
		return eINVAL
	}
	*numOut = 0
	if lib == nil {
		return eNOSYS
	}
	d, rc := timeout(ts)
	if rc != 0 {
		return rc
	}
	want := min(int(numQRs), maxNext)
	if len(nextBuf) < want {
		nextBuf = make([]libos.Result, want)
	}
	n, err := lib.WaitNext(nextBuf[:want], d)
	if err != nil {
		return errno(err)
	}
	for i := 0; i < n; i++ {
		putResult(unsafe.Add(qrOut, i*sizeQR), &nextBuf[i])
		nextBuf[i] = libos.Result{}
	}
	*numOut = C.int(n)
	return 0
}
