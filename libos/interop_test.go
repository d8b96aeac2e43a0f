package libos_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/labtest"
	"github.com/demixdp/demixdp/libos"
	"github.com/demixdp/demixdp/netstack/arp"
	"github.com/demixdp/demixdp/netstack/ethernet"
	"github.com/demixdp/demixdp/netstack/icmp"
	"github.com/demixdp/demixdp/netstack/ipv4"
	"github.com/demixdp/demixdp/netstack/udp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestPingFromKernel: the kernel in B resolves our address by ARP (no
// static entry) and gets echo replies from the libOS.
func TestPingFromKernel(t *testing.T) {
	lab, lib := labLibOS(t, libos.Dedicated, nil)
	stop := startEcho(t, lib, netip.AddrPortFrom(lab.AddrA.Addr(), 7))

	var fd int
	if err := lab.RunInB(func() (err error) {
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(int64(2 * time.Second))
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	to := &unix.SockaddrInet4{Addr: lab.AddrA.Addr().As4()}
	for seq := uint16(1); seq <= 3; seq++ {
		msg := make([]byte, icmp.HeaderLen+56)
		msg[0] = icmp.TypeEchoRequest
		binary.BigEndian.PutUint16(msg[4:], 0xbeef)
		binary.BigEndian.PutUint16(msg[6:], seq)
		for i := range 56 {
			msg[8+i] = byte(i + int(seq))
		}
		icmp.Header(msg).SetChecksum(icmp.Header(msg).ComputeChecksum())
		if err := unix.Sendto(fd, msg, 0, to); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1500)
		for {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				t.Fatalf("no echo reply for seq %d: %v", seq, err)
			}
			ip, err := ipv4.Parse(buf[:n])
			if err != nil || ip.Src() != lab.AddrA.Addr().As4() {
				continue
			}
			m, err := icmp.Parse(ip.Payload())
			if err != nil {
				t.Fatalf("bad ICMP from the libOS: %v", err)
			}
			if m.Type() != icmp.TypeEchoReply {
				continue // our own request, seen by the raw socket
			}
			if m.ID() != 0xbeef || m.Seq() != seq || !bytes.Equal(m.Payload(), msg[8:]) {
				t.Fatalf("echo reply %x does not match request", []byte(m))
			}
			break
		}
	}
	// B learnt our MAC by ARP: a dynamic (not permanent) neighbour entry.
	var neighs []netlink.Neigh
	lab.RunInB(func() (err error) {
		neighs, err = netlink.NeighList(lab.IndexB, netlink.FAMILY_V4)
		return err
	})
	found := false
	for _, n := range neighs {
		if n.IP.Equal(net.IP(lab.AddrA.Addr().AsSlice())) {
			found = true
			if n.State&netlink.NUD_PERMANENT != 0 || !bytes.Equal(n.HardwareAddr, lib.HardwareAddr()) {
				t.Fatalf("neighbour entry %v", n)
			}
		}
	}
	if !found {
		t.Fatal("the kernel in B has no neighbour entry for the libOS")
	}
	stop()
	cs, _ := lib.Counters()
	if cs.Stack.ARPRepliesTx == 0 || cs.Stack.ICMPEchoReplies != 3 {
		t.Fatalf("ARP replies %d, echo replies %d", cs.Stack.ARPRepliesTx, cs.Stack.ICMPEchoReplies)
	}
}

