package tcp_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/demixdp/demixdp/netstack/nic"
	"github.com/demixdp/demixdp/netstack/tcp"
	"golang.org/x/sys/unix"
)

// budgetFx is a fixture whose engine has frame budgets: a listener on
// ourPort and connections from peer ports 40000, 40001, ...
type budgetFx struct {
	*fx
	l     *tcp.Endpoint
	conns []*tcp.Endpoint
	iss   []tcp.Seq
	rcv   []tcp.Seq // next peer sequence number of each connection
}

func newBudgetFx(t *testing.T, frames int) *budgetFx {
	f := &budgetFx{fx: newFx(t, tcp.Config{Frames: frames})}
	f.l = f.listen(64)
	return f
}

// connect accepts one more connection (MSS 1460 and no other option, so
// windows are in bytes).
func (f *budgetFx) connect() *tcp.Endpoint {
	f.t.Helper()
	port := uint16(peerPort + len(f.conns))
	f.inject(seg{flags: tcp.FlagSYN, seq: peerISN, sport: port, opts: &tcp.Options{HasMSS: true, MSS: 1460}})
	sa := f.one(tcp.FlagSYN | tcp.FlagACK)
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: sa.Seq() + 1, sport: port})
	f.none()
	e, err := f.l.Accept(uint64(10 + len(f.conns)))
	if err != nil {
		f.t.Fatal(err)
	}
	f.conns = append(f.conns, e)
	f.iss = append(f.iss, sa.Seq())
	f.rcv = append(f.rcv, peerISN+1)
	return e
}

// data sends n full segments to connection i and returns the ACKs sent.
func (f *budgetFx) data(i, n int) []out {
	var acks []out
	for k := 0; k < n; k++ {
		f.inject(seg{flags: tcp.FlagACK, seq: f.rcv[i], ack: f.iss[i] + 1, sport: uint16(peerPort + i), data: fill(1460, byte(k))})
		f.rcv[i] += 1460
		acks = append(acks, f.sent()...)
	}
	f.advance(50 * time.Millisecond) // delayed ACKs
	return append(acks, f.sent()...)
}

func fill(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }

func rightEdge(a out) tcp.Seq { return a.Ack() + tcp.Seq(a.Window()) }

// The share shrinks as connections start holding frames and grows back as
// they let go; a connection holding nothing does not count.
func TestShareFollowsTheConnectionsHoldingFrames(t *testing.T) {
	f := newBudgetFx(t, 40)
	p := f.h.s.TCP()
	if s := p.Share(); s != 10 {
		t.Fatalf("share with nobody holding: %d, want the ceiling 10", s)
	}
	for i := 0; i < 4; i++ {
		f.connect()
	}
	if s := p.Share(); s != 10 {
		t.Fatalf("share with 4 idle connections: %d, want 10 (idle ones do not count)", s)
	}
	wants := []int{10, 6, 5, 4} // 40/4, 40/6, 40/8, 40/10
	for i, want := range wants {
		f.data(i, 1)
		if s := p.Share(); s != want {
			t.Fatalf("share with %d holders: %d, want %d", i+1, s, want)
		}
	}
	if got := p.FramesHeld(); got != 4 {
		t.Fatalf("frames held %d, want 4", got)
	}
	for i := range wants {
		b, err := f.conns[i].Recv()
		if err != nil {
			t.Fatal(err)
		}
		f.link.Release(b.Frame)
	}
	if s, h := p.Share(), p.FramesHeld(); s != 10 || h != 0 {
		t.Fatalf("after every Recv: share %d, held %d; want 10, 0", s, h)
	}
}

// The advertised window is what the share can back, and its right edge
// never moves back when the share shrinks.
func TestWindowFollowsTheShareAndNeverShrinks(t *testing.T) {
	f := newBudgetFx(t, 40)
	a := f.connect()
	acks := f.data(0, 3)
	last := acks[len(acks)-1]
	// Alone: 10 frames, 3 held: 7 segments of window left.
	if w := last.Window(); w != 7*1460 {
		t.Fatalf("window %d with 3 of 10 frames held, want %d", w, 7*1460)
	}
	edge := rightEdge(last)
	// Three more connections start holding: the share falls to 4.
	for i := 1; i <= 3; i++ {
		f.connect()
		f.data(i, 1)
	}
	if s := f.h.s.TCP().Share(); s != 4 {
		t.Fatalf("share %d, want 4", s)
	}
	// More data for a: every ACK keeps the right edge.
	for _, k := range f.data(0, 2) {
		if k.DstPort() != peerPort {
			continue
		}
		if e := rightEdge(k); e != edge {
			t.Fatalf("right edge moved from %d to %d as the share shrank", edge, e)
		}
	}
	// The window is used up: a (holding 5 > 4) advertises nothing more
	// until its application reads, and then only what the share backs.
	for i := 0; i < 5; i++ {
		b, _ := a.Recv()
		f.link.Release(b.Frame)
	}
	f.advance(time.Millisecond)
	for _, k := range f.sent() {
		if k.DstPort() == peerPort && rightEdge(k).LessThan(edge) {
			t.Fatalf("right edge moved back to %d from %d", rightEdge(k), edge)
		}
	}
}

