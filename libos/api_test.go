package libos_test

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/demixdp/demixdp/libos"
	"github.com/demixdp/demixdp/netstack/ethernet"
	"github.com/demixdp/demixdp/netstack/ipv4"
	"github.com/demixdp/demixdp/netstack/stack"
	"github.com/demixdp/demixdp/netstack/udp"
	"golang.org/x/sys/unix"
)

func mustSocket(t *testing.T, lib *libos.LibOS) libos.QD {
	t.Helper()
	qd, err := lib.Socket(libos.AF_INET, libos.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	return qd
}

func wantErrno(t *testing.T, what string, err error, want unix.Errno) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got %v, want %v", what, err, want)
	}
}

func fill(s *libos.SGA, b byte) {
	for _, seg := range s.Segs {
		for i := range seg {
			seg[i] = b
		}
	}
}

// listenB opens a kernel UDP socket in namespace B.
func listenB(t *testing.T, lab interface{ RunInB(func() error) error }, addr netip.AddrPort) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	if err := lab.RunInB(func() (err error) {
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(addr))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestDocumentedErrnos(t *testing.T) {
	lab, lib := labLibOS(t, libos.Dedicated, func(c *libos.Config) {
		c.Frames = 256
		c.RingSize = 64
		c.ARP.Retries = 2
		c.ARP.RetryInterval = 20 * time.Millisecond
	})
	peer := netip.AddrPortFrom(lab.AddrB.Addr(), 9000)
	k := listenB(t, lab, peer)
	_ = k

	// Socket.
	_, err := lib.Socket(unix.AF_INET6, libos.SOCK_DGRAM, 0)
	wantErrno(t, "Socket(AF_INET6)", err, unix.ENOTSUP)
	_, err = lib.Socket(libos.AF_INET, unix.SOCK_RAW, 0)
	wantErrno(t, "Socket(SOCK_RAW)", err, unix.ENOTSUP)

	qd := mustSocket(t, lib)
	// Bad qd everywhere.
	bad := libos.QD(999)
	sga, err := lib.SGAAlloc(32)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lib.Push(bad, sga)
	wantErrno(t, "Push(bad qd)", err, unix.EBADF)
	_, err = lib.Pop(bad)
	wantErrno(t, "Pop(bad qd)", err, unix.EBADF)
	wantErrno(t, "Bind(bad qd)", lib.Bind(bad, netip.MustParseAddrPort("0.0.0.0:1")), unix.EBADF)
	wantErrno(t, "CloseQueue(bad qd)", lib.CloseQueue(bad), unix.EBADF)
	_, err = lib.Push(-1, sga)
	wantErrno(t, "Push(-1)", err, unix.EBADF)

	// Bind.
	wantErrno(t, "Bind(foreign address)", lib.Bind(qd, netip.MustParseAddrPort("198.51.100.77:1")), unix.EINVAL)
	if err := lib.Bind(qd, netip.MustParseAddrPort("0.0.0.0:5000")); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, "Bind twice", lib.Bind(qd, netip.MustParseAddrPort("0.0.0.0:5001")), unix.EINVAL)
	qd2 := mustSocket(t, lib)
	wantErrno(t, "Bind(port in use)", lib.Bind(qd2, netip.AddrPortFrom(lab.AddrA.Addr(), 5000)), unix.EADDRINUSE)

	// Push with invalid SGAs.
	_, err = lib.PushTo(qd, nil, peer)
	wantErrno(t, "Push(nil)", err, unix.EINVAL)
	_, err = lib.PushTo(qd, &libos.SGA{Segs: [][]byte{[]byte("go memory")}}, peer)
	wantErrno(t, "Push(SGA not from SGAAlloc)", err, unix.EINVAL)
	saved := sga.Segs[0]
	sga.Segs[0] = make([]byte, 8)
	_, err = lib.PushTo(qd, sga, peer)
	wantErrno(t, "Push(segment replaced by Go memory)", err, unix.EINVAL)
	sga.Segs[0] = saved[:0]
	_, err = lib.PushTo(qd, sga, peer)
	wantErrno(t, "Push(zero-length segment)", err, unix.EINVAL)
	sga.Segs[0] = saved
	empty := *sga
	empty.Segs = nil
	_, err = lib.PushTo(qd, &empty, peer)
	wantErrno(t, "Push(no segments)", err, unix.EINVAL)
	_, err = lib.Push(qd, sga)
	wantErrno(t, "Push(unconnected, no destination)", err, unix.EDESTADDRREQ)
	_, err = lib.PushTo(qd, sga, netip.MustParseAddrPort("203.0.113.9:9"))
	wantErrno(t, "Push(off-link, no gateway)", err, unix.ENETUNREACH)

	// EMSGSIZE: a datagram over the MTU, and a gather that cannot fit.
	big, err := lib.SGAAlloc(lib.MaxDatagram() + 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(big.Segs) != 2 {
		t.Fatalf("%d-byte SGA has %d segments", lib.MaxDatagram()+1, len(big.Segs))
	}
	_, err = lib.PushTo(qd, big, peer)
	wantErrno(t, "Push(> MTU)", err, unix.EMSGSIZE)
	lib.SGAFree(big)

	// SGAAlloc / SGAFree.
	_, err = lib.SGAAlloc(0)
	wantErrno(t, "SGAAlloc(0)", err, unix.EINVAL)
	_, err = lib.SGAAlloc(libos.MaxSegments*lib.SegmentSize() + 1)
	wantErrno(t, "SGAAlloc(too big)", err, unix.EINVAL)
	wantErrno(t, "SGAFree(nil)", lib.SGAFree(nil), unix.EINVAL)
	wantErrno(t, "SGAFree(foreign)", lib.SGAFree(&libos.SGA{}), unix.EINVAL)
	tmp, _ := lib.SGAAlloc(10)
	if err := lib.SGAFree(tmp); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, "SGAFree twice", lib.SGAFree(tmp), unix.EINVAL)
	_, err = lib.PushTo(qd, tmp, peer)
	wantErrno(t, "Push(freed SGA)", err, unix.EINVAL)

	// Exhausted UMEM.
	var held []*libos.SGA
	for {
		s, err := lib.SGAAlloc(100)
		if err != nil {
			wantErrno(t, "SGAAlloc(exhausted)", err, unix.ENOBUFS)
			break
		}
		held = append(held, s)
		if len(held) > 1000 {
			t.Fatal("UMEM of 256 frames never ran out")
		}
	}
	for _, s := range held {
		lib.SGAFree(s)
	}
	if s, err := lib.SGAAlloc(100); err != nil {
		t.Fatalf("SGAAlloc after freeing: %v", err)
	} else {
		lib.SGAFree(s)
	}

	// Wait: timeout leaves the token valid; a consumed token is EINVAL.
	pop, err := lib.Pop(qd)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lib.Wait(pop, 0)
	wantErrno(t, "Wait(timeout 0)", err, unix.ETIMEDOUT)
	_, err = lib.Wait(pop, 5*time.Millisecond)
	wantErrno(t, "Wait(5ms)", err, unix.ETIMEDOUT)
	_, err = lib.Wait(libos.QToken(12345), 0)
	wantErrno(t, "Wait(unknown token)", err, unix.EINVAL)
	_, _, err = lib.WaitAny(nil, 0)
	wantErrno(t, "WaitAny(no tokens)", err, unix.EINVAL)
	// The pending pop completes once a datagram arrives.
	if _, err := k.WriteToUDPAddrPort([]byte("late"), netip.AddrPortFrom(lab.AddrA.Addr(), 5000)); err != nil {
		t.Fatal(err)
	}
	r, err := lib.Wait(pop, 5*time.Second)
	if err != nil || r.Opcode != libos.OpPop || string(r.SGA.Segs[0]) != "late" {
		t.Fatalf("pop after timeouts: %v %+v", err, r)
	}
	if r.SGA.Addr.Addr() != lab.AddrB.Addr() {
		t.Fatalf("pop source %v", r.SGA.Addr)
	}
	lib.SGAFree(r.SGA)
	_, err = lib.Wait(pop, 0)
	wantErrno(t, "Wait(consumed token)", err, unix.EINVAL)

	// EHOSTUNREACH: nobody answers ARP for .77; the push completes failed.
	qt, err := lib.PushTo(qd, sga, netip.MustParseAddrPort("198.51.100.77:9"))
	if err != nil {
		t.Fatal(err)
	}
	r, err = lib.Wait(qt, 5*time.Second)
	if err != nil || r.Opcode != libos.OpFailed || !errors.Is(r.Err, unix.EHOSTUNREACH) {
		t.Fatalf("push to a silent neighbour: %v %+v", err, r)
	}

	// CloseQueue with pending operations: ECANCELED.
	p1, _ := lib.Pop(qd)
	p2, _ := lib.Pop(qd)
	if err := lib.CloseQueue(qd); err != nil {
		t.Fatal(err)
	}
	for _, qt := range []libos.QToken{p1, p2} {
		r, err := lib.Wait(qt, 0)
		if err != nil || r.Opcode != libos.OpFailed || !errors.Is(r.Err, unix.ECANCELED) {
			t.Fatalf("pending pop after close: %v %+v", err, r)
		}
	}
	_, err = lib.Pop(qd)
	wantErrno(t, "Pop(closed qd)", err, unix.EBADF)
	lib.SGAFree(sga)

	// A closed LibOS.
	lib.Close()
	_, err = lib.Socket(libos.AF_INET, libos.SOCK_DGRAM, 0)
	wantErrno(t, "Socket(closed libos)", err, unix.EBADF)
	_, err = lib.Wait(p1, 0)
	wantErrno(t, "Wait(closed libos)", err, unix.EBADF)
	if err := lib.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestPushIsZeroCopy checks that Push builds the headers in the headroom of
// the SGA's own frame, right in front of the payload, and that the peer
// receives exactly those bytes; and that a popped SGA views UMEM memory.
func TestPushIsZeroCopy(t *testing.T) {
	lab, lib := labLibOS(t, libos.Dedicated, nil)
	peer := netip.AddrPortFrom(lab.AddrB.Addr(), 9001)
	k := listenB(t, lab, peer)
	qd := mustSocket(t, lib)
	if err := lib.Bind(qd, netip.MustParseAddrPort("0.0.0.0:4444")); err != nil {
		t.Fatal(err)
	}
	sga, err := lib.SGAAlloc(100)
	if err != nil {
		t.Fatal(err)
	}
	if !lib.InUMEM(sga.Segs[0]) {
		t.Fatal("SGAAlloc memory is not in the UMEM")
	}
	fill(sga, 'z')
	qt, err := lib.PushTo(qd, sga, peer)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := lib.Wait(qt, 5*time.Second); err != nil || r.Opcode != libos.OpPush {
		t.Fatalf("push: %v %+v", err, r)
	}
	// The headers sit in the same frame, immediately before the payload.
	seg := sga.Segs[0]
	hdr := unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(&seg[0]), -stack.UDPOverhead)), stack.UDPOverhead+len(seg))
	if !lib.InUMEM(hdr) {
		t.Fatal("headroom is not in the same UMEM frame")
	}
	eth, _ := ethernet.Parse(hdr)
	if eth.Src() != ethernet.Addr(lib.HardwareAddr()) || eth.Dst() != ethernet.Addr(lab.MACB) || eth.Type() != ethernet.TypeIPv4 {
		t.Fatalf("no Ethernet header in front of the payload: %x", hdr[:14])
	}
	ip, err := ipv4.Parse(eth.Payload())
	if err != nil || ip.Dst() != lab.AddrB.Addr().As4() || ip.Src() != lab.AddrA.Addr().As4() {
		t.Fatalf("no IPv4 header in front of the payload: %v", err)
	}
	u, err := udp.Parse(ip.Payload())
	if err != nil || u.DstPort() != 9001 || u.SrcPort() != 4444 || &u.Payload()[0] != &seg[0] {
		t.Fatalf("UDP header/payload not in place: %v", err)
	}
	buf := make([]byte, 2048)
	k.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := k.ReadFromUDPAddrPort(buf)
	if err != nil || n != 100 || from.Port() != 4444 {
		t.Fatalf("kernel got %d bytes from %v: %v", n, from, err)
	}
	for _, b := range buf[:n] {
		if b != 'z' {
			t.Fatalf("payload corrupted: %q", buf[:n])
		}
	}
	// The other way: a popped SGA is a view of the RX frame.
	pop, _ := lib.Pop(qd)
	if _, err := k.WriteToUDPAddrPort([]byte("inbound"), netip.AddrPortFrom(lab.AddrA.Addr(), 4444)); err != nil {
		t.Fatal(err)
	}
	r, err := lib.Wait(pop, 5*time.Second)
	if err != nil || r.Opcode != libos.OpPop {
		t.Fatalf("pop: %v %+v", err, r)
	}
	if !lib.InUMEM(r.SGA.Segs[0]) || string(r.SGA.Segs[0]) != "inbound" {
		t.Fatalf("popped SGA %q is not a UMEM view", r.SGA.Segs[0])
	}
	lib.SGAFree(r.SGA)
	lib.SGAFree(sga)
}

