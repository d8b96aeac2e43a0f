package rss

import (
	"encoding/binary"
	"net/netip"
)

// Chooser finds local ports for outbound connections such that the NIC
// delivers the peer's replies to a chosen queue. It precomputes the part
// of the Toeplitz hash that the local port contributes (the hash is linear
// in its input), so testing a port costs two table lookups and a XOR.
//
// The replies of a connection from local:port to remote carry the 4-tuple
// (src remote, dst local, sport remote port, dport port), which is what
// the NIC hashes. A Chooser is read-only after NewChooser and safe for
// concurrent use.
type Chooser struct {
	cfg   Config
	local netip.Addr
	tcp   bool
	// hi[b] and lo[b] are the hash contributions of the high and low byte
	// of the destination port (bytes 10 and 11 of the IPv4 4-tuple).
	hi, lo [256]uint32
}

// NewChooser returns a Chooser for replies of protocol TCP (tcp true) or
// UDP addressed to local under cfg. It fails with ErrInvalid for a bad cfg
// and with ErrUnavailable when cfg does not hash that protocol's ports (no
// local port can then choose the queue).
func NewChooser(cfg Config, local netip.Addr, tcp bool) (*Chooser, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if (tcp && !cfg.TCPPorts) || (!tcp && !cfg.UDPPorts) {
		return nil, ErrUnavailable
	}
	c := &Chooser{cfg: cfg, local: local, tcp: tcp}
	var in [12]byte
	for b := 0; b < 256; b++ {
		in[10], in[11] = byte(b), 0
		c.hi[b] = Hash(cfg.Key, in[:])
		in[10], in[11] = 0, byte(b)
		c.lo[b] = Hash(cfg.Key, in[:])
	}
	return c, nil
}

// Base returns the hash of a reply from remote with the local port left
// zero; Queue completes it for a port.
func (c *Chooser) Base(remote netip.AddrPort) uint32 {
	var in [12]byte
	r, l := remote.Addr().As4(), c.local.As4()
	copy(in[0:4], r[:])
	copy(in[4:8], l[:])
	binary.BigEndian.PutUint16(in[8:10], remote.Port())
	return Hash(c.cfg.Key, in[:])
}

// Queue returns the queue of a reply whose Base is base, sent to port.
//
//demixdp:hotpath — allocates nothing.
func (c *Chooser) Queue(base uint32, port uint16) uint32 {
	return c.cfg.Queue(base ^ c.hi[port>>8] ^ c.lo[port&0xff])
}

// Find returns a port of [first, last] whose replies from remote land on
// queue and for which ok (if not nil) is true, scanning from start (moved
// into the range) upwards and wrapping around; 0 if there is none. It
// allocates nothing.
func (c *Chooser) Find(remote netip.AddrPort, queue uint32, first, last, start uint16, ok func(port uint16) bool) uint16 {
	if first == 0 || first > last {
		return 0
	}
	n := int(last-first) + 1
	if start < first || start > last {
		start = first
	}
	base := c.Base(remote)
	p := start
	for i := 0; i < n; i++ {
		if c.Queue(base, p) == queue && (ok == nil || ok(p)) {
			return p
		}
		if p == last {
			p = first
		} else {
			p++
		}
	}
	return 0
}
