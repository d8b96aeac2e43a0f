package stack_test

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/memlink"
	"github.com/demixdp/demixdp/netstack/arp"
	"github.com/demixdp/demixdp/netstack/ethernet"
	"github.com/demixdp/demixdp/netstack/icmp"
	"github.com/demixdp/demixdp/netstack/ipv4"
	"github.com/demixdp/demixdp/netstack/nic"
	"github.com/demixdp/demixdp/netstack/stack"
	"github.com/demixdp/demixdp/netstack/udp"
	"golang.org/x/sys/unix"
)

var (
	ourIP   = [4]byte{198, 51, 100, 1}
	peerIP  = [4]byte{198, 51, 100, 2}
	peerMAC = ethernet.Addr{0x02, 0, 0, 0, 0, 2}
	ourMAC  = ethernet.Addr{0x02, 0, 0, 0, 0, 1}
)

type notes struct {
	readable []uint64
	done     map[uint64]error
}

func (n *notes) Readable(c uint64) { n.readable = append(n.readable, c) }
func (n *notes) Done(tag uint64, err error) {
	if n.done == nil {
		n.done = map[uint64]error{}
	}
	n.done[tag] = err
}

type fixture struct {
	t     *testing.T
	link  *memlink.Link
	clock *nic.VirtualClock
	notes *notes
	s     *stack.Stack
}