// TestFreeProtection frees an SGA right after pushing it and scribbles over
// every frame it can allocate; the datagram still arrives intact.
func TestFreeProtection(t *testing.T) {
	lab, lib := labLibOS(t, libos.Dedicated, func(c *libos.Config) { c.Frames = 128; c.RingSize = 32 })
	peer := netip.AddrPortFrom(lab.AddrB.Addr(), 9002)
	k := listenB(t, lab, peer)
	qd := mustSocket(t, lib)
	// Resolve the peer first so the push goes straight to the TX ring.
	warm, _ := lib.SGAAlloc(1)
	qt, err := lib.PushTo(qd, warm, peer)
	if err != nil {
		t.Fatal(err)
	}
	lib.Wait(qt, 5*time.Second)
	lib.SGAFree(warm)
	buf := make([]byte, 2048)
	k.SetReadDeadline(time.Now().Add(5 * time.Second))
	k.Read(buf)

	for round := 0; round < 20; round++ {
		sga, _ := lib.SGAAlloc(512)
		fill(sga, byte('a'+round))
		qt, err := lib.PushTo(qd, sga, peer)
		if err != nil {
			t.Fatal(err)
		}
		if err := lib.SGAFree(sga); err != nil {
			t.Fatal(err)
		}
		// Grab every free frame and overwrite it.
		var held []*libos.SGA
		for {
			s, err := lib.SGAAlloc(lib.SegmentSize())
			if err != nil {
				break
			}
			fill(s, 'X')
			held = append(held, s)
		}
		if r, err := lib.Wait(qt, 5*time.Second); err != nil || r.Opcode != libos.OpPush {
			t.Fatalf("push: %v %+v", err, r)
		}
		for _, s := range held {
			lib.SGAFree(s)
		}
		k.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := k.Read(buf)
		if err != nil || n != 512 {
			t.Fatalf("round %d: %d bytes, %v", round, n, err)
		}
		for _, b := range buf[:n] {
			if b != byte('a'+round) {
				t.Fatalf("round %d: freed-then-overwritten SGA sent corrupted data %q", round, buf[:16])
			}
		}
	}
	cs, _ := lib.Counters()
	if cs.OwnershipErrors != 0 {
		t.Fatalf("ownership errors: %d", cs.OwnershipErrors)
	}
}

