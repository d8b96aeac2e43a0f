package tcp_test

// Behaviour between two stacks on a memwire: opens and closes that need
// both sides, and many connections at once.

import (
	"fmt"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/memwire"
	"github.com/demixdp/demixdp/netstack/nic"
	"github.com/demixdp/demixdp/netstack/tcp"
	"golang.org/x/sys/unix"
)

// sendString pushes s in one frame of h's link.
func sendString(t testing.TB, h *host, e *tcp.Endpoint, s string, tag uint64) {
	t.Helper()
	b, err := h.link.Alloc()
	if err != nil {
		t.Fatal(err)
	}
	b.Len = copy(b.Data[b.Off:], s)
	if err := e.Send([]nic.Buf{b}, tag); err != nil {
		t.Fatal(err)
	}
	h.link.Release(b.Frame)
}

// readAll drains e, returning the bytes and whether EOF was seen.
func readAll(h *host, e *tcp.Endpoint) (string, bool) {
	s := ""
	for {
		b, err := e.Recv()
		if err == io.EOF {
			return s, true
		}
		if err != nil {
			return s, false
		}
		s += string(b.Bytes())
		h.link.Release(b.Frame)
	}
}

func TestSimultaneousOpen(t *testing.T) {
	p := newPair(t, memwire.Config{Seed: 7}, tcp.Config{})
	a, b := p.a.s.NewTCP(1), p.b.s.NewTCP(2)
	if err := a.Bind(netip.AddrPortFrom(addrA.Addr(), 5000)); err != nil {
		t.Fatal(err)
	}
	if err := b.Bind(netip.AddrPortFrom(addrB.Addr(), 6000)); err != nil {
		t.Fatal(err)
	}
	if err := a.Connect(netip.AddrPortFrom(addrB.Addr(), 6000)); err != nil {
		t.Fatal(err)
	}
	if err := b.Connect(netip.AddrPortFrom(addrA.Addr(), 5000)); err != nil {
		t.Fatal(err)
	}
	p.run(time.Minute, nil, func() bool {
		return a.State() == tcp.StateEstablished && b.State() == tcp.StateEstablished
	})
	if !p.a.has(1, tcp.EventEstablished) || !p.b.has(2, tcp.EventEstablished) {
		t.Fatalf("events %v %v", p.a.events, p.b.events)
	}
	sendString(t, p.a, a, "crossed", 1)
	var got string
	p.run(time.Minute, nil, func() bool {
		s, _ := readAll(p.b, b)
		got += s
		return got == "crossed"
	})
}

func TestSimultaneousClose(t *testing.T) {
	p := newPair(t, memwire.Config{Seed: 8}, tcp.Config{MSL: time.Second})
	srv, cli := p.connect(80)
	srv.Shutdown()
	cli.Shutdown()
	p.run(time.Minute, nil, func() bool {
		return srv.State() == tcp.StateTimeWait && cli.State() == tcp.StateTimeWait
	})
	srv.Close()
	cli.Close()
	p.run(time.Minute, nil, func() bool { return p.a.s.TCP().Conns()+p.b.s.TCP().Conns() == 0 })
}

func TestHalfCloseKeepsTheOtherDirection(t *testing.T) {
	p := newPair(t, memwire.Config{Seed: 9}, tcp.Config{})
	srv, cli := p.connect(80)
	sendString(t, p.b, cli, "request", 1)
	if err := cli.Shutdown(); err != nil {
		t.Fatal(err)
	}
	var req string
	eof := false
	p.run(time.Minute, nil, func() bool {
		s, e := readAll(p.a, srv)
		req += s
		eof = eof || e
		return eof && cli.State() == tcp.StateFinWait2
	})
	if req != "request" || srv.State() != tcp.StateCloseWait || cli.State() != tcp.StateFinWait2 {
		t.Fatalf("req %q states %v %v", req, srv.State(), cli.State())
	}
	sendString(t, p.a, srv, "response after the client's FIN", 2)
	srv.Close()
	var resp string
	p.run(time.Minute, nil, func() bool {
		s, eof := readAll(p.b, cli)
		resp += s
		return eof
	})
	if resp != "response after the client's FIN" {
		t.Fatalf("resp %q", resp)
	}
	if cli.State() != tcp.StateTimeWait {
		t.Fatalf("client state %v", cli.State())
	}
	if err := p.a.done[2]; err != unix.ECANCELED {
		t.Fatalf("push pending at Close completed with %v, want ECANCELED", err)
	}
}

func TestPeerAbortResetsTheConnection(t *testing.T) {
	p := newPair(t, memwire.Config{Seed: 10}, tcp.Config{})
	srv, cli := p.connect(80)
	sendString(t, p.a, srv, "unacknowledged?", 5)
	cli.Abort()
	p.run(time.Minute, nil, func() bool { return srv.State() == tcp.StateClosed })
	if srv.Err() != unix.ECONNRESET || !p.a.has(3, tcp.EventError) {
		t.Fatalf("err %v events %v", srv.Err(), p.a.events)
	}
	srv.Close()
}

