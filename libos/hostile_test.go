package libos_test

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/vethlab"
	"github.com/demixdp/demixdp/libos"
	"github.com/demixdp/demixdp/netstack/ethernet"
	"github.com/demixdp/demixdp/netstack/ipv4"
	"github.com/demixdp/demixdp/netstack/tcp"
	"golang.org/x/sys/unix"
)

// Hostile input against a libOS TCP server on the veth lab: segments
// crafted in namespace B and sent with a packet socket straight to the
// libOS's MAC, while a tcpSniffer in B watches what the libOS answers. The
// server runs on its own goroutine (a LibOS is single-goroutine) and runs
// the test's requests, such as reading counters, between turns of its loop.

// ctlEcho is a libOS TCP echo server that also runs functions handed to it
// through do, so a test can read the LibOS's counters while connections
// stay up.
type ctlEcho struct {
	calls  chan func(*libos.LibOS)
	quit   chan struct{}
	exited chan struct{}
	err    error // the loop's error, valid once exited is closed

	mu    sync.Mutex
	fails []error // connections that failed (reset, timed out)
}

// startCtlEcho listens on addr with the given backlog and echoes every
// connection until the test ends.
func startCtlEcho(t testing.TB, lib *libos.LibOS, addr netip.AddrPort, backlog int) *ctlEcho {
	t.Helper()
	s := &ctlEcho{calls: make(chan func(*libos.LibOS)), quit: make(chan struct{}), exited: make(chan struct{})}
	ready := make(chan error, 1)
	go func() {
		s.err = s.run(lib, addr, backlog, ready)
		close(s.exited)
	}()
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.stop(t) })
	return s
}

// stop ends the server and waits for it; an error of its loop fails t.
func (s *ctlEcho) stop(t testing.TB) {
	t.Helper()
	select {
	case <-s.quit:
	default:
		close(s.quit)
	}
	<-s.exited
	if s.err != nil {
		t.Errorf("ctl echo server: %v", s.err)
	}
}

// do runs f on the server's goroutine and returns once it has run.
func (s *ctlEcho) do(t testing.TB, f func(*libos.LibOS)) {
	t.Helper()
	done := make(chan struct{})
	select {
	case s.calls <- func(l *libos.LibOS) { f(l); close(done) }:
		<-done
	case <-s.exited:
		t.Fatalf("ctl echo server gone: %v", s.err)
	}
}

func (s *ctlEcho) counters(t testing.TB) libos.Counters {
	t.Helper()
	var c libos.Counters
	var err error
	s.do(t, func(l *libos.LibOS) { c, err = l.Counters() })
	if err != nil {
		t.Fatalf("counters: %v", err)
	}
	return c
}

func (s *ctlEcho) failures() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.fails...)
}

func (s *ctlEcho) run(lib *libos.LibOS, addr netip.AddrPort, backlog int, ready chan<- error) error {
	lqd, err := lib.Socket(libos.AF_INET, libos.SOCK_STREAM, 0)
	if err == nil {
		err = lib.Bind(lqd, addr)
	}
	if err == nil {
		err = lib.Listen(lqd, backlog)
	}
	ready <- err
	if err != nil {
		return err
	}
	acc, err := lib.Accept(lqd)
	if err != nil {
		return err
	}
	type conn struct {
		pushes int
		eof    bool
		held   *libos.SGA // refused with EAGAIN, pushed again later
	}
	conns := map[libos.QD]*conn{}
	toks := []libos.QToken{acc}
	push := func(qd libos.QD, c *conn, sga *libos.SGA) error {
		qt, err := lib.Push(qd, sga)
		if errors.Is(err, unix.EAGAIN) {
			c.held = sga
			return nil
		}
		lib.SGAFree(sga)
		if err != nil {
			return fmt.Errorf("push: %w", err)
		}
		c.pushes++
		pop, err := lib.Pop(qd)
		if err != nil {
			return err
		}
		toks = append(toks, qt, pop)
		return nil
	}
	closeConn := func(qd libos.QD) {
		if c := conns[qd]; c != nil && c.held != nil {
			lib.SGAFree(c.held)
		}
		lib.CloseQueue(qd)
		delete(conns, qd)
	}
	for {
		select {
		case <-s.quit:
			for qd := range conns {
				closeConn(qd)
			}
			return lib.CloseQueue(lqd)
		case f := <-s.calls:
			f(lib)
			continue
		default:
		}
		i, r, err := lib.WaitAny(toks, 2*time.Millisecond)
		if errors.Is(err, unix.ETIMEDOUT) {
			for qd, c := range conns {
				if sga := c.held; sga != nil {
					c.held = nil
					if err := push(qd, c, sga); err != nil {
						return err
					}
				}
			}
			continue
		}
		if err != nil {
			return err
		}
		toks = append(toks[:i], toks[i+1:]...)
		switch r.Opcode {
		case libos.OpAccept:
			conns[r.NewQD] = &conn{}
			pop, err := lib.Pop(r.NewQD)
			if err != nil {
				return err
			}
			next, err := lib.Accept(lqd)
			if err != nil {
				return err
			}
			toks = append(toks, pop, next)
		case libos.OpPop:
			c := conns[r.QD]
			if c == nil {
				lib.SGAFree(r.SGA)
				continue
			}
			if len(r.SGA.Segs) == 0 {
				lib.SGAFree(r.SGA)
				c.eof = true
				if c.pushes == 0 {
					closeConn(r.QD)
				}
				continue
			}
			if err := push(r.QD, c, r.SGA); err != nil {
				return err
			}
		case libos.OpPush:
			c := conns[r.QD]
			if c == nil {
				continue
			}
			c.pushes--
			if sga := c.held; sga != nil {
				c.held = nil
				if err := push(r.QD, c, sga); err != nil {
					return err
				}
			}
			if c.eof && c.pushes == 0 && c.held == nil {
				closeConn(r.QD)
			}
		case libos.OpFailed:
			if _, ok := conns[r.QD]; ok && !errors.Is(r.Err, unix.ECANCELED) {
				s.mu.Lock()
				s.fails = append(s.fails, r.Err)
				s.mu.Unlock()
				closeConn(r.QD)
			}
		}
	}
}

