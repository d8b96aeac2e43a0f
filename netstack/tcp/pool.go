package tcp

import (
	"math/bits"
	"unsafe"
)

// ringPool recycles the arrays behind a connection's queues (send queue,
// receive queue, out-of-order queue) by capacity, a power of two from
// ringMin to ringMax entries, so that a connection holds queue memory only
// while it holds queued data, and the steady state allocates nothing (a
// bulk sender's queue that drains and fills again takes its arrays back
// from the pool). It keeps at most ringPoolMax arrays of the smallest
// capacity, half as many of each larger one, and at least two.
type ringPool[T any] struct {
	free [ringClasses][][]T
}

const (
	ringMin     = 8
	ringClasses = 14 // 8 .. 65536 entries (maxSQ)
	ringPoolMax = 64
)

// ringClass is the class of capacity c (a power of two >= ringMin), or -1
// for one too large to pool.
func ringClass(c int) int {
	if c < ringMin || c&(c-1) != 0 {
		return -1
	}
	if k := bits.TrailingZeros(uint(c)) - bits.TrailingZeros(ringMin); k < ringClasses {
		return k
	}
	return -1
}

func ringKeep(k int) int { return max(ringPoolMax>>k, 2) }

// get returns an array of capacity c (a power of two >= ringMin), zeroed.
func (p *ringPool[T]) get(c int) []T {
	if k := ringClass(c); p != nil && k >= 0 {
		if n := len(p.free[k]); n > 0 {
			q := p.free[k][n-1]
			p.free[k][n-1] = nil
			p.free[k] = p.free[k][:n-1]
			return q
		}
	}
	return make([]T, c)
}

// putZeroed takes back an array got from get whose entries are all zero
// already: a queue that has just emptied, since every pop zeroes its
// slot. Clearing it again was the largest single cost of a request in
// the tcp_rtt server's profile (16 send-queue entries of 88 bytes and 16
// receive-queue entries of 48, cleared on every request).
func (p *ringPool[T]) putZeroed(q []T) {
	if p == nil || q == nil {
		return
	}
	if checkZeroed != nil {
		var t T
		checkZeroed(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(q))), len(q)*int(unsafe.Sizeof(t))))
	}
	if k := ringClass(len(q)); k >= 0 && len(p.free[k]) < ringKeep(k) {
		p.free[k] = append(p.free[k], q)
	}
}

// checkZeroed, set by the package's tests, panics if the memory of an
// array given to putZeroed is not all zero bytes.
var checkZeroed func(mem []byte)

// put takes back an array got from get; it is cleared first, so that no
// frame view outlives its use.
func (p *ringPool[T]) put(q []T) {
	if p == nil || q == nil {
		return
	}
	if k := ringClass(len(q)); k >= 0 && len(p.free[k]) < ringKeep(k) {
		clear(q)
		p.free[k] = append(p.free[k], q)
	}
}
