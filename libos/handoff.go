package libos

import (
	"math/bits"
	"sync/atomic"

	"github.com/demixdp/demixdp/netstack/nic"
	"golang.org/x/sys/unix"
)

// Hand-offs between the loops of a group (OpenQueues).
//
// Where the NIC's RSS cannot be predicted (veth has no hash key; some
// drivers hide theirs), the replies of a connection one queue opened may
// arrive on another. The loop that receives such a frame looks up the
// destination port in the group's port table (ports.go), which says which
// queue holds it, and passes the frame's descriptor to that queue's loop
// through a single-producer, single-consumer ring: the UMEM is shared, so
// the frame itself is never copied. The receiving queue tracks the lent
// frame beside its own (frames.go) and, when its last holder lets go,
// passes the descriptor back through a second ring to the owner, whose
// pool takes it back. A queue lends each other queue at most the ring's
// size, and all of them together at most a quarter of its share, so a
// queue whose application hoards received data can take no more than that
// from the others. A sleeping loop is woken through its eventfd (wake.go)
// when something is put on one of its rings.
//
// In dedicated mode every queue resolves its own neighbours, and the peer
// sends its ARP on whatever queue it likes: the queue that receives an ARP
// request or reply for our address copies it, as a reply, to every other
// queue, so that all of them learn the sender; a copy costs a frame of the
// receiving queue's share.

// HandoffCounters count a queue's hand-offs (Counters.Handoffs).
type HandoffCounters struct {
	Out       uint64 // frames this queue received for another queue and handed to its loop (a descriptor, no copy)
	In        uint64 // frames another queue's loop handed to this one
	GivenBack uint64 // frames lent to this queue returned to their owner once done with
	Returned  uint64 // frames this queue lent that came back
	Dropped   uint64 // frames for another queue dropped: this queue's lending limit was reached, or that queue is closed
	ARPCopies uint64 // dedicated mode: ARP messages for our address copied to the other queues
	RSSPorts  uint64 // ephemeral ports chosen so that the NIC's RSS brings the replies to this queue (no hand-off needed)

	// Gauges, as of the snapshot.
	Held uint64 // frames other queues lent this one that it holds now
	Lent uint64 // frames of this queue that other queues hold now
}

// ring is a bounded single-producer, single-consumer queue of descriptors
// between two loops. Go's atomics are sequentially consistent, so an entry
// written before the Store of tail is visible after the Load that sees it.
type ring struct {
	buf  []uint64
	mask uint32
	_    [64]byte
	tail atomic.Uint32 // next slot the producer writes
	seen uint32        // the producer's last reading of head
	_    [64]byte
	head atomic.Uint32 // next slot the consumer reads
	have uint32        // the consumer's last reading of tail
	_    [64]byte
}

func newRing(size int) *ring {
	return &ring{buf: make([]uint64, size), mask: uint32(size - 1)}
}

// put appends v; false if the ring is full. Producer only.
//
//demixdp:hotpath — allocates nothing.
func (r *ring) put(v uint64) bool {
	t := r.tail.Load()
	if t-r.seen > r.mask {
		r.seen = r.head.Load()
		if t-r.seen > r.mask {
			return false
		}
	}
	r.buf[t&r.mask] = v
	r.tail.Store(t + 1)
	return true
}

// get takes the oldest entry; false if the ring is empty. Consumer only.
//
//demixdp:hotpath — allocates nothing.
func (r *ring) get() (uint64, bool) {
	h := r.head.Load()
	if h == r.have {
		r.have = r.tail.Load()
		if h == r.have {
			return 0, false
		}
	}
	v := r.buf[h&r.mask]
	r.head.Store(h + 1)
	return v, true
}

// inbox is a queue's set of queues that have put something on its rings
// (group.inbox), alone on its cache line.
type inbox struct {
	from atomic.Uint64
	_    [56]byte
}

// post marks that queue from put something on to's rings. The ring entry
// is visible to whoever sees the bit: a producer puts, then posts; the
// consumer clears the set, then reads the rings (sequentially consistent
// atomics). A bit already set needs no write: the clear that will take it
// comes after this put.
func (g *group) post(from, to int) {
	bit := uint64(1) << uint(from)
	if in := &g.inbox[to].from; in.Load()&bit == 0 {
		in.Or(bit)
	}
}

// A lent frame's descriptor: frame index, offset and length of the data.
func packDesc(f uint32, off, n int) uint64 { return uint64(f)<<32 | uint64(off)<<16 | uint64(n) }

