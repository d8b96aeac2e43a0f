package ipv4

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/demixdp/demixdp/netstack/checksum"
)

var (
	ipA = [4]byte{198, 51, 100, 1}
	ipB = [4]byte{203, 0, 113, 7}
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// packet encodes f into a buffer with payload appended.
func packet(f Fields, payload []byte) []byte {
	f.TotalLength = uint16(MinHeaderLen + len(payload))
	b := make([]byte, int(f.TotalLength))
	Header(b).Encode(f)
	copy(b[MinHeaderLen:], payload)
	return b
}

func TestEncodeParseRoundTrip(t *testing.T) {
	tests := []Fields{
		{TOS: 0, ID: 0x1234, DF: true, TTL: DefaultTTL, Protocol: ProtoUDP, Src: ipA, Dst: ipB},
		{TOS: 0xb8, ID: 0, DF: false, TTL: 1, Protocol: ProtoICMP, Src: ipB, Dst: ipA},
		{TOS: 0xff, ID: 0xffff, DF: true, TTL: 255, Protocol: ProtoTCP, Src: [4]byte{255, 255, 255, 255}, Dst: [4]byte{}},
	}
	payload := []byte("payload bytes")
	for i, f := range tests {
		b := packet(f, payload)
		h, err := Parse(b)
		if err != nil {
			t.Fatalf("case %d: Parse: %v", i, err)
		}
		got := Fields{TOS: h.TOS(), TotalLength: h.TotalLength(), ID: h.ID(), DF: h.DF(),
			TTL: h.TTL(), Protocol: h.Protocol(), Src: h.Src(), Dst: h.Dst()}
		f.TotalLength = uint16(MinHeaderLen + len(payload))
		if got != f {
			t.Fatalf("case %d: decoded %+v, want %+v", i, got, f)
		}
		if h.HeaderLen() != MinHeaderLen || len(h.Options()) != 0 || !bytes.Equal(h.Payload(), payload) {
			t.Fatalf("case %d: hl %d options %x payload %q", i, h.HeaderLen(), h.Options(), h.Payload())
		}
		if h.MF() || h.FragmentOffset() != 0 || h.IsFragment() {
			t.Fatalf("case %d: Encode produced a fragment", i)
		}
		if h.Checksum() != h.ComputeChecksum() {
			t.Fatalf("case %d: stored %#04x computed %#04x", i, h.Checksum(), h.ComputeChecksum())
		}
	}
}

func TestKnownHeader(t *testing.T) {
	// 192.168.0.1 -> 192.168.0.199, UDP, TTL 64, DF, total length 0x73.
	b := mustHex(t, "45000073000040004011b861c0a80001c0a800c7")
	b = append(b, make([]byte, 0x73-20)...)
	h, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.TotalLength() != 0x73 || !h.DF() || h.TTL() != 64 || h.Protocol() != ProtoUDP ||
		h.Src() != [4]byte{192, 168, 0, 1} || h.Dst() != [4]byte{192, 168, 0, 199} || h.Checksum() != 0xb861 {
		t.Fatalf("decoded wrongly: % x", []byte(h[:20]))
	}
	// Encode the same fields and get the same bytes.
	out := make(Header, 20)
	out.Encode(Fields{TotalLength: 0x73, DF: true, TTL: 64, Protocol: ProtoUDP, Src: h.Src(), Dst: h.Dst()})
	if !bytes.Equal(out, b[:20]) {
		t.Fatalf("Encode = %x, want %x", []byte(out), b[:20])
	}
}

func TestOptions(t *testing.T) {
	// IHL 6: a Router Alert option (RFC 2113), 4 bytes.
	f := Fields{TTL: 1, Protocol: 2, Src: ipA, Dst: ipB}
	payload := []byte{0x11, 0x64, 0xee, 0x9b, 0, 0, 0, 0}
	b := make([]byte, 24+len(payload))
	Header(b).Encode(f)
	b[0] = 0x46
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	copy(b[20:], []byte{0x94, 0x04, 0x00, 0x00})
	copy(b[24:], payload)
	Header(b).SetChecksum(Header(b).ComputeChecksum())
	h, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if h.HeaderLen() != 24 || !bytes.Equal(h.Options(), []byte{0x94, 4, 0, 0}) || !bytes.Equal(h.Payload(), payload) {
		t.Fatalf("hl %d options %x payload %x", h.HeaderLen(), h.Options(), h.Payload())
	}
	// The checksum covers the options: corrupting one is detected.
	b[22] = 1
	if _, err := Parse(b); !errors.Is(err, ErrChecksum) {
		t.Fatalf("corrupt option: %v, want ErrChecksum", err)
	}

	// The largest header: IHL 15, 40 bytes of NOP options, no payload.
	m := make([]byte, MaxHeaderLen)
	Header(m).Encode(f)
	m[0] = 0x4f
	binary.BigEndian.PutUint16(m[2:], MaxHeaderLen)
	for i := 20; i < MaxHeaderLen; i++ {
		m[i] = 1
	}
	Header(m).SetChecksum(Header(m).ComputeChecksum())
	h, err = Parse(m)
	if err != nil || h.HeaderLen() != MaxHeaderLen || len(h.Options()) != 40 || len(h.Payload()) != 0 {
		t.Fatalf("max header: err %v hl %d", err, h.HeaderLen())
	}
}

func TestFragmentFlags(t *testing.T) {
	tests := []struct {
		name         string
		flagsOffset  uint16
		df, mf, frag bool
		offset       uint16
	}{
		{"unfragmented DF", 0x4000, true, false, false, 0},
		{"unfragmented", 0x0000, false, false, false, 0},
		{"first fragment", 0x2000, false, true, true, 0},
		{"middle fragment", 0x2000 | 185, false, true, true, 185},
		{"last fragment", 185, false, false, true, 185},
		{"max offset", 0x1fff, false, false, true, 0x1fff},
		{"reserved bit ignored", 0x8000, false, false, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := packet(Fields{TTL: 64, Protocol: ProtoUDP, Src: ipA, Dst: ipB}, []byte{1, 2, 3, 4, 5, 6, 7, 8})
			binary.BigEndian.PutUint16(b[6:], tt.flagsOffset)
			Header(b).SetChecksum(Header(b).ComputeChecksum())
			h, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			if h.DF() != tt.df || h.MF() != tt.mf || h.IsFragment() != tt.frag || h.FragmentOffset() != tt.offset {
				t.Fatalf("DF %v MF %v frag %v offset %d", h.DF(), h.MF(), h.IsFragment(), h.FragmentOffset())
			}
		})
	}
}

