package tcp_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"hash"
	"io"
	"math/rand"
	"net/netip"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/memwire"
	"github.com/demixdp/demixdp/netstack/nic"
	"github.com/demixdp/demixdp/netstack/stack"
	"github.com/demixdp/demixdp/netstack/tcp"
	"golang.org/x/sys/unix"
)

// host is one stack on a memwire end, with the notifications it got.
type host struct {
	quiet  bool // count completions only (allocation tests)
	ndone  int
	t      testing.TB
	s      *stack.Stack
	link   nic.Link
	done   map[uint64]error
	events []hostEvent
}

type hostEvent struct {
	cookie uint64
	ev     tcp.Event
	err    error
}

func (h *host) Readable(uint64) {}
func (h *host) Done(tag uint64, err error) {
	if h.quiet {
		h.ndone++
		return
	}
	if _, dup := h.done[tag]; dup {
		h.t.Errorf("tag %d completed twice", tag)
	}
	h.done[tag] = err
}
func (h *host) TCPEvent(c uint64, ev tcp.Event, err error) {
	if !h.quiet && len(h.events) < 1<<16 {
		h.events = append(h.events, hostEvent{c, ev, err})
	}
}

func (h *host) has(c uint64, ev tcp.Event) bool {
	for _, e := range h.events {
		if e.cookie == c && e.ev == ev {
			return true
		}
	}
	return false
}

var (
	addrA = netip.MustParsePrefix("198.51.100.1/24")
	addrB = netip.MustParsePrefix("198.51.100.2/24")
)

func newHost(t testing.TB, l nic.Link, clk nic.Clock, addr netip.Prefix, cfg tcp.Config) *host {
	h := &host{t: t, link: l, done: map[uint64]error{}}
	if cfg.ISN == nil {
		cfg.ISN = tcp.NewISNGeneratorKey([16]byte{1, 2, 3})
		cfg.Cookies = tcp.NewSYNCookiesKey([16]byte{4, 5, 6})
	}
	s, err := stack.New(l, clk, h, stack.Config{Addr: addr, TCP: cfg, TxChecksumOffload: cfg.TxChecksumOffload})
	if err != nil {
		t.Fatal(err)
	}
	h.s = s
	return h
}

// pair is two hosts on a memwire.
type pair struct {
	t    testing.TB
	w    *memwire.Wire
	a, b *host
}

func newPair(t testing.TB, wc memwire.Config, cfg tcp.Config) *pair {
	if cfg.Frames == 0 {
		// Frame budgets on, as the libOS has them: the wire's frames
		// (8192 by default) less a margin for control segments.
		cfg.Frames = max(wc.Frames, 8192) - 256
	}
	w := memwire.New(wc)
	p := &pair{t: t, w: w}
	p.a = newHost(t, w.A, &w.Clock, addrA, cfg)
	p.b = newHost(t, w.B, &w.Clock, addrB, cfg)
	w.Attach(p.a.s, p.b.s)
	t.Cleanup(func() {
		if err := w.Check(); err != nil {
			t.Error(err)
		}
	})
	return p
}

// run drives the wire, calling poll after every step, until done returns
// true; it fails if the system goes idle or virtual time passes limit.
func (p *pair) run(limit time.Duration, poll func() bool, done func() bool) {
	p.t.Helper()
	end := p.w.Clock.T + int64(limit)
	for !done() {
		progress := p.w.Step()
		if poll != nil && poll() {
			progress = true
		}
		if done() {
			return
		}
		if !progress && !p.w.Advance() {
			p.t.Fatalf("idle at t=%v before done", time.Duration(p.w.Clock.T))
		}
		if p.w.Clock.T > end {
			p.t.Fatalf("not done after %v of virtual time", limit)
		}
	}
}

// connect makes a listener on a and a connection from b; it returns the
// accepted endpoint on a and the client on b.
func (p *pair) connect(port uint16) (srv, cli *tcp.Endpoint) {
	p.t.Helper()
	l := p.a.s.NewTCP(1)
	if err := l.Bind(netip.AddrPortFrom(addrA.Addr(), port)); err != nil {
		p.t.Fatal(err)
	}
	if err := l.Listen(16); err != nil {
		p.t.Fatal(err)
	}
	cli = p.b.s.NewTCP(2)
	if err := cli.Connect(netip.AddrPortFrom(addrA.Addr(), port)); err != nil {
		p.t.Fatal(err)
	}
	p.run(10*time.Second, nil, func() bool {
		if srv == nil {
			srv, _ = l.Accept(3)
		}
		return srv != nil && cli.State() == tcp.StateEstablished
	})
	if !p.b.has(2, tcp.EventEstablished) || !p.a.has(1, tcp.EventAcceptable) {
		p.t.Fatalf("events: a %v b %v", p.a.events, p.b.events)
	}
	return srv, cli
}

