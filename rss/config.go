package rss

import (
	"errors"
	"fmt"
	"net/netip"
)

// Config is a NIC's RSS configuration for IPv4: the Toeplitz key, the
// indirection table, and whether the TCP and UDP hashes include the ports.
type Config struct {
	// Key is the Toeplitz key (40 bytes on most NICs, 52 on some).
	Key []byte
	// Indir is the indirection table: the receive queue for each hash
	// bucket. A packet with hash h goes to Indir[h % len(Indir)] (for the
	// power-of-two tables NICs use, the low bits of the hash).
	Indir []uint32
	// TCPPorts and UDPPorts say whether the NIC hashes the 4-tuple of TCP
	// and UDP over IPv4 (addresses and ports) or only the addresses. Only
	// a 4-tuple hash lets a local port choose the queue.
	TCPPorts, UDPPorts bool
}

// Errors of this package; test with errors.Is.
var (
	// ErrInvalid reports a Config that cannot describe a NIC: a key
	// shorter than 16 bytes or an empty indirection table.
	ErrInvalid = errors.New("rss: invalid configuration")
	// ErrUnavailable reports an interface whose RSS configuration the
	// kernel cannot give (no RSS, as on veth; or a hash function other
	// than Toeplitz, or a symmetric input transformation).
	ErrUnavailable = errors.New("rss: configuration unavailable")
)

// Validate checks that c can be used to compute queues.
func (c *Config) Validate() error {
	if len(c.Key) < 16 {
		return fmt.Errorf("%w: %d-byte key (an IPv4 4-tuple needs 16)", ErrInvalid, len(c.Key))
	}
	if len(c.Indir) == 0 {
		return fmt.Errorf("%w: empty indirection table", ErrInvalid)
	}
	return nil
}

// Queue returns the queue the indirection table gives hash h.
func (c *Config) Queue(h uint32) uint32 { return c.Indir[h%uint32(len(c.Indir))] }

// QueueOf returns the queue on which the NIC delivers a TCP (tcp true) or
// UDP packet over IPv4 from src to dst.
func (c *Config) QueueOf(tcp bool, src, dst netip.AddrPort) uint32 {
	ports := c.UDPPorts
	if tcp {
		ports = c.TCPPorts
	}
	if ports {
		return c.Queue(HashIPv4(c.Key, src, dst))
	}
	return c.Queue(HashIPv4Addrs(c.Key, src.Addr(), dst.Addr()))
}

// Queues returns the number of queues the indirection table names (the
// largest entry plus one).
func (c *Config) Queues() int {
	n := 0
	for _, q := range c.Indir {
		n = max(n, int(q)+1)
	}
	return n
}