// sniffedSeg is one TCP segment the tcpSniffer in B saw on the veth.
type sniffedSeg struct {
	fromA    bool // sent by A (the libOS, or the kernel in A in shared mode)
	injected bool // crafted by an injector (TTL injectedTTL), not sent by a kernel
	src, dst netip.AddrPort
	seq, ack uint32
	flags    tcp.Flags
	win      uint16
	n        int // payload bytes
}

// end is the sequence number after the segment (SYN and FIN count one).
func (s sniffedSeg) end() uint32 {
	e := s.seq + uint32(s.n)
	if s.flags.Has(tcp.FlagSYN) {
		e++
	}
	if s.flags.Has(tcp.FlagFIN) {
		e++
	}
	return e
}

func (s sniffedSeg) String() string {
	return fmt.Sprintf("%v > %v [%v] seq %d ack %d win %d len %d", s.src, s.dst, s.flags, s.seq, s.ack, s.win, s.n)
}

// tcpSniffer records every TCP segment crossing B's end of the veth, in both
// directions, with a packet socket in B.
type tcpSniffer struct {
	fd   int
	quit chan struct{}
	done chan struct{}
	mu   sync.Mutex
	segs []sniffedSeg
}

func htons16(v uint16) uint16 { return v<<8 | v>>8 }

func sniffB(t testing.TB, lab *vethlab.Lab) *tcpSniffer {
	t.Helper()
	var fd int
	if err := lab.RunInB(func() (err error) {
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons16(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons16(unix.ETH_P_ALL), Ifindex: lab.IndexB})
	}); err != nil {
		t.Fatalf("tcpSniffer: %v", err)
	}
	tv := unix.NsecToTimeval(int64(20 * time.Millisecond))
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	s := &tcpSniffer{fd: fd, quit: make(chan struct{}), done: make(chan struct{})}
	macA := ethernet.Addr(lab.MACA)
	go func() {
		defer close(s.done)
		buf := make([]byte, 4096)
		for {
			select {
			case <-s.quit:
				return
			default:
			}
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				continue
			}
			eh, err := ethernet.Parse(buf[:n])
			if err != nil || eh.Type() != ethernet.TypeIPv4 {
				continue
			}
			ip, err := ipv4.Parse(eh.Payload())
			if err != nil || ip.Protocol() != ipv4.ProtoTCP {
				continue
			}
			th, err := tcp.Parse(ip.Payload())
			if err != nil {
				continue
			}
			sg := sniffedSeg{
				fromA:    eh.Src() == macA,
				injected: eh.Src() != macA && ip.TTL() == injectedTTL,
				src:      netip.AddrPortFrom(netip.AddrFrom4(ip.Src()), th.SrcPort()),
				dst:      netip.AddrPortFrom(netip.AddrFrom4(ip.Dst()), th.DstPort()),
				seq:      uint32(th.Seq()), ack: uint32(th.Ack()),
				flags: th.Flags(), win: th.Window(), n: len(th.Payload()),
			}
			s.mu.Lock()
			s.segs = append(s.segs, sg)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		close(s.quit)
		<-s.done
		unix.Close(fd)
	})
	return s
}

// mark returns the number of segments sniffedSeg so far.
func (s *tcpSniffer) mark() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.segs)
}

// since returns the segments sniffedSeg after mark m that satisfy keep.
func (s *tcpSniffer) since(m int, keep func(sniffedSeg) bool) []sniffedSeg {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sniffedSeg
	for _, sg := range s.segs[m:] {
		if keep == nil || keep(sg) {
			out = append(out, sg)
		}
	}
	return out
}

