// Package ipv4 reads and writes IPv4 headers (RFC 791) in place.
//
// Parse validates everything a receiver must check before trusting the
// header: version, header length, total length and the header checksum.
// Fragments are reported (IsFragment) but not reassembled here. Nothing in
// this package allocates.
package ipv4

import (
	"encoding/binary"
	"errors"

	"github.com/demixdp/demixdp/netstack/checksum"
)

// Header lengths and protocol numbers.
const (
	MinHeaderLen = 20 // IHL 5, no options
	MaxHeaderLen = 60 // IHL 15

	ProtoICMP = 1
	ProtoTCP  = 6
	ProtoUDP  = 17

	// DefaultTTL is the TTL of locally originated packets (Linux's default).
	DefaultTTL = 64
)

// Flag bits of the 16-bit flags/fragment-offset field.
const (
	flagDF     = 0x4000
	flagMF     = 0x2000
	offsetMask = 0x1fff
)

// Errors returned by Parse, each for one reason a packet is dropped.
var (
	// ErrTruncated: fewer than MinHeaderLen bytes, or fewer bytes than the
	// IHL field says the header has.
	ErrTruncated = errors.New("ipv4: packet shorter than its header")
	// ErrVersion: the version field is not 4.
	ErrVersion = errors.New("ipv4: version is not 4")
	// ErrHeaderLen: the IHL field is below 5 (20 bytes).
	ErrHeaderLen = errors.New("ipv4: header length field below 5")
	// ErrTotalLen: Total Length is below the header length or beyond the
	// received bytes.
	ErrTotalLen = errors.New("ipv4: total length inconsistent with header or buffer")
	// ErrChecksum: the header checksum does not verify.
	ErrChecksum = errors.New("ipv4: bad header checksum")
)

// Header is an IPv4 packet viewed in place: header, options, payload.
// Accessors assume a view returned by Parse or written by Encode; on a
// shorter slice they panic like any out-of-range index.
type Header []byte

// Parse validates b, which runs from the first byte of the IPv4 header to the
// end of the received frame, and returns the view b[:TotalLength] with its
// capacity capped, so that Ethernet padding after the packet is excluded and
// cannot be reached by appending. It checks, in this order: at least 20
// bytes (ErrTruncated), version 4 (ErrVersion), IHL >= 5 (ErrHeaderLen),
// IHL*4 <= len(b) (ErrTruncated), IHL*4 <= TotalLength <= len(b)
// (ErrTotalLen), and the header checksum (ErrChecksum). Options are not
// interpreted.
func Parse(b []byte) (Header, error) {
	if len(b) < MinHeaderLen {
		return nil, ErrTruncated
	}
	if b[0]>>4 != 4 {
		return nil, ErrVersion
	}
	hl := int(b[0]&0x0f) * 4
	if hl < MinHeaderLen {
		return nil, ErrHeaderLen
	}
	if hl > len(b) {
		return nil, ErrTruncated
	}
	tl := int(binary.BigEndian.Uint16(b[2:4]))
	if tl < hl || tl > len(b) {
		return nil, ErrTotalLen
	}
	if checksum.Checksum(b[:hl], 0) != 0 {
		return nil, ErrChecksum
	}
	return Header(b[:tl:tl]), nil
}

// HeaderLen returns the header length in bytes (IHL * 4), options included.
func (h Header) HeaderLen() int { return int(h[0]&0x0f) * 4 }

// TOS returns the type-of-service byte (DSCP and ECN).
func (h Header) TOS() uint8 { return h[1] }

// TotalLength returns the Total Length field: header plus payload bytes.
func (h Header) TotalLength() uint16 { return binary.BigEndian.Uint16(h[2:4]) }

// ID returns the identification field.
func (h Header) ID() uint16 { return binary.BigEndian.Uint16(h[4:6]) }

func (h Header) flagsOffset() uint16 { return binary.BigEndian.Uint16(h[6:8]) }

