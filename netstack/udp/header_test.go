package udp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/demixdp/demixdp/netstack/checksum"
)

var (
	ipA = [4]byte{198, 51, 100, 1}
	ipB = [4]byte{203, 0, 113, 7}
)

// datagram builds a checksummed datagram from ipA to ipB.
func datagram(src, dst uint16, payload []byte) []byte {
	b := make([]byte, HeaderLen+len(payload))
	h := Header(b)
	h.Encode(src, dst, uint16(len(b)))
	copy(b[HeaderLen:], payload)
	h.SetChecksum(h.ComputeChecksum(ipA, ipB))
	return b
}

// naiveChecksum spells out RFC 768: the pseudo-header and the datagram
// (checksum field zero) as one byte string, summed with the reference loop
// of the checksum package's own tests re-derived here.
func naiveChecksum(src, dst [4]byte, d []byte) uint16 {
	buf := append([]byte{}, src[:]...)
	buf = append(buf, dst[:]...)
	buf = append(buf, 0, 17, byte(len(d)>>8), byte(len(d)))
	buf = append(buf, d[:6]...)
	buf = append(buf, 0, 0)
	buf = append(buf, d[8:]...)
	if len(buf)%2 == 1 {
		buf = append(buf, 0)
	}
	var s uint32
	for i := 0; i < len(buf); i += 2 {
		s += uint32(buf[i])<<8 | uint32(buf[i+1])
	}
	for s>>16 != 0 {
		s = s>>16 + s&0xffff
	}
	c := ^uint16(s)
	if c == 0 {
		c = 0xffff
	}
	return c
}

func TestRoundTrip(t *testing.T) {
	for _, payload := range [][]byte{nil, []byte("a"), []byte("hello, demixdp"), make([]byte, 1472)} {
		b := datagram(40000, 7, payload)
		h, err := ParseChecked(b, ipA, ipB)
		if err != nil {
			t.Fatalf("len %d: %v", len(payload), err)
		}
		if h.SrcPort() != 40000 || h.DstPort() != 7 || int(h.Length()) != HeaderLen+len(payload) || !bytes.Equal(h.Payload(), payload) {
			t.Fatalf("decoded %d->%d len %d", h.SrcPort(), h.DstPort(), h.Length())
		}
		if got, want := h.Checksum(), naiveChecksum(ipA, ipB, b); got != want {
			t.Fatalf("len %d: checksum %#04x, RFC 768 by hand %#04x", len(payload), got, want)
		}
	}
}

func TestChecksumAgainstNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for i := 0; i < 20000; i++ {
		p := make([]byte, r.IntN(100))
		for j := range p {
			p[j] = byte(r.Uint32())
		}
		var src, dst [4]byte
		binary.BigEndian.PutUint32(src[:], r.Uint32())
		binary.BigEndian.PutUint32(dst[:], r.Uint32())
		b := make([]byte, HeaderLen+len(p))
		h := Header(b)
		h.Encode(uint16(r.Uint32()), uint16(r.Uint32()), uint16(len(b)))
		copy(b[HeaderLen:], p)
		c := h.ComputeChecksum(src, dst)
		if want := naiveChecksum(src, dst, b); c != want {
			t.Fatalf("case %d: %#04x, want %#04x", i, c, want)
		}
		h.SetChecksum(c)
		if !h.VerifyChecksum(src, dst) {
			t.Fatalf("case %d: own checksum does not verify", i)
		}
	}
}

func TestComputedZeroBecomesFFFF(t *testing.T) {
	// Pick a payload word that makes the full sum 0xFFFF, so the complement
	// is 0: it must be sent as 0xFFFF, which still verifies.
	b := make([]byte, HeaderLen+2)
	h := Header(b)
	h.Encode(1, 2, uint16(len(b)))
	s := checksum.Fold(checksum.Sum(b, checksum.PseudoIPv4(ipA, ipB, 17, uint16(len(b)))))
	binary.BigEndian.PutUint16(b[8:], ^s) // the sum becomes s + ^s = 0xFFFF
	if c := h.ComputeChecksum(ipA, ipB); c != 0xffff {
		t.Fatalf("ComputeChecksum = %#04x, want 0xffff", c)
	}
	h.SetChecksum(0xffff)
	if !h.VerifyChecksum(ipA, ipB) {
		t.Fatal("0xFFFF checksum does not verify")
	}
}

