// Package arp reads and writes ARP packets (RFC 826) for IPv4 over
// Ethernet, in place.
//
// Only the Ethernet/IPv4 form with operation request or reply is accepted;
// anything else is ErrUnsupported, so a caller can count and drop it.
// Nothing here allocates.
package arp

import (
	"encoding/binary"
	"errors"

	"github.com/demixdp/demixdp/netstack/ethernet"
)

// HeaderLen is the length of an Ethernet/IPv4 ARP packet.
const HeaderLen = 28

// ARP operations.
const (
	OpRequest = 1
	OpReply   = 2
)

// Fixed field values of the Ethernet/IPv4 form.
const (
	hwTypeEthernet = 1
	protoIPv4      = 0x0800
	hwLen          = 6
	protoLen       = 4
)

// Errors returned by Parse.
var (
	// ErrTruncated: fewer than HeaderLen bytes.
	ErrTruncated = errors.New("arp: packet shorter than 28 bytes")
	// ErrUnsupported: hardware type not Ethernet (1), protocol type not IPv4
	// (0x0800), address lengths not 6 and 4, or an operation other than
	// request or reply.
	ErrUnsupported = errors.New("arp: not an Ethernet/IPv4 request or reply")
)

// Header is an ARP packet viewed in place.
type Header []byte

// Parse validates b as an Ethernet/IPv4 ARP request or reply and returns a
// view of its first HeaderLen bytes (capped, so trailing Ethernet padding is
// excluded). It fails with ErrTruncated or ErrUnsupported.
func Parse(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return nil, ErrTruncated
	}
	h := Header(b[:HeaderLen:HeaderLen])
	if binary.BigEndian.Uint16(h[0:2]) != hwTypeEthernet ||
		binary.BigEndian.Uint16(h[2:4]) != protoIPv4 ||
		h[4] != hwLen || h[5] != protoLen {
		return nil, ErrUnsupported
	}
	if op := h.Op(); op != OpRequest && op != OpReply {
		return nil, ErrUnsupported
	}
	return h, nil
}

// Op returns the operation (OpRequest or OpReply after a successful Parse).
func (h Header) Op() uint16 { return binary.BigEndian.Uint16(h[6:8]) }

// SenderHW returns the sender hardware address.
func (h Header) SenderHW() ethernet.Addr { return ethernet.Addr(h[8:14]) }

// SenderIP returns the sender protocol (IPv4) address.
func (h Header) SenderIP() [4]byte { return [4]byte(h[14:18]) }

// TargetHW returns the target hardware address (zero in a request).
func (h Header) TargetHW() ethernet.Addr { return ethernet.Addr(h[18:24]) }

// TargetIP returns the target protocol (IPv4) address.
func (h Header) TargetIP() [4]byte { return [4]byte(h[24:28]) }

// Encode writes a complete Ethernet/IPv4 ARP packet into the first
// HeaderLen bytes of h. h must be at least HeaderLen long; a shorter h is a
// programming error and panics. For a request, tha is conventionally zero.
func (h Header) Encode(op uint16, sha ethernet.Addr, spa [4]byte, tha ethernet.Addr, tpa [4]byte) {
	_ = h[HeaderLen-1]
	binary.BigEndian.PutUint16(h[0:2], hwTypeEthernet)
	binary.BigEndian.PutUint16(h[2:4], protoIPv4)
	h[4] = hwLen
	h[5] = protoLen
	binary.BigEndian.PutUint16(h[6:8], op)
	copy(h[8:14], sha[:])
	copy(h[14:18], spa[:])
	copy(h[18:24], tha[:])
	copy(h[24:28], tpa[:])
}
