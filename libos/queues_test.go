package libos_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/labtest"
	"github.com/demixdp/demixdp/internal/vethlab"
	"github.com/demixdp/demixdp/libos"
	"github.com/demixdp/demixdp/rss"
	"golang.org/x/sys/unix"
)

// labQueues builds a lab whose veth has n queues and opens every queue of
// its A side with OpenQueues.
func labQueues(t testing.TB, n int, mode libos.Mode, tweak func(*libos.Config)) (*vethlab.Lab, []*libos.LibOS) {
	t.Helper()
	lab := vethlab.ForTest(t, vethlab.Config{Name: "mq", KernelAddrA: mode == libos.Shared, Queues: n})
	cfg := libos.Config{Interface: lab.IfA, Addr: lab.AddrA, Mode: mode}
	if tweak != nil {
		tweak(&cfg)
	}
	var libs []*libos.LibOS
	err := lab.RunInA(func() (err error) {
		libs, err = libos.OpenQueues(cfg)
		return err
	})
	if err != nil {
		t.Fatalf("libos.OpenQueues: %v", err)
	}
	if len(libs) != n {
		t.Fatalf("OpenQueues opened %d queues of a %d-queue veth", len(libs), n)
	}
	t.Cleanup(func() {
		for _, l := range libs {
			l.Close()
		}
	})
	return lab, libs
}

// runAll runs fn on every queue (RunQueues) until stop is closed, and
// returns once every fn has called ready (or returned): servers call it
// when their ports are bound, so that nothing the test sends next finds a
// queue without its socket. The returned function closes stop and waits;
// only after it returns may the test touch the LibOS values.
func runAll(t *testing.T, libs []*libos.LibOS, fn func(lib *libos.LibOS, stop <-chan struct{}, ready func()) error) (wait func()) {
	t.Helper()
	stop, done := make(chan struct{}), make(chan error, 1)
	var up sync.WaitGroup
	up.Add(len(libs))
	go func() {
		done <- libos.RunQueues(libs, func(l *libos.LibOS) error {
			var once sync.Once
			ready := func() { once.Do(up.Done) }
			defer ready()
			return fn(l, stop, ready)
		})
	}()
	up.Wait()
	var once sync.Once
	wait = func() {
		once.Do(func() {
			close(stop)
			if err := <-done; err != nil {
				t.Errorf("queues: %v", err)
			}
		})
	}
	t.Cleanup(wait)
	return wait
}

// udpEchoOn is the per-queue UDP echo: every queue binds the same port.
func udpEchoOn(addr netip.AddrPort) func(*libos.LibOS, <-chan struct{}, func()) error {
	return func(lib *libos.LibOS, stop <-chan struct{}, ready func()) error {
		bound := make(chan error, 1)
		go func() {
			if <-bound == nil {
				ready()
			}
		}()
		return echoServer(lib, addr, bound, stop)
	}
}

// counters reads every queue's counters.
func counters(t testing.TB, libs []*libos.LibOS) []libos.Counters {
	t.Helper()
	cs := make([]libos.Counters, len(libs))
	for i, l := range libs {
		c, err := l.Counters()
		if err != nil {
			t.Fatal(err)
		}
		if c.OwnershipErrors != 0 || c.BadDescs != 0 {
			t.Errorf("queue %d: ownership errors %d, bad descriptors %d", l.QueueID(), c.OwnershipErrors, c.BadDescs)
		}
		cs[i] = c
	}
	return cs
}

