package tcp_test

import (
	"bytes"
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

// fairHost is a stack on a memwire end that remembers, in order, which
// endpoints had events since the last poll, so that a test with a
// thousand connections only looks at the ones that can move, and does so
// in the same order on every run.
type fairHost struct {
	s      *stack.Stack
	link   nic.Link
	queue  []uint64
	queued map[uint64]bool
}

func (h *fairHost) touch(c uint64) {
	if !h.queued[c] {
		h.queued[c] = true
		h.queue = append(h.queue, c)
	}
}

// take returns the endpoints touched since the last take, in order.
func (h *fairHost) take() []uint64 {
	q := h.queue
	h.queue = nil
	for _, c := range q {
		delete(h.queued, c)
	}
	return q
}

func (h *fairHost) Readable(c uint64)                       { h.touch(c) }
func (h *fairHost) Done(uint64, error)                      {}
func (h *fairHost) TCPEvent(c uint64, _ tcp.Event, _ error) { h.touch(c) }

func newFairHost(t *testing.T, l nic.Link, clk nic.Clock, addr netip.Prefix, frames int) *fairHost {
	h := &fairHost{link: l, queued: map[uint64]bool{}}
	s, err := stack.New(l, clk, h, stack.Config{Addr: addr, TCP: tcp.Config{
		Frames: frames, MSL: time.Second,
		ISN:     tcp.NewISNGeneratorKey([16]byte{1}),
		Cookies: tcp.NewSYNCookiesKey([16]byte{2}),
	}})
	if err != nil {
		t.Fatal(err)
	}
	h.s = s
	return h
}

// echoConn is the server side of one connection: it pushes back what it
// receives and stops reading while a push is refused (as tcp-echo does).
type echoConn struct {
	e    *tcp.Endpoint
	held nic.Buf
	has  bool
	eof  bool
}

// fairClient is one client: it sends its bytes and, unless it is a hog,
// reads the echo and checks it.
type fairClient struct {
	e          *tcp.Endpoint
	hog        bool
	data       []byte
	sent, rcvd int
	shut, done bool
	last       int64 // virtual time of the last progress (bytes echoed back)
	maxGap     int64 // longest time without progress
}

// TestNeverReadingClientsCannotStarveTheOthers: 1,000 connections to one
// echo server over the simulated wire, 100 of which send and never read
// their echoes. With frame budgets on both ends, every other connection
// gets its data echoed byte for byte, and none waits longer than the bound
// derived from the RTO (a stall longer than the first seven backoffs from
// the minimum RTO means starvation). Deterministic: one seed, virtual time.
func TestNeverReadingClientsCannotStarveTheOthers(t *testing.T) {
	const (
		conns, hogs = 1000, 100
		size        = 16 << 10  // each well-behaved client's bytes
		hogSize     = 256 << 10 // each hog's bytes
		frames      = 4096      // per end of the wire
		bound       = int64(25400 * time.Millisecond)
	)
	w := memwire.New(memwire.Config{Seed: 21, Frames: frames, Delay: 100 * time.Microsecond})
	w.A.ScarceBelow, w.B.ScarceBelow = 64, 64
	srv := newFairHost(t, w.A, &w.Clock, addrA, frames-256)
	cli := newFairHost(t, w.B, &w.Clock, addrB, frames-256)
	w.Attach(srv.s, cli.s)
	l := srv.s.NewTCP(1 << 40)
	if err := l.Bind(netip.AddrPortFrom(addrA.Addr(), 7)); err != nil {
		t.Fatal(err)
	}
	if err := l.Listen(4096); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(3))
	clients := make([]*fairClient, conns)
	for i := range clients {
		c := &fairClient{e: cli.s.NewTCP(uint64(i)), hog: i%(conns/hogs) == 0}
		c.e.SetNoDelay(true)
		n := size
		if c.hog {
			n = hogSize
		}
		c.data = make([]byte, n)
		rng.Read(c.data)
		if err := c.e.Connect(netip.AddrPortFrom(addrA.Addr(), 7)); err != nil {
			t.Fatal(err)
		}
		clients[i] = c
	}
	var servers []*echoConn
	pollServer := func() bool {
		progress := false
		for _, k := range srv.take() {
			if k == 1<<40 {
				for {
					e, err := l.Accept(uint64(len(servers)))
					if err != nil {
						break
					}
					servers = append(servers, &echoConn{e: e})
					srv.touch(uint64(len(servers) - 1)) // data may be waiting already
					progress = true
				}
				continue
			}
			s := servers[k]
			for !s.eof {
				if s.has {
					if err := s.e.Send([]nic.Buf{s.held}, 0); err == unix.EAGAIN {
						break
					} else if err != nil {
						t.Fatalf("echo %d: %v", k, err)
					}
					srv.link.Release(s.held.Frame)
					s.has = false
					progress = true
				}
				b, err := s.e.Recv()
				if err == io.EOF {
					s.eof = true
					s.e.Close()
					progress = true
					break
				}
				if err != nil {
					break
				}
				s.held, s.has = b, true
			}
		}
		return progress
	}
	var buf [4]nic.Buf
	var again []uint64 // clients that found no frame for their data: try again next time
	pollClients := func() bool {
		progress := false
		now := w.Clock.T
		for _, k := range again {
			cli.touch(k)
		}
		again = again[:0]
		for _, k := range cli.take() {
			c := clients[k]
			if c.e.State() == tcp.StateSynSent || c.e.State() == tcp.StateClosed {
				continue
			}
			if c.last == 0 {
				c.last = now
			}
			for c.sent < len(c.data) {
				n := 0
				for n < len(buf) && c.sent < len(c.data) {
					b, err := cli.link.Alloc()
					if err != nil {
						break
					}
					b.Len = copy(b.Data[b.Off:b.Off+min(c.e.SndMSS(), len(b.Data)-b.Off)], c.data[c.sent:])
					buf[n] = b
					c.sent += b.Len
					n++
				}
				if n == 0 {
					again = append(again, k)
					break
				}
				err := c.e.Send(buf[:n], 0)
				for _, b := range buf[:n] {
					cli.link.Release(b.Frame)
				}
				if err != nil {
					for _, b := range buf[:n] {
						c.sent -= b.Len
					}
					break
				}
				progress = true
			}
			if c.sent == len(c.data) && !c.shut && !c.hog {
				c.e.Shutdown()
				c.shut = true
			}
			if c.hog {
				continue
			}
			for {
				b, err := c.e.Recv()
				if err == io.EOF {
					if c.rcvd != len(c.data) {
						t.Fatalf("client %d: end of stream after %d of %d bytes", k, c.rcvd, len(c.data))
					}
					c.done = true
					c.e.Close()
					break
				}
				if err != nil {
					break
				}
				got := b.Bytes()
				if !bytes.Equal(got, c.data[c.rcvd:c.rcvd+len(got)]) {
					t.Fatalf("client %d: echo differs at byte %d", k, c.rcvd)
				}
				c.rcvd += len(got)
				cli.link.Release(b.Frame)
				c.maxGap = max(c.maxGap, now-c.last)
				c.last = now
				progress = true
			}
		}
		return progress
	}
	remaining := func() int {
		n := 0
		for _, c := range clients {
			if !c.hog && !c.done {
				n++
			}
		}
		return n
	}
	start := w.Clock.T
	end := start + int64(10*time.Minute)
	for remaining() > 0 {
		progress := w.Step()
		if pollServer() {
			progress = true
		}
		if pollClients() {
			progress = true
		}
		if !progress && !w.Advance() {
			t.Fatalf("idle with %d clients unfinished", remaining())
		}
		if w.Clock.T > end {
			t.Fatalf("%d clients unfinished after 10 minutes of virtual time", remaining())
		}
	}
	var worst int64
	for i, c := range clients {
		if c.hog {
			continue
		}
		if c.maxGap > bound {
			t.Errorf("client %d waited %v without progress, more than %v", i, time.Duration(c.maxGap), time.Duration(bound))
		}
		worst = max(worst, c.maxGap)
	}
	sc := srv.s.TCP().Counters()
	t.Logf("%d clients echoed %d KB each beside %d that never read, in %v of virtual time; longest wait %v; server: %d frames held by %d connections (share %d, most %d), %d reclaims, %d frames spilled, %d pressure drops",
		conns-hogs, size>>10, hogs, time.Duration(w.Clock.T-start), time.Duration(worst),
		sc.FramesHeld, sc.Holders, sc.ShareFrames, sc.MaxConnFrames, sc.Reclaims, sc.SpilledFrames, sc.RcvPressureDrops)
	// Connections may hold more than a share that shrank after they
	// filled up, until the connections together hold three quarters of
	// the frames: then reclaiming trims them to it.
	pool := uint64(frames - 256)
	if sc.FramesHeld > pool {
		t.Errorf("connections hold %d frames, more than the %d they share", sc.FramesHeld, pool)
	}
	if sc.FramesHeld > pool-pool/4 && sc.MaxConnFrames > sc.ShareFrames {
		t.Errorf("%d frames held (over the high watermark) and a connection holds %d in one direction, more than its share %d",
			sc.FramesHeld, sc.MaxConnFrames, sc.ShareFrames)
	}
	if err := w.Check(); err != nil {
		t.Fatal(err)
	}
}
