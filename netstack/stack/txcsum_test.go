package stack_test

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/demixdp/demixdp/internal/memlink"
	"github.com/demixdp/demixdp/netstack/arp"
	"github.com/demixdp/demixdp/netstack/checksum"
	"github.com/demixdp/demixdp/netstack/ethernet"
	"github.com/demixdp/demixdp/netstack/ipv4"
	"github.com/demixdp/demixdp/netstack/nic"
	"github.com/demixdp/demixdp/netstack/stack"
	"github.com/demixdp/demixdp/netstack/udp"
)

// TestUDPChecksumOffload: with TxChecksumOffload a datagram leaves with
// the pseudo-header's folded sum in its checksum field, where
// nic.L4Checksum finds it; completing it gives the checksum the stack
// computes without the offload, for every payload size up to 64 bytes and
// for a payload whose checksum comes out as 0 (sent as 0xffff).
func TestUDPChecksumOffload(t *testing.T) {
	send := func(offload bool, payload []byte) memlink.Sent {
		t.Helper()
		link := memlink.New(8, 2048, 256)
		s, err := stack.New(link, &nic.VirtualClock{T: 1}, &notes{}, stack.Config{
			Addr: netip.MustParsePrefix("198.51.100.1/24"), Mode: stack.Dedicated, TxChecksumOffload: offload})
		if err != nil {
			t.Fatal(err)
		}
		s.Input(link.Inject(arpFrame(arp.OpRequest, peerMAC, peerIP, ethernet.Addr{}, ourIP, ethernet.Broadcast)))
		link.Complete()
		ep := s.NewUDP(1)
		if err := ep.Bind(netip.AddrPortFrom(netip.AddrFrom4(ourIP), 4000)); err != nil {
			t.Fatal(err)
		}
		b, _ := link.Alloc()
		b.Len = copy(b.Data[b.Off:], payload)
		if err := ep.Send(b, netip.AddrPortFrom(netip.AddrFrom4(peerIP), 9), 0); err != nil {
			t.Fatal(err)
		}
		link.Release(b.Frame)
		out := link.Complete()
		if len(out) != 1 {
			t.Fatalf("%d frames sent", len(out))
		}
		return out[0]
	}
	const l4 = ethernet.HeaderLen + ipv4.MinHeaderLen
	const udpChecksumOffset = 6 // RFC 768: source, destination, length, checksum
	check := func(payload []byte) uint16 {
		t.Helper()
		full, part := send(false, payload), send(true, payload)
		start, off, ok := nic.L4Checksum(part.Bytes)
		if !ok || start != l4 || off != udpChecksumOffset {
			t.Fatalf("L4Checksum: %d+%d %v, want %d+%d", start, off, ok, l4, udpChecksumOffset)
		}
		h := udp.Header(part.Bytes[l4:])
		pseudo := checksum.Fold(checksum.PseudoIPv4(ourIP, peerIP, ipv4.ProtoUDP, uint16(udp.HeaderLen+len(payload))))
		if h.Checksum() != pseudo {
			t.Fatalf("partial field %#04x, want the pseudo-header's sum %#04x", h.Checksum(), pseudo)
		}
		nic.CompleteChecksum(part.Bytes[start:], off)
		if string(part.Bytes) != string(full.Bytes) {
			t.Fatalf("%d-byte payload: completed %x, computed %x", len(payload), part.Bytes, full.Bytes)
		}
		if !h.VerifyChecksum(ourIP, peerIP) {
			t.Fatal("the completed checksum does not verify")
		}
		return h.Checksum()
	}
	for n := 0; n <= 64; n++ {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i*7 + n)
		}
		check(p)
	}
	// A payload whose last word makes the sum all ones: its checksum
	// computes to 0, which UDP sends as 0xffff.
	p := make([]byte, 10)
	copy(p, "zero-sum")
	s := checksum.PseudoIPv4(ourIP, peerIP, ipv4.ProtoUDP, uint16(udp.HeaderLen+len(p)))
	var hdr [udp.HeaderLen]byte
	udp.Header(hdr[:]).Encode(4000, 9, uint16(udp.HeaderLen+len(p)))
	s = checksum.Sum(p, checksum.Sum(hdr[:], s))
	binary.BigEndian.PutUint16(p[8:], ^checksum.Fold(s))
	if c := check(p); c != 0xffff {
		t.Fatalf("a zero checksum went out as %#04x, want 0xffff", c)
	}
}
