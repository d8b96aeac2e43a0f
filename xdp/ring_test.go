package xdp

import (
	"runtime"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// memRing is ring memory in the Go heap. A producer view and a consumer view
// built over the same memRing play both sides of the protocol, the way the
// application and the kernel do over the mmapped rings.
type memRing struct {
	prod, cons, flags uint32
	entries           []uint64 // backing store, 8-byte aligned
}

// newMemRing makes a ring of size entries of entSize bytes whose producer and
// consumer indices start at start (to test the 2^32 wrap).
func newMemRing(size, entSize, start uint32) *memRing {
	return &memRing{prod: start, cons: start, entries: make([]uint64, size*entSize/8)}
}

func (m *memRing) mem() ringMem {
	return ringMem{&m.prod, &m.cons, &m.flags, unsafe.Pointer(&m.entries[0])}
}

// addrPair returns a fill-style producer and completion-style consumer over
// one ring of uint64 entries.
func addrPair(size, start uint32) (*FillRing, *CompRing, *memRing) {
	m := newMemRing(size, 8, start)
	return newFillRing(m.mem(), size), newCompRing(m.mem(), size), m
}

// descPair returns a TX-style producer and RX-style consumer over one ring of
// descriptors.
func descPair(size, start uint32) (*TXRing, *RXRing, *memRing) {
	m := newMemRing(size, 16, start)
	return newTXRing(m.mem(), size), newRXRing(m.mem(), size), m
}

func TestRingWrapsPast32Bits(t *testing.T) {
	const size = 8
	p, c, m := addrPair(size, 0xFFFFFFF0)
	next := uint64(0)
	want := uint64(0)
	// 40 rounds of 5 entries move the indices from 0xFFFFFFF0 across 2^32.
	for round := 0; round < 40; round++ {
		idx, got := p.Reserve(5)
		if got != 5 {
			t.Fatalf("round %d: Reserve(5) got %d", round, got)
		}
		for i := uint32(0); i < got; i++ {
			p.Set(idx+i, next)
			next++
		}
		p.Submit(got)
		idx, got = c.Peek(size)
		if got != 5 {
			t.Fatalf("round %d: Peek got %d, want 5", round, got)
		}
		for i := uint32(0); i < got; i++ {
			if v := c.Get(idx + i); v != want {
				t.Fatalf("round %d: entry %d = %d, want %d", round, i, v, want)
			}
			want++
		}
		c.Release(got)
	}
	// 0xFFFFFFF0 + 200 wraps to 200 - 16 = 184.
	if m.prod != 184 || m.cons != 184 {
		t.Fatalf("indices prod=%#x cons=%#x, want both 184 after the wrap", m.prod, m.cons)
	}
}

func TestRingFullAndEmpty(t *testing.T) {
	const size = 16
	for _, start := range []uint32{0, 0xFFFFFFF8} {
		p, c, _ := descPair(size, start)
		if _, got := c.Peek(1); got != 0 {
			t.Fatalf("start %#x: Peek on empty ring got %d", start, got)
		}
		if f := p.Free(); f != size {
			t.Fatalf("start %#x: Free on empty ring = %d, want %d", start, f, size)
		}
		// Reserve more than free: get exactly size.
		idx, got := p.Reserve(size + 10)
		if got != size || idx != start {
			t.Fatalf("start %#x: Reserve(size+10) = (%#x, %d), want (%#x, %d)", start, idx, got, start, size)
		}
		for i := uint32(0); i < got; i++ {
			p.Set(idx+i, unix.XDPDesc{Addr: uint64(i) * 2048, Len: i + 60})
		}
		// Full: nothing more, even before Submit.
		if _, got := p.Reserve(1); got != 0 {
			t.Fatalf("start %#x: Reserve on full ring got %d", start, got)
		}
		// Unsubmitted entries are invisible to the consumer.
		if _, got := c.Peek(1); got != 0 {
			t.Fatalf("start %#x: consumer saw %d unsubmitted entries", start, got)
		}
		p.Submit(size)
		if f := p.Free(); f != 0 {
			t.Fatalf("start %#x: Free on full ring = %d", start, f)
		}
		// Peek more than available: get what is there, in two steps.
		idx, got = c.Peek(10)
		if got != 10 {
			t.Fatalf("start %#x: Peek(10) got %d", start, got)
		}
		idx2, got2 := c.Peek(100)
		if got2 != size-10 || idx2 != idx+10 {
			t.Fatalf("start %#x: Peek(100) = (%#x, %d), want (%#x, %d)", start, idx2, got2, idx+10, size-10)
		}
		for i := uint32(0); i < size; i++ {
			d := c.Get(idx + i)
			if d.Addr != uint64(i)*2048 || d.Len != i+60 {
				t.Fatalf("start %#x: desc %d = %+v", start, i, d)
			}
		}
		// Peeked but unreleased slots are still not free for the producer.
		if _, got := p.Reserve(1); got != 0 {
			t.Fatalf("start %#x: producer reused %d unreleased slots", start, got)
		}
		c.Release(3)
		if _, got := p.Reserve(8); got != 3 {
			t.Fatalf("start %#x: after Release(3), Reserve(8) got %d", start, got)
		}
		c.Release(size) // clamped to the 13 still peeked
		if f := p.Free(); f != size-3 {
			t.Fatalf("start %#x: Free = %d, want %d", start, f, size-3)
		}
		if _, got := c.Peek(1); got != 0 {
			t.Fatalf("start %#x: ring should be empty, Peek got %d", start, got)
		}
	}
}

func TestRingClampsBadCounts(t *testing.T) {
	p, c, m := addrPair(8, 100)
	p.Submit(5) // nothing reserved: publishes nothing
	if m.prod != 100 {
		t.Fatalf("Submit without Reserve moved producer to %d", m.prod)
	}
	idx, got := p.Reserve(2)
	p.Set(idx, 1)
	p.Set(idx+1, 2)
	p.Set(idx+1000, 7) // out-of-window index: stays inside the ring, no panic
	p.Submit(got + 10)
	if m.prod != 102 {
		t.Fatalf("producer = %d, want 102", m.prod)
	}
	c.Release(4) // nothing peeked
	if m.cons != 100 {
		t.Fatalf("Release without Peek moved consumer to %d", m.cons)
	}
	// A corrupt producer index (more than size ahead) reads as empty.
	m.prod = 100 + 1000
	if _, got := c.Peek(4); got != 0 {
		t.Fatalf("corrupt producer index: Peek got %d", got)
	}
	if _, got := c.Peek(4); got != 0 {
		t.Fatalf("corrupt producer index, second Peek got %d", got)
	}
	// A corrupt consumer index reads as full once the cache runs out.
	m.cons = 102 + 1000
	if _, got := p.Reserve(6); got != 6 { // still within the cached window
		t.Fatalf("Reserve from cache got %d, want 6", got)
	}
	if _, got := p.Reserve(4); got != 0 {
		t.Fatalf("corrupt consumer index: Reserve got %d", got)
	}
}

func TestRingNeedWakeup(t *testing.T) {
	p, _, m := addrPair(8, 0)
	tx, _, dm := descPair(8, 0)
	if p.NeedWakeup() || tx.NeedWakeup() {
		t.Fatal("NeedWakeup with flags clear")
	}
	m.flags = unix.XDP_RING_NEED_WAKEUP
	dm.flags = unix.XDP_RING_NEED_WAKEUP
	if !p.NeedWakeup() || !tx.NeedWakeup() {
		t.Fatal("NeedWakeup false with XDP_RING_NEED_WAKEUP set")
	}
}

func TestRingDetachedAfterClose(t *testing.T) {
	p, c, _ := addrPair(8, 0)
	idx, got := p.Reserve(3)
	if got != 3 {
		t.Fatalf("Reserve(3) got %d", got)
	}
	p.Set(idx, 1)
	p.Submit(1)
	c.Peek(1)
	p.detach()
	c.detach()
	if _, got = p.Reserve(1); got != 0 || p.Free() != 0 {
		t.Fatalf("detached producer: Reserve got %d, Free %d", got, p.Free())
	}
	p.Set(idx+1, 5)
	p.Submit(5)
	if _, got = c.Peek(1); got != 0 {
		t.Fatalf("detached consumer: Peek got %d", got)
	}
	_ = c.Get(12345)
	c.Release(9)
}

// TestRingConcurrentInOrder moves entries from a producer goroutine to a
// consumer goroutine through a small ring and checks order and completeness.
// Under -race the count is cut down; the race detector checks the
// publish/observe ordering of the atomics against the plain entry accesses.
func TestRingConcurrentInOrder(t *testing.T) {
	total := uint64(10_000_000)
	if raceEnabled || testing.Short() {
		total = 200_000
	}
	p, c, _ := addrPair(256, 0xFFFFFF00)
	done := make(chan uint64)
	go func() {
		next := uint64(0)
		for next < total {
			idx, got := c.Peek(64)
			if got == 0 {
				runtime.Gosched() // 2 vCPUs: let the producer run
				continue
			}
			for i := uint32(0); i < got; i++ {
				if v := c.Get(idx + i); v != next {
					done <- ^next // report the mismatch
					return
				}
				next++
			}
			c.Release(got)
		}
		done <- next
	}()
	sent := uint64(0)
	for sent < total {
		want := uint32(min(64, total-sent))
		idx, got := p.Reserve(want)
		if got == 0 {
			runtime.Gosched()
			continue
		}
		for i := uint32(0); i < got; i++ {
			p.Set(idx+i, sent)
			sent++
		}
		p.Submit(got)
	}
	n := <-done
	t.Logf("moved %d entries", n)
	if n != total {
		if n > total {
			t.Fatalf("consumer saw entry out of order at %d", ^n)
		}
		t.Fatalf("consumer received %d of %d", n, total)
	}
}

func TestRingDatapathAllocs(t *testing.T) {
	p, c, _ := addrPair(256, 0)
	tx, rx, _ := descPair(256, 0)
	allocs := testing.AllocsPerRun(1000, func() {
		idx, got := p.Reserve(64)
		for i := uint32(0); i < got; i++ {
			p.Set(idx+i, uint64(i))
		}
		p.Submit(got)
		_ = p.Free()
		idx, got = c.Peek(64)
		for i := uint32(0); i < got; i++ {
			_ = c.Get(idx + i)
		}
		c.Release(got)
		idx, got = tx.Reserve(64)
		for i := uint32(0); i < got; i++ {
			tx.Set(idx+i, unix.XDPDesc{Addr: uint64(i), Len: 64})
		}
		tx.Submit(got)
		idx, got = rx.Peek(64)
		for i := uint32(0); i < got; i++ {
			_ = rx.Get(idx + i)
		}
		rx.Release(got)
	})
	if allocs != 0 {
		t.Fatalf("ring datapath allocates %.1f times per batch", allocs)
	}
}

// BenchmarkFillReserveSubmit produces batches of 64 into a fill ring whose
// consumer keeps up (the consumer side's work is included).
func BenchmarkFillReserveSubmit(b *testing.B) {
	p, c, _ := addrPair(2048, 0)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		idx, got := p.Reserve(64)
		for j := uint32(0); j < got; j++ {
			p.Set(idx+j, uint64(j)*2048)
		}
		p.Submit(got)
		if i&15 == 15 { // drain every 16 batches so Reserve hits the refresh path
			_, n := c.Peek(2048)
			c.Release(n)
		}
	}
}

// BenchmarkRXPeekRelease consumes batches of 64 descriptors from an RX ring
// that a producer keeps full.
func BenchmarkRXPeekRelease(b *testing.B) {
	tx, rx, _ := descPair(2048, 0)
	b.ReportAllocs()
	var sum uint64
	for i := 0; b.Loop(); i++ {
		if i&15 == 0 {
			_, n := tx.Reserve(2048)
			tx.Submit(n)
		}
		idx, got := rx.Peek(64)
		for j := uint32(0); j < got; j++ {
			sum += rx.Get(idx + j).Addr
		}
		rx.Release(got)
	}
	_ = sum
}