func TestEthernetPadding(t *testing.T) {
	// A 28-byte packet (20 + 8-byte UDP header) arrives padded to the
	// 46-byte Ethernet minimum: the view stops at Total Length.
	b := packet(Fields{TTL: 64, Protocol: ProtoUDP, Src: ipA, Dst: ipB}, []byte{0, 1, 0, 2, 0, 8, 0, 0})
	frame := append(b, make([]byte, 46-len(b))...)
	for i := len(b); i < len(frame); i++ {
		frame[i] = 0xee
	}
	h, err := Parse(frame)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 28 || cap(h) != 28 || len(h.Payload()) != 8 || bytes.IndexByte(h.Payload(), 0xee) >= 0 {
		t.Fatalf("len %d cap %d payload %x", len(h), cap(h), h.Payload())
	}
}

func TestParseErrors(t *testing.T) {
	valid := func() []byte {
		return packet(Fields{TTL: 64, Protocol: ProtoUDP, Src: ipA, Dst: ipB}, make([]byte, 12))
	}
	// fix recomputes the checksum so that only the intended defect remains.
	fix := func(b []byte) []byte {
		hl := int(b[0]&0xf) * 4
		if hl >= 20 && hl <= len(b) {
			binary.BigEndian.PutUint16(b[10:], 0)
			binary.BigEndian.PutUint16(b[10:], checksum.Checksum(b[:hl], 0))
		}
		return b
	}
	tests := []struct {
		name   string
		mutate func([]byte) []byte
		want   error
	}{
		{"empty", func(b []byte) []byte { return b[:0] }, ErrTruncated},
		{"19 bytes", func(b []byte) []byte { return b[:19] }, ErrTruncated},
		{"version 6", func(b []byte) []byte { b[0] = 0x65; return fix(b) }, ErrVersion},
		{"version 0", func(b []byte) []byte { b[0] = 0x05; return fix(b) }, ErrVersion},
		{"IHL 4", func(b []byte) []byte { b[0] = 0x44; return b }, ErrHeaderLen},
		{"IHL 0", func(b []byte) []byte { b[0] = 0x40; return b }, ErrHeaderLen},
		{"IHL beyond buffer", func(b []byte) []byte { b[0] = 0x4f; return b }, ErrTruncated},
		{"total length below header", func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:], 19); return fix(b) }, ErrTotalLen},
		{"total length zero", func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:], 0); return fix(b) }, ErrTotalLen},
		{"total length beyond buffer", func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:], 33); return fix(b) }, ErrTotalLen},
		{"total length below IHL with options", func(b []byte) []byte {
			b[0] = 0x46
			binary.BigEndian.PutUint16(b[2:], 22)
			return fix(b)
		}, ErrTotalLen},
		{"bad checksum", func(b []byte) []byte { b[10] ^= 0x01; return b }, ErrChecksum},
		{"corrupt source", func(b []byte) []byte { b[12]++; return b }, ErrChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := Parse(tt.mutate(valid()))
			if !errors.Is(err, tt.want) || h != nil {
				t.Fatalf("Parse = %x, %v; want nil, %v", []byte(h), err, tt.want)
			}
		})
	}
	// Control: the unmodified packet, and one whose total length is exact.
	if _, err := Parse(valid()); err != nil {
		t.Fatalf("valid packet: %v", err)
	}
}

