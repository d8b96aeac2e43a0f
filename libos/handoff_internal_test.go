package libos

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/demixdp/demixdp/netstack/stack"
	"github.com/demixdp/demixdp/umem"
)

// TestRingOneProducerOneConsumer: entries come out in order, each once,
// across goroutines (run with -race too), and a full ring refuses.
func TestRingOneProducerOneConsumer(t *testing.T) {
	r := newRing(64)
	const total = 200000
	go func() {
		for i := uint64(1); i <= total; {
			if r.put(i) {
				i++
			}
		}
	}()
	for want := uint64(1); want <= total; {
		v, ok := r.get()
		if !ok {
			continue
		}
		if v != want {
			t.Fatalf("got %d, want %d", v, want)
		}
		want++
	}
	if _, ok := r.get(); ok || r.head.Load() != r.tail.Load() {
		t.Fatal("entries left over")
	}
	for i := range 64 {
		if !r.put(uint64(i)) {
			t.Fatalf("put %d into a ring of 64 refused", i)
		}
	}
	if r.put(99) {
		t.Fatal("a full ring took a 65th entry")
	}
	if v, _ := r.get(); v != 0 || !r.put(99) {
		t.Fatal("a ring with room again refused")
	}
}

func TestDescPacking(t *testing.T) {
	for _, c := range []struct {
		f      uint32
		off, n int
	}{{0, 0, 0}, {1, 256, 60}, {1<<32 - 1, 4095, 4096 - 256}, {12345, 256, 1514}} {
		f, off, n := unpackDesc(packDesc(c.f, c.off, c.n))
		if f != c.f || off != c.off || n != c.n {
			t.Fatalf("%+v came back as %d %d %d", c, f, off, n)
		}
	}
}

// testGroup is a group of n queues with nothing behind it but the port
// tables and rings, for the dispatch and frame tests.
func testGroup(n int) *group {
	g := &group{n: n, tcp: new(portTable), udp: new(portTable), addr: [4]byte{198, 51, 100, 1},
		alive: make([]atomic.Bool, n), inbox: make([]inbox, n), lendCap: 16, lendMax: 32, share: 64}
	g.lends, g.backs = make([][]*ring, n), make([][]*ring, n)
	for i := range n {
		g.lends[i], g.backs[i] = make([]*ring, n), make([]*ring, n)
		for j := range n {
			if i != j {
				g.lends[i][j], g.backs[i][j] = newRing(g.lendCap), newRing(g.lendCap)
			}
		}
		g.alive[i].Store(true)
	}
	return g
}

// frame builds an Ethernet/IPv4 frame with a 4-byte L4 header stub.
func frame(proto byte, dport uint16, ihl int, frag uint16) []byte {
	b := make([]byte, 14+ihl+8)
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	b[14] = 0x40 | byte(ihl/4)
	binary.BigEndian.PutUint16(b[20:], frag)
	b[23] = proto
	copy(b[30:34], []byte{198, 51, 100, 1})
	binary.BigEndian.PutUint16(b[14+ihl+2:], dport)
	return b
}

func arpFrame(op byte, tpa [4]byte) []byte {
	b := make([]byte, 42)
	binary.BigEndian.PutUint16(b[12:], 0x0806)
	b[14], b[15], b[16], b[17], b[18], b[19], b[20], b[21] = 0, 1, 8, 0, 6, 4, 0, op
	copy(b[38:42], tpa[:])
	return b
}

