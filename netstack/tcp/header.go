package tcp

import (
	"encoding/binary"
	"errors"
	"github.com/demixdp/demixdp/netstack/checksum"
)

// Sizes of the TCP header (RFC 9293 §3.1).
const (
	// HeaderLen is the length of a TCP header without options.
	HeaderLen = 20
	// MaxHeaderLen is the largest TCP header (data offset 15 words).
	MaxHeaderLen = 60
	// MaxOptionsLen is the most option bytes a header can carry.
	MaxOptionsLen = MaxHeaderLen - HeaderLen
	// ProtocolNumber is TCP's IPv4 protocol number.
	ProtocolNumber = 6
)

// Errors returned by Parse and ParseOptions. They are returned unwrapped so
// that rejecting a bad packet allocates nothing; test them with errors.Is.
var (
	// ErrTruncated reports a segment shorter than the 20-byte fixed header.
	ErrTruncated = errors.New("tcp: segment shorter than header")
	// ErrDataOffset reports a data offset below 20 bytes or beyond the
	// segment.
	ErrDataOffset = errors.New("tcp: bad data offset")
	// ErrBadOption reports an option whose length byte is missing, below 2,
	// or runs past the end of the options.
	ErrBadOption = errors.New("tcp: malformed option")
)

// Flags holds the TCP control bits (byte 13 of the header).
type Flags uint8

// Control bits (RFC 9293 §3.1, RFC 3168 for ECE and CWR).
const (
	FlagFIN Flags = 1 << iota
	FlagSYN
	FlagRST
	FlagPSH
	FlagACK
	FlagURG
	FlagECE
	FlagCWR
)

// Has reports whether every bit of want is set in f.
func (f Flags) Has(want Flags) bool { return f&want == want }

// String names the set bits, e.g. "SYN|ACK". Not for the datapath.
func (f Flags) String() string {
	names := [...]string{"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"}
	s := ""
	for i, n := range names {
		if f&(1<<i) != 0 {
			if s != "" {
				s += "|"
			}
			s += n
		}
	}
	if s == "" {
		return "0"
	}
	return s
}

// Header is a view of a TCP segment (header, options and payload) in place.
// Obtain a validated one with Parse; the accessors then never index out of
// range. Accessors do not allocate.
type Header []byte

// Parse checks that b holds a TCP header whose data offset is at least 20
// bytes and within b, and returns b as a Header. It fails with ErrTruncated
// or ErrDataOffset. The checksum is not verified (see VerifyChecksum).
func Parse(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return nil, ErrTruncated
	}
	off := int(b[12]>>4) * 4
	if off < HeaderLen || off > len(b) {
		return nil, ErrDataOffset
	}
	return Header(b), nil
}

// SrcPort returns the source port.
func (h Header) SrcPort() uint16 { return binary.BigEndian.Uint16(h[0:]) }

// DstPort returns the destination port.
func (h Header) DstPort() uint16 { return binary.BigEndian.Uint16(h[2:]) }

// Seq returns the sequence number.
func (h Header) Seq() Seq { return Seq(binary.BigEndian.Uint32(h[4:])) }

// Ack returns the acknowledgment number (meaningful when FlagACK is set).
func (h Header) Ack() Seq { return Seq(binary.BigEndian.Uint32(h[8:])) }

// DataOffset returns the header length in bytes, options included.
func (h Header) DataOffset() int { return int(h[12]>>4) * 4 }

// Flags returns the control bits.
func (h Header) Flags() Flags { return Flags(h[13]) }

// Window returns the raw (unscaled) window field.
func (h Header) Window() uint16 { return binary.BigEndian.Uint16(h[14:]) }

// Checksum returns the checksum field.
func (h Header) Checksum() uint16 { return binary.BigEndian.Uint16(h[16:]) }

// Urgent returns the urgent pointer.
func (h Header) Urgent() uint16 { return binary.BigEndian.Uint16(h[18:]) }

// Options returns the option bytes (possibly empty), aliasing h.
func (h Header) Options() []byte { return h[HeaderLen:h.DataOffset()] }

// Payload returns the data after the header, aliasing h.
func (h Header) Payload() []byte { return h[h.DataOffset():] }

// SetChecksum stores c in the checksum field.
func (h Header) SetChecksum(c uint16) { binary.BigEndian.PutUint16(h[16:], c) }