func newFixture(t *testing.T, mode stack.Mode) *fixture {
	t.Helper()
	f := &fixture{t: t, link: memlink.New(64, 2048, 256), clock: &nic.VirtualClock{T: 1}, notes: &notes{}}
	s, err := stack.New(f.link, f.clock, f.notes, stack.Config{
		Addr: netip.MustParsePrefix("198.51.100.1/24"),
		Mode: mode,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.s = s
	t.Cleanup(func() {
		if err := f.link.Check(); err != nil {
			t.Error(err)
		}
	})
	return f
}

func frame(dst, src ethernet.Addr, typ uint16, payload []byte) []byte {
	b := make([]byte, ethernet.HeaderLen+len(payload))
	ethernet.Header(b).Encode(dst, src, typ)
	copy(b[ethernet.HeaderLen:], payload)
	return b
}

func arpFrame(op uint16, sha ethernet.Addr, spa [4]byte, tha ethernet.Addr, tpa [4]byte, dst ethernet.Addr) []byte {
	body := make([]byte, arp.HeaderLen)
	arp.Header(body).Encode(op, sha, spa, tha, tpa)
	return frame(dst, sha, ethernet.TypeARP, body)
}

func ipPacket(proto uint8, src, dst [4]byte, l4 []byte) []byte {
	b := make([]byte, ipv4.MinHeaderLen+len(l4))
	ipv4.Header(b).Encode(ipv4.Fields{TotalLength: uint16(len(b)), ID: 7, TTL: 64, Protocol: proto, Src: src, Dst: dst})
	copy(b[ipv4.MinHeaderLen:], l4)
	return b
}

func udpFrame(sport, dport uint16, payload []byte) []byte {
	u := make([]byte, udp.HeaderLen+len(payload))
	h := udp.Header(u)
	h.Encode(sport, dport, uint16(len(u)))
	copy(u[udp.HeaderLen:], payload)
	h.SetChecksum(h.ComputeChecksum(peerIP, ourIP))
	return frame(ourMAC, peerMAC, ethernet.TypeIPv4, ipPacket(ipv4.ProtoUDP, peerIP, ourIP, u))
}

func (f *fixture) input(pkt []byte) { f.s.Input(f.link.Inject(pkt)) }

// advance moves the clock on by d and, as a driver's loop does, ticks the
// stack if its next deadline has come.
func (f *fixture) advance(d time.Duration) {
	f.clock.Advance(int64(d))
	if t := f.s.NextDeadline(); t != 0 && f.clock.T >= t {
		f.s.Tick()
	}
}

// sent completes all transmissions and returns their bytes.
func (f *fixture) sent() [][]byte {
	var out [][]byte
	for _, s := range f.link.Complete() {
		out = append(out, s.Bytes)
	}
	return out
}

// learnPeer makes the stack know the peer's MAC (it asks for us).
func (f *fixture) learnPeer() {
	f.input(arpFrame(arp.OpRequest, peerMAC, peerIP, ethernet.Addr{}, ourIP, ethernet.Broadcast))
	f.sent()
}

func TestARPRequestForUsGetsReplyAndPeerIsLearnt(t *testing.T) {
	f := newFixture(t, stack.Dedicated)
	f.input(arpFrame(arp.OpRequest, peerMAC, peerIP, ethernet.Addr{}, ourIP, ethernet.Broadcast))
	out := f.sent()
	if len(out) != 1 {
		t.Fatalf("sent %d frames, want 1 ARP reply", len(out))
	}
	eth, _ := ethernet.Parse(out[0])
	if eth.Dst() != peerMAC || eth.Src() != ourMAC || eth.Type() != ethernet.TypeARP {
		t.Fatalf("reply Ethernet header: dst %v src %v type %#x", eth.Dst(), eth.Src(), eth.Type())
	}
	a, err := arp.Parse(eth.Payload())
	if err != nil {
		t.Fatal(err)
	}
	if a.Op() != arp.OpReply || a.SenderHW() != ourMAC || a.SenderIP() != ourIP || a.TargetHW() != peerMAC || a.TargetIP() != peerIP {
		t.Fatalf("bad reply %x", []byte(a))
	}
	if len(out[0]) != ethernet.HeaderLen+arp.HeaderLen {
		t.Fatalf("reply length %d", len(out[0]))
	}
	// The peer was learnt: a datagram to it leaves at once, no ARP request.
	ep := f.s.NewUDP(1)
	b, _ := f.link.Alloc()
	b.Len = copy(b.Data[b.Off:], "hi")
	if err := ep.Send(b, netip.AddrPortFrom(netip.AddrFrom4(peerIP), 9), 5); err != nil {
		t.Fatal(err)
	}
	f.link.Release(b.Frame)
	out = f.sent()
	if len(out) != 1 {
		t.Fatalf("sent %d frames", len(out))
	}
	if eth, _ := ethernet.Parse(out[0]); eth.Type() != ethernet.TypeIPv4 || eth.Dst() != peerMAC {
		t.Fatalf("datagram not sent straight to the learnt peer")
	}
}

func TestARPForAnotherAddressIsIgnored(t *testing.T) {
	f := newFixture(t, stack.Dedicated)
	f.input(arpFrame(arp.OpRequest, peerMAC, peerIP, ethernet.Addr{}, [4]byte{198, 51, 100, 9}, ethernet.Broadcast))
	if out := f.sent(); len(out) != 0 {
		t.Fatalf("answered ARP for another address")
	}
	if c := f.s.Counters(); c.ARPNotOurs != 1 {
		t.Fatalf("ARPNotOurs = %d", c.ARPNotOurs)
	}
}

func TestGratuitousARPOnStart(t *testing.T) {
	f := newFixture(t, stack.Dedicated)
	f.s.Start()
	out := f.sent()
	if len(out) != 1 {
		t.Fatalf("sent %d frames", len(out))
	}
	eth, _ := ethernet.Parse(out[0])
	a, err := arp.Parse(eth.Payload())
	if err != nil || eth.Dst() != ethernet.Broadcast || a.SenderIP() != ourIP || a.TargetIP() != ourIP {
		t.Fatalf("not a gratuitous ARP: %x", out[0])
	}
	g := newFixture(t, stack.Shared)
	g.s.Start()
	if len(g.sent()) != 0 {
		t.Fatal("shared mode must leave ARP to the kernel")
	}
}

func TestUDPSendWaitsForARPThenGoes(t *testing.T) {
	f := newFixture(t, stack.Dedicated)
	ep := f.s.NewUDP(1)
	if err := ep.Bind(netip.MustParseAddrPort("0.0.0.0:4000")); err != nil {
		t.Fatal(err)
	}
	b, _ := f.link.Alloc()
	payload := []byte("payload bytes")
	b.Len = copy(b.Data[b.Off:], payload)
	if err := ep.Send(b, netip.AddrPortFrom(netip.AddrFrom4(peerIP), 7), 42); err != nil {
		t.Fatal(err)
	}
	f.link.Release(b.Frame) // the application frees at once: free-protection
	out := f.sent()
	if len(out) != 1 {
		t.Fatalf("want 1 ARP request, got %d frames", len(out))
	}
	if eth, _ := ethernet.Parse(out[0]); eth.Type() != ethernet.TypeARP || eth.Dst() != ethernet.Broadcast {
		t.Fatal("first frame is not a broadcast ARP request")
	}
	if f.s.NextDeadline() == 0 {
		t.Fatal("no retry timer armed")
	}
	// The reply arrives: the datagram leaves, in the frame it was pushed in.
	f.input(arpFrame(arp.OpReply, peerMAC, peerIP, ourMAC, ourIP, ourMAC))
	sent := f.link.Sent
	if len(sent) != 1 || sent[0].Frame != b.Frame || sent[0].Tag != 42 {
		t.Fatalf("after the reply: %+v", sent)
	}
	got := sent[0].Bytes
	eth, _ := ethernet.Parse(got)
	ip, err := ipv4.Parse(eth.Payload())
	if err != nil || eth.Dst() != peerMAC || ip.Src() != ourIP || ip.Dst() != peerIP || ip.Protocol() != ipv4.ProtoUDP {
		t.Fatalf("bad datagram %x (%v)", got, err)
	}
	u, err := udp.Parse(ip.Payload())
	if err != nil || !u.VerifyChecksum(ip.Src(), ip.Dst()) || u.SrcPort() != 4000 || u.DstPort() != 7 || !bytes.Equal(u.Payload(), payload) {
		t.Fatalf("bad UDP %x", []byte(u))
	}
	f.sent()
	if f.link.Free() != 64 {
		t.Fatalf("%d frames free after completion, want 64", f.link.Free())
	}
}

func TestARPFailureCompletesWithEHOSTUNREACH(t *testing.T) {
	f := newFixture(t, stack.Dedicated)
	ep := f.s.NewUDP(1)
	b, _ := f.link.Alloc()
	b.Len = copy(b.Data[b.Off:], "x")
	if err := ep.Send(b, netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, 77}), 7), 9); err != nil {
		t.Fatal(err)
	}
	f.link.Release(b.Frame)
	requests := len(f.sent())
	for i := 0; i < 10 && f.notes.done[9] == nil; i++ {
		f.clock.Advance(int64(time.Second))
		f.s.Tick()
		requests += len(f.sent())
	}
	if !errors.Is(f.notes.done[9], unix.EHOSTUNREACH) {
		t.Fatalf("done = %v", f.notes.done)
	}
	if requests != 3 {
		t.Fatalf("%d ARP requests, want 3", requests)
	}
	if f.link.Free() != 64 {
		t.Fatalf("frame leaked: %d free", f.link.Free())
	}
	if c := f.s.Counters(); c.ARPFailed != 1 {
		t.Fatalf("ARPFailed = %d", c.ARPFailed)
	}
}