// A push that would take the send queue beyond the share is refused with
// EAGAIN (an empty queue always takes one), and EventWritable follows once
// half of it is acknowledged.
func TestSendBeyondTheShareGivesEAGAIN(t *testing.T) {
	f := newBudgetFx(t, 40)
	e := f.connect()
	e.SetNoDelay(true)
	var bufs [12]nic.Buf
	for i := range bufs {
		bufs[i], _ = f.link.Alloc()
		bufs[i].Len = 1000
	}
	if err := e.Send(bufs[:12], 1); err != nil {
		t.Fatalf("the first push (12 frames) into an empty queue: %v", err)
	}
	if err := e.Send(bufs[:1], 2); err != unix.EAGAIN {
		t.Fatalf("a push beyond the share of 10: %v, want EAGAIN", err)
	}
	for i := range bufs {
		f.link.Release(bufs[i].Frame)
	}
	f.sent()
	// Acknowledge 6 of 12: 6 left is more than half the share (10/2).
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: f.iss[0] + 1 + 6000, sport: peerPort})
	if f.h.has(10, tcp.EventWritable) {
		t.Fatal("EventWritable with 6 of 10 frames still held")
	}
	f.inject(seg{flags: tcp.FlagACK, seq: peerISN + 1, ack: f.iss[0] + 1 + 7000, sport: peerPort})
	if !f.h.has(10, tcp.EventWritable) {
		t.Fatal("no EventWritable with 5 of 10 frames held")
	}
}

// When frames run short, connections over their share are trimmed to it:
// their received data is spilled out of the frames and still delivered
// byte for byte, and their unacknowledged send data is spilled and still
// retransmitted byte for byte.
func TestReclaimSpillsAndDeliversIntact(t *testing.T) {
	f := newBudgetFx(t, 40)
	a := f.connect()
	a.SetNoDelay(true)
	f.data(0, 8) // 8 received frames held, application not reading
	// 6 segments sent, none acknowledged.
	for k := 0; k < 6; k++ {
		f.push(a, fill(1000, byte(100+k)), uint64(k+1))
	}
	if got := len(f.sent()); got != 6 {
		t.Fatalf("sent %d segments, want 6", got)
	}
	for i := 1; i <= 3; i++ {
		f.connect()
		f.data(i, 1)
	}
	share := f.h.s.TCP().Share()
	// Frames run short: the next segment to anyone triggers a reclaim.
	f.link.ScarceBelow = f.link.Free() + 1
	f.data(1, 1)
	f.link.ScarceBelow = 0
	snd, rcv, sndSp, rcvSp := a.Held()
	if snd > share || rcv > share || sndSp != 6-snd || rcvSp != 8-rcv {
		t.Fatalf("after reclaim: held snd %d rcv %d, spilled snd %d rcv %d; share %d", snd, rcv, sndSp, rcvSp, share)
	}
	c := f.h.s.TCP().Counters()
	if c.Reclaims == 0 || c.SpilledFrames < 6 {
		t.Fatalf("counters: %d reclaims, %d frames spilled", c.Reclaims, c.SpilledFrames)
	}
	// Received data comes back intact, in order.
	for k := 0; k < 8; k++ {
		b, err := a.Recv()
		if err != nil {
			t.Fatalf("Recv %d: %v", k, err)
		}
		if !bytes.Equal(b.Bytes(), fill(1460, byte(k))) {
			t.Fatalf("segment %d differs after the spill", k)
		}
		f.link.Release(b.Frame)
	}
	// The RTO resends the first segment: from its spilled copy if it was
	// spilled, and intact either way.
	f.advance(2 * time.Second)
	var rexmit []out
	for _, s := range f.sent() {
		if s.DstPort() == peerPort && len(s.payload) > 0 {
			rexmit = append(rexmit, s)
		}
	}
	if len(rexmit) == 0 || rexmit[0].Seq() != f.iss[0]+1 || !bytes.Equal(rexmit[0].payload, fill(1000, 100)) {
		t.Fatalf("retransmission after the spill: %d segments", len(rexmit))
	}
	// Everything acknowledged: every push completes and nothing is held.
	f.inject(seg{flags: tcp.FlagACK, seq: f.rcv[0], ack: f.iss[0] + 1 + 6000, sport: peerPort})
	for k := 1; k <= 6; k++ {
		if err, ok := f.h.done[uint64(k)]; !ok || err != nil {
			t.Fatalf("push %d: done %v %v", k, ok, err)
		}
	}
	if snd, rcv, sndSp, rcvSp := a.Held(); snd+rcv+sndSp+rcvSp != 0 {
		t.Fatalf("still held: %d %d %d %d", snd, rcv, sndSp, rcvSp)
	}
}