// udpClients opens n kernel UDP sockets in B connected to to: n source
// ports, spread by the kernel over B's transmit queues, hence A's queues.
func udpClients(t *testing.T, lab *vethlab.Lab, to netip.AddrPort, n int) []*net.UDPConn {
	t.Helper()
	cs := make([]*net.UDPConn, n)
	err := lab.RunInB(func() error {
		for i := range cs {
			c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(to))
			if err != nil {
				return err
			}
			cs[i] = c
			t.Cleanup(func() { c.Close() })
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// TestQueuesUDPEchoEveryQueue: on 2- and 4-queue labs, one echo server per
// queue on the same port answers 128 kernel sockets (128 source ports,
// which the kernel spreads over the queues), every byte checked; every
// queue received and sent, and nothing was handed off (the servers hold
// the port on every queue).
func TestQueuesUDPEchoEveryQueue(t *testing.T) {
	for _, n := range []int{2, 4} {
		t.Run(fmt.Sprintf("%dq", n), func(t *testing.T) {
			lab, libs := labQueues(t, n, libos.Dedicated, nil)
			srv := netip.AddrPortFrom(lab.AddrA.Addr(), 7)
			wait := runAll(t, libs, udpEchoOn(srv))
			retries := labtest.UDPEchoFlows(t, lab, srv, 128, 20, uint64(n))
			wait()
			for i, c := range counters(t, libs) {
				t.Logf("queue %d: rx %d tx %d handoffs out %d in %d", libs[i].QueueID(), c.RxDescs, c.TxDescs, c.Handoffs.Out, c.Handoffs.In)
				if c.RxDescs == 0 || c.TxDescs == 0 {
					t.Errorf("queue %d saw no traffic: rx %d tx %d", libs[i].QueueID(), c.RxDescs, c.TxDescs)
				}
				if c.Handoffs.Out != c.Handoffs.ARPCopies {
					t.Errorf("queue %d handed off frames of a port every queue holds: %+v", libs[i].QueueID(), c.Handoffs)
				}
			}
			if retries != 0 {
				t.Logf("%d datagrams sent again", retries)
			}
		})
	}
}

// tcpEchoServerB runs a kernel TCP echo server in B and returns its address.
func tcpEchoServerB(t *testing.T, lab *vethlab.Lab) netip.AddrPort {
	t.Helper()
	var ln net.Listener
	err := lab.RunInB(func() (err error) {
		ln, err = net.Listen("tcp4", lab.AddrB.Addr().String()+":0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// tcpClientRounds connects conns libOS connections from lib to srv and
// runs rounds request/echo exchanges on each, checking every byte. It
// returns the connections' local ports.
func tcpClientRounds(lib *libos.LibOS, srv netip.AddrPort, conns, rounds int, seed uint64) ([]uint16, error) {
	qds := make([]libos.QD, conns)
	var toks []libos.QToken
	for i := range qds {
		qd, err := lib.Socket(libos.AF_INET, libos.SOCK_STREAM, 0)
		if err != nil {
			return nil, err
		}
		qds[i] = qd
		qt, err := lib.Connect(qd, srv)
		if err != nil {
			return nil, fmt.Errorf("connect: %w", err)
		}
		toks = append(toks, qt)
	}
	for len(toks) > 0 {
		i, r, err := lib.WaitAny(toks, 10*time.Second)
		if err != nil {
			return nil, fmt.Errorf("waiting for connections: %w", err)
		}
		if r.Opcode != libos.OpConnect {
			return nil, fmt.Errorf("connect failed: %v", r.Err)
		}
		toks = append(toks[:i], toks[i+1:]...)
	}
	ports := make([]uint16, conns)
	for i, qd := range qds {
		la, err := lib.LocalAddr(qd)
		if err != nil {
			return nil, err
		}
		ports[i] = la.Port()
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	for round := range rounds {
		want := make([][]byte, conns)
		for i, qd := range qds {
			size := 1 + rng.IntN(3000)
			sga, err := lib.SGAAlloc(size)
			if err != nil {
				return nil, err
			}
			p := make([]byte, 0, size)
			for _, seg := range sga.Segs {
				for j := range seg {
					seg[j] = byte(rng.Uint32())
				}
				p = append(p, seg...)
			}
			want[i] = p
			if _, err := lib.Push(qd, sga); err != nil {
				return nil, fmt.Errorf("round %d conn %d push: %w", round, i, err)
			}
			lib.SGAFree(sga)
		}
		for i, qd := range qds {
			var got []byte
			for len(got) < len(want[i]) {
				qt, err := lib.Pop(qd)
				if err != nil {
					return nil, err
				}
				r, err := waitOp(lib, qt)
				if err != nil {
					return nil, err
				}
				if r.Opcode != libos.OpPop || r.SGA.Len() == 0 {
					return nil, fmt.Errorf("round %d conn %d: pop %v %v", round, i, r.Opcode, r.Err)
				}
				got = append(got, r.SGA.Bytes()...)
				lib.SGAFree(r.SGA)
			}
			if !bytes.Equal(got, want[i]) {
				return nil, fmt.Errorf("round %d conn %d (port %d): echo differs", round, i, ports[i])
			}
		}
	}
	for _, qd := range qds {
		if err := lib.CloseQueue(qd); err != nil {
			return nil, err
		}
	}
	return ports, nil
}

// serveUntil runs lib's loop until stop is closed, consuming whatever
// completes. Every queue of a group must keep its loop running while the
// others have traffic: it receives frames meant for them and hands them
// over.
func serveUntil(lib *libos.LibOS, stop <-chan struct{}) error {
	var out [16]libos.Result
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		if _, err := lib.WaitNext(out[:], 20*time.Millisecond); err != nil && !errors.Is(err, unix.ETIMEDOUT) {
			return err
		}
	}
}

// waitOp waits for qt, letting pushes that complete meanwhile go (their
// tokens are not kept: Wait on qt alone runs the loop).
func waitOp(lib *libos.LibOS, qt libos.QToken) (libos.Result, error) {
	r, err := lib.Wait(qt, 10*time.Second)
	if errors.Is(err, unix.ETIMEDOUT) {
		return r, fmt.Errorf("no completion within 10s")
	}
	return r, err
}

// TestQueuesTCPClientsHandOff: a libOS client on every queue of a 2- and a
// 4-queue lab connects to a kernel server and exchanges data; the kernel
// answers each connection on a queue of its own choosing (veth has no RSS
// key to predict it), so the replies reach the opening queue directly or
// by hand-off, and nothing is lost or reset.
func TestQueuesTCPClientsHandOff(t *testing.T) {
	for _, c := range []struct{ n, batch int }{{2, 0}, {4, 0}, {2, 2}} {
		n := c.n
		name := fmt.Sprintf("%dq", n)
		if c.batch != 0 {
			// Two descriptors per ring per turn: a turn leaves hand-offs
			// on the ring and must come back for them (takeHandoffs).
			name += fmt.Sprintf("-batch%d", c.batch)
		}
		t.Run(name, func(t *testing.T) {
			lab, libs := labQueues(t, n, libos.Dedicated, func(cfg *libos.Config) { cfg.Batch = c.batch })
			srv := tcpEchoServerB(t, lab)
			var mu sync.Mutex
			ports := map[uint16]int{}
			var done sync.WaitGroup
			done.Add(n)
			wait := runAll(t, libs, func(lib *libos.LibOS, stop <-chan struct{}, ready func()) error {
				ready()
				ps, err := tcpClientRounds(lib, srv, 8, 5, uint64(lib.QueueID()))
				done.Done()
				if err != nil {
					return err
				}
				mu.Lock()
				for _, p := range ps {
					if q, dup := ports[p]; dup {
						err = fmt.Errorf("port %d used by queues %d and %d", p, q, lib.QueueID())
					}
					ports[p] = lib.QueueID()
				}
				mu.Unlock()
				if err != nil {
					return err
				}
				// Keep the loop going: the other queues' replies may
				// arrive here, to be handed to them.
				return serveUntil(lib, stop)
			})
			done.Wait()
			wait()
			var out, in uint64
			for i, c := range counters(t, libs) {
				t.Logf("queue %d: rx %d tx %d handoffs %+v", libs[i].QueueID(), c.RxDescs, c.TxDescs, c.Handoffs)
				out += c.Handoffs.Out
				in += c.Handoffs.In
				// As in dxnet's TestQueuesDialFromEveryQueue: no open
				// connection reset and no reset sent; a reset of a
				// connection already in TIME-WAIT (the kernel's answer
				// to our ACK of a FIN it sent twice) is only logged.
				if c.TCP.ConnsReset != 0 || c.TCP.RSTsOut != 0 {
					t.Errorf("queue %d: connections reset %d, resets sent %d", libs[i].QueueID(), c.TCP.ConnsReset, c.TCP.RSTsOut)
				}
				if c.Handoffs.Dropped != 0 {
					t.Errorf("queue %d dropped %d hand-offs", libs[i].QueueID(), c.Handoffs.Dropped)
				}
			}
			// A frame or two may still be on a ring when the loops stop
			// (the peer's last ACKs); none may appear from nowhere.
			if out == 0 || in > out {
				t.Errorf("hand-offs: %d out, %d in (veth's replies land on any queue: some must be handed off)", out, in)
			}
		})
	}
}

// msRSSKey is the key of Microsoft's RSS verification suite.
var msRSSKey = []byte{
	0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
	0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
	0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
}

// TestQueuesRSSChoosesPorts: given an RSS configuration (Config.RSS, as a
// NIC would report it), every outbound connection gets a local port whose
// replies that NIC would hash to the opening queue. veth does not hash
// that way, so the replies still arrive anywhere and are handed off: the
// connections work either way.
func TestQueuesRSSChoosesPorts(t *testing.T) {
	indir := make([]uint32, 128)
	for i := range indir {
		indir[i] = uint32(i % 2)
	}
	rc := &rss.Config{Key: msRSSKey, Indir: indir, TCPPorts: true}
	lab, libs := labQueues(t, 2, libos.Dedicated, func(c *libos.Config) { c.RSS = rc })
	srv := tcpEchoServerB(t, lab)
	var mu sync.Mutex
	var done sync.WaitGroup
	done.Add(len(libs))
	wait := runAll(t, libs, func(lib *libos.LibOS, stop <-chan struct{}, ready func()) error {
		ready()
		ps, err := tcpClientRounds(lib, srv, 16, 2, uint64(lib.QueueID()))
		done.Done()
		if err != nil {
			return err
		}
		for _, p := range ps {
			local := netip.AddrPortFrom(lab.AddrA.Addr(), p)
			if q := rc.QueueOf(true, srv, local); q != uint32(lib.QueueID()) {
				mu.Lock()
				t.Errorf("queue %d chose port %d, whose replies hash to queue %d", lib.QueueID(), p, q)
				mu.Unlock()
			}
		}
		return serveUntil(lib, stop)
	})
	done.Wait()
	wait()
	for i, c := range counters(t, libs) {
		if c.Handoffs.RSSPorts != 16 {
			t.Errorf("queue %d: %d ports chosen by RSS, want 16", libs[i].QueueID(), c.Handoffs.RSSPorts)
		}
	}
}

// taggedEcho answers each datagram to addr with the datagram and one more
// byte, the queue that answered. A push or allocation refused for want of
// frames drops the answer (a starved queue cannot answer).
func taggedEcho(lib *libos.LibOS, addr netip.AddrPort, stop <-chan struct{}, ready func(), extra func(libos.Result) bool, extraTok func() libos.QToken) error {
	qd, err := lib.Socket(libos.AF_INET, libos.SOCK_DGRAM, 0)
	if err != nil {
		return err
	}
	if err := lib.Bind(qd, addr); err != nil {
		return err
	}
	ready()
	pop, err := lib.Pop(qd)
	if err != nil {
		return err
	}
	toks := []libos.QToken{pop}
	if extraTok != nil {
		toks = append(toks, extraTok())
	}
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		i, r, err := lib.WaitAny(toks, 20*time.Millisecond)
		if errors.Is(err, unix.ETIMEDOUT) {
			continue
		}
		if err != nil {
			return err
		}
		switch {
		case i == 0:
			if r.Opcode != libos.OpPop {
				return fmt.Errorf("pop: %v", r.Err)
			}
			in := r.SGA
			if out, err := lib.SGAAlloc(in.Len() + 1); err == nil {
				copy(out.Segs[0], in.Segs[0])
				out.Segs[0][in.Len()] = byte(lib.QueueID())
				if qt, err := lib.PushTo(qd, out, in.Addr); err == nil {
					toks = append(toks, qt)
				}
				lib.SGAFree(out)
			}
			lib.SGAFree(in)
			if toks[0], err = lib.Pop(qd); err != nil {
				return err
			}
		case i == 1 && extraTok != nil:
			if !extra(r) {
				return fmt.Errorf("flood pop: %v", r.Err)
			}
			toks[1] = extraTok()
		default:
			toks = append(toks[:i], toks[i+1:]...)
		}
	}
}

// TestQueuesHoardingQueueDoesNotStarveOthers: queue 0's application pops
// a flood and never frees what it popped, until queue 0 has no frame left
// to receive into; the flood that lands on queue 1 is handed to queue 0,
// which hoards that too. Queue 1 lends queue 0 at most a quarter of its
// share and keeps answering its own flows throughout: one queue exhausting
// its share does not starve the others.
func TestQueuesHoardingQueueDoesNotStarveOthers(t *testing.T) {
	const frames = 1024 // two shares of 512
	lab, libs := labQueues(t, 2, libos.Dedicated, func(c *libos.Config) { c.Frames = frames })
	echo, flood := netip.AddrPortFrom(lab.AddrA.Addr(), 7), netip.AddrPortFrom(lab.AddrA.Addr(), 9)
	starved := make(chan struct{})
	wait := runAll(t, libs, func(lib *libos.LibOS, stop <-chan struct{}, ready func()) error {
		if lib.QueueID() != 0 {
			return taggedEcho(lib, echo, stop, ready, nil, nil)
		}
		fqd, err := lib.Socket(libos.AF_INET, libos.SOCK_DGRAM, 0)
		if err == nil {
			err = lib.Bind(fqd, flood)
		}
		if err != nil {
			return err
		}
		var held []*libos.SGA
		signalled := false
		hoard := func(r libos.Result) bool {
			if r.Opcode != libos.OpPop {
				return false
			}
			held = append(held, r.SGA) // never freed
			if !signalled && len(held)%32 == 0 {
				if c, err := lib.Counters(); err == nil && c.FillStarved > 0 {
					signalled = true
					close(starved)
				}
			}
			return true
		}
		next := func() libos.QToken {
			qt, err := lib.Pop(fqd)
			if err != nil {
				panic(err)
			}
			return qt
		}
		return taggedEcho(lib, echo, stop, ready, hoard, next)
	})

	// Which queue answers each of 32 kernel sockets.
	cs := udpClients(t, lab, echo, 32)
	var onQ1 []*net.UDPConn
	buf := make([]byte, 2048)
	for i, c := range cs {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte("probe")); err != nil {
			t.Fatal(err)
		}
		n, err := c.Read(buf)
		if err != nil || n != 6 || string(buf[:5]) != "probe" {
			t.Fatalf("socket %d probe: %q %v", i, buf[:n], err)
		}
		if buf[5] == 1 {
			onQ1 = append(onQ1, c)
		}
	}
	if len(onQ1) == 0 || len(onQ1) == len(cs) {
		t.Fatalf("%d of %d sockets on queue 1: the kernel did not spread them", len(onQ1), len(cs))
	}

	// Flood port 9, held by queue 0 alone, from 16 sockets, until queue 0
	// has run out of frames.
	fs := udpClients(t, lab, flood, 16)
	payload := make([]byte, 1000)
	sent := 0
flooding:
	for sent < 200000 {
		select {
		case <-starved:
			break flooding
		default:
		}
		if _, err := fs[sent%len(fs)].Write(payload); err != nil {
			t.Fatal(err)
		}
		if sent++; sent%1000 == 0 {
			time.Sleep(time.Millisecond) // let B's socket buffers drain
		}
	}
	select {
	case <-starved:
	case <-time.After(30 * time.Second):
		t.Fatalf("queue 0 never ran out of frames after %d flood datagrams", sent)
	}

	// Queue 1 still answers its own flows, every datagram, byte for byte.
	retries := udpTagged(t, onQ1, 100, 1)
	wait()
	cs0, cs1 := counters(t, libs[:1])[0], counters(t, libs[1:])[0]
	t.Logf("flood %d; queue 0: fill_starved %d held-lent %d; queue 1: lent %d dropped %d out %d; retries %d",
		sent, cs0.FillStarved, cs0.Handoffs.Held, cs1.Handoffs.Lent, cs1.Handoffs.Dropped, cs1.Handoffs.Out, retries)
	if cs1.FillStarved != 0 || cs1.SGANoBufs != 0 {
		t.Errorf("queue 1 ran short of frames: fill_starved %d sga_nobufs %d", cs1.FillStarved, cs1.SGANoBufs)
	}
	if share := frames / 2; cs1.Handoffs.Lent > uint64(share/4) {
		t.Errorf("queue 1 lent %d frames to the hoarding queue, more than a quarter of its share of %d", cs1.Handoffs.Lent, share)
	}
}

// udpTagged runs per exchanges on each socket of cs and checks that every
// answer is the datagram plus the tag byte of queue q.
func udpTagged(t *testing.T, cs []*net.UDPConn, per int, q byte) int {
	t.Helper()
	retries := 0
	buf := make([]byte, 2048)
	rng := rand.New(rand.NewPCG(3, 4))
	for k := range per {
		for i, c := range cs {
			p := make([]byte, 8+rng.IntN(1000))
			for j := range p {
				p[j] = byte(rng.Uint32())
			}
			p[0], p[1] = byte(k), byte(k>>8)
			for try := 0; ; try++ {
				if try == 5 {
					t.Fatalf("socket %d exchange %d: no answer after %d tries", i, k, try)
				}
				retries += min(try, 1)
				c.Write(p)
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				n, err := c.Read(buf)
				if err != nil {
					continue
				}
				if n != len(p)+1 || !bytes.Equal(buf[:len(p)], p) {
					if n > 2 && buf[0] == p[0] && buf[1] == p[1] {
						t.Fatalf("socket %d exchange %d: answer differs", i, k)
					}
					continue // a late answer to an earlier exchange
				}
				if buf[len(p)] != q {
					t.Fatalf("socket %d answered by queue %d, not %d", i, buf[len(p)], q)
				}
				break
			}
		}
	}
	return retries
}

// TestQueuesHandOffAllocatesNothing: frames handed from one queue's loop
// to another's, taken into its stack, popped, freed and given back cost no
// allocation. Port 9 is held by queue 1 alone; 16 kernel sockets send to
// it, so the datagrams of those that land on queue 0 are handed off. The
// kernel side writes on connected sockets, which allocates nothing either
// (AllocsPerRun counts every goroutine).
func TestQueuesHandOffAllocatesNothing(t *testing.T) {
	lab, libs := labQueues(t, 2, libos.Dedicated, nil)
	port := netip.AddrPortFrom(lab.AddrA.Addr(), 9)
	var got atomic.Uint64
	wait := runAll(t, libs, func(lib *libos.LibOS, stop <-chan struct{}, ready func()) error {
		if lib.QueueID() != 1 {
			ready()
			return serveUntil(lib, stop)
		}
		qd, err := lib.Socket(libos.AF_INET, libos.SOCK_DGRAM, 0)
		if err == nil {
			err = lib.Bind(qd, port)
		}
		if err != nil {
			return err
		}
		ready()
		pop, err := lib.Pop(qd)
		if err != nil {
			return err
		}
		toks := []libos.QToken{pop}
		for {
			select {
			case <-stop:
				return nil
			default:
			}
			_, r, err := lib.WaitAny(toks, 20*time.Millisecond)
			if errors.Is(err, unix.ETIMEDOUT) {
				continue
			}
			if err != nil {
				return err
			}
			if r.Opcode != libos.OpPop {
				return fmt.Errorf("pop: %v", r.Err)
			}
			lib.SGAFree(r.SGA)
			got.Add(1)
			if toks[0], err = lib.Pop(qd); err != nil {
				return err
			}
		}
	})
	cs := udpClients(t, lab, port, 16)
	payload := make([]byte, 200)
	sent := uint64(0)
	batch := func() {
		for _, c := range cs {
			c.Write(payload)
		}
		sent += uint64(len(cs))
		for deadline := time.Now().Add(10 * time.Second); got.Load() < sent; {
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d datagrams arrived", got.Load(), sent)
			}
			runtime.Gosched()
		}
	}
	for range 50 { // warm up: ARP, the slices' working sizes
		batch()
	}
	allocs := testing.AllocsPerRun(200, batch)
	wait()
	cs0 := counters(t, libs[:1])[0]
	t.Logf("%v allocations per batch of %d datagrams; queue 0 handed off %d", allocs, len(cs), cs0.Handoffs.Out)
	if cs0.Handoffs.Out == 0 {
		t.Fatal("no datagram was handed off: the test measured nothing")
	}
	if allocs != 0 && !raceEnabled {
		t.Errorf("%v allocations per batch of %d datagrams (some handed off)", allocs, len(cs))
	}
}

// TestRunQueuesPinsLoops: with Config.CPUs, RunQueues runs each queue's
// function on a thread pinned to that queue's CPU (CPUs[i] for the i-th
// queue OpenQueues returned, in whatever order RunQueues gets them), and
// leaves the affinity of every other thread alone.
func TestRunQueuesPinsLoops(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("needs 2 CPUs")
	}
	cpus := []int{1, 0}
	_, libs := labQueues(t, 2, libos.Dedicated, func(c *libos.Config) { c.CPUs = cpus })
	var before unix.CPUSet
	if err := unix.SchedGetaffinity(0, &before); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[int]unix.CPUSet{}
	// Given in another order, each queue still gets its own CPU.
	err := libos.RunQueues([]*libos.LibOS{libs[1], libs[0]}, func(l *libos.LibOS) error {
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(0, &set); err != nil {
			return err
		}
		mu.Lock()
		got[l.QueueID()] = set
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range libs {
		set := got[l.QueueID()]
		if set.Count() != 1 || !set.IsSet(cpus[i]) {
			t.Errorf("queue %d ran on CPUs %v, want only %d", l.QueueID(), set, cpus[i])
		}
	}
	var after unix.CPUSet
	unix.SchedGetaffinity(0, &after)
	if after != before {
		t.Errorf("the caller's affinity changed from %v to %v", before, after)
	}
}

// TestOpenQueuesRefusesBadLists: the queue list and its companions are
// checked before anything is opened (the interface is never touched).
func TestOpenQueuesRefusesBadLists(t *testing.T) {
	base := libos.Config{Interface: "dxnonexistent0", Addr: netip.MustParsePrefix("198.51.100.1/24")}
	for _, c := range []struct {
		name string
		edit func(*libos.Config)
	}{
		{"one CPU for two queues", func(c *libos.Config) { c.Queues, c.CPUs = 2, []int{0} }},
		{"a duplicate id", func(c *libos.Config) { c.QueueIDs = []int{0, 1, 0} }},
		{"a negative id", func(c *libos.Config) { c.QueueIDs = []int{-1, 0} }},
		{"too many queues", func(c *libos.Config) { c.Queues = libos.MaxQueues + 1 }},
		{"a negative count", func(c *libos.Config) { c.Queues = -1 }},
		{"too few frames to share", func(c *libos.Config) { c.Queues, c.Frames = 4, 200 }},
	} {
		cfg := base
		c.edit(&cfg)
		if _, err := libos.OpenQueues(cfg); !errors.Is(err, unix.EINVAL) {
			t.Errorf("%s: %v, want EINVAL", c.name, err)
		}
	}
	if _, err := libos.OpenQueues(base); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("a missing interface: %v", err)
	}
}

// TestQueuesHeapScalesWithShare: a group's Go heap grows with its frames,
// not with queues × frames. Each queue keeps tables over its own share of
// the UMEM and tracks the frames other queues lend it in proportion to
// what it holds; tables over the whole UMEM in every queue cost 16 B ×
// frames × queues (196 B per frame at 8 queues, against 80 now).
func TestQueuesHeapScalesWithShare(t *testing.T) {
	const n, perQueue = 8, 4096
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, libs := labQueues(t, n, libos.Dedicated, func(c *libos.Config) { c.Frames = n * perQueue })
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(libs)
	perFrame := float64(after.HeapAlloc-before.HeapAlloc) / (n * perQueue)
	t.Logf("%d queues, %d frames: %.0f KiB of heap, %.1f B per frame", n, n*perQueue, float64(after.HeapAlloc-before.HeapAlloc)/1024, perFrame)
	if perFrame > 120 {
		t.Errorf("%.1f B of heap per frame at %d queues: some table grows with queues × frames", perFrame, n)
	}
}