// Fields are the values Encode writes into the fixed header.
type Fields struct {
	SrcPort, DstPort uint16
	Seq, Ack         Seq
	// DataOffset is the header length in bytes including options: a
	// multiple of 4 from 20 to 60. Zero means 20. Other values are rounded
	// down to a multiple of 4 and clamped into range.
	DataOffset uint8
	Flags      Flags
	Window     uint16
	Checksum   uint16
	Urgent     uint16
}

// Encode writes f into the first 20 bytes of h (the options, if any, are
// written separately, e.g. with EncodeOptions into h[HeaderLen:]). h must
// be at least HeaderLen bytes long.
func (h Header) Encode(f *Fields) {
	off := f.DataOffset
	switch {
	case off < HeaderLen:
		off = HeaderLen
	case off > MaxHeaderLen:
		off = MaxHeaderLen
	}
	_ = h[19]
	binary.BigEndian.PutUint16(h[0:], f.SrcPort)
	binary.BigEndian.PutUint16(h[2:], f.DstPort)
	binary.BigEndian.PutUint32(h[4:], uint32(f.Seq))
	binary.BigEndian.PutUint32(h[8:], uint32(f.Ack))
	h[12] = (off / 4) << 4
	h[13] = uint8(f.Flags)
	binary.BigEndian.PutUint16(h[14:], f.Window)
	binary.BigEndian.PutUint16(h[16:], f.Checksum)
	binary.BigEndian.PutUint16(h[18:], f.Urgent)
}

// ComputeChecksum returns the checksum of the whole segment h (header,
// options and payload) over the IPv4 pseudo-header (RFC 9293 §3.1), treating
// the checksum field as zero. Store it with SetChecksum.
func (h Header) ComputeChecksum(src, dst [4]byte) uint16 {
	s := checksum.PseudoIPv4(src, dst, ProtocolNumber, uint16(len(h)))
	s = checksum.Sum(h[:16], s)
	s = checksum.Sum(h[18:], s) // 18 is even: the word alignment is kept.
	return ^checksum.Fold(s)
}

// VerifyChecksum reports whether the checksum field of h is correct for a
// segment sent from src to dst.
func (h Header) VerifyChecksum(src, dst [4]byte) bool {
	return checksum.Fold(checksum.Sum(h, checksum.PseudoIPv4(src, dst, ProtocolNumber, uint16(len(h))))) == 0xffff
}

// Option kinds (RFC 9293 §3.2, RFC 7323, RFC 2018).
const (
	OptEOL           = 0
	OptNOP           = 1
	OptMSS           = 2
	OptWindowScale   = 3
	OptSACKPermitted = 4
	OptSACK          = 5
	OptTimestamps    = 8
)

// MaxWindowScale is the largest shift RFC 7323 §2.3 allows; larger values
// are clamped to it, as Linux does.
const MaxWindowScale = 14

// MaxSACKBlocks is the most SACK blocks 40 option bytes can carry.
const MaxSACKBlocks = 4

// SACKBlock is one SACK block: the octets [Start, End) (RFC 2018 §3).
type SACKBlock struct {
	Start, End Seq
}

// Options holds the TCP options this stack understands. ParseOptions fills
// it from a header; EncodeOptions writes it into one.
type Options struct {
	MSS           uint16 // valid when HasMSS
	HasMSS        bool
	WScale        uint8 // shift count, at most MaxWindowScale; valid when HasWScale
	HasWScale     bool
	SACKPermitted bool
	TSVal, TSEcr  uint32 // valid when HasTS
	HasTS         bool
	SACK          [MaxSACKBlocks]SACKBlock // the first NumSACK are valid
	NumSACK       int
}

