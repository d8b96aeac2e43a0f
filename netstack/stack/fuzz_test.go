package stack_test

import (
	"net/netip"
	"testing"

	"github.com/demixdp/demixdp/internal/memlink"
	"github.com/demixdp/demixdp/netstack/arp"
	"github.com/demixdp/demixdp/netstack/ethernet"
	"github.com/demixdp/demixdp/netstack/icmp"
	"github.com/demixdp/demixdp/netstack/ipv4"
	"github.com/demixdp/demixdp/netstack/nic"
	"github.com/demixdp/demixdp/netstack/stack"
)

// FuzzInput feeds arbitrary frames to a stack with a bound UDP endpoint. It
// must never panic, never leak or double-release a frame, and account for
// every frame: delivered, answered, or counted as a drop.
func FuzzInput(f *testing.F) {
	f.Add(udpFrame(5555, 7, []byte("hello")))
	f.Add(arpFrame(arp.OpRequest, peerMAC, peerIP, ethernet.Addr{}, ourIP, ethernet.Broadcast))
	f.Add(arpFrame(arp.OpReply, peerMAC, peerIP, ourMAC, ourIP, ourMAC))
	echo := make([]byte, icmp.HeaderLen+8)
	echo[0] = icmp.TypeEchoRequest
	icmp.Header(echo).SetChecksum(icmp.Header(echo).ComputeChecksum())
	f.Add(frame(ourMAC, peerMAC, ethernet.TypeIPv4, ipPacket(ipv4.ProtoICMP, peerIP, ourIP, echo)))
	f.Add(frame(ourMAC, peerMAC, ethernet.TypeIPv4, ipPacket(6, peerIP, ourIP, make([]byte, 20))))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		if len(pkt) > 1800 {
			return
		}
		link := memlink.New(8, 2048, 256)
		clock := &nic.VirtualClock{T: 1}
		s, err := stack.New(link, clock, &notes{}, stack.Config{Addr: netip.MustParsePrefix("198.51.100.1/24")})
		if err != nil {
			t.Fatal(err)
		}
		ep := s.NewUDP(1)
		ep.Bind(netip.MustParseAddrPort("0.0.0.0:7"))
		s.Input(link.Inject(pkt))
		c := s.Counters()
		handled := c.UDPDelivered + c.ARPRepliesTx + c.ICMPEchoReplies + c.ARPResolved +
			c.EthTruncated + c.EthNotOurs + c.EthUnsupported + c.ARPMalformed + c.ARPNotOurs +
			c.IPMalformed + c.IPChecksum + c.IPOptions + c.IPFragments + c.IPTTLExpired + c.IPNotOurs +
			c.IPUnknownProto + c.ICMPMalformed + c.ICMPIgnored + c.UDPMalformed + c.UDPChecksum +
			c.UDPNoPort + c.UDPQueueFull
		tc := s.TCP().Counters()
		handled += tc.SegsIn + tc.Malformed + tc.BadChecksum
		if handled == 0 && c.RxFrames == 1 {
			// An ARP request or reply for us that needed no answer is
			// the only silent case: it was still parsed as ARP.
			if _, err := arp.Parse(pkt[min(len(pkt), ethernet.HeaderLen):]); err != nil {
				t.Fatalf("frame neither delivered nor counted: %x", pkt)
			}
		}
		for {
			b, _, ok := ep.Recv()
			if !ok {
				break
			}
			if b.Off < 0 || b.Off+b.Len > len(b.Data) {
				t.Fatalf("delivered view out of its frame: off %d len %d", b.Off, b.Len)
			}
			link.Release(b.Frame)
		}
		link.Complete()
		if err := link.Check(); err != nil {
			t.Fatal(err)
		}
		if link.Free() != 8 {
			t.Fatalf("frame leaked: %d of 8 free", link.Free())
		}
	})
}
