// Package ethernet reads and writes Ethernet II frame headers in place.
//
// A Header is a view of the bytes of a frame; Parse checks only that the
// fixed 14-byte header is present. Nothing here allocates except
// Addr.String. The EtherType is reported as found: VLAN tags (TypeVLAN,
// TypeQinQ) are not stripped.
package ethernet

import (
	"encoding/binary"
	"errors"
)

// HeaderLen is the length of an Ethernet II header without VLAN tags.
const HeaderLen = 14

// EtherType values used by the netstack.
const (
	TypeIPv4 = 0x0800
	TypeARP  = 0x0806
	TypeVLAN = 0x8100 // IEEE 802.1Q tag
	TypeQinQ = 0x88A8 // IEEE 802.1ad service tag
	TypeIPv6 = 0x86DD
)

// ErrTruncated is returned by Parse for a frame shorter than HeaderLen.
var ErrTruncated = errors.New("ethernet: frame shorter than the 14-byte header")

// Addr is a 48-bit MAC address.
type Addr [6]byte

// Broadcast is the all-ones broadcast address.
var Broadcast = Addr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// String formats a as six colon-separated lowercase hex bytes,
// e.g. "02:00:00:00:00:01". It allocates; keep it off the datapath.
func (a Addr) String() string {
	const hexdig = "0123456789abcdef"
	var buf [17]byte
	for i, b := range a {
		if i > 0 {
			buf[3*i-1] = ':'
		}
		buf[3*i] = hexdig[b>>4]
		buf[3*i+1] = hexdig[b&0xf]
	}
	return string(buf[:])
}

// IsMulticast reports whether a is a group address (broadcast included):
// the least significant bit of the first byte is set.
func (a Addr) IsMulticast() bool { return a[0]&1 != 0 }

// Header is an Ethernet II frame viewed in place: the 14-byte header
// followed by the payload.
type Header []byte

// Parse returns b as a Header, or ErrTruncated if b is shorter than
// HeaderLen. It does not copy b.
func Parse(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return nil, ErrTruncated
	}
	return Header(b), nil
}

// Dst returns the destination address.
func (h Header) Dst() Addr { return Addr(h[0:6]) }

// Src returns the source address.
func (h Header) Src() Addr { return Addr(h[6:12]) }

// Type returns the EtherType.
func (h Header) Type() uint16 { return binary.BigEndian.Uint16(h[12:14]) }

// Payload returns the bytes after the header (including any Ethernet padding).
func (h Header) Payload() []byte { return h[HeaderLen:] }

// Encode writes a header with the given addresses and EtherType into the
// first HeaderLen bytes of h. h must be at least HeaderLen long; a shorter h
// is a programming error and panics.
func (h Header) Encode(dst, src Addr, typ uint16) {
	_ = h[HeaderLen-1]
	copy(h[0:6], dst[:])
	copy(h[6:12], src[:])
	binary.BigEndian.PutUint16(h[12:14], typ)
}

// SetDst overwrites the destination address.
func (h Header) SetDst(a Addr) { copy(h[0:6], a[:]) }

// SetSrc overwrites the source address.
func (h Header) SetSrc(a Addr) { copy(h[6:12], a[:]) }