// ParseOptions decodes opts (the bytes Header.Options returns) into o,
// which it clears first. It is tolerant as Linux is: EOL ends the list, NOP
// is skipped, unknown kinds are skipped by their length, and a known option
// with the wrong length is ignored. It fails with ErrBadOption only when an
// option's length byte is missing, below 2, or runs past the end; o then
// holds what was decoded before the bad option.
//
// ParseOptions reports every option present. RFC 7323 and RFC 9293 say MSS,
// window scale and SACK-permitted count only on a SYN: the caller ignores
// them on other segments. Allocates nothing.
func ParseOptions(opts []byte, o *Options) error {
	*o = Options{}
	for i := 0; i < len(opts); {
		kind := opts[i]
		switch kind {
		case OptEOL:
			return nil
		case OptNOP:
			i++
			continue
		}
		if i+1 >= len(opts) {
			return ErrBadOption
		}
		n := int(opts[i+1])
		if n < 2 || i+n > len(opts) {
			return ErrBadOption
		}
		b := opts[i : i+n]
		switch kind {
		case OptMSS:
			if n == 4 {
				o.MSS = binary.BigEndian.Uint16(b[2:])
				o.HasMSS = true
			}
		case OptWindowScale:
			if n == 3 {
				o.WScale = min(b[2], MaxWindowScale)
				o.HasWScale = true
			}
		case OptSACKPermitted:
			if n == 2 {
				o.SACKPermitted = true
			}
		case OptSACK:
			if n >= 10 && (n-2)%8 == 0 {
				o.NumSACK = 0
				for j := 2; j+8 <= n && o.NumSACK < MaxSACKBlocks; j += 8 {
					o.SACK[o.NumSACK] = SACKBlock{
						Start: Seq(binary.BigEndian.Uint32(b[j:])),
						End:   Seq(binary.BigEndian.Uint32(b[j+4:])),
					}
					o.NumSACK++
				}
			}
		case OptTimestamps:
			if n == 10 {
				o.TSVal = binary.BigEndian.Uint32(b[2:])
				o.TSEcr = binary.BigEndian.Uint32(b[6:])
				o.HasTS = true
			}
		}
		i += n
	}
	return nil
}

// EncodeOptions writes o into dst in the aligned layouts Linux uses and
// returns the number of bytes written, a multiple of 4 and at most
// MaxOptionsLen. Set the header's DataOffset to HeaderLen plus that.
//
// On a SYN (syn true) it writes MSS, SACK-permitted and timestamps (together
// in 12 bytes, or each NOP-padded), and window scale; SACK blocks are never
// sent on a SYN. Otherwise it writes timestamps and then as many of the
// NumSACK blocks as fit (4 without timestamps, 3 with), in order, so put the
// most recent block first (RFC 2018 §4). An option that does not fit in dst
// is left out. Allocates nothing.
func EncodeOptions(dst []byte, o *Options, syn bool) int {
	if len(dst) > MaxOptionsLen {
		dst = dst[:MaxOptionsLen]
	}
	n := 0
	if syn {
		if o.HasMSS && n+4 <= len(dst) {
			dst[n], dst[n+1] = OptMSS, 4
			binary.BigEndian.PutUint16(dst[n+2:], o.MSS)
			n += 4
		}
		switch {
		case o.SACKPermitted && o.HasTS && n+12 <= len(dst):
			dst[n], dst[n+1] = OptSACKPermitted, 2
			n += 2
			n += putTimestamps(dst[n:], o)
		case o.HasTS && n+12 <= len(dst):
			dst[n], dst[n+1] = OptNOP, OptNOP
			n += 2
			n += putTimestamps(dst[n:], o)
		case o.SACKPermitted && n+4 <= len(dst):
			dst[n], dst[n+1], dst[n+2], dst[n+3] = OptNOP, OptNOP, OptSACKPermitted, 2
			n += 4
		}
		if o.HasWScale && n+4 <= len(dst) {
			dst[n], dst[n+1], dst[n+2], dst[n+3] = OptNOP, OptWindowScale, 3, min(o.WScale, MaxWindowScale)
			n += 4
		}
		return n
	}
	if o.HasTS && n+12 <= len(dst) {
		dst[n], dst[n+1] = OptNOP, OptNOP
		n += 2
		n += putTimestamps(dst[n:], o)
	}
	blocks := min(o.NumSACK, MaxSACKBlocks, (len(dst)-n-4)/8)
	if blocks > 0 {
		dst[n], dst[n+1], dst[n+2], dst[n+3] = OptNOP, OptNOP, OptSACK, byte(2+8*blocks)
		n += 4
		for _, b := range o.SACK[:blocks] {
			binary.BigEndian.PutUint32(dst[n:], uint32(b.Start))
			binary.BigEndian.PutUint32(dst[n+4:], uint32(b.End))
			n += 8
		}
	}
	return n
}

// putTimestamps writes the 10-byte timestamps option.
func putTimestamps(dst []byte, o *Options) int {
	dst[0], dst[1] = OptTimestamps, 10
	binary.BigEndian.PutUint32(dst[2:], o.TSVal)
	binary.BigEndian.PutUint32(dst[6:], o.TSEcr)
	return 10
}
