package stack

import (
	"github.com/demixdp/demixdp/netstack/ethernet"
	"github.com/demixdp/demixdp/netstack/ipv4"
	"github.com/demixdp/demixdp/netstack/nic"
	"golang.org/x/sys/unix"
)

// IPv4Overhead is the Ethernet and IPv4 header bytes output prepends.
const IPv4Overhead = ethernet.HeaderLen + ipv4.MinHeaderLen

// nextHop returns the neighbour a datagram to dst is sent to.
func (s *Stack) nextHop(dst [4]byte) ([4]byte, error) {
	if s.prefix.Contains(addrFrom4(dst)) {
		return dst, nil
	}
	if !s.hasGW {
		return dst, unix.ENETUNREACH
	}
	return s.gateway, nil
}

// outputIPv4 prepends an IPv4 header to the L4 packet in b and sends it to
// dst, resolving the next hop first if needed. tag is reported by the link
// on completion, or through Notifier.Done if the datagram had to wait.
//
// On success the frame is either on the link or held (with a reference of
// the stack's own) until resolution ends. On error nothing was sent and b is
// unchanged from the caller's point of view except for prepended headers.
func (s *Stack) outputIPv4(b *nic.Buf, proto uint8, dst [4]byte, tag uint64) error {
	hop, err := s.nextHop(dst)
	if err != nil {
		return err
	}
	if b.Off < IPv4Overhead {
		return unix.EINVAL
	}
	iph, _ := b.Prepend(ipv4.MinHeaderLen)
	ipv4.Header(iph).Encode(ipv4.Fields{
		TotalLength: uint16(b.Len),
		ID:          s.nextID(),
		DF:          true,
		TTL:         ipv4.DefaultTTL,
		Protocol:    proto,
		Src:         s.addr,
		Dst:         dst,
	})
	if mac, ok := s.neigh.lookup(hop); ok {
		err = s.transmitIP(b, mac, tag)
	} else {
		err = s.neigh.hold(b, hop, tag)
	}
	if err != nil {
		b.TrimFront(ipv4.MinHeaderLen)
	}
	return err
}

// transmitIP adds the Ethernet header to an IPv4 packet and queues it.
func (s *Stack) transmitIP(b *nic.Buf, mac ethernet.Addr, tag uint64) error {
	eh, _ := b.Prepend(ethernet.HeaderLen)
	ethernet.Header(eh).Encode(mac, s.mac, ethernet.TypeIPv4)
	if err := s.link.Transmit(*b, tag); err != nil {
		b.TrimFront(ethernet.HeaderLen)
		if err == nic.ErrTxFull {
			return unix.EAGAIN
		}
		return err
	}
	s.ctr.TxFrames++
	s.ctr.TxBytes += uint64(b.Len)
	return nil
}