// TestSegmentsAndGather checks how SGAAlloc splits sizes and that a
// multi-segment SGA that fits one frame is sent as one datagram.
func TestSegmentsAndGather(t *testing.T) {
	lab, lib := labLibOS(t, libos.Dedicated, nil)
	for _, c := range []struct{ size, segs int }{
		{1, 1}, {lib.MaxDatagram(), 1}, {lib.MaxDatagram() + 1, 2},
		{3 * lib.SegmentSize(), 3}, {3*lib.SegmentSize() + 1, 4},
	} {
		s, err := lib.SGAAlloc(c.size)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Segs) != c.segs || s.Len() != c.size {
			t.Errorf("SGAAlloc(%d): %d segments, %d bytes; want %d segments", c.size, len(s.Segs), s.Len(), c.segs)
		}
		for _, seg := range s.Segs {
			if len(seg) > lib.SegmentSize() && c.segs > 1 {
				t.Errorf("SGAAlloc(%d): segment of %d > SegmentSize %d", c.size, len(seg), lib.SegmentSize())
			}
		}
		lib.SGAFree(s)
	}
	peer := netip.AddrPortFrom(lab.AddrB.Addr(), 9003)
	k := listenB(t, lab, peer)
	qd := mustSocket(t, lib)
	s, _ := lib.SGAAlloc(3 * lib.SegmentSize())
	s.Segs = s.Segs[:3]
	s.Segs[0] = s.Segs[0][:100]
	s.Segs[1] = s.Segs[1][10:60]
	s.Segs[2] = s.Segs[2][:7]
	fill(s, 0)
	for i := range s.Segs {
		for j := range s.Segs[i] {
			s.Segs[i][j] = byte('A' + i)
		}
	}
	want := s.Bytes()
	qt, err := lib.PushTo(qd, s, peer)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := lib.Wait(qt, 5*time.Second); err != nil || r.Opcode != libos.OpPush {
		t.Fatalf("gather push: %v %+v", err, r)
	}
	buf := make([]byte, 2048)
	k.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := k.Read(buf)
	if err != nil || string(buf[:n]) != string(want) {
		t.Fatalf("kernel got %q, want %q (%v)", buf[:n], want, err)
	}
	lib.SGAFree(s)
}