func TestGroupOwner(t *testing.T) {
	g := testGroup(4)
	g.tcp[7000].Store(0b1111) // a server's port: every queue
	g.tcp[61000].Store(0b0100)
	g.udp[61000].Store(0b1000)
	g.udp[9].Store(0b0110)
	ours := g.addr
	for _, c := range []struct {
		name string
		b    []byte
		self int
		want int
	}{
		{"tcp to every queue's port", frame(6, 7000, 20, 0), 1, mine},
		{"tcp to queue 2's port, on 0", frame(6, 61000, 20, 0), 0, 2},
		{"tcp to queue 2's port, on 2", frame(6, 61000, 20, 0), 2, mine},
		{"udp to queue 3's port", frame(17, 61000, 20, 0), 0, 3},
		{"udp to queues 1 and 2, on 0: the lowest", frame(17, 9, 20, 0), 0, 1},
		{"udp to queues 1 and 2, on 2", frame(17, 9, 20, 0), 2, mine},
		{"port nobody holds", frame(6, 1234, 20, 0), 0, mine},
		{"with IP options", frame(6, 61000, 24, 0), 0, 2},
		{"first fragment", frame(6, 61000, 20, 0x2000), 0, 2},
		{"later fragment: no ports", frame(6, 61000, 20, 0x0010), 0, mine},
		{"icmp", frame(1, 61000, 20, 0), 0, mine},
		{"IHL below 5", frame(6, 61000, 16, 0), 0, mine},
		{"truncated L4", frame(6, 61000, 20, 0)[:14+20+3], 0, mine},
		{"truncated IP", frame(6, 61000, 20, 0)[:33], 0, mine},
		{"runt", []byte{1, 2, 3}, 0, mine},
		{"IPv6", func() []byte { b := frame(6, 61000, 20, 0); b[12], b[13] = 0x86, 0xdd; return b }(), 0, mine},
		{"ARP request for us", arpFrame(1, ours), 0, arpShare},
		{"ARP reply for us", arpFrame(2, ours), 3, arpShare},
		{"ARP for someone else", arpFrame(1, [4]byte{198, 51, 100, 9}), 0, mine},
		{"short ARP", arpFrame(2, ours)[:40], 0, mine},
	} {
		if got := g.owner(c.b, c.self); got != c.want {
			t.Errorf("%s: owner %d, want %d", c.name, got, c.want)
		}
	}
	g.shared = true
	if got := g.owner(arpFrame(2, ours), 0); got != mine {
		t.Errorf("shared mode ARP: owner %d, want mine", got)
	}
}

// FuzzGroupOwner: whatever a received frame holds, the dispatch neither
// panics nor names a queue that does not exist or the receiver itself.
func FuzzGroupOwner(f *testing.F) {
	f.Add(frame(6, 61000, 20, 0), 0)
	f.Add(frame(17, 9, 60, 0), 2)
	f.Add(arpFrame(2, [4]byte{198, 51, 100, 1}), 1)
	g := testGroup(4)
	g.tcp[61000].Store(0b0100)
	g.udp[9].Store(0b0110)
	g.udp[2560].Store(0b1000)
	f.Fuzz(func(t *testing.T, b []byte, self int) {
		self &= 3
		got := g.owner(b, self)
		if got != mine && got != arpShare && (got < 0 || got >= g.n || got == self) {
			t.Fatalf("owner %d for queue %d of %d", got, self, g.n)
		}
	})
}

// secondQueue is queue 1 of a two-queue testGroup on a 128-frame UMEM:
// frames 64-127 are its own, 0-63 queue 0's.
func secondQueue(t *testing.T) (*group, *LibOS) {
	t.Helper()
	um, err := umem.New(umem.Config{NumFrames: 128})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { um.Close() })
	g := testGroup(2)
	l := &LibOS{grp: g, qi: 1, um: um, mtu: 1500}
	pool, err := umem.NewPool(um, 64, 64)
	if err != nil {
		t.Fatal(err)
	}
	l.pool.init(l, pool)
	return g, l
}

// drain takes every entry off r.
func drain(r *ring) []uint64 {
	var vs []uint64
	for {
		v, ok := r.get()
		if !ok {
			return vs
		}
		vs = append(vs, v)
	}
}