func TestUDPReceiveQueuesPayloadView(t *testing.T) {
	f := newFixture(t, stack.Dedicated)
	ep := f.s.NewUDP(77)
	if err := ep.Bind(netip.MustParseAddrPort("198.51.100.1:7")); err != nil {
		t.Fatal(err)
	}
	f.input(udpFrame(5555, 7, []byte("hello")))
	if len(f.notes.readable) != 1 || f.notes.readable[0] != 77 {
		t.Fatalf("readable = %v", f.notes.readable)
	}
	b, from, ok := ep.Recv()
	if !ok || string(b.Bytes()) != "hello" || from != netip.MustParseAddrPort("198.51.100.2:5555") {
		t.Fatalf("recv %q from %v", b.Bytes(), from)
	}
	f.link.Release(b.Frame)
}

// TestUDPDemuxAfterCloseAndRebind: datagrams go to the endpoint bound to
// their port, alternating between two ports, and none goes to a closed
// endpoint (the demultiplexer remembers the last one it found), even when
// another endpoint takes its port.
func TestUDPDemuxAfterCloseAndRebind(t *testing.T) {
	f := newFixture(t, stack.Dedicated)
	bind := func(cookie uint64, port uint16) *stack.UDPEndpoint {
		ep := f.s.NewUDP(cookie)
		if err := ep.Bind(netip.AddrPortFrom(netip.IPv4Unspecified(), port)); err != nil {
			t.Fatal(err)
		}
		return ep
	}
	recv := func(ep *stack.UDPEndpoint, want string) {
		t.Helper()
		b, _, ok := ep.Recv()
		if !ok || string(b.Bytes()) != want {
			t.Fatalf("endpoint %d: got %q (%v), want %q", ep.Cookie, b.Bytes(), ok, want)
		}
		f.link.Release(b.Frame)
	}
	a, b := bind(1, 7), bind(2, 8)
	for _, p := range []string{"a1", "b1", "a2", "a3", "b2"} {
		f.input(udpFrame(5555, 7+uint16(p[0]-'a'), []byte(p)))
	}
	recv(a, "a1")
	recv(a, "a2")
	recv(a, "a3")
	recv(b, "b1")
	recv(b, "b2")
	f.input(udpFrame(5555, 7, []byte("a4"))) // a is the one found last
	a.Close()
	f.input(udpFrame(5555, 7, []byte("lost")))
	if c := f.s.Counters(); c.UDPNoPort != 1 {
		t.Fatalf("UDPNoPort = %d after a datagram to a closed port, want 1", c.UDPNoPort)
	}
	c := bind(3, 7)
	f.input(udpFrame(5555, 7, []byte("c1")))
	recv(c, "c1")
	if a.Queued() != 0 {
		t.Fatalf("closed endpoint holds %d datagrams", a.Queued())
	}
	b.Close()
	c.Close()
}

