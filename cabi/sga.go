package main

// demi_sgaalloc and demi_sgafree, and the table that ties the C view of a
// scatter-gather array to the libOS's.

/*
#include <stdlib.h>
#include <demi/types.h>
*/
import "C"

import (
	"net/netip"
	"unsafe"

	"github.com/demixdp/demixdp/libos"
)

// maxSGASize is the largest demi_sgaalloc serves, as Demikernel.
const maxSGASize = 65535

// keepBig bounds the large buffers kept for reuse after demi_sgafree.
const keepBig = 64

// An sgaSlot is one array the application holds: from demi_sgaalloc or a
// completed pop, until demi_sgafree. Its handle, in sga_buf, is its index
// plus one in the low 32 bits and the slot's generation in the high ones,
// so a stale or doubly freed array is recognised without a lookup
// structure and without allocating.
//
// An array of at most MaxDatagram bytes, and every popped one, is a libOS
// SGA of one segment in a UMEM frame (sent without a copy); frame is that
// frame's first byte, the bounds a pushed segment must stay in. A larger
// array is C memory of maxSGASize bytes (big), copied once at push
// (libos.PushCopy): UMEM frames are not contiguous.
type sgaSlot struct {
	gen   uint32
	live  bool
	s     *libos.SGA
	frame unsafe.Pointer
	big   unsafe.Pointer
}

// sgaTable holds the slots; it grows to the most arrays held at once and
// recycles slots after that.
type sgaTable struct {
	slots []sgaSlot
	free  []uint32
	live  int
	big   []unsafe.Pointer // freed large buffers, for reuse
}

var sgas sgaTable

// frameSize is the libOS's UMEM frame size: frames are aligned to it (the
// UMEM is page-aligned and frames are 2048 or 4096 bytes), so a segment's
// frame starts at its address rounded down.
var frameSize uintptr

func (t *sgaTable) add(s *libos.SGA, frame, big unsafe.Pointer) uint64 {
	var i uint32
	if n := len(t.free); n > 0 {
		i = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		t.slots = append(t.slots, sgaSlot{})
		i = uint32(len(t.slots) - 1)
	}
	sl := &t.slots[i]
	sl.gen++
	if sl.gen == 0 {
		sl.gen = 1
	}
	sl.live, sl.s, sl.frame, sl.big = true, s, frame, big
	t.live++
	return uint64(sl.gen)<<32 | uint64(i+1)
}

// get returns the live slot of handle h, or nil.
func (t *sgaTable) get(h uint64) *sgaSlot {
	i := int64(uint32(h)) - 1
	if i < 0 || i >= int64(len(t.slots)) {
		return nil
	}
	sl := &t.slots[i]
	if !sl.live || sl.gen != uint32(h>>32) {
		return nil
	}
	return sl
}

func (t *sgaTable) remove(h uint64) {
	i := uint32(h) - 1
	t.slots[i] = sgaSlot{gen: t.slots[i].gen}
	t.free = append(t.free, i)
	t.live--
}

// frameOf returns the start of the UMEM frame holding p.
func frameOf(p unsafe.Pointer) unsafe.Pointer {
	return unsafe.Add(p, -int(uintptr(p)&(frameSize-1)))
}

// putSGA writes a demi_sgarray_t of one segment (p, n) at dst.
func putSGA(dst []byte, h uint64, p unsafe.Pointer, n int, from netip.AddrPort) {
	clear(dst[:sizeSGA])
	ne.PutUint64(dst[offSGABuf:], h)
	ne.PutUint32(dst[offSGANum:], 1)
	ne.PutUint64(dst[offSegBuf:], uint64(uintptr(p)))
	ne.PutUint32(dst[offSegLen:], uint32(n))
	putSockaddr4(dst[offSGAAddr:], from)
}

// registerPopped enters a popped SGA and writes its C view at dst. An SGA
// with no segment (TCP end of stream) is one segment of length 0 with a
// NULL pointer, as Demikernel reports it.
func registerPopped(dst []byte, s *libos.SGA) {
	if len(s.Segs) == 0 {
		putSGA(dst, sgas.add(s, nil, nil), nil, 0, s.Addr)
		return
	}
	p := unsafe.Pointer(unsafe.SliceData(s.Segs[0]))
	putSGA(dst, sgas.add(s, frameOf(p), nil), p, len(s.Segs[0]), s.Addr)
}

// cabiSGAAlloc implements demi_sgaalloc: it fills *sga (zeroed by the C
// side) unless size is 0 or above 65,535 or memory is exhausted.
//
//export cabiSGAAlloc
func cabiSGAAlloc(sga unsafe.Pointer, size C.size_t) {
	if lib == nil || size == 0 || size > maxSGASize {
		return
	}
	dst := view(sga, sizeSGA)
	if int(size) <= lib.MaxDatagram() {
		s, err := lib.SGAAlloc(int(size))
		if err != nil {
			return
		}
		p := unsafe.Pointer(unsafe.SliceData(s.Segs[0]))
		putSGA(dst, sgas.add(s, frameOf(p), nil), p, int(size), netip.AddrPort{})
		return
	}
	var big unsafe.Pointer
	if n := len(sgas.big); n > 0 {
		big = sgas.big[n-1]
		sgas.big = sgas.big[:n-1]
	} else if big = C.malloc(maxSGASize); big == nil {
		return
	}
	putSGA(dst, sgas.add(nil, nil, big), big, int(size), netip.AddrPort{})
}

// cabiSGAFree implements demi_sgafree.
//
//export cabiSGAFree
func cabiSGAFree(sga unsafe.Pointer) C.int {
	if sga == nil {
		return eINVAL
	}
	if lib == nil {
		return eNOSYS
	}
	h := ne.Uint64(view(sga, sizeSGA)[offSGABuf:])
	sl := sgas.get(h)
	if sl == nil {
		return eINVAL
	}
	var rc C.int
	if sl.s != nil {
		rc = errno(lib.SGAFree(sl.s))
	} else if len(sgas.big) < keepBig {
		sgas.big = append(sgas.big, sl.big)
	} else {
		C.free(sl.big)
	}
	sgas.remove(h)
	return rc
}

// segment returns the bytes the C array at sga names in its one segment,
// validated against the slot it belongs to: the segment must be non-empty
// and lie inside the frame (or the large buffer) the array was given.
// Besides the slot, it returns EINVAL for anything else.
func segment(sga unsafe.Pointer) (*sgaSlot, []byte, C.int) {
	b := view(sga, sizeSGA)
	sl := sgas.get(ne.Uint64(b[offSGABuf:]))
	if sl == nil || ne.Uint32(b[offSGANum:]) != 1 {
		return nil, nil, eINVAL
	}
	p, n := uintptr(ne.Uint64(b[offSegBuf:])), uintptr(ne.Uint32(b[offSegLen:]))
	base, limit := sl.frame, frameSize
	if sl.big != nil {
		base, limit = sl.big, maxSGASize
	}
	if n == 0 || base == nil || p < uintptr(base) || p-uintptr(base) > limit || n > limit-(p-uintptr(base)) {
		return nil, nil, eINVAL
	}
	// Derived from the slot's own pointer: p itself is only compared.
	return sl, unsafe.Slice((*byte)(unsafe.Add(base, p-uintptr(base))), n), 0
}