// TestLibOSClientKernelServer: the libOS resolves the kernel's address by
// ARP and exchanges datagrams with a kernel UDP echo server.
func TestLibOSClientKernelServer(t *testing.T) {
	lab, lib := labLibOS(t, libos.Dedicated, nil)
	srv := netip.AddrPortFrom(lab.AddrB.Addr(), 7007)
	labtest.KernelUDPEcho(t, lab, labtest.B, srv)
	qd := mustSocket(t, lib)
	if _, err := lib.Connect(qd, srv); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2000; i++ {
		size := 1 + (i*7)%lib.MaxDatagram()
		sga, err := lib.SGAAlloc(size)
		if err != nil {
			t.Fatal(err)
		}
		for j, seg := range sga.Segs {
			for x := range seg {
				seg[x] = byte(i + j + x)
			}
		}
		want := sga.Bytes()
		qt, err := lib.Push(qd, sga)
		if err != nil {
			t.Fatalf("push %d (%d bytes): %v", i, size, err)
		}
		lib.SGAFree(sga)
		pop, _ := lib.Pop(qd)
		for _, tok := range []libos.QToken{qt, pop} {
			r, err := lib.Wait(tok, 5*time.Second)
			if err != nil || r.Opcode == libos.OpFailed {
				t.Fatalf("round %d: %v %+v", i, err, r)
			}
			if r.Opcode == libos.OpPop {
				if got := r.SGA.Bytes(); !bytes.Equal(got, want) || r.SGA.Addr != srv {
					t.Fatalf("round %d: reply of %d bytes from %v differs", i, len(got), r.SGA.Addr)
				}
				lib.SGAFree(r.SGA)
			}
		}
	}
	cs, _ := lib.Counters()
	if cs.Stack.ARPRequestsTx == 0 || cs.Stack.ARPResolved == 0 {
		t.Fatalf("the libOS did not resolve the server by ARP: %+v", cs.Stack)
	}
}