func TestUDPReceiveQueueOverflowDropsNewest(t *testing.T) {
	f := &fixture{t: t, link: memlink.New(64, 2048, 256), clock: &nic.VirtualClock{}, notes: &notes{}}
	s, err := stack.New(f.link, f.clock, f.notes, stack.Config{Addr: netip.MustParsePrefix("198.51.100.1/24"), UDPQueueLen: 2})
	if err != nil {
		t.Fatal(err)
	}
	f.s = s
	ep := s.NewUDP(1)
	ep.Bind(netip.MustParseAddrPort("0.0.0.0:7"))
	for _, p := range []string{"one", "two", "three"} {
		f.input(udpFrame(1, 7, []byte(p)))
	}
	if ep.Counters().RxQueueFull != 1 {
		t.Fatalf("RxQueueFull = %d", ep.Counters().RxQueueFull)
	}
	for _, want := range []string{"one", "two"} {
		b, _, ok := ep.Recv()
		if !ok || string(b.Bytes()) != want {
			t.Fatalf("got %q want %q", b.Bytes(), want)
		}
		f.link.Release(b.Frame)
	}
	ep.Close()
	if f.link.Free() != 64 || f.link.Check() != nil {
		t.Fatalf("leak: %d free, %v", f.link.Free(), f.link.Check())
	}
}

func TestICMPEchoAnsweredInPlace(t *testing.T) {
	f := newFixture(t, stack.Dedicated)
	f.learnPeer()
	msg := make([]byte, icmp.HeaderLen+32)
	msg[0] = icmp.TypeEchoRequest
	msg[4], msg[5], msg[6], msg[7] = 0x12, 0x34, 0, 1
	for i := range 32 {
		msg[8+i] = byte(i)
	}
	icmp.Header(msg).SetChecksum(icmp.Header(msg).ComputeChecksum())
	f.input(frame(ourMAC, peerMAC, ethernet.TypeIPv4, ipPacket(ipv4.ProtoICMP, peerIP, ourIP, msg)))
	out := f.sent()
	if len(out) != 1 {
		t.Fatalf("sent %d", len(out))
	}
	eth, _ := ethernet.Parse(out[0])
	ip, err := ipv4.Parse(eth.Payload())
	if err != nil || ip.Src() != ourIP || ip.Dst() != peerIP || eth.Dst() != peerMAC {
		t.Fatalf("bad reply IP: %v", err)
	}
	m, err := icmp.Parse(ip.Payload())
	if err != nil || m.Type() != icmp.TypeEchoReply || m.ID() != 0x1234 || m.Seq() != 1 || !bytes.Equal(m.Payload(), msg[8:]) {
		t.Fatalf("bad echo reply: %v %x", err, []byte(m))
	}
	g := newFixture(t, stack.Shared)
	g.input(frame(ourMAC, peerMAC, ethernet.TypeIPv4, ipPacket(ipv4.ProtoICMP, peerIP, ourIP, msg)))
	if len(g.sent()) != 0 {
		t.Fatal("shared mode answered ping")
	}
}