// DF reports whether the Don't Fragment flag is set.
func (h Header) DF() bool { return h.flagsOffset()&flagDF != 0 }

// MF reports whether the More Fragments flag is set.
func (h Header) MF() bool { return h.flagsOffset()&flagMF != 0 }

// FragmentOffset returns the fragment offset in 8-byte units.
func (h Header) FragmentOffset() uint16 { return h.flagsOffset() & offsetMask }

// IsFragment reports whether the packet is part of a fragmented datagram:
// MF is set or the offset is nonzero.
func (h Header) IsFragment() bool { return h.flagsOffset()&(flagMF|offsetMask) != 0 }

// TTL returns the time-to-live.
func (h Header) TTL() uint8 { return h[8] }

// Protocol returns the payload protocol number (ProtoUDP, ...).
func (h Header) Protocol() uint8 { return h[9] }

// Checksum returns the stored header checksum.
func (h Header) Checksum() uint16 { return binary.BigEndian.Uint16(h[10:12]) }

// Src returns the source address.
func (h Header) Src() [4]byte { return [4]byte(h[12:16]) }

// Dst returns the destination address.
func (h Header) Dst() [4]byte { return [4]byte(h[16:20]) }

// Options returns the option bytes between the fixed header and the
// payload (empty when IHL is 5), uninterpreted.
func (h Header) Options() []byte { return h[MinHeaderLen:h.HeaderLen()] }

// Payload returns the bytes after the header, up to the end of the view
// (Total Length for a parsed header).
func (h Header) Payload() []byte { return h[h.HeaderLen():] }

// Fields are the values Encode writes. Version (4), IHL (5), the MF flag and
// fragment offset (0) and the checksum are implied.
type Fields struct {
	TOS         uint8
	TotalLength uint16 // header (20) plus payload
	ID          uint16
	DF          bool
	TTL         uint8
	Protocol    uint8
	Src, Dst    [4]byte
}

// Encode writes a 20-byte header without options into h and fills in its
// checksum. The payload is not touched. h must be at least MinHeaderLen
// long; a shorter h is a programming error and panics.
func (h Header) Encode(f Fields) {
	_ = h[MinHeaderLen-1]
	h[0] = 0x45
	h[1] = f.TOS
	binary.BigEndian.PutUint16(h[2:4], f.TotalLength)
	binary.BigEndian.PutUint16(h[4:6], f.ID)
	var fo uint16
	if f.DF {
		fo = flagDF
	}
	binary.BigEndian.PutUint16(h[6:8], fo)
	h[8] = f.TTL
	h[9] = f.Protocol
	copy(h[12:16], f.Src[:])
	copy(h[16:20], f.Dst[:])
	h.SetChecksum(h.ComputeChecksum())
}

// SetTTL sets the TTL and updates the stored checksum incrementally
// (RFC 1624), as a forwarder does when it decrements the TTL.
func (h Header) SetTTL(ttl uint8) {
	old := binary.BigEndian.Uint16(h[8:10])
	h[8] = ttl
	h.SetChecksum(checksum.Update16(h.Checksum(), old, binary.BigEndian.Uint16(h[8:10])))
}

// SwapAddrs exchanges the source and destination addresses in place, as a
// reply built in the received buffer needs. The checksum stays valid
// because the ones'-complement sum does not depend on word order.
func (h Header) SwapAddrs() {
	var t [4]byte
	copy(t[:], h[12:16])
	copy(h[12:16], h[16:20])
	copy(h[16:20], t[:])
}

// SetChecksum stores the header checksum.
func (h Header) SetChecksum(c uint16) { binary.BigEndian.PutUint16(h[10:12], c) }

// ComputeChecksum returns the checksum of the header (options included,
// payload excluded) computed with the checksum field taken as zero: the
// value SetChecksum should store. The view must hold HeaderLen() bytes.
func (h Header) ComputeChecksum() uint16 {
	return checksum.Checksum(h[12:h.HeaderLen()], checksum.Sum(h[:10], 0))
}
