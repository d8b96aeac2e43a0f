// Package udp reads and writes UDP headers (RFC 768) in place.
//
// Parse checks the lengths only: the checksum needs the IPv4 addresses, so
// it is checked by VerifyChecksum, or by ParseChecked which does both.
// Nothing in this package allocates.
package udp

import (
	"encoding/binary"
	"errors"

	"github.com/demixdp/demixdp/netstack/checksum"
)

// HeaderLen is the length of a UDP header.
const HeaderLen = 8

// protoUDP is the IPv4 protocol number that enters the pseudo-header.
const protoUDP = 17

// Errors returned by Parse and ParseChecked.
var (
	// ErrTruncated: fewer than HeaderLen bytes.
	ErrTruncated = errors.New("udp: datagram shorter than 8 bytes")
	// ErrLength: the Length field is below 8 or beyond the received bytes.
	ErrLength = errors.New("udp: length field inconsistent with buffer")
	// ErrChecksum: a nonzero checksum that does not verify (ParseChecked).
	ErrChecksum = errors.New("udp: bad checksum")
)

// Header is a UDP datagram viewed in place: header and payload.
type Header []byte

// Parse validates b, the IPv4 payload, and returns the view b[:Length] with
// its capacity capped. It fails with ErrTruncated for fewer than 8 bytes and
// with ErrLength when the Length field is below 8 or above len(b). The
// checksum is not checked (see VerifyChecksum).
func Parse(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return nil, ErrTruncated
	}
	n := int(binary.BigEndian.Uint16(b[4:6]))
	if n < HeaderLen || n > len(b) {
		return nil, ErrLength
	}
	return Header(b[:n:n]), nil
}

// ParseChecked is Parse followed by VerifyChecksum with the IPv4 source and
// destination of the enclosing packet; a checksum that fails gives
// ErrChecksum.
func ParseChecked(b []byte, src, dst [4]byte) (Header, error) {
	h, err := Parse(b)
	if err != nil {
		return nil, err
	}
	if !h.VerifyChecksum(src, dst) {
		return nil, ErrChecksum
	}
	return h, nil
}

// SrcPort returns the source port.
func (h Header) SrcPort() uint16 { return binary.BigEndian.Uint16(h[0:2]) }

// DstPort returns the destination port.
func (h Header) DstPort() uint16 { return binary.BigEndian.Uint16(h[2:4]) }

// Length returns the Length field: header plus payload bytes.
func (h Header) Length() uint16 { return binary.BigEndian.Uint16(h[4:6]) }

// Checksum returns the stored checksum (0 means the sender computed none).
func (h Header) Checksum() uint16 { return binary.BigEndian.Uint16(h[6:8]) }

// Payload returns the bytes after the header up to the end of the view
// (Length for a parsed header).
func (h Header) Payload() []byte { return h[HeaderLen:] }

// Encode writes the ports and length into the first 8 bytes of h and zeroes
// the checksum field; fill in the payload, then call
// SetChecksum(ComputeChecksum(src, dst)). h must be at least HeaderLen long;
// a shorter h is a programming error and panics.
func (h Header) Encode(src, dst uint16, length uint16) {
	_ = h[HeaderLen-1]
	binary.BigEndian.PutUint16(h[0:2], src)
	binary.BigEndian.PutUint16(h[2:4], dst)
	binary.BigEndian.PutUint16(h[4:6], length)
	binary.BigEndian.PutUint16(h[6:8], 0)
}

// SetChecksum stores the checksum.
func (h Header) SetChecksum(c uint16) { binary.BigEndian.PutUint16(h[6:8], c) }

// covered returns the bytes the checksum covers: h[:Length], with Length
// clamped into [HeaderLen, len(h)] so an unparsed view cannot cause a panic.
func (h Header) covered() []byte {
	n := int(h.Length())
	n = max(n, HeaderLen)
	n = min(n, len(h))
	return h[:n]
}

// ComputeChecksum returns the checksum over the IPv4 pseudo-header (src,
// dst, protocol 17, Length) and h[:Length], computed with the checksum
// field taken as zero: the value SetChecksum should store. A computed 0 is
// returned as 0xFFFF, because 0 on the wire means "no checksum" (RFC 768).
func (h Header) ComputeChecksum(src, dst [4]byte) uint16 {
	b := h.covered()
	s := checksum.Sum(b[:6], checksum.PseudoIPv4(src, dst, protoUDP, uint16(len(b))))
	c := checksum.Checksum(b[HeaderLen:], s)
	if c == 0 {
		c = 0xffff
	}
	return c
}

// VerifyChecksum reports whether the datagram's checksum is acceptable for
// the given IPv4 source and destination: true when the checksum field is 0
// (the sender did not compute one, which IPv4 allows) or when it verifies
// over the pseudo-header and h[:Length].
func (h Header) VerifyChecksum(src, dst [4]byte) bool {
	if h.Checksum() == 0 {
		return true
	}
	b := h.covered()
	return checksum.Checksum(b, checksum.PseudoIPv4(src, dst, protoUDP, uint16(len(b)))) == 0
}

// SwapPorts exchanges the source and destination ports in place, as a reply
// built in the received buffer needs. The checksum stays valid: the
// ones'-complement sum is commutative, and swapping the IPv4 addresses as
// well leaves the pseudo-header sum unchanged too.
func (h Header) SwapPorts() {
	h[0], h[1], h[2], h[3] = h[2], h[3], h[0], h[1]
}