// TestConfigErrors: bad configurations fail in New with EINVAL, and a
// shared-mode ephemeral range that overlaps the kernel's is refused.
func TestConfigErrors(t *testing.T) {
	lab, _ := labLibOS(t, libos.Shared, nil)
	for _, c := range []struct {
		name string
		cfg  libos.Config
		want unix.Errno
	}{
		{"no interface", libos.Config{Addr: lab.AddrA}, unix.EINVAL},
		{"no address", libos.Config{Interface: lab.IfA}, unix.EINVAL},
		{"ring not a power of two", libos.Config{Interface: lab.IfA, Addr: lab.AddrA, RingSize: 1000}, unix.EINVAL},
		{"bad ephemeral range", libos.Config{Interface: lab.IfA, Addr: lab.AddrA, EphemeralFirst: 9, EphemeralLast: 3}, unix.EINVAL},
		{"shared range overlaps the kernel's", libos.Config{Interface: lab.IfA, Addr: lab.AddrA, Mode: libos.Shared,
			EphemeralFirst: 40000, EphemeralLast: 50000}, unix.EADDRINUSE},
	} {
		err := lab.RunInA(func() error {
			lib, err := libos.New(c.cfg)
			if err == nil {
				lib.Close()
			}
			return err
		})
		wantErrno(t, c.name, err, c.want)
	}
	if _, err := libos.ParseMode("bogus"); !errors.Is(err, unix.EINVAL) {
		t.Errorf("ParseMode(bogus): %v", err)
	}
}
