package xdp

import (
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The four AF_XDP rings share one index discipline. Each ring has a producer
// and a consumer index (free-running uint32 counters that wrap past 2^32),
// an array of size entries (size a power of two, entry i lives at i&(size-1))
// and a flags word. Exactly one side writes each index. Our own index is read
// from a private copy; the other side's index is read with an atomic load
// (acquire) and our index is published with an atomic store (release), so the
// entries written before a publish are visible to whoever observes it.
// The other side's index is cached and re-read only when the cache cannot
// satisfy a request, so a steady stream of batches costs one atomic load per
// batch at most.

// prodIdx is the index state of a ring we produce into (fill, TX).
type prodIdx struct {
	producer *uint32 // shared, written by us
	consumer *uint32 // shared, written by the other side
	flags    *uint32 // shared, XDP_RING_NEED_WAKEUP set by the kernel
	size     uint32
	mask     uint32
	reserved uint32 // next index to hand out by Reserve (>= published)
	pub      uint32 // our last published producer index
	consLim  uint32 // cached consumer index + size: first index we may not write
}

func (p *prodIdx) init(producer, consumer, flags *uint32, size uint32) {
	p.producer, p.consumer, p.flags = producer, consumer, flags
	p.size, p.mask = size, size-1
	p.pub = atomic.LoadUint32(producer)
	p.reserved = p.pub
	p.consLim = atomic.LoadUint32(consumer) + size
}

// free returns the free slots, refreshing the cached consumer index when the
// cache shows fewer than want.
func (p *prodIdx) free(want uint32) uint32 {
	n := p.consLim - p.reserved
	if n >= want {
		return n
	}
	p.consLim = atomic.LoadUint32(p.consumer) + p.size
	n = p.consLim - p.reserved
	if n > p.size { // a corrupt consumer index must not let us overrun
		p.consLim, n = p.reserved, 0
	}
	return n
}

func (p *prodIdx) reserve(n uint32) (idx, got uint32) {
	got = min(n, p.free(n))
	idx = p.reserved
	p.reserved += got
	return idx, got
}

func (p *prodIdx) submit(n uint32) {
	n = min(n, p.reserved-p.pub) // never publish entries that were not reserved
	p.pub += n
	atomic.StoreUint32(p.producer, p.pub)
}

// detach points the ring at private memory that reports it full, so a ring
// used after its socket closed neither touches unmapped memory nor panics.
func (p *prodIdx) detach() {
	d := new([3]uint32)
	d[0], d[1] = p.pub, p.reserved-1 // with size 1: no free slot
	p.producer, p.consumer, p.flags = &d[0], &d[1], &d[2]
	p.consLim, p.size, p.mask = p.reserved, 1, 0
}

func (p *prodIdx) needWakeup() bool {
	return atomic.LoadUint32(p.flags)&unix.XDP_RING_NEED_WAKEUP != 0
}

// consIdx is the index state of a ring we consume from (completion, RX).
type consIdx struct {
	producer *uint32 // shared, written by the other side
	consumer *uint32 // shared, written by us
	flags    *uint32
	size     uint32
	mask     uint32
	peeked   uint32 // next index Peek hands out (>= released)
	released uint32 // our last published consumer index
	prodLim  uint32 // cached producer index
}

func (c *consIdx) init(producer, consumer, flags *uint32, size uint32) {
	c.producer, c.consumer, c.flags = producer, consumer, flags
	c.size, c.mask = size, size-1
	c.released = atomic.LoadUint32(consumer)
	c.peeked = c.released
	c.prodLim = atomic.LoadUint32(producer)
}

// detach points the ring at private memory that reports it empty (see
// prodIdx.detach).
func (c *consIdx) detach() {
	d := new([3]uint32)
	d[0], d[1] = c.peeked, c.released
	c.producer, c.consumer, c.flags = &d[0], &d[1], &d[2]
	c.prodLim, c.size, c.mask = c.peeked, 1, 0
}

func (c *consIdx) avail(want uint32) uint32 {
	n := c.prodLim - c.peeked
	if n >= want {
		return n
	}
	c.prodLim = atomic.LoadUint32(c.producer)
	n = c.prodLim - c.peeked
	if n > c.size { // a corrupt producer index must not make us read garbage
		c.prodLim, n = c.peeked, 0
	}
	return n
}

func (c *consIdx) peek(n uint32) (idx, got uint32) {
	got = min(n, c.avail(n))
	idx = c.peeked
	c.peeked += got
	return idx, got
}

func (c *consIdx) release(n uint32) {
	n = min(n, c.peeked-c.released) // never release entries that were not peeked
	c.released += n
	atomic.StoreUint32(c.consumer, c.released)
}

// FillRing is the UMEM fill ring: the application produces frame addresses
// (offsets into the UMEM) that the kernel may receive into.
// It is single-producer: use it from one goroutine.
type FillRing struct {
	prodIdx
	addrs []uint64
}

// Reserve claims up to n slots and returns the first index and how many were
// claimed (got may be less than n, or 0 when the ring is full). Fill the
// slots idx..idx+got-1 with Set, then publish them with Submit.
// It does not allocate.
func (r *FillRing) Reserve(n uint32) (idx uint32, got uint32) { return r.reserve(n) }

// Set writes frame address addr into reserved slot idx.
func (r *FillRing) Set(idx uint32, addr uint64) { r.addrs[idx&r.mask] = addr }

// Submit publishes the next n reserved slots to the kernel (store-release).
// n is clamped to the number reserved and not yet submitted.
func (r *FillRing) Submit(n uint32) { r.submit(n) }

// Free returns how many slots can be reserved now; it reads the kernel's
// consumer index.
func (r *FillRing) Free() uint32 { return r.free(r.size) }

// NeedWakeup reports whether the kernel asked for a syscall (see
// Socket.WakeFill) before it looks at the fill ring again. It is always false
// when the socket was opened with NoNeedWakeup.
func (r *FillRing) NeedWakeup() bool { return r.needWakeup() }

func (r *FillRing) detach() { r.prodIdx.detach(); r.addrs = make([]uint64, 1) }

// Size returns the number of entries in the ring (1 after its socket closed).
func (r *FillRing) Size() uint32 { return r.size }

// TXRing is the transmit ring: the application produces descriptors of
// frames (UMEM address and length) for the kernel to send.
// It is single-producer: use it from one goroutine.
type TXRing struct {
	prodIdx
	descs []unix.XDPDesc
}

// Reserve claims up to n slots and returns the first index and how many were
// claimed (got may be less than n, or 0 when the ring is full).
// It does not allocate.
func (r *TXRing) Reserve(n uint32) (idx, got uint32) { return r.reserve(n) }

// Set writes descriptor d into reserved slot idx.
func (r *TXRing) Set(idx uint32, d unix.XDPDesc) { r.descs[idx&r.mask] = d }

// Submit publishes the next n reserved slots to the kernel (store-release).
// n is clamped to the number reserved and not yet submitted. The kernel may
// still need a Socket.Kick to start sending.
func (r *TXRing) Submit(n uint32) { r.submit(n) }

// Free returns how many slots can be reserved now; it reads the kernel's
// consumer index.
func (r *TXRing) Free() uint32 { return r.free(r.size) }

// NeedWakeup reports whether the kernel needs a Socket.Kick to process the
// TX ring. In copy mode it is always true while need_wakeup is enabled.
func (r *TXRing) NeedWakeup() bool { return r.needWakeup() }

func (r *TXRing) detach() { r.prodIdx.detach(); r.descs = make([]unix.XDPDesc, 1) }

// Size returns the number of entries in the ring (1 after its socket closed).
func (r *TXRing) Size() uint32 { return r.size }

// CompRing is the UMEM completion ring: the kernel produces the addresses of
// frames whose transmission finished, so the application may reuse them.
// It is single-consumer: use it from one goroutine.
type CompRing struct {
	consIdx
	addrs []uint64
}

// Peek claims up to n available entries and returns the first index and how
// many were claimed (0 when the ring is empty). Read them with Get and hand
// the slots back with Release. It does not allocate.
func (r *CompRing) Peek(n uint32) (idx, got uint32) { return r.peek(n) }

// Get returns the frame address in peeked slot idx.
func (r *CompRing) Get(idx uint32) uint64 { return r.addrs[idx&r.mask] }

// Release returns the next n peeked slots to the kernel (store-release).
// n is clamped to the number peeked and not yet released.
func (r *CompRing) Release(n uint32) { r.release(n) }

func (r *CompRing) detach() { r.consIdx.detach(); r.addrs = make([]uint64, 1) }

// Size returns the number of entries in the ring (1 after its socket closed).
func (r *CompRing) Size() uint32 { return r.size }

// RXRing is the receive ring: the kernel produces descriptors of received
// frames. It is single-consumer: use it from one goroutine.
type RXRing struct {
	consIdx
	descs []unix.XDPDesc
}

// Peek claims up to n available descriptors and returns the first index and
// how many were claimed (0 when the ring is empty). It does not allocate.
func (r *RXRing) Peek(n uint32) (idx, got uint32) { return r.peek(n) }

// Get returns the descriptor in peeked slot idx. The frame it points to
// belongs to the application until its address is given back through the
// fill ring.
func (r *RXRing) Get(idx uint32) unix.XDPDesc { return r.descs[idx&r.mask] }

// Release returns the next n peeked slots to the kernel (store-release).
// n is clamped to the number peeked and not yet released. It releases ring
// slots only, not the frames.
func (r *RXRing) Release(n uint32) { r.release(n) }

func (r *RXRing) detach() { r.consIdx.detach(); r.descs = make([]unix.XDPDesc, 1) }

// Size returns the number of entries in the ring (1 after its socket closed).
func (r *RXRing) Size() uint32 { return r.size }

// ringMem locates a ring's parts inside one memory block.
type ringMem struct {
	producer, consumer, flags *uint32
	desc                      unsafe.Pointer
}

func newFillRing(m ringMem, size uint32) *FillRing {
	r := &FillRing{addrs: unsafe.Slice((*uint64)(m.desc), size)}
	r.init(m.producer, m.consumer, m.flags, size)
	return r
}

func newCompRing(m ringMem, size uint32) *CompRing {
	r := &CompRing{addrs: unsafe.Slice((*uint64)(m.desc), size)}
	r.init(m.producer, m.consumer, m.flags, size)
	return r
}

func newTXRing(m ringMem, size uint32) *TXRing {
	r := &TXRing{descs: unsafe.Slice((*unix.XDPDesc)(m.desc), size)}
	r.init(m.producer, m.consumer, m.flags, size)
	return r
}

func newRXRing(m ringMem, size uint32) *RXRing {
	r := &RXRing{descs: unsafe.Slice((*unix.XDPDesc)(m.desc), size)}
	r.init(m.producer, m.consumer, m.flags, size)
	return r
}
