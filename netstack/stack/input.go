package stack

import (
	"github.com/demixdp/demixdp/netstack/arp"
	"github.com/demixdp/demixdp/netstack/ethernet"
	"github.com/demixdp/demixdp/netstack/icmp"
	"github.com/demixdp/demixdp/netstack/ipv4"
	"github.com/demixdp/demixdp/netstack/nic"
	"github.com/demixdp/demixdp/netstack/udp"
)

// Input processes one received frame and consumes the caller's reference on
// it: the frame is either queued on an endpoint, reused for a reply, or
// released, and every drop is counted. It never panics on wire input.
//
//demixdp:hotpath — allocates nothing.
func (s *Stack) Input(b nic.Buf) {
	s.ctr.RxFrames++
	s.ctr.RxBytes += uint64(b.Len)
	if !s.input(&b) {
		s.link.Release(b.Frame)
	}
}

// input returns true if it kept (or passed on) the reference.
func (s *Stack) input(b *nic.Buf) bool {
	eth, err := ethernet.Parse(b.Bytes())
	if err != nil {
		s.ctr.EthTruncated++
		return false
	}
	if dst := eth.Dst(); dst != s.mac && dst != ethernet.Broadcast {
		s.ctr.EthNotOurs++
		return false
	}
	switch eth.Type() {
	case ethernet.TypeIPv4:
		return s.inputIPv4(b, eth)
	case ethernet.TypeARP:
		s.inputARP(b, eth)
		return false
	default:
		s.ctr.EthUnsupported++
		return false
	}
}

func (s *Stack) inputARP(b *nic.Buf, eth ethernet.Header) {
	h, err := arp.Parse(eth.Payload())
	if err != nil {
		s.ctr.ARPMalformed++
		return
	}
	spa, tpa := h.SenderIP(), h.TargetIP()
	// RFC 826 merge: refresh a sender we already know, learn one that is
	// asking for us.
	forUs := tpa == s.addr
	s.neigh.learn(spa, h.SenderHW(), forUs)
	if !forUs {
		s.ctr.ARPNotOurs++
		return
	}
	if h.Op() != arp.OpRequest || s.cfg.Mode != Dedicated {
		return
	}
	// Answer in place: the request frame becomes the reply.
	sha := h.SenderHW()
	h.Encode(arp.OpReply, s.mac, s.addr, sha, spa)
	eth.Encode(sha, s.mac, ethernet.TypeARP)
	// Trim Ethernet padding: a reply is exactly header + ARP body.
	b.Len = ethernet.HeaderLen + arp.HeaderLen
	if s.transmitOwn(b) {
		s.ctr.ARPRepliesTx++
	}
}

func (s *Stack) inputIPv4(b *nic.Buf, eth ethernet.Header) bool {
	ip, err := ipv4.Parse(eth.Payload())
	switch err {
	case nil:
	case ipv4.ErrChecksum:
		s.ctr.IPChecksum++
		return false
	default:
		s.ctr.IPMalformed++
		return false
	}
	if ip.Dst() != s.addr {
		s.ctr.IPNotOurs++
		return false
	}
	if ip.IsFragment() {
		s.ctr.IPFragments++
		return false
	}
	if ip.HeaderLen() != ipv4.MinHeaderLen {
		s.ctr.IPOptions++
		return false
	}
	if ip.TTL() == 0 {
		s.ctr.IPTTLExpired++
		return false
	}
	switch ip.Protocol() {
	case ipv4.ProtoUDP:
		return s.inputUDP(b, ip)
	case ipv4.ProtoICMP:
		s.inputICMP(b, ip)
		return false
	case ipv4.ProtoTCP:
		return s.inputTCP(b, ip)
	default:
		s.ctr.IPUnknownProto++
		return false
	}
}

func (s *Stack) inputICMP(b *nic.Buf, ip ipv4.Header) {
	m, err := icmp.Parse(ip.Payload())
	if err != nil {
		s.ctr.ICMPMalformed++
		return
	}
	if m.Type() != icmp.TypeEchoRequest || m.Code() != 0 || s.cfg.Mode != Dedicated {
		s.ctr.ICMPIgnored++
		return
	}
	// Echo reply in place: same frame, addresses swapped, type changed.
	m.EchoToReply()
	src := ip.Src()
	ip.Encode(ipv4.Fields{
		TOS:         ip.TOS(),
		TotalLength: ip.TotalLength(),
		ID:          s.nextID(),
		TTL:         ipv4.DefaultTTL,
		Protocol:    ipv4.ProtoICMP,
		Src:         s.addr,
		Dst:         src,
	})
	eth := ethernet.Header(b.Data[b.Off : b.Off+ethernet.HeaderLen])
	eth.Encode(eth.Src(), s.mac, ethernet.TypeIPv4)
	b.Len = ethernet.HeaderLen + int(ip.TotalLength())
	if s.transmitOwn(b) {
		s.ctr.ICMPEchoReplies++
	}
}

func (s *Stack) inputUDP(b *nic.Buf, ip ipv4.Header) bool {
	u, err := udp.Parse(ip.Payload())
	if err != nil {
		s.ctr.UDPMalformed++
		return false
	}
	if !u.VerifyChecksum(ip.Src(), ip.Dst()) {
		s.ctr.UDPChecksum++
		return false
	}
	ep := s.udp.lookup(u.DstPort())
	if ep == nil {
		s.ctr.UDPNoPort++
		return false
	}
	// Point the buffer at the payload: that is what Recv hands out.
	payload := u.Payload()
	off := b.Off + ethernet.HeaderLen + ip.HeaderLen() + udp.HeaderLen
	return ep.enqueue(nic.Buf{Frame: b.Frame, Data: b.Data, Off: off, Len: len(payload)}, ip.Src(), u.SrcPort())
}

// transmitOwn sends a frame the stack built itself. The caller keeps its
// reference (Input releases it): the link holds the frame until completion.
func (s *Stack) transmitOwn(b *nic.Buf) bool {
	if err := s.link.Transmit(*b, 0); err != nil {
		s.ctr.TxFull++
		return false
	}
	s.ctr.TxFrames++
	s.ctr.TxBytes += uint64(b.Len)
	return true
}

func (s *Stack) nextID() uint16 {
	s.ipID++
	return s.ipID
}