func unpackDesc(v uint64) (f uint32, off, n int) {
	return uint32(v >> 32), int(v>>16) & 0xffff, int(v) & 0xffff
}

// handoffSet is a queue's side of the hand-offs.
type handoffSet struct {
	lent      []int  // by queue index: frames of ours that queue holds
	lentTotal int    // their sum
	bells     uint64 // queues to wake at the end of this turn
}

// dispatch results of group.owner besides a queue index.
const (
	mine     = -1 // this queue handles the frame
	arpShare = -2 // dedicated mode ARP for our address: this queue, and a copy to every other
)

// owner says which queue's loop must handle frame b that queue self
// received: mine, arpShare or the index of another queue. It reads only
// what it has checked is there; anything it does not understand is mine
// (the stack drops and counts what is malformed).
//
//demixdp:hotpath — allocates nothing.
func (g *group) owner(b []byte, self int) int {
	if len(b) < 14 {
		return mine
	}
	switch uint16(b[12])<<8 | uint16(b[13]) {
	case 0x0800:
	case 0x0806:
		// ARP for our address (target protocol address at 38): every
		// queue resolves its own neighbours, so every queue learns.
		if !g.shared && len(b) >= 42 && [4]byte(b[38:42]) == g.addr {
			return arpShare
		}
		return mine
	default:
		return mine
	}
	if len(b) < 34 || b[14]>>4 != 4 {
		return mine
	}
	ihl := int(b[14]&0x0f) * 4
	if ihl < 20 || (uint16(b[20])<<8|uint16(b[21]))&0x1fff != 0 {
		return mine // a bad header, or a later fragment (no ports)
	}
	var t *portTable
	switch b[23] {
	case unix.IPPROTO_TCP:
		t = g.tcp
	case unix.IPPROTO_UDP:
		t = g.udp
	default:
		return mine
	}
	l4 := 14 + ihl
	if len(b) < l4+4 {
		return mine
	}
	m := t[uint16(b[l4+2])<<8|uint16(b[l4+3])].Load()
	if m == 0 || m&(1<<uint(self)) != 0 {
		return mine
	}
	// A port several other queues hold goes to the lowest of them, so that
	// every frame of a flow goes to the same queue.
	return bits.TrailingZeros64(m)
}

// handOff is the receive path's hook: it returns true if received frame f
// (data at off, n bytes) belongs to another queue and has been handed to
// it (or dropped), false if this queue must handle it.
//
//demixdp:hotpath — allocates nothing.
func (l *LibOS) handOff(f uint32, off, n int) bool {
	g := l.grp
	to := g.owner(l.um.Frame(f)[off:off+n], l.qi)
	switch to {
	case mine:
		return false
	case arpShare:
		l.shareARP(l.um.Frame(f)[off : off+n])
		return false
	}
	l.lend(to, f, off, n)
	return true
}

// lend passes frame f (one of ours, holding one reference) to queue to's
// loop, or drops it if the lending limits are reached or to is closed.
func (l *LibOS) lend(to int, f uint32, off, n int) {
	g, h := l.grp, &l.hof
	if h.lent[to] >= g.lendCap || h.lentTotal >= g.lendMax || !g.alive[to].Load() ||
		!g.lends[l.qi][to].put(packDesc(f, off, n)) {
		l.ctr.Handoffs.Dropped++
		l.link.Release(f)
		return
	}
	g.post(l.qi, to)
	h.lent[to]++
	h.lentTotal++
	h.bells |= 1 << uint(to)
	l.ctr.Handoffs.Out++
}

// shareARP lends every other queue a copy of b, an ARP request or reply
// for our address, in frames of this queue's share. A copy is always a
// reply: the stack learns the sender of either (it is talking to us), but
// only this queue must answer a request.
func (l *LibOS) shareARP(b []byte) {
	for to := range l.grp.n {
		if to == l.qi {
			continue
		}
		f, err := l.pool.Alloc()
		if err != nil {
			l.ctr.Handoffs.Dropped++
			continue
		}
		const off = 256 // where received frames start (XDP_PACKET_HEADROOM)
		c := l.um.Frame(f)[off : off+len(b)]
		copy(c, b)
		c[20], c[21] = 0, 2 // ARP op: reply
		l.ctr.Handoffs.ARPCopies++
		l.lend(to, f, off, len(b))
	}
}