// await waits up to timeout for a segment after mark m that satisfies keep.
func (s *tcpSniffer) await(m int, timeout time.Duration, keep func(sniffedSeg) bool) (sniffedSeg, bool) {
	deadline := time.Now().Add(timeout)
	for {
		if got := s.since(m, keep); len(got) > 0 {
			return got[0], true
		}
		if time.Now().After(deadline) {
			return sniffedSeg{}, false
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// after reports whether sequence number a comes after b.
func seqAfter(a, b uint32) bool { return int32(a-b) > 0 }

// connState is what an off-path attacker who sniffed a connection knows.
type connState struct {
	kernel, libos netip.AddrPort
	rcvNxt        uint32 // the libOS's RCV.NXT: the kernel's SND.NXT
	sndNxt        uint32 // the libOS's SND.NXT: the kernel's RCV.NXT
	win           uint16 // the kernel's latest window field
}

// settle waits until the sniffer has seen the connection between kernel
// (in B) and lo (the libOS) carry n bytes each way after the handshake,
// every byte acknowledged, and returns its sequence numbers. Counting the
// bytes keeps a sniffer lagging behind the sockets from handing back an
// earlier quiet moment.
func (s *tcpSniffer) settle(t testing.TB, kernel, lo netip.AddrPort, n int) connState {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var st connState
		var isnK, isnA, ackFromA, ackFromK uint32
		var synK, synA bool
		for _, sg := range s.since(0, func(s sniffedSeg) bool { return !s.injected }) {
			switch {
			case sg.src == kernel && sg.dst == lo:
				if sg.flags.Has(tcp.FlagSYN) {
					isnK, synK = sg.seq, true
				}
				if seqAfter(sg.end(), st.rcvNxt) || st.rcvNxt == 0 {
					st.rcvNxt = sg.end()
				}
				ackFromK, st.win = sg.ack, sg.win
			case sg.src == lo && sg.dst == kernel:
				if sg.flags.Has(tcp.FlagSYN) {
					isnA, synA = sg.seq, true
				}
				if seqAfter(sg.end(), st.sndNxt) || st.sndNxt == 0 {
					st.sndNxt = sg.end()
				}
				ackFromA = sg.ack
			}
		}
		if synK && synA && st.rcvNxt == isnK+1+uint32(n) && st.sndNxt == isnA+1+uint32(n) &&
			ackFromA == st.rcvNxt && ackFromK == st.sndNxt {
			st.kernel, st.libos = kernel, lo
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("connection %v-%v did not settle at %d bytes each way (kernel sent to %d, acked %d; libOS sent to %d, acked %d)",
				kernel, lo, n, st.rcvNxt, ackFromK, st.sndNxt, ackFromA)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// injectedTTL marks the frames an injector crafts, so that the sniffer can
// tell them from the kernel's (which uses TTL 64).
const injectedTTL = 255

// injector sends hand-made frames from B to the libOS's MAC.
type injector struct {
	lab *vethlab.Lab
	fd  int
	sll *unix.SockaddrLinklayer
}

func injectB(t testing.TB, lab *vethlab.Lab) *injector {
	t.Helper()
	var fd int
	if err := lab.RunInB(func() (err error) {
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	sll := &unix.SockaddrLinklayer{Ifindex: lab.IndexB, Halen: 6}
	copy(sll.Addr[:], lab.MACA)
	return &injector{lab: lab, fd: fd, sll: sll}
}

// frame builds an Ethernet frame carrying a TCP segment from src to
// lab.AddrA:dstPort with header f (ports filled in) and payload; badSum
// spoils the TCP checksum.
func (in *injector) frame(src netip.AddrPort, dstPort uint16, f tcp.Fields, payload []byte, badSum bool) []byte {
	fr := make([]byte, ethernet.HeaderLen+ipv4.MinHeaderLen+tcp.HeaderLen+len(payload))
	ethernet.Header(fr).Encode(ethernet.Addr(in.lab.MACA), ethernet.Addr(in.lab.MACB), ethernet.TypeIPv4)
	ip := fr[ethernet.HeaderLen:]
	s4, d4 := src.Addr().As4(), in.lab.AddrA.Addr().As4()
	ipv4.Header(ip).Encode(ipv4.Fields{TotalLength: uint16(len(ip)), TTL: injectedTTL, Protocol: ipv4.ProtoTCP, Src: s4, Dst: d4})
	seg := tcp.Header(ip[ipv4.MinHeaderLen:])
	f.SrcPort, f.DstPort = src.Port(), dstPort
	seg.Encode(&f)
	copy(seg[tcp.HeaderLen:], payload)
	sum := seg.ComputeChecksum(s4, d4)
	if badSum {
		sum ^= 0x5a5a
	}
	seg.SetChecksum(sum)
	return fr
}

func (in *injector) send(t testing.TB, fr []byte) {
	t.Helper()
	if err := unix.Sendto(in.fd, fr, 0, in.sll); err != nil {
		t.Fatalf("inject: %v", err)
	}
}

// tcp sends one crafted segment.
func (in *injector) tcp(t testing.TB, src netip.AddrPort, dstPort uint16, f tcp.Fields, payload []byte, badSum bool) {
	t.Helper()
	in.send(t, in.frame(src, dstPort, f, payload, badSum))
}

// into sends a segment on an established connection as if from the kernel.
func (in *injector) into(t testing.TB, st connState, seq, ack uint32, flags tcp.Flags, payload []byte) {
	t.Helper()
	in.tcp(t, st.kernel, st.libos.Port(), tcp.Fields{Seq: tcp.Seq(seq), Ack: tcp.Seq(ack), Flags: flags, Window: st.win}, payload, false)
}

// barrier sends a segment with a bad checksum and waits until the libOS
// has counted it: every frame injected before it has been processed. The
// counters it returns leave the barrier out.
func injectBarrier(t testing.TB, s *ctlEcho, in *injector) libos.Counters {
	t.Helper()
	b0 := s.counters(t).TCP.BadChecksum
	in.tcp(t, netip.AddrPortFrom(in.lab.AddrB.Addr(), 1), 1, tcp.Fields{Seq: 1, Flags: tcp.FlagSYN, Window: 1024}, nil, true)
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := s.counters(t)
		if c.TCP.BadChecksum > b0 {
			c.TCP.BadChecksum--
			return c
		}
		if time.Now().After(deadline) {
			t.Fatal("the libOS never processed the barrier segment")
		}
		time.Sleep(time.Millisecond)
	}
}

// drops sums the counters of segments the TCP engine refused.
func tcpDropCount(c tcp.Counters) uint64 {
	return c.Malformed + c.NoACK + c.BadChecksum + c.OutOfWindow + c.PAWSDropped + c.BadACK + c.ChallengeACKs + c.ChallengeLimited
}

// tcpCounterChanges lists the TCP counters that differ between b and a.
func tcpCounterChanges(b, a tcp.Counters) string {
	vb, va := reflect.ValueOf(b), reflect.ValueOf(a)
	var out []string
	for i := range vb.NumField() {
		if x, y := vb.Field(i).Uint(), va.Field(i).Uint(); x != y {
			out = append(out, fmt.Sprintf("%s +%d", vb.Type().Field(i).Name, y-x))
		}
	}
	return strings.Join(out, ", ")
}

// tcpEchoOnce writes msg on c and reads it back, failing t on any difference.
func tcpEchoOnce(t testing.TB, c *net.TCPConn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
	got := make([]byte, len(msg))
	if n, err := io.ReadFull(c, got); err != nil || string(got) != msg {
		t.Fatalf("echo of %q: got %q, %v", msg, got[:n], err)
	}
}

// hostileLab is a dedicated-mode lab with a libOS echo server on port 7,
// a tcpSniffer and an injector in B, and one kernel client connection whose
// first exchange is done.
type hostileLab struct {
	lab *vethlab.Lab
	srv *ctlEcho
	sn  *tcpSniffer
	in  *injector
	c   *net.TCPConn
	ka  netip.AddrPort // the kernel client's address
	la  netip.AddrPort // the libOS server's address
	n   int            // bytes echoed on c so far
}

// echo sends msg through the echo on the kernel client's connection and
// checks what comes back.
func (h *hostileLab) echo(t testing.TB, msg string) {
	t.Helper()
	tcpEchoOnce(t, h.c, msg)
	h.n += len(msg)
}

// settle returns the connection's sequence numbers once it is quiet.
func (h *hostileLab) settle(t testing.TB) connState {
	t.Helper()
	return h.sn.settle(t, h.ka, h.la, h.n)
}

func newHostileLab(t *testing.T, tweak func(*libos.Config)) *hostileLab {
	t.Helper()
	lab, lib := labLibOS(t, libos.Dedicated, tweak)
	h := &hostileLab{lab: lab, la: netip.AddrPortFrom(lab.AddrA.Addr(), 7)}
	h.sn = sniffB(t, lab)
	h.in = injectB(t, lab)
	h.srv = startCtlEcho(t, lib, h.la, 64)
	h.c = dialTCPB(t, lab, h.la)
	h.ka = h.c.LocalAddr().(*net.TCPAddr).AddrPort()
	h.echo(t, "hello before the attack")
	return h
}

// TestHostileBadChecksum: segments with bad checksums (SYNs to the
// listener, segments to a closed port, data into an established
// connection) are dropped and counted, answered by nothing, and never
// reach the byte stream.
func TestHostileBadChecksum(t *testing.T) {
	t.Parallel()
	h := newHostileLab(t, nil)
	st := h.settle(t)
	before := h.srv.counters(t)
	m := h.sn.mark()
	rng := rand.New(rand.NewPCG(11, 12))
	const nSyn, nClosed, nData = 100, 50, 20
	for i := range nSyn {
		src := netip.AddrPortFrom(h.lab.AddrB.Addr(), uint16(20000+i))
		h.in.tcp(t, src, 7, tcp.Fields{Seq: tcp.Seq(rng.Uint32()), Flags: tcp.FlagSYN, Window: 65535}, nil, true)
	}
	for i := range nClosed {
		src := netip.AddrPortFrom(h.lab.AddrB.Addr(), uint16(30000+i))
		h.in.tcp(t, src, 9, tcp.Fields{Seq: tcp.Seq(rng.Uint32()), Ack: tcp.Seq(rng.Uint32()), Flags: tcp.FlagACK | tcp.FlagPSH, Window: 512}, []byte("closed"), true)
	}
	for range nData {
		// Exactly the bytes the libOS expects next, but corrupted: if
		// they were taken, the echo below would return them.
		h.in.tcp(t, st.kernel, 7, tcp.Fields{Seq: tcp.Seq(st.rcvNxt), Ack: tcp.Seq(st.sndNxt), Flags: tcp.FlagACK | tcp.FlagPSH, Window: st.win}, []byte("EVIL"), true)
	}
	afterC := injectBarrier(t, h.srv, h.in)
	d := func(f func(tcp.Counters) uint64) uint64 { return f(afterC.TCP) - f(before.TCP) }
	if got := d(func(c tcp.Counters) uint64 { return c.BadChecksum }); got != nSyn+nClosed+nData {
		t.Errorf("BadChecksum grew by %d, want %d", got, nSyn+nClosed+nData)
	}
	for name, f := range map[string]func(tcp.Counters) uint64{
		"SegsIn":         func(c tcp.Counters) uint64 { return c.SegsIn },
		"RSTsOut":        func(c tcp.Counters) uint64 { return c.RSTsOut },
		"NoPort":         func(c tcp.Counters) uint64 { return c.NoPort },
		"SynCookiesSent": func(c tcp.Counters) uint64 { return c.SynCookiesSent },
		"ChallengeACKs":  func(c tcp.Counters) uint64 { return c.ChallengeACKs },
	} {
		if got := d(f); got != 0 {
			t.Errorf("%s grew by %d for segments with bad checksums", name, got)
		}
	}
	for _, sg := range h.sn.since(m, func(s sniffedSeg) bool { return s.fromA }) {
		t.Errorf("the libOS answered a segment with a bad checksum: %v", sg)
	}
	h.echo(t, "still echoing, nothing injected")
}

// TestHostileImpossibleFlags: flag combinations no TCP sends, injected
// into an established connection with its exact sequence numbers, are each
// dropped and counted; SYN in the window draws a challenge ACK (RFC 5961
// §4); the connection keeps echoing exactly what the kernel sent.
// A segment without ACK, SYN or RST ("no flags", FIN without ACK,
// FIN|PSH|URG) is counted in NoACK (this test found it dropped uncounted).
func TestHostileImpossibleFlags(t *testing.T) {
	t.Parallel()
	h := newHostileLab(t, nil)
	cases := []struct {
		name      string
		flags     tcp.Flags
		payload   string
		challenge bool   // answered by a challenge ACK
		bug       string // where the drop is counted, for the failure message
	}{
		{"SYN+FIN", tcp.FlagSYN | tcp.FlagFIN, "", false, ""},
		{"SYN+FIN+ACK with data", tcp.FlagSYN | tcp.FlagFIN | tcp.FlagACK, "SYNFIN", false, ""},
		{"SYN+RST", tcp.FlagSYN | tcp.FlagRST, "", false, ""},
		{"SYN+RST+ACK", tcp.FlagSYN | tcp.FlagRST | tcp.FlagACK, "", false, ""},
		{"all flags", 0xff, "ALLFLAGS", false, ""},
		{"no flags with data", 0, "NOFLAGS", false, "counted in NoACK"},
		{"no flags empty", 0, "", false, "counted in NoACK"},
		{"FIN without ACK", tcp.FlagFIN, "", false, "counted in NoACK"},
		{"FIN+PSH+URG without ACK", tcp.FlagFIN | tcp.FlagPSH | tcp.FlagURG, "XMAS", false, "counted in NoACK"},
		{"SYN in window", tcp.FlagSYN, "", true, ""},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := h.settle(t)
			before := h.srv.counters(t)
			m := h.sn.mark()
			h.in.into(t, st, st.rcvNxt, st.sndNxt, tc.flags, []byte(tc.payload))
			afterC := injectBarrier(t, h.srv, h.in)
			if got := tcpDropCount(afterC.TCP) - tcpDropCount(before.TCP); got != 1 {
				t.Errorf("[%v] on an established connection: drop counters grew by %d, want 1 (changes: %s) %s",
					tc.flags, got, tcpCounterChanges(before.TCP, afterC.TCP), tc.bug)
			}
			if afterC.TCP.RSTsIn != before.TCP.RSTsIn || afterC.TCP.ConnsReset != before.TCP.ConnsReset {
				t.Errorf("[%v] reset the connection", tc.flags)
			}
			if tc.challenge {
				if afterC.TCP.ChallengeACKs != before.TCP.ChallengeACKs+1 {
					t.Errorf("ChallengeACKs %d -> %d, want one more", before.TCP.ChallengeACKs, afterC.TCP.ChallengeACKs)
				}
				if _, ok := h.sn.await(m, 3*time.Second, func(s sniffedSeg) bool {
					return s.fromA && s.dst == st.kernel && s.flags == tcp.FlagACK && s.seq == st.sndNxt && s.ack == st.rcvNxt
				}); !ok {
					t.Errorf("no challenge ACK (seq %d ack %d) sniffedSeg", st.sndNxt, st.rcvNxt)
				}
			}
			h.echo(t, fmt.Sprintf("echo %d after %s", i, tc.name))
		})
	}
	if f := h.srv.failures(); len(f) > 0 {
		t.Errorf("connections failed: %v", f)
	}
}

// TestHostileOutOfWindow: data far beyond or wholly before the receive
// window is dropped and answered by an ACK (OutOfWindow); an ACK for data
// never sent is dropped and answered by an ACK (BadACK, RFC 5961 §5); an
// ACK far older than the window gets a (rate-limited) challenge ACK. None
// of their payload reaches the stream.
func TestHostileOutOfWindow(t *testing.T) {
	t.Parallel()
	h := newHostileLab(t, nil)
	// Some history, so that "before RCV.NXT" is data the libOS really
	// received.
	h.echo(t, strings.Repeat("0123456789", 300))
	st := h.settle(t)
	before := h.srv.counters(t)
	m := h.sn.mark()
	const nFuture, nPast, nUnsent, nAncient = 5, 5, 4, 3
	for i := range nFuture {
		h.in.into(t, st, st.rcvNxt+1<<30+uint32(i)*100, st.sndNxt, tcp.FlagACK|tcp.FlagPSH, []byte("FUTURE"))
	}
	for i := range nPast {
		h.in.into(t, st, st.rcvNxt-2000+uint32(i)*100, st.sndNxt, tcp.FlagACK|tcp.FlagPSH, []byte("PAST"))
	}
	for i := range nUnsent {
		// In-window data at exactly RCV.NXT, acknowledging bytes the
		// libOS never sent: the data must not be taken.
		h.in.into(t, st, st.rcvNxt, st.sndNxt+100000+uint32(i), tcp.FlagACK|tcp.FlagPSH, []byte("BADACK"))
	}
	for range nAncient {
		h.in.into(t, st, st.rcvNxt, st.sndNxt-1<<30, tcp.FlagACK, nil)
	}
	afterC := injectBarrier(t, h.srv, h.in)
	b, a := before.TCP, afterC.TCP
	if got := a.OutOfWindow - b.OutOfWindow; got != nFuture+nPast {
		t.Errorf("OutOfWindow grew by %d, want %d", got, nFuture+nPast)
	}
	if got := a.BadACK - b.BadACK; got != nUnsent+nAncient {
		t.Errorf("BadACK grew by %d, want %d", got, nUnsent+nAncient)
	}
	if got := (a.ChallengeACKs + a.ChallengeLimited) - (b.ChallengeACKs + b.ChallengeLimited); got != nAncient {
		t.Errorf("challenge ACKs (sent+limited) grew by %d, want %d", got, nAncient)
	}
	if a.RSTsIn != b.RSTsIn || a.RSTsOut != b.RSTsOut {
		t.Errorf("resets moved: in %d->%d out %d->%d", b.RSTsIn, a.RSTsIn, b.RSTsOut, a.RSTsOut)
	}
	// Each refused segment is answered by an ACK carrying the real
	// sequence numbers, which lets a real peer resynchronise.
	want := nFuture + nPast + nUnsent + int(a.ChallengeACKs-b.ChallengeACKs)
	acks := h.sn.since(m, func(s sniffedSeg) bool {
		return s.fromA && s.dst == st.kernel && s.flags == tcp.FlagACK && s.seq == st.sndNxt && s.ack == st.rcvNxt && s.n == 0
	})
	if len(acks) < want {
		t.Errorf("%d ACKs from the libOS, want at least %d", len(acks), want)
	}
	for _, sg := range h.sn.since(m, func(s sniffedSeg) bool { return s.fromA && s.flags.Has(tcp.FlagRST) }) {
		t.Errorf("the libOS sent a reset: %v", sg)
	}
	h.echo(t, "the stream is intact after the out-of-window segments")
	h.echo(t, strings.Repeat("abcdefgh", 1000))
	if f := h.srv.failures(); len(f) > 0 {
		t.Errorf("connections failed: %v", f)
	}
}

// TestHostileSpoofedRST: RFC 5961 §3. A RST in the window but not at
// RCV.NXT draws a challenge ACK and leaves the connection up; one outside
// the window is dropped silently; only a RST at exactly RCV.NXT resets it.
func TestHostileSpoofedRST(t *testing.T) {
	t.Parallel()
	h := newHostileLab(t, nil)
	st := h.settle(t)
	spoofs := []struct {
		name      string
		seq       uint32
		flags     tcp.Flags
		challenge bool
	}{
		{"RST at RCV.NXT+1", st.rcvNxt + 1, tcp.FlagRST, true},
		{"RST+ACK in the window", st.rcvNxt + 1000, tcp.FlagRST | tcp.FlagACK, true},
		{"RST far beyond the window", st.rcvNxt + 1<<30, tcp.FlagRST, false},
		{"RST just before RCV.NXT", st.rcvNxt - 1, tcp.FlagRST | tcp.FlagACK, false},
	}
	for _, sp := range spoofs {
		before := h.srv.counters(t)
		m := h.sn.mark()
		h.in.into(t, st, sp.seq, st.sndNxt, sp.flags, nil)
		a := injectBarrier(t, h.srv, h.in).TCP
		b := before.TCP
		if a.RSTsIn != b.RSTsIn || a.ConnsReset != b.ConnsReset {
			t.Fatalf("%s reset the connection", sp.name)
		}
		if sp.challenge {
			if a.ChallengeACKs != b.ChallengeACKs+1 {
				t.Errorf("%s: ChallengeACKs %d -> %d, want one more", sp.name, b.ChallengeACKs, a.ChallengeACKs)
			}
			if _, ok := h.sn.await(m, 3*time.Second, func(s sniffedSeg) bool {
				return s.fromA && s.flags == tcp.FlagACK && s.seq == st.sndNxt && s.ack == st.rcvNxt
			}); !ok {
				t.Errorf("%s: no challenge ACK sniffedSeg", sp.name)
			}
		} else {
			if a.OutOfWindow != b.OutOfWindow+1 {
				t.Errorf("%s: OutOfWindow %d -> %d, want one more", sp.name, b.OutOfWindow, a.OutOfWindow)
			}
			for _, sg := range h.sn.since(m, func(s sniffedSeg) bool { return s.fromA && s.dst == st.kernel }) {
				t.Errorf("%s: answered by %v, want silence", sp.name, sg)
			}
		}
	}
	h.echo(t, "alive after the spoofed resets")

	// The exact one: the kernel's next sequence number, sniffed.
	st = h.settle(t)
	before := h.srv.counters(t)
	h.in.into(t, st, st.rcvNxt, 0, tcp.FlagRST, nil)
	a := injectBarrier(t, h.srv, h.in).TCP
	if a.RSTsIn != before.TCP.RSTsIn+1 || a.ConnsReset != before.TCP.ConnsReset+1 {
		t.Fatalf("an exact RST: RSTsIn %d -> %d, ConnsReset %d -> %d", before.TCP.RSTsIn, a.RSTsIn, before.TCP.ConnsReset, a.ConnsReset)
	}
	deadline := time.Now().Add(3 * time.Second)
	for len(h.srv.failures()) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if f := h.srv.failures(); len(f) != 1 || !errors.Is(f[0], unix.ECONNRESET) {
		t.Fatalf("the server's connection should fail with ECONNRESET: %v", f)
	}
	// The kernel's next segment finds no connection and is reset.
	h.c.SetDeadline(time.Now().Add(5 * time.Second))
	h.c.Write([]byte("anyone there?"))
	_, err := h.c.Read(make([]byte, 16))
	if !errors.Is(err, unix.ECONNRESET) {
		t.Fatalf("the kernel client after the reset: %v, want ECONNRESET", err)
	}
}

// TestHostileSYNToClosedPort: RFC 9293 §3.10.7.1 for a port nobody
// listens on: a SYN gets RST+ACK with seq 0 and ack SEG.SEQ+SEG.LEN (SYN
// and data counted), an ACK segment gets RST with seq SEG.ACK, a RST gets
// nothing.
func TestHostileSYNToClosedPort(t *testing.T) {
	t.Parallel()
	lab, lib := labLibOS(t, libos.Dedicated, nil)
	sn, in := sniffB(t, lab), injectB(t, lab)
	srv := startCtlEcho(t, lib, netip.AddrPortFrom(lab.AddrA.Addr(), 7), 16)
	b := lab.AddrB.Addr()
	closed := netip.AddrPortFrom(lab.AddrA.Addr(), 9)
	before := srv.counters(t)
	m := sn.mark()
	type probe struct {
		name     string
		src      netip.AddrPort
		f        tcp.Fields
		payload  string
		rstSeq   uint32
		rstAck   uint32
		rstFlags tcp.Flags
	}
	nearWrap := uint32(0xfffffff0) // the answer's ACK wraps around
	probes := []probe{
		{"SYN", netip.AddrPortFrom(b, 40001), tcp.Fields{Seq: 0x12345678, Flags: tcp.FlagSYN, Window: 64240}, "", 0, 0x12345679, tcp.FlagRST | tcp.FlagACK},
		{"SYN with data", netip.AddrPortFrom(b, 40002), tcp.Fields{Seq: tcp.Seq(nearWrap), Flags: tcp.FlagSYN, Window: 64240}, "twenty bytes of data", 0, nearWrap + 21, tcp.FlagRST | tcp.FlagACK},
		{"ACK", netip.AddrPortFrom(b, 40003), tcp.Fields{Seq: 1000, Ack: 0xdeadbeef, Flags: tcp.FlagACK, Window: 512}, "", 0xdeadbeef, 0, tcp.FlagRST},
		{"FIN without ACK", netip.AddrPortFrom(b, 40004), tcp.Fields{Seq: 77, Flags: tcp.FlagFIN, Window: 512}, "", 0, 78, tcp.FlagRST | tcp.FlagACK},
	}
	for _, p := range probes {
		in.tcp(t, p.src, closed.Port(), p.f, []byte(p.payload), false)
	}
	in.tcp(t, netip.AddrPortFrom(b, 40005), closed.Port(), tcp.Fields{Seq: 5, Flags: tcp.FlagRST, Window: 0}, nil, false)
	for _, p := range probes {
		got, ok := sn.await(m, 3*time.Second, func(s sniffedSeg) bool { return s.fromA && s.dst == p.src })
		if !ok {
			t.Errorf("%s to a closed port: no answer", p.name)
			continue
		}
		if got.src != closed || got.flags != p.rstFlags || got.seq != p.rstSeq || got.ack != p.rstAck || got.n != 0 {
			t.Errorf("%s to a closed port answered by %v; want [%v] seq %d ack %d from %v", p.name, got, p.rstFlags, p.rstSeq, p.rstAck, closed)
		}
	}
	a := injectBarrier(t, srv, in).TCP
	if got := a.NoPort - before.TCP.NoPort; got != uint64(len(probes))+1 {
		t.Errorf("NoPort grew by %d, want %d", got, len(probes)+1)
	}
	if got := a.RSTsOut - before.TCP.RSTsOut; got != uint64(len(probes)) {
		t.Errorf("RSTsOut grew by %d, want %d", got, len(probes))
	}
	for _, sg := range sn.since(m, func(s sniffedSeg) bool { return s.fromA && s.dst.Port() == 40005 }) {
		t.Errorf("a RST to a closed port was answered: %v", sg)
	}
}

// TestHostileSYNFlood: thousands of SYNs from spoofed addresses of the
// lab's subnet, which nobody owns, at a listener with a small backlog and
// SYN backlog. The libOS answers with SYN cookies once the half-open
// backlog is full, and kernel clients connect (through cookies) and echo
// data during and after the flood.
func TestHostileSYNFlood(t *testing.T) {
	t.Parallel()
	lab, lib := labLibOS(t, libos.Dedicated, func(c *libos.Config) { c.TCP.MaxSynBacklog = 16 })
	in := injectB(t, lab)
	la := netip.AddrPortFrom(lab.AddrA.Addr(), 7)
	srv := startCtlEcho(t, lib, la, 8)
	a4, b4 := lab.AddrA.Addr().As4(), lab.AddrB.Addr().As4()

	const floodN = 6000
	flooding, firstLegit := make(chan struct{}), make(chan struct{})
	floodDone := make(chan error, 1)
	go func() {
		rng := rand.New(rand.NewPCG(21, 22))
		f := tcp.Fields{Flags: tcp.FlagSYN, Window: 64240}
		for i := range floodN {
			var src [4]byte
			copy(src[:], a4[:3])
			for src[3] = byte(10 + rng.IntN(240)); src == a4 || src == b4; src[3] = byte(10 + rng.IntN(240)) {
			}
			f.Seq = tcp.Seq(rng.Uint32())
			fr := in.frame(netip.AddrPortFrom(netip.AddrFrom4(src), uint16(1024+rng.IntN(64000))), 7, f, nil, false)
			if err := unix.Sendto(in.fd, fr, 0, in.sll); err != nil && !errors.Is(err, unix.ENOBUFS) {
				floodDone <- err
				return
			}
			if i == 500 {
				close(flooding)
			}
			if i == floodN/2 {
				<-firstLegit // half the flood is still to come
			}
			if i%200 == 199 {
				time.Sleep(2 * time.Millisecond) // bursts, not one line-rate blast the ring drops
			}
		}
		floodDone <- nil
	}()

	// Legitimate clients while the flood goes on: the first one before
	// the flood's second half is sent, more until it ends (at most 10).
	<-flooding
	var floodErr error
	during, floodOver := 0, false
clients:
	for during < 10 {
		c := dialTCPB(t, lab, la)
		tcpEchoOnce(t, c, fmt.Sprintf("legitimate client %d during the flood %s", during, strings.Repeat("x", during*100)))
		c.Close()
		if during++; during == 1 {
			close(firstLegit)
		}
		select {
		case floodErr = <-floodDone:
			floodOver = true
			break clients
		default:
		}
	}
	if !floodOver {
		floodErr = <-floodDone
	}
	if floodErr != nil {
		t.Fatalf("flood: %v", floodErr)
	}
	mid := srv.counters(t)
	t.Logf("%d legitimate clients echoed during the flood", during)
	// And after it.
	c := dialTCPB(t, lab, la)
	streamEcho(t, c, 1<<20, 23)
	cs := srv.counters(t)
	t.Logf("SYN cookies sent %d ok %d bad %d; accept queue full %d; NoBufs %d; ARP requests %d; XDP %+v",
		cs.TCP.SynCookiesSent, cs.TCP.SynCookiesOK, cs.TCP.SynCookiesBad, cs.TCP.AcceptQueueFull, cs.TCP.NoBufs, cs.Stack.ARPRequestsTx, cs.XDP)
	if cs.TCP.SynCookiesSent == 0 {
		t.Error("no SYN cookies sent during the flood")
	}
	if mid.TCP.SynCookiesOK == 0 {
		t.Error("no connection completed through a SYN cookie although the SYN backlog was full")
	}
	if cs.OwnershipErrors != 0 || cs.BadDescs != 0 {
		t.Errorf("datapath errors: ownership %d, bad descriptors %d", cs.OwnershipErrors, cs.BadDescs)
	}
	if f := srv.failures(); len(f) > 0 {
		t.Errorf("legitimate connections failed: %v", f)
	}
}