// streamer sends n pseudo-random bytes on an endpoint and reads what the
// other side sends, hashing both.
type streamer struct {
	t        testing.TB
	h        *host
	e        *tcp.Endpoint
	rng      *rand.Rand
	total    int
	sent     int
	rcvd     int
	pending  int
	tag      uint64
	sendHash hash.Hash
	rcvHash  hash.Hash
	eof      bool
	shut     bool
	data     []byte
	maxSeg   int
	peer     *streamer
}

func newStreamer(t testing.TB, h *host, e *tcp.Endpoint, seed int64, total int) *streamer {
	return &streamer{t: t, h: h, e: e, rng: rand.New(rand.NewSource(seed)), total: total,
		sendHash: sha256.New(), rcvHash: sha256.New(), tag: uint64(seed) << 32, data: make([]byte, 4096), maxSeg: 1700}
}

// poll pushes more data (at most 64 pushes in flight) and drains Recv.
func (s *streamer) poll() bool {
	progress := false
	var bufs [4]nic.Buf
	for s.sent < s.total && s.pending < 64 {
		n := 0
		for n < len(bufs) && s.sent < s.total {
			b, err := s.h.link.Alloc()
			if err != nil {
				break
			}
			size := s.e.SndMSS()
			if s.rng.Intn(5) == 0 {
				size = 1 + s.rng.Intn(s.maxSeg)
			}
			size = min(size, s.total-s.sent, len(b.Data)-b.Off)
			p := b.Data[b.Off : b.Off+size]
			s.rng.Read(p)
			b.Len = size
			bufs[n] = b
			n++
			s.sent += size
		}
		if n == 0 {
			break
		}
		s.tag++
		err := s.e.Send(bufs[:n], s.tag)
		if err != nil {
			// Roll back: nothing was queued.
			for _, b := range bufs[:n] {
				s.sent -= b.Len
				s.h.link.Release(b.Frame)
			}
			s.tag--
			if errors.Is(err, unix.EAGAIN) {
				break
			}
			s.t.Fatalf("Send: %v", err)
		}
		for _, b := range bufs[:n] {
			s.sendHash.Write(b.Bytes())
			s.h.link.Release(b.Frame) // the endpoint holds its own reference
		}
		s.pending++
		progress = true
	}
	for tag, err := range s.h.done {
		if tag>>32 == s.tag>>32 {
			if err != nil {
				s.t.Fatalf("push %d: %v (%+v)\npeer %+v\nengine %+v\npeer engine %+v", tag, err, s.e.Counters(), s.peer.e.Counters(), s.h.s.TCP().Counters(), s.peer.h.s.TCP().Counters())
			}
			delete(s.h.done, tag)
			s.pending--
		}
	}
	if s.sent == s.total && s.pending == 0 && !s.shut {
		if err := s.e.Shutdown(); err != nil {
			s.t.Fatal(err)
		}
		s.shut = true
		progress = true
	}
	for !s.eof {
		b, err := s.e.Recv()
		if err == io.EOF {
			s.eof = true
			progress = true
			break
		}
		if err != nil {
			if err != unix.EAGAIN {
				s.t.Fatalf("Recv: %v", err)
			}
			break
		}
		s.rcvHash.Write(b.Bytes())
		s.rcvd += b.Len
		s.h.link.Release(b.Frame)
		progress = true
	}
	return progress
}

func (s *streamer) finished() bool { return s.eof && s.shut }

// transfer moves n bytes each way over a wire with the given impairments
// and checks every byte (SHA-256), the final states and that no frame
// leaked.
func transfer(t *testing.T, wc memwire.Config, n int, cfg tcp.Config) *pair {
	p := newPair(t, wc, cfg)
	srv, cli := p.connect(80)
	a := newStreamer(t, p.a, srv, 1, n)
	b := newStreamer(t, p.b, cli, 2, n)
	a.peer, b.peer = b, a
	start := time.Now()
	t0 := p.w.Clock.T
	p.run(time.Hour, func() bool {
		x := a.poll()
		y := b.poll()
		return x || y
	}, func() bool { return a.finished() && b.finished() })
	xfer := time.Duration(p.w.Clock.T - t0)
	if a.rcvd != n || b.rcvd != n {
		t.Fatalf("received %d and %d bytes, want %d", a.rcvd, b.rcvd, n)
	}
	if !bytes.Equal(a.sendHash.Sum(nil), b.rcvHash.Sum(nil)) || !bytes.Equal(b.sendHash.Sum(nil), a.rcvHash.Sum(nil)) {
		t.Fatal("SHA-256 of received data differs from what was sent")
	}
	// Both sides closed: TIME_WAIT on one side, CLOSED on the other.
	srv.Close()
	cli.Close()
	p.run(5*time.Minute, nil, func() bool {
		return p.a.s.TCP().Conns() == 0 && p.b.s.TCP().Conns() == 0
	})
	ca, cb := p.a.s.TCP().Counters(), p.b.s.TCP().Counters()
	t.Logf("%d bytes each way in %v real, %v virtual (%.0f Mbit/s each way); wire %+v", n, time.Since(start).Round(time.Millisecond),
		xfer.Round(time.Millisecond), float64(n)*8/xfer.Seconds()/1e6, p.w.Stats)
	t.Logf("A: %+v", ca)
	t.Logf("B: %+v", cb)
	for p.w.Step() {
	}
	if p.w.A.InUse() != 0 || p.w.B.InUse() != 0 {
		t.Fatalf("frames still in use after close: A %d B %d", p.w.A.InUse(), p.w.B.InUse())
	}
	return p
}