// giveBack passes lent frame f back to the queue that owns it.
func (l *LibOS) giveBack(f uint32) {
	g := l.grp
	owner := g.ownerOfFrame(f)
	// The owner lends this queue at most the ring's size, so the ring
	// always has room for what comes back.
	if !g.backs[l.qi][owner].put(uint64(f)) {
		l.ctr.OwnershipErrors++
		return
	}
	g.post(l.qi, owner)
	l.hof.bells |= 1 << uint(owner)
	l.ctr.Handoffs.GivenBack++
}

// takeHandoffs runs once per loop turn in a group: it takes the frames
// the other loops handed to this queue into the stack, takes back the
// frames they are done with, and wakes the loops this turn gave work to.
//
//demixdp:hotpath — allocates nothing.
func (l *LibOS) takeHandoffs() int {
	g, h := l.grp, &l.hof
	got := 0
	var posted uint64
	// Look before taking: a swap writes the line, which the other loops
	// post to, even when it holds nothing (most turns).
	if in := &g.inbox[l.qi].from; in.Load() != 0 {
		posted = in.Swap(0)
	}
	for ; posted != 0; posted &= posted - 1 {
		from := bits.TrailingZeros64(posted)
		in := g.lends[from][l.qi]
		for i := 0; ; i++ {
			if i == l.cfg.Batch {
				g.post(from, l.qi) // more than a batch: look again next turn
				break
			}
			v, ok := in.get()
			if !ok {
				break
			}
			f, off, n := unpackDesc(v)
			if l.pool.borrow(f) != nil {
				l.ctr.OwnershipErrors++
				continue
			}
			l.ctr.Handoffs.In++
			got++
			b := nic.Buf{Frame: f, Data: l.um.Frame(f), Off: off, Len: n}
			if l.mon.cap != nil {
				l.captureInput(b)
				continue
			}
			l.stack.Input(b)
		}
		back := g.backs[from][l.qi]
		for {
			v, ok := back.get()
			if !ok {
				break
			}
			if l.pool.Unref(uint32(v)) != nil {
				l.ctr.OwnershipErrors++
			}
			h.lent[from]--
			h.lentTotal--
			l.ctr.Handoffs.Returned++
		}
	}
	if got > 0 {
		l.stack.EndBatch()
	}
	l.ringBells()
	return got
}

// ringBells wakes the loops this queue gave something to since the last
// call (those asleep: a running loop looks at its rings every turn).
func (l *LibOS) ringBells() {
	for b := l.hof.bells; b != 0; b &= b - 1 {
		if i := bits.TrailingZeros64(b); i < len(l.grp.libs) {
			l.grp.libs[i].wake.ring()
		}
	}
	l.hof.bells = 0
}

// inboxPending reports whether another loop has put something on one of
// this queue's rings.
func (l *LibOS) inboxPending() bool { return l.grp.inbox[l.qi].from.Load() != 0 }

// ring wakes the loop if it is asleep (or about to be) in poll(2), without
// the EINTR a Wake makes a wait return: the loop just runs a turn.
func (w *waker) ring() {
	if w.sleeping.Load() == 0 {
		return
	}
	w.mu.RLock()
	if w.ok {
		unix.Write(w.fd, wakeValue[:])
	}
	w.mu.RUnlock()
}

// dropInbox gives back, unseen, the frames other queues handed this one
// and it never took (Close).
func (l *LibOS) dropInbox() {
	g := l.grp
	for from := range g.n {
		if from == l.qi {
			continue
		}
		for {
			v, ok := g.lends[from][l.qi].get()
			if !ok {
				break
			}
			f, _, _ := unpackDesc(v)
			if g.backs[l.qi][from].put(uint64(f)) {
				g.post(l.qi, from)
				l.hof.bells |= 1 << uint(from)
			}
		}
	}
	l.ringBells()
}

// groupCounters fills the counters a queue of a group has beside a lone
// LibOS's: the hand-off gauges, and the steering program's counters of
// this queue alone (the program is the group's).
func (l *LibOS) groupCounters(c *Counters) {
	c.Handoffs.Held = uint64(l.pool.held())
	c.Handoffs.Lent = uint64(l.hof.lentTotal)
	qs, err := l.steer.QueueCounters()
	if err != nil {
		return
	}
	for _, q := range qs {
		if q.Queue == l.cfg.Queue {
			c.Steering = q.Counters
		}
	}
}