func TestVerifyChecksum(t *testing.T) {
	b := datagram(53, 40000, []byte("answer"))
	if !Header(b).VerifyChecksum(ipA, ipB) {
		t.Fatal("valid checksum rejected")
	}
	// Zero means "no checksum" and is accepted whatever the contents.
	z := bytes.Clone(b)
	Header(z).SetChecksum(0)
	z[10] ^= 0xff
	if !Header(z).VerifyChecksum(ipA, ipB) {
		t.Fatal("zero checksum rejected")
	}
	if _, err := ParseChecked(z, ipA, ipB); err != nil {
		t.Fatalf("ParseChecked with zero checksum: %v", err)
	}
	// Any wrong checksum, corrupted payload, or wrong pseudo-header fails.
	wrong := bytes.Clone(b)
	Header(wrong).SetChecksum(Header(b).Checksum() + 1)
	corrupt := bytes.Clone(b)
	corrupt[9] ^= 0x01
	for name, tc := range map[string]struct {
		b        []byte
		src, dst [4]byte
	}{
		"wrong checksum":    {wrong, ipA, ipB},
		"corrupt payload":   {corrupt, ipA, ipB},
		"wrong destination": {b, ipA, [4]byte{203, 0, 113, 8}},
		"wrong source":      {b, [4]byte{198, 51, 100, 3}, ipB},
	} {
		if Header(tc.b).VerifyChecksum(tc.src, tc.dst) {
			t.Errorf("%s: accepted", name)
		}
		if h, err := ParseChecked(tc.b, tc.src, tc.dst); !errors.Is(err, ErrChecksum) || h != nil {
			t.Errorf("%s: ParseChecked = %v, want ErrChecksum", name, err)
		}
	}
}

func TestParseLengths(t *testing.T) {
	good := datagram(1, 2, []byte("0123456789"))
	tests := []struct {
		name    string
		b       []byte
		length  int // Length field to write, or -1 to keep
		want    error
		viewLen int
	}{
		{"empty", good[:0], -1, ErrTruncated, 0},
		{"7 bytes", good[:7], -1, ErrTruncated, 0},
		{"length 0", good, 0, ErrLength, 0},
		{"length 7", good, 7, ErrLength, 0},
		{"length one past buffer", good, len(good) + 1, ErrLength, 0},
		{"length 0xffff", good, 0xffff, ErrLength, 0},
		{"header only", good[:8], 8, nil, 8},
		{"exact", good, len(good), nil, len(good)},
		{"shorter than buffer (IP padding)", good, 12, nil, 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := bytes.Clone(tt.b)
			if tt.length >= 0 {
				binary.BigEndian.PutUint16(b[4:], uint16(tt.length))
			}
			h, err := Parse(b)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			if err != nil {
				if h != nil {
					t.Fatal("non-nil view with an error")
				}
				return
			}
			if len(h) != tt.viewLen || cap(h) != tt.viewLen || len(h.Payload()) != tt.viewLen-HeaderLen {
				t.Fatalf("view len %d cap %d", len(h), cap(h))
			}
		})
	}
}

func TestLengthLiesAndChecksum(t *testing.T) {
	// A sender whose Length is shorter than the IP payload checksums only
	// Length bytes; the trailing bytes are not part of the datagram.
	b := make([]byte, HeaderLen+4+6)
	h := Header(b)
	h.Encode(9, 9, HeaderLen+4)
	copy(b[HeaderLen:], "abcd")
	h.SetChecksum(h.ComputeChecksum(ipA, ipB))
	copy(b[HeaderLen+4:], "junk!!")
	p, err := ParseChecked(b, ipA, ipB)
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Payload()) != "abcd" {
		t.Fatalf("payload %q", p.Payload())
	}
	// An unparsed view whose Length lies does not panic: the covered range
	// is clamped to the slice.
	binary.BigEndian.PutUint16(b[4:], 0xffff)
	_ = h.ComputeChecksum(ipA, ipB)
	_ = h.VerifyChecksum(ipA, ipB)
	binary.BigEndian.PutUint16(b[4:], 3)
	_ = h.ComputeChecksum(ipA, ipB)
	_ = h.VerifyChecksum(ipA, ipB)
}

func TestSwapPortsKeepsChecksum(t *testing.T) {
	b := datagram(40000, 7, []byte("ping"))
	h := Header(b)
	before := h.Checksum()
	h.SwapPorts()
	if h.SrcPort() != 7 || h.DstPort() != 40000 || h.Checksum() != before {
		t.Fatalf("ports %d->%d checksum %#04x", h.SrcPort(), h.DstPort(), h.Checksum())
	}
	// The reply goes the other way: swapped addresses, same checksum.
	if !h.VerifyChecksum(ipB, ipA) || h.ComputeChecksum(ipB, ipA) != before {
		t.Fatal("checksum no longer valid after swapping ports and addresses")
	}
}

func TestNoAllocs(t *testing.T) {
	buf := make([]byte, 64)
	var sink int
	n := testing.AllocsPerRun(100, func() {
		h := Header(buf)
		h.Encode(40000, 7, uint16(len(buf)))
		h.SetChecksum(h.ComputeChecksum(ipA, ipB))
		p, err := ParseChecked(buf, ipA, ipB)
		if err != nil {
			panic(err)
		}
		sink += int(p.SrcPort()) + int(p.DstPort()) + int(p.Length()) + int(p.Checksum()) + len(p.Payload())
		p.SwapPorts()
	})
	if n != 0 {
		t.Fatalf("allocations per run = %v, want 0", n)
	}
	_ = sink
}

func BenchmarkParseChecked1472(b *testing.B) {
	buf := datagram(40000, 7, make([]byte, 1464))
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseChecked(buf, ipA, ipB); err != nil {
			b.Fatal(err)
		}
	}
}