func TestTransferClean(t *testing.T) {
	transfer(t, memwire.Config{Seed: 1}, 50<<20, tcp.Config{})
}

// checkRTOs fails if the transfer needed more than max RTOs in all. The
// figures before RACK-TLP (DupThresh recovery, head-only detection of lost
// retransmissions, no tail loss probe) are logged beside.
func checkRTOs(t *testing.T, p *pair, max uint64, before uint64) {
	n := p.a.s.TCP().Counters().RTOs + p.b.s.TCP().Counters().RTOs
	t.Logf("RTOs: %d (before RACK-TLP: %d)", n, before)
	if n > max {
		t.Errorf("%d RTOs, want at most %d", n, max)
	}
}

func TestTransferLoss1(t *testing.T) {
	p := transfer(t, memwire.Config{Seed: 2, Loss: 0.01, Reorder: 0.01, Dup: 0.01, Corrupt: 0.005}, 50<<20, tcp.Config{})
	checkRTOs(t, p, 0, 1)
}

func TestTransferLoss5(t *testing.T) {
	p := transfer(t, memwire.Config{Seed: 3, Loss: 0.05, Reorder: 0.02, Dup: 0.02, Corrupt: 0.01}, 50<<20, tcp.Config{})
	checkRTOs(t, p, 6, 12)
}

// TestTransferChecksumOffload: with transmit checksum offload every
// segment leaves with the pseudo-header's sum in its checksum field, and
// the wire completes it, as the kernel or a NIC does; under loss,
// reordering and corruption (which the receiver must still catch) every
// byte arrives.
func TestTransferChecksumOffload(t *testing.T) {
	p := transfer(t, memwire.Config{Seed: 5, Loss: 0.01, Reorder: 0.01, Corrupt: 0.005, TxChecksumOffload: true}, 8<<20, tcp.Config{TxChecksumOffload: true})
	// The wire completes every segment's checksum: one the stack had
	// computed in full would come out wrong, and the transfer would stall.
	segs := p.a.s.TCP().Counters().SegsOut + p.b.s.TCP().Counters().SegsOut
	if p.w.Stats.Partial != segs || p.w.Stats.Completed == 0 {
		t.Fatalf("the wire completed %d checksums (%d copies) for %d segments", p.w.Stats.Partial, p.w.Stats.Completed, segs)
	}
	if ca, cb := p.a.s.TCP().Counters(), p.b.s.TCP().Counters(); ca.BadChecksum+cb.BadChecksum == 0 {
		t.Fatal("no corrupted segment was caught: the test cannot tell a completed checksum from none")
	}
}

func TestTransferNewRenoLoss(t *testing.T) {
	transfer(t, memwire.Config{Seed: 4, Loss: 0.02, Reorder: 0.02}, 8<<20, tcp.Config{CC: tcp.CCNewReno})
}

// TestTransferIsReproducibleFromTheSeed runs the same impaired transfer
// twice: the wire and both engines must do exactly the same things.
func TestTransferIsReproducibleFromTheSeed(t *testing.T) {
	wc := memwire.Config{Seed: 42, Loss: 0.05, Reorder: 0.02, Dup: 0.02, Corrupt: 0.01}
	p1 := transfer(t, wc, 2<<20, tcp.Config{})
	p2 := transfer(t, wc, 2<<20, tcp.Config{})
	if p1.w.Stats != p2.w.Stats || p1.w.Clock.T != p2.w.Clock.T ||
		p1.a.s.TCP().Counters() != p2.a.s.TCP().Counters() || p1.b.s.TCP().Counters() != p2.b.s.TCP().Counters() {
		t.Fatalf("runs differ:\n%+v %d\n%+v %d", p1.w.Stats, p1.w.Clock.T, p2.w.Stats, p2.w.Clock.T)
	}
}