func TestMalformedInputIsDroppedAndCounted(t *testing.T) {
	f := newFixture(t, stack.Dedicated)
	ep := f.s.NewUDP(1)
	ep.Bind(netip.MustParseAddrPort("0.0.0.0:7"))
	good := udpFrame(1, 7, []byte("ok"))

	badUDPSum := append([]byte(nil), good...)
	badUDPSum[len(badUDPSum)-1] ^= 0xff
	badIPSum := append([]byte(nil), good...)
	badIPSum[ethernet.HeaderLen+8] ^= 1 // TTL changed without checksum fix
	lyingLen := append([]byte(nil), good...)
	lyingLen[ethernet.HeaderLen+2] = 0x05 // total length 0x05xx > frame
	opts := frame(ourMAC, peerMAC, ethernet.TypeIPv4, func() []byte {
		p := make([]byte, 24+8)
		ipv4.Header(p).Encode(ipv4.Fields{TotalLength: 32, TTL: 64, Protocol: ipv4.ProtoUDP, Src: peerIP, Dst: ourIP})
		p[0] = 0x46
		ipv4.Header(p).SetChecksum(0)
		ipv4.Header(p).SetChecksum(ipv4.Header(p).ComputeChecksum())
		return p
	}())
	frag := frame(ourMAC, peerMAC, ethernet.TypeIPv4, func() []byte {
		p := ipPacket(ipv4.ProtoUDP, peerIP, ourIP, make([]byte, 8))
		p[6] = 0x20 // MF
		ipv4.Header(p).SetChecksum(0)
		ipv4.Header(p).SetChecksum(ipv4.Header(p).ComputeChecksum())
		return p
	}())
	cases := []struct {
		name  string
		pkt   []byte
		count func(stack.Counters) uint64
	}{
		{"truncated ethernet", good[:10], func(c stack.Counters) uint64 { return c.EthTruncated }},
		{"truncated ipv4", good[:ethernet.HeaderLen+12], func(c stack.Counters) uint64 { return c.IPMalformed }},
		{"truncated udp", good[:ethernet.HeaderLen+20+4], func(c stack.Counters) uint64 { return c.IPMalformed }},
		{"udp checksum", badUDPSum, func(c stack.Counters) uint64 { return c.UDPChecksum }},
		{"ip checksum", badIPSum, func(c stack.Counters) uint64 { return c.IPChecksum }},
		{"length lies", lyingLen, func(c stack.Counters) uint64 { return c.IPMalformed + c.IPChecksum }},
		{"ip options", opts, func(c stack.Counters) uint64 { return c.IPOptions }},
		{"fragment", frag, func(c stack.Counters) uint64 { return c.IPFragments }},
		{"arp garbage", frame(ethernet.Broadcast, peerMAC, ethernet.TypeARP, []byte{0, 1, 2}), func(c stack.Counters) uint64 { return c.ARPMalformed }},
		{"ipv6", frame(ourMAC, peerMAC, ethernet.TypeIPv6, make([]byte, 40)), func(c stack.Counters) uint64 { return c.EthUnsupported }},
		{"not our mac", frame(peerMAC, peerMAC, ethernet.TypeIPv4, nil), func(c stack.Counters) uint64 { return c.EthNotOurs }},
		{"no port", udpFrame(1, 9, []byte("x")), func(c stack.Counters) uint64 { return c.UDPNoPort }},
	}
	for _, c := range cases {
		before := c.count(f.s.Counters())
		f.input(c.pkt)
		if after := c.count(f.s.Counters()); after != before+1 {
			t.Errorf("%s: counter %d -> %d", c.name, before, after)
		}
		if ep.Queued() != 0 {
			t.Fatalf("%s: delivered", c.name)
		}
	}
	if f.link.Free() != 64 {
		t.Fatalf("frames leaked: %d free", f.link.Free())
	}
	f.input(good)
	if ep.Queued() != 1 {
		t.Fatal("a good datagram after the garbage was not delivered")
	}
	b, _, _ := ep.Recv()
	f.link.Release(b.Frame)
}