func TestListenerCloseResetsQueuedConnections(t *testing.T) {
	p := newPair(t, memwire.Config{Seed: 11}, tcp.Config{})
	l := p.a.s.NewTCP(1)
	l.Bind(netip.AddrPortFrom(addrA.Addr(), 80))
	l.Listen(4)
	c := p.b.s.NewTCP(2)
	c.Connect(netip.AddrPortFrom(addrA.Addr(), 80))
	p.run(time.Minute, nil, func() bool { return c.State() == tcp.StateEstablished })
	p.run(time.Minute, nil, func() bool { return p.a.s.TCP().Conns() == 1 && p.w.Next() == 0 || p.a.has(1, tcp.EventAcceptable) })
	l.Close()
	p.run(time.Minute, nil, func() bool { return c.State() == tcp.StateClosed })
	if c.Err() != unix.ECONNRESET {
		t.Fatalf("client err %v", c.Err())
	}
	c.Close()
	// The port is free again.
	l2 := p.a.s.NewTCP(3)
	if err := l2.Bind(netip.AddrPortFrom(addrA.Addr(), 80)); err != nil {
		t.Fatal(err)
	}
	l2.Close()
}

func TestAcceptQueueIsBounded(t *testing.T) {
	p := newPair(t, memwire.Config{Seed: 12}, tcp.Config{})
	l := p.a.s.NewTCP(1)
	l.Bind(netip.AddrPortFrom(addrA.Addr(), 80))
	l.Listen(2)
	var cs []*tcp.Endpoint
	for i := 0; i < 4; i++ {
		c := p.b.s.NewTCP(uint64(10 + i))
		if err := c.Connect(netip.AddrPortFrom(addrA.Addr(), 80)); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	p.run(10*time.Second, nil, func() bool { return p.a.s.TCP().Counters().AcceptQueueFull > 0 })
	// Accepting makes room; every client eventually gets in.
	n := 0
	p.run(5*time.Minute, func() bool {
		if e, err := l.Accept(uint64(100 + n)); err == nil {
			n++
			e.Close()
			return true
		}
		return false
	}, func() bool { return n == 4 })
	for _, c := range cs {
		c.Close()
	}
	l.Close()
}

func TestManyConnectionsEcho(t *testing.T) {
	const conns = 1000
	p := newPair(t, memwire.Config{Seed: 13, Frames: 16384}, tcp.Config{RcvBuf: 64 << 10, MSL: time.Second})
	l := p.a.s.NewTCP(1)
	l.Bind(netip.AddrPortFrom(addrA.Addr(), 7))
	l.Listen(1024)
	clients := make([]*tcp.Endpoint, conns)
	for i := range clients {
		clients[i] = p.b.s.NewTCP(uint64(i))
		if err := clients[i].Connect(netip.AddrPortFrom(addrA.Addr(), 7)); err != nil {
			t.Fatal(err)
		}
	}
	var servers []*tcp.Endpoint
	sent := make([]bool, conns)
	got := make([]string, conns)
	closed := 0
	p.run(10*time.Minute, func() bool {
		progress := false
		for {
			e, err := l.Accept(0)
			if err != nil {
				break
			}
			servers = append(servers, e)
			progress = true
		}
		// Servers echo and close once the client has closed.
		for i, e := range servers {
			if e == nil {
				continue
			}
			for {
				b, err := e.Recv()
				if err == io.EOF {
					e.Close()
					servers[i] = nil
					closed++
					break
				}
				if err != nil {
					break
				}
				if err := e.Send([]nic.Buf{b}, 0); err != nil {
					t.Fatalf("echo: %v", err)
				}
				p.a.link.Release(b.Frame)
				progress = true
			}
		}
		for i, c := range clients {
			if c.State() == tcp.StateEstablished && !sent[i] {
				sendString(t, p.b, c, fmt.Sprintf("hello from %d", i), 0)
				c.Shutdown()
				sent[i] = true
				progress = true
			}
			s, _ := readAll(p.b, c)
			if s != "" {
				got[i] += s
				progress = true
			}
		}
		return progress
	}, func() bool { return closed == conns && p.b.s.TCP().Conns() == 0 && p.a.s.TCP().Conns() == 0 })
	for i := range got {
		if want := fmt.Sprintf("hello from %d", i); got[i] != want {
			t.Fatalf("client %d got %q", i, got[i])
		}
		clients[i].Close()
	}
	l.Close()
}

// TestWindowSmallerThanASegmentStillMakesProgress: a receiver whose buffer
// is smaller than the sender's segments gets them as window probes and
// keeps what fits.
func TestWindowSmallerThanASegmentStillMakesProgress(t *testing.T) {
	w := memwire.New(memwire.Config{Seed: 14})
	p := &pair{t: t, w: w}
	p.a = newHost(t, w.A, &w.Clock, addrA, tcp.Config{RcvBuf: 1000})
	p.b = newHost(t, w.B, &w.Clock, addrB, tcp.Config{})
	w.Attach(p.a.s, p.b.s)
	srv, cli := p.connect(80)
	want := string(payload(5000))
	b, _ := p.b.link.Alloc()
	b.Len = copy(b.Data[b.Off:], want[:cli.SndMSS()])
	if err := cli.Send([]nic.Buf{b}, 1); err != nil {
		t.Fatal(err)
	}
	p.b.link.Release(b.Frame)
	got := ""
	p.run(10*time.Minute, nil, func() bool {
		s, _ := readAll(p.a, srv)
		got += s
		return len(got) == cli.SndMSS()
	})
	if got != want[:cli.SndMSS()] {
		t.Fatal("data differs")
	}
	if err := w.Check(); err != nil {
		t.Fatal(err)
	}
}