// TestFramePoolLentFrames: a frame another queue lent follows the pool's
// rules (references, free-protection on the TX ring) and goes back to its
// owner when the last holder lets go, exactly once.
func TestFramePoolLentFrames(t *testing.T) {
	g, l := secondQueue(t)
	returned := func() []uint64 { return drain(g.backs[1][0]) }

	// Received, popped, freed: back to queue 0.
	if err := l.pool.borrow(5); err != nil {
		t.Fatal(err)
	}
	if l.pool.State(5) != umem.StateRX || l.pool.held() != 1 {
		t.Fatalf("lent frame: state %v held %d", l.pool.State(5), l.pool.held())
	}
	if err := l.pool.borrow(5); !errors.Is(err, umem.ErrBadTransition) {
		t.Fatalf("lent twice: %v", err)
	}
	if err := l.pool.Ref(5); err != nil {
		t.Fatal(err)
	}
	l.pool.Unref(5)
	if vs := returned(); len(vs) != 0 {
		t.Fatalf("given back with a holder left: %v", vs)
	}
	l.pool.Unref(5)
	if vs := returned(); len(vs) != 1 || vs[0] != 5 || l.pool.held() != 0 {
		t.Fatalf("given back: %v, held %d", vs, l.pool.held())
	}
	if err := l.pool.Unref(5); !errors.Is(err, umem.ErrDoubleFree) {
		t.Fatalf("double free of a lent frame: %v", err)
	}
	if s := l.pool.Stats(); s.DoubleFrees != 1 {
		t.Fatalf("double free of a lent frame not counted: %+v", s)
	}
	if err := l.pool.borrow(200); !errors.Is(err, umem.ErrNotFrame) {
		t.Fatalf("borrowed a frame beyond the UMEM: %v", err)
	}

	// Echoed and freed at once: back only after the TX completion.
	l.pool.borrow(7)
	if err := l.pool.SubmitTX(7); err != nil {
		t.Fatal(err)
	}
	l.pool.Unref(7)
	if l.pool.State(7) != umem.StateAwaitCompletion || len(returned()) != 0 {
		t.Fatalf("freed on the TX ring: state %v", l.pool.State(7))
	}
	if err := l.pool.Completed(7); err != nil {
		t.Fatal(err)
	}
	if vs := returned(); len(vs) != 1 || vs[0] != 7 {
		t.Fatalf("after completion: %v", vs)
	}

	// Sent while held: completion leaves it with its holder.
	l.pool.borrow(9)
	l.pool.SubmitTX(9)
	l.pool.Completed(9)
	if l.pool.State(9) != umem.StateApp || len(returned()) != 0 {
		t.Fatalf("completed while held: state %v", l.pool.State(9))
	}
	l.pool.Unref(9)
	if vs := returned(); len(vs) != 1 || vs[0] != 9 {
		t.Fatalf("freed after completion: %v", vs)
	}

	// The queue's own frames stay with its pool; a frame of its own
	// cannot be lent to it.
	f, err := l.pool.Alloc()
	if err != nil || f < 64 {
		t.Fatalf("Alloc: %d %v", f, err)
	}
	if err := l.pool.borrow(f); err == nil {
		t.Fatal("borrowed its own frame")
	}
	l.pool.Unref(f)
	if len(returned()) != 0 || l.pool.Available() != 64 {
		t.Fatal("own frame given away")
	}
	if l.pool.State(200) != umem.StateInvalid {
		t.Fatal("frame beyond the UMEM has a state")
	}
}

// BenchmarkRingPutGet: one descriptor through a hand-off ring (producer
// and consumer on one goroutine: the cost of the two atomic stores and
// loads, not of the cache line moving between cores).
func BenchmarkRingPutGet(b *testing.B) {
	r := newRing(512)
	for i := 0; b.Loop(); i++ {
		r.put(uint64(i))
		r.get()
	}
}

// BenchmarkGroupOwner: the dispatch every received frame of a group pays.
func BenchmarkGroupOwner(b *testing.B) {
	g := testGroup(4)
	g.tcp[61000].Store(0b0100)
	f := frame(6, 61000, 20, 0)
	for b.Loop() {
		g.owner(f, 0)
	}
}

// TestTakeHandoffsComesBackForWhatABatchLeft: a turn takes at most Batch
// hand-offs from one queue's ring and marks that queue in its inbox again,
// so the next turn takes the rest even if that queue hands over nothing
// more; every frame taken goes back to its owner once the stack is done
// with it (here: it drops the frames, which are no IPv4).
func TestTakeHandoffsComesBackForWhatABatchLeft(t *testing.T) {
	g, l := secondQueue(t)
	l.cfg.Batch = 2
	l.link.l = l
	l.link.tags = make([]uint64, l.pool.Len())
	l.link.lentTags = map[uint32]uint64{}
	var err error
	if l.stack, err = stack.New(&l.link, &l.link, l, stack.Config{Addr: netip.MustParsePrefix("198.51.100.1/24")}); err != nil {
		t.Fatal(err)
	}
	g.libs = []*LibOS{{}, l}

	// Queue 0 hands five of its frames over, and nothing after.
	for f := uint32(0); f < 5; f++ {
		if !g.lends[0][1].put(packDesc(f, 256, 60)) {
			t.Fatal("lend ring full")
		}
	}
	g.post(0, 1)
	for turn, want := range []int{2, 2, 1, 0} {
		if got := l.takeHandoffs(); got != want {
			t.Fatalf("turn %d took %d hand-offs, want %d", turn, got, want)
		}
	}
	if l.inboxPending() {
		t.Fatal("inbox still marked with nothing left")
	}
	back := drain(g.backs[1][0])
	if len(back) != 5 || l.pool.held() != 0 {
		t.Fatalf("given back %v, still held %d; want all 5 back", back, l.pool.held())
	}
	if !g.inbox[0].from.CompareAndSwap(1<<1, 0) {
		t.Fatalf("the owner's inbox is %b, want queue 1 marked", g.inbox[0].from.Load())
	}
}