func TestUDPSendErrors(t *testing.T) {
	f := newFixture(t, stack.Dedicated)
	ep := f.s.NewUDP(1)
	b, _ := f.link.Alloc()
	defer f.link.Release(b.Frame)
	b.Len = 10
	if err := ep.Send(b, netip.AddrPort{}, 1); err != unix.EDESTADDRREQ {
		t.Errorf("no destination: %v", err)
	}
	if err := ep.Send(b, netip.MustParseAddrPort("203.0.113.5:9"), 1); err != unix.ENETUNREACH {
		t.Errorf("off-link without gateway: %v", err)
	}
	if err := ep.Send(b, netip.MustParseAddrPort("198.51.100.2:0"), 1); err != unix.EINVAL {
		t.Errorf("port 0: %v", err)
	}
	big := b
	big.Len = f.s.MaxPayload() + 1
	if err := ep.Send(big, netip.MustParseAddrPort("198.51.100.2:9"), 1); err != unix.EMSGSIZE {
		t.Errorf("too big: %v", err)
	}
	ep = f.s.NewUDP(3) // the failed sends above bound ep implicitly, as on Linux
	if err := ep.Bind(netip.MustParseAddrPort("198.51.100.99:1")); err != unix.EINVAL {
		t.Errorf("bind foreign address: %v", err)
	}
	other := f.s.NewUDP(2)
	if err := other.Bind(netip.MustParseAddrPort("0.0.0.0:53")); err != nil {
		t.Fatal(err)
	}
	if err := ep.Bind(netip.MustParseAddrPort("0.0.0.0:53")); err != unix.EADDRINUSE {
		t.Errorf("port in use: %v", err)
	}
	if err := ep.Bind(netip.MustParseAddrPort("0.0.0.0:0")); err != nil {
		t.Fatal(err)
	}
	if p := ep.LocalAddr().Port(); p < 61000 {
		t.Errorf("ephemeral port %d outside 61000-65535", p)
	}
	if err := ep.Bind(netip.MustParseAddrPort("0.0.0.0:0")); err != unix.EINVAL {
		t.Errorf("bind twice: %v", err)
	}
}