// TestMalformedFramesFromPeer injects broken frames from B with a packet
// socket: each is dropped and counted (by the steering program or by the
// netstack) and the echo keeps working.
func TestMalformedFramesFromPeer(t *testing.T) {
	lab, lib := labLibOS(t, libos.Dedicated, nil)
	srv := netip.AddrPortFrom(lab.AddrA.Addr(), 7)
	stop := startEcho(t, lib, srv)
	c := dialB(t, lab, srv)
	roundTrip := func(what string) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Write([]byte(what)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != what {
			t.Fatalf("echo %q: %q %v", what, buf[:n], err)
		}
	}
	roundTrip("before") // B now knows our MAC and we know B's

	var fd int
	if err := lab.RunInB(func() (err error) {
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	sll := &unix.SockaddrLinklayer{Ifindex: lab.IndexB, Halen: 6}
	copy(sll.Addr[:], lab.MACA)

	src, dst := lab.AddrB.Addr().As4(), lab.AddrA.Addr().As4()
	mac := func(payload []byte, typ uint16) []byte {
		f := make([]byte, ethernet.HeaderLen+len(payload))
		ethernet.Header(f).Encode(ethernet.Addr(lab.MACA), ethernet.Addr(lab.MACB), typ)
		copy(f[ethernet.HeaderLen:], payload)
		return f
	}
	ipPkt := func(proto uint8, l4 []byte, mutate func(h []byte)) []byte {
		p := make([]byte, ipv4.MinHeaderLen+len(l4))
		ipv4.Header(p).Encode(ipv4.Fields{TotalLength: uint16(len(p)), TTL: 64, Protocol: proto, Src: src, Dst: dst})
		copy(p[ipv4.MinHeaderLen:], l4)
		if mutate != nil {
			mutate(p)
			ipv4.Header(p).SetChecksum(0)
			ipv4.Header(p).SetChecksum(ipv4.Header(p).ComputeChecksum())
		}
		return p
	}
	udpSeg := func(payload string, badSum bool) []byte {
		u := make([]byte, udp.HeaderLen+len(payload))
		udp.Header(u).Encode(40000, 7, uint16(len(u)))
		copy(u[udp.HeaderLen:], payload)
		sum := udp.Header(u).ComputeChecksum(src, dst)
		if badSum {
			sum ^= 0x5555
		}
		udp.Header(u).SetChecksum(sum)
		return u
	}
	good := ipPkt(ipv4.ProtoUDP, udpSeg("x", false), nil)
	badIPSum := append([]byte(nil), good...)
	badIPSum[10] ^= 0xff
	withOptions := func() []byte {
		u := udpSeg("opt", false)
		p := make([]byte, 24+len(u))
		ipv4.Header(p).Encode(ipv4.Fields{TotalLength: uint16(len(p)), TTL: 64, Protocol: ipv4.ProtoUDP, Src: src, Dst: dst})
		p[0] = 0x46
		p[20] = 1 // NOP options
		p[21], p[22], p[23] = 1, 1, 0
		copy(p[24:], u)
		ipv4.Header(p).SetChecksum(0)
		ipv4.Header(p).SetChecksum(ipv4.Header(p).ComputeChecksum())
		return p
	}()
	garbageARP := make([]byte, arp.HeaderLen)
	garbageARP[1] = 9 // hardware type 9
	frames := map[string][]byte{
		"ethernet header only":   mac(nil, ethernet.TypeIPv4),
		"truncated ipv4":         mac(good[:12], ethernet.TypeIPv4),
		"truncated udp":          mac(ipPkt(ipv4.ProtoUDP, udpSeg("", false)[:5], nil), ethernet.TypeIPv4),
		"bad ip checksum":        mac(badIPSum, ethernet.TypeIPv4),
		"bad udp checksum":       mac(ipPkt(ipv4.ProtoUDP, udpSeg("bad", true), nil), ethernet.TypeIPv4),
		"total length too long":  mac(ipPkt(ipv4.ProtoUDP, udpSeg("len", false), func(h []byte) { binary.BigEndian.PutUint16(h[2:], 1400) }), ethernet.TypeIPv4),
		"total length too short": mac(ipPkt(ipv4.ProtoUDP, udpSeg("len", false), func(h []byte) { binary.BigEndian.PutUint16(h[2:], 10) }), ethernet.TypeIPv4),
		"udp length lies": mac(ipPkt(ipv4.ProtoUDP, func() []byte {
			u := udpSeg("abc", false)
			binary.BigEndian.PutUint16(u[4:], 200)
			return u
		}(), nil), ethernet.TypeIPv4),
		"ip options": mac(withOptions, ethernet.TypeIPv4),
		"fragment":   mac(ipPkt(ipv4.ProtoUDP, udpSeg("frag", false), func(h []byte) { h[6] = 0x20 }), ethernet.TypeIPv4),
		"arp garbage": func() []byte {
			f := mac(garbageARP, ethernet.TypeARP)
			ethernet.Header(f).SetDst(ethernet.Broadcast)
			return f
		}(),
		"arp truncated": func() []byte {
			f := mac(make([]byte, 8), ethernet.TypeARP)
			ethernet.Header(f).SetDst(ethernet.Broadcast)
			return f
		}(),
	}
	stop()
	before, _ := lib.Counters()
	for name, f := range frames {
		if err := unix.Sendto(fd, f, 0, sll); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// Let the libOS run and take what reached it.
	qd := mustSocket(t, lib)
	pop, _ := lib.Pop(qd)
	lib.Wait(pop, 200*time.Millisecond)
	lib.CloseQueue(qd)
	after, _ := lib.Counters()
	s0, s1 := before.Stack, after.Stack
	stackDrops := (s1.IPMalformed - s0.IPMalformed) + (s1.IPChecksum - s0.IPChecksum) +
		(s1.UDPMalformed - s0.UDPMalformed) + (s1.UDPChecksum - s0.UDPChecksum) +
		(s1.IPOptions - s0.IPOptions) + (s1.IPFragments - s0.IPFragments) +
		(s1.ARPMalformed - s0.ARPMalformed) + (s1.EthTruncated - s0.EthTruncated)
	bpfDrops := after.Steering.Malformed - before.Steering.Malformed
	if got := stackDrops + bpfDrops; got != uint64(len(frames)) {
		t.Errorf("%d malformed frames, %d counted (stack %d, steering %d): %+v", len(frames), got, stackDrops, bpfDrops, s1)
	}
	for _, x := range []struct {
		name    string
		b, a    uint64
		atLeast uint64
	}{
		{"IPChecksum", s0.IPChecksum, s1.IPChecksum, 1},
		{"UDPChecksum", s0.UDPChecksum, s1.UDPChecksum, 1},
		{"IPOptions", s0.IPOptions, s1.IPOptions, 1},
		{"IPFragments", s0.IPFragments, s1.IPFragments, 1},
		{"UDPMalformed", s0.UDPMalformed, s1.UDPMalformed, 1},
	} {
		if x.a-x.b < x.atLeast {
			t.Errorf("counter %s did not move", x.name)
		}
	}
	// The steering program keeps what is malformed before the netstack
	// would look at it: both ARP frames and the header-only and truncated
	// IPv4 frames.
	if bpfDrops < 4 {
		t.Errorf("steering counted %d malformed frames, want >= 4", bpfDrops)
	}
	if after.Stack.UDPDelivered != before.Stack.UDPDelivered {
		t.Errorf("a malformed datagram was delivered")
	}
	stop2 := startEcho(t, lib, srv)
	roundTrip("after")
	stop2()
}

// TestSharedMode: the libOS uses the kernel's own address; only its port is
// steered. The kernel keeps answering ARP and ping and its own sockets on
// other ports, and the libOS learns neighbours from the kernel's table.
func TestSharedMode(t *testing.T) {
	lab, lib := labLibOS(t, libos.Shared, nil)
	srv := netip.AddrPortFrom(lab.AddrA.Addr(), 7)
	stop := startEcho(t, lib, srv)

	// A kernel socket in A on another port keeps working.
	var kA *net.UDPConn
	if err := lab.RunInA(func() (err error) {
		kA, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(lab.AddrA.Addr(), 8000)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer kA.Close()
	c := dialB(t, lab, srv)
	for i := 0; i < 100; i++ {
		msg := []byte{byte(i), 1, 2, 3}
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		c.Write(msg)
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		if err != nil || !bytes.Equal(buf[:n], msg) {
			t.Fatalf("echo %d via shared address: %v", i, err)
		}
	}
	kc := dialB(t, lab, netip.AddrPortFrom(lab.AddrA.Addr(), 8000))
	kc.Write([]byte("to the kernel"))
	kA.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 64)
	n, _, err := kA.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "to the kernel" {
		t.Fatalf("kernel socket on the shared address: %q %v", buf[:n], err)
	}
	stop()
	cs, _ := lib.Counters()
	if cs.Stack.ARPRequestsTx != 0 || cs.Stack.ARPRepliesTx != 0 || cs.Stack.ICMPEchoReplies != 0 {
		t.Fatalf("shared mode must leave ARP/ICMP to the kernel: %+v", cs.Stack)
	}

	// A libOS-initiated exchange to a host the kernel has not talked to:
	// the libOS asks the kernel to resolve it.
	k := listenB(t, lab, netip.AddrPortFrom(lab.AddrB.Addr(), 9100))
	qd := mustSocket(t, lib)
	sga, _ := lib.SGAAlloc(5)
	copy(sga.Segs[0], "hello")
	qt, err := lib.PushTo(qd, sga, netip.AddrPortFrom(lab.AddrB.Addr(), 9100))
	if err != nil {
		t.Fatal(err)
	}
	if r, err := lib.Wait(qt, 5*time.Second); err != nil || r.Opcode != libos.OpPush {
		t.Fatalf("push: %v %+v", err, r)
	}
	k.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, from, err := k.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("kernel in B got %q %v", buf[:n], err)
	}
	// The reply comes back to the ephemeral port the libOS registered.
	pop, _ := lib.Pop(qd)
	k.WriteToUDPAddrPort([]byte("back"), from)
	r, err := lib.Wait(pop, 5*time.Second)
	if err != nil || r.Opcode != libos.OpPop || string(r.SGA.Segs[0]) != "back" {
		t.Fatalf("reply to the ephemeral port: %v %+v", err, r)
	}
	lib.SGAFree(r.SGA)
	lib.SGAFree(sga)
	if errors.Is(err, unix.ETIMEDOUT) {
		t.Fatal("timeout")
	}
}
