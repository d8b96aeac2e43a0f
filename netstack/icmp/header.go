// Package icmp reads and writes ICMPv4 messages (RFC 792) in place.
//
// A Header views a whole ICMP message, which is the whole IPv4 payload:
// the checksum covers all of it. Nothing in this package allocates.
package icmp

import (
	"encoding/binary"
	"errors"

	"github.com/demixdp/demixdp/netstack/checksum"
)

// HeaderLen is the length of the fixed part of every ICMP message: type,
// code, checksum and four type-specific bytes.
const HeaderLen = 8

// Message types used by the netstack.
const (
	TypeEchoReply       = 0
	TypeDestUnreachable = 3
	TypeEchoRequest     = 8
	TypeTimeExceeded    = 11
)

// Errors returned by Parse.
var (
	// ErrTruncated: fewer than HeaderLen bytes.
	ErrTruncated = errors.New("icmp: message shorter than 8 bytes")
	// ErrChecksum: the checksum over the whole message does not verify.
	ErrChecksum = errors.New("icmp: bad checksum")
)

// Header is an ICMP message viewed in place.
type Header []byte

// Parse validates b, the whole ICMP message (the IPv4 payload, up to the
// IPv4 Total Length), and returns it as a Header. It fails with
// ErrTruncated for fewer than 8 bytes and with ErrChecksum when the
// checksum over the whole message does not verify.
func Parse(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return nil, ErrTruncated
	}
	if checksum.Checksum(b, 0) != 0 {
		return nil, ErrChecksum
	}
	return Header(b), nil
}

// Type returns the message type.
func (h Header) Type() uint8 { return h[0] }

// Code returns the message code.
func (h Header) Code() uint8 { return h[1] }

// Checksum returns the stored checksum.
func (h Header) Checksum() uint16 { return binary.BigEndian.Uint16(h[2:4]) }

// ID returns the echo identifier (bytes 4-5; meaningful for echo messages).
func (h Header) ID() uint16 { return binary.BigEndian.Uint16(h[4:6]) }

// Seq returns the echo sequence number (bytes 6-7; meaningful for echo
// messages).
func (h Header) Seq() uint16 { return binary.BigEndian.Uint16(h[6:8]) }

// Payload returns the bytes after the 8-byte header: echo data, or the
// original IPv4 header and leading bytes for error messages.
func (h Header) Payload() []byte { return h[HeaderLen:] }

// SetType stores the type; the checksum is not updated.
func (h Header) SetType(t uint8) { h[0] = t }

// SetCode stores the code; the checksum is not updated.
func (h Header) SetCode(c uint8) { h[1] = c }

// SetChecksum stores the checksum.
func (h Header) SetChecksum(c uint16) { binary.BigEndian.PutUint16(h[2:4], c) }

// ComputeChecksum returns the checksum of the whole message h computed with
// the checksum field taken as zero: the value SetChecksum should store.
func (h Header) ComputeChecksum() uint16 {
	return checksum.Checksum(h[4:], checksum.Sum(h[:2], 0))
}

// EchoToReply turns an echo request into an echo reply in place, for a
// zero-copy ping answer: the type becomes TypeEchoReply and the checksum is
// updated incrementally (RFC 1624) rather than recomputed over the payload.
// Identifier, sequence and data are kept, as RFC 792 requires. A message
// that is not an echo request is left unchanged.
func (h Header) EchoToReply() {
	if h[0] != TypeEchoRequest {
		return
	}
	old := binary.BigEndian.Uint16(h[0:2])
	h[0] = TypeEchoReply
	c := checksum.Update16(h.Checksum(), old, binary.BigEndian.Uint16(h[0:2]))
	if c == 0 {
		// Rare (about 1 in 65536): 0 is right unless the reply is all zero
		// bytes (code, identifier, sequence and data all zero), where the
		// sender's checksum must be 0xFFFF. Recompute to tell them apart.
		c = h.ComputeChecksum()
	}
	h.SetChecksum(c)
}