func TestSteadyStateAllocatesNothing(t *testing.T) {
	f := newFixture(t, stack.Dedicated)
	f.learnPeer()
	ep := f.s.NewUDP(1)
	ep.Bind(netip.MustParseAddrPort("0.0.0.0:7"))
	pkt := udpFrame(5000, 7, make([]byte, 64))
	to := netip.MustParseAddrPort("198.51.100.2:5000")
	f.link.NoCopy = true
	f.link.Sent = make([]memlink.Sent, 0, 16)
	allocs := testing.AllocsPerRun(1000, func() {
		b := f.link.Inject(pkt)
		f.s.Input(b)
		rb, _, ok := ep.Recv()
		if !ok {
			t.Fatal("nothing received")
		}
		if err := ep.Send(rb, to, 1); err != nil {
			t.Fatal(err)
		}
		f.link.Release(rb.Frame)
		f.link.CompleteQuiet()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per echo", allocs)
	}
}

// TestOffLinkGoesThroughGateway: a datagram to an address outside the
// prefix is resolved and sent to the gateway's MAC, with the final
// destination in the IPv4 header.
func TestOffLinkGoesThroughGateway(t *testing.T) {
	link := memlink.New(16, 2048, 256)
	s, err := stack.New(link, &nic.VirtualClock{T: 1}, &notes{}, stack.Config{
		Addr:    netip.MustParsePrefix("198.51.100.1/24"),
		Gateway: netip.MustParseAddr("198.51.100.254"),
	})
	if err != nil {
		t.Fatal(err)
	}
	gwMAC := ethernet.Addr{0x02, 0, 0, 0, 0, 0xfe}
	gwIP := [4]byte{198, 51, 100, 254}
	ep := s.NewUDP(1)
	b, _ := link.Alloc()
	b.Len = copy(b.Data[b.Off:], "far")
	if err := ep.Send(b, netip.MustParseAddrPort("203.0.113.9:53"), 3); err != nil {
		t.Fatal(err)
	}
	link.Release(b.Frame)
	out := link.Complete()
	if len(out) != 1 {
		t.Fatalf("%d frames, want one ARP request", len(out))
	}
	eth, _ := ethernet.Parse(out[0].Bytes)
	a, err := arp.Parse(eth.Payload())
	if err != nil || a.TargetIP() != gwIP {
		t.Fatalf("ARP request is not for the gateway: %v", err)
	}
	s.Input(link.Inject(arpFrame(arp.OpReply, gwMAC, gwIP, ourMAC, ourIP, ourMAC)))
	out = link.Complete()
	if len(out) != 1 {
		t.Fatalf("%d frames after the gateway answered", len(out))
	}
	eth, _ = ethernet.Parse(out[0].Bytes)
	ip, err := ipv4.Parse(eth.Payload())
	if err != nil || eth.Dst() != gwMAC || ip.Dst() != [4]byte{203, 0, 113, 9} {
		t.Fatalf("datagram: dst MAC %v, dst IP %v, %v", eth.Dst(), ip.Dst(), err)
	}
	if _, err := stack.New(link, &nic.VirtualClock{}, &notes{}, stack.Config{
		Addr: netip.MustParsePrefix("198.51.100.1/24"), Gateway: netip.MustParseAddr("203.0.113.1"),
	}); !errors.Is(err, stack.ErrConfig) {
		t.Fatalf("a gateway outside the prefix: %v", err)
	}
}

// TestNeighbourRefreshAndExpiry: a known neighbour is used without ARP; in
// the last retries*interval before it expires one unicast refresh request
// goes out; once expired without an answer, datagrams wait for a new
// broadcast resolution.
func TestNeighbourRefreshAndExpiry(t *testing.T) {
	f := newFixture(t, stack.Dedicated)
	f.learnPeer()
	ep := f.s.NewUDP(1)
	to := netip.AddrPortFrom(netip.AddrFrom4(peerIP), 9)
	send := func() []memlink.Sent {
		t.Helper()
		b, _ := f.link.Alloc()
		b.Len = copy(b.Data[b.Off:], "x")
		if err := ep.Send(b, to, 0); err != nil {
			t.Fatal(err)
		}
		f.link.Release(b.Frame)
		return f.link.Complete()
	}
	kinds := func(sent []memlink.Sent) (arps []ethernet.Addr, ips int) {
		for _, s := range sent {
			eth, _ := ethernet.Parse(s.Bytes)
			if eth.Type() == ethernet.TypeARP {
				arps = append(arps, eth.Dst())
			} else {
				ips++
			}
		}
		return
	}
	if arps, ips := kinds(send()); len(arps) != 0 || ips != 1 {
		t.Fatalf("fresh entry: %d ARP, %d datagrams", len(arps), ips)
	}
	f.advance(58 * time.Second) // 2 s before expiry (3 retries x 1 s window)
	if arps, ips := kinds(send()); len(arps) != 1 || arps[0] != peerMAC || ips != 1 {
		t.Fatalf("near expiry: ARP to %v, %d datagrams; want one unicast refresh and the datagram", arps, ips)
	}
	if arps, ips := kinds(send()); len(arps) != 0 || ips != 1 {
		t.Fatalf("refresh already out: %d ARP, %d datagrams", len(arps), ips)
	}
	f.advance(3 * time.Second) // expired, no reply came
	if arps, ips := kinds(send()); len(arps) != 1 || arps[0] != ethernet.Broadcast || ips != 0 {
		t.Fatalf("expired: ARP to %v, %d datagrams; want a broadcast request and the datagram held", arps, ips)
	}
	f.input(arpFrame(arp.OpReply, peerMAC, peerIP, ourMAC, ourIP, ourMAC))
	if _, ips := kinds(f.link.Complete()); ips != 1 {
		t.Fatalf("the held datagram did not leave after the reply")
	}
}

// countingClock is a virtual clock that counts its reads.
type countingClock struct {
	nic.VirtualClock
	reads int
}

func (c *countingClock) Now() int64 { c.reads++; return c.VirtualClock.Now() }

// TestNeighbourFastPathReadsNoClock: datagrams to the neighbour used last
// read no clock; the stack's timer ends that at the refresh window, and
// the next datagram then sends the refresh request; the reply makes the
// fast path good for a new lifetime.
func TestNeighbourFastPathReadsNoClock(t *testing.T) {
	clock := &countingClock{VirtualClock: nic.VirtualClock{T: 1}}
	link := memlink.New(64, 2048, 256)
	s, err := stack.New(link, clock, &notes{}, stack.Config{Addr: netip.MustParsePrefix("198.51.100.1/24"), Mode: stack.Dedicated})
	if err != nil {
		t.Fatal(err)
	}
	s.Input(link.Inject(arpFrame(arp.OpRequest, peerMAC, peerIP, ethernet.Addr{}, ourIP, ethernet.Broadcast)))
	link.Complete()
	ep := s.NewUDP(1)
	to := netip.AddrPortFrom(netip.AddrFrom4(peerIP), 9)
	send := func() (arps, ips int) {
		t.Helper()
		b, _ := link.Alloc()
		b.Len = copy(b.Data[b.Off:], "x")
		if err := ep.Send(b, to, 0); err != nil {
			t.Fatal(err)
		}
		link.Release(b.Frame)
		for _, f := range link.Complete() {
			if eth, _ := ethernet.Parse(f.Bytes); eth.Type() == ethernet.TypeARP {
				arps++
			} else if eth.Dst() == peerMAC {
				ips++
			}
		}
		return
	}
	tick := func(d time.Duration) {
		clock.Advance(int64(d))
		if dl := s.NextDeadline(); dl != 0 && clock.T >= dl {
			s.Tick()
		}
	}
	send() // the first lookup takes the map
	r := clock.reads
	for i := 0; i < 10; i++ {
		if arps, ips := send(); arps != 0 || ips != 1 {
			t.Fatalf("fast path: %d ARP, %d datagrams", arps, ips)
		}
	}
	if clock.reads != r {
		t.Fatalf("10 datagrams to the last neighbour read the clock %d times", clock.reads-r)
	}
	d := s.NextDeadline()
	if d == 0 || d > 1+int64(57*time.Second) || d < 1+int64(56*time.Second) {
		t.Fatalf("NextDeadline %d, want the refresh window's start, 57 s after learning (60 s TTL, 3 x 1 s)", d)
	}
	tick(30 * time.Second) // not yet
	if arps, ips := send(); arps != 0 || ips != 1 {
		t.Fatalf("mid-life: %d ARP, %d datagrams", arps, ips)
	}
	tick(28 * time.Second) // 58 s: inside the refresh window
	if arps, ips := send(); arps != 1 || ips != 1 {
		t.Fatalf("refresh window: %d ARP, %d datagrams; want the refresh and the datagram", arps, ips)
	}
	s.Input(link.Inject(arpFrame(arp.OpReply, peerMAC, peerIP, ourMAC, ourIP, ourMAC)))
	link.Complete()
	r = clock.reads
	if arps, ips := send(); arps != 0 || ips != 1 || clock.reads != r {
		t.Fatalf("after the reply: %d ARP, %d datagrams, %d clock reads", arps, ips, clock.reads-r)
	}
	if d := s.NextDeadline(); d < clock.T+int64(56*time.Second) {
		t.Fatalf("after the reply NextDeadline is %d s away, want a new lifetime", (d-clock.T)/int64(time.Second))
	}
	s.Close()
	if err := link.Check(); err != nil {
		t.Error(err)
	}
}