func TestSetTTLIncremental(t *testing.T) {
	for ttl := 0; ttl < 256; ttl++ {
		for _, proto := range []uint8{0, ProtoICMP, ProtoUDP, 0xff} {
			b := packet(Fields{ID: uint16(ttl * 257), TTL: uint8(ttl), Protocol: proto, Src: ipA, Dst: ipB}, nil)
			h := Header(b)
			h.SetTTL(uint8(ttl - 1)) // wraps 0 -> 255
			if h.TTL() != uint8(ttl-1) {
				t.Fatalf("TTL %d", h.TTL())
			}
			if got, want := h.Checksum(), h.ComputeChecksum(); got != want {
				t.Fatalf("ttl %d proto %d: incremental %#04x, full %#04x", ttl, proto, got, want)
			}
			if _, err := Parse(b); err != nil {
				t.Fatalf("ttl %d: %v", ttl, err)
			}
		}
	}
}

func TestSwapAddrs(t *testing.T) {
	b := packet(Fields{TTL: 64, Protocol: ProtoICMP, Src: ipA, Dst: ipB}, []byte{8, 0})
	h := Header(b)
	h.SwapAddrs()
	if h.Src() != ipB || h.Dst() != ipA {
		t.Fatalf("src %v dst %v", h.Src(), h.Dst())
	}
	if _, err := Parse(b); err != nil {
		t.Fatalf("checksum after swap: %v", err)
	}
}

func TestNoAllocs(t *testing.T) {
	buf := make([]byte, 128)
	f := Fields{TotalLength: 100, ID: 1, DF: true, TTL: 64, Protocol: ProtoUDP, Src: ipA, Dst: ipB}
	var sink int
	n := testing.AllocsPerRun(100, func() {
		Header(buf).Encode(f)
		h, err := Parse(buf)
		if err != nil {
			panic(err)
		}
		s, d := h.Src(), h.Dst()
		sink += h.HeaderLen() + int(h.TotalLength()) + int(h.ID()) + int(h.FragmentOffset()) +
			int(h.TTL()) + int(h.Protocol()) + int(h.Checksum()) + int(h.TOS()) +
			len(h.Options()) + len(h.Payload()) + int(s[0]) + int(d[0])
		if h.DF() || h.MF() || h.IsFragment() {
			sink++
		}
		h.SetTTL(h.TTL() - 1)
		h.SwapAddrs()
		h.SetChecksum(h.ComputeChecksum())
	})
	if n != 0 {
		t.Fatalf("allocations per run = %v, want 0", n)
	}
	_ = sink
}

func BenchmarkParse(b *testing.B) {
	buf := packet(Fields{TTL: 64, Protocol: ProtoUDP, Src: ipA, Dst: ipB}, make([]byte, 40))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	buf := make([]byte, 60)
	f := Fields{TotalLength: 60, TTL: 64, Protocol: ProtoUDP, Src: ipA, Dst: ipB}
	b.ReportAllocs()
	for b.Loop() {
		Header(buf).Encode(f)
	}
}
