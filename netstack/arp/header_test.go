package arp

import (
	"encoding/hex"
	"errors"
	"testing"

	"github.com/demixdp/demixdp/netstack/ethernet"
)

var (
	macA = ethernet.Addr{0x02, 0x00, 0x00, 0x00, 0x00, 0x0a}
	macB = ethernet.Addr{0x02, 0x00, 0x00, 0x00, 0x00, 0x0b}
	ipA  = [4]byte{198, 51, 100, 1}
	ipB  = [4]byte{198, 51, 100, 2}
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVectors(t *testing.T) {
	tests := []struct {
		name     string
		wire     string
		op       uint16
		sha, tha ethernet.Addr
		spa, tpa [4]byte
	}{
		{
			// "Who has 198.51.100.2? Tell 198.51.100.1", padded to the
			// 46-byte Ethernet minimum with 18 zero bytes.
			name: "request with padding",
			wire: "0001" + "0800" + "06" + "04" + "0001" +
				"02000000000a" + "c6336401" + "000000000000" + "c6336402" +
				"000000000000000000000000000000000000",
			op: OpRequest, sha: macA, spa: ipA, tpa: ipB,
		},
		{
			name: "reply",
			wire: "0001" + "0800" + "06" + "04" + "0002" +
				"02000000000b" + "c6336402" + "02000000000a" + "c6336401",
			op: OpReply, sha: macB, spa: ipB, tha: macA, tpa: ipA,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wire := mustHex(t, tt.wire)
			h, err := Parse(wire)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(h) != HeaderLen || cap(h) != HeaderLen {
				t.Fatalf("view len %d cap %d, want %d (padding excluded)", len(h), cap(h), HeaderLen)
			}
			if h.Op() != tt.op || h.SenderHW() != tt.sha || h.SenderIP() != tt.spa ||
				h.TargetHW() != tt.tha || h.TargetIP() != tt.tpa {
				t.Fatalf("decoded op %d %v %v %v %v", h.Op(), h.SenderHW(), h.SenderIP(), h.TargetHW(), h.TargetIP())
			}
			// Encoding the same fields reproduces the wire bytes.
			out := make(Header, HeaderLen)
			out.Encode(tt.op, tt.sha, tt.spa, tt.tha, tt.tpa)
			if string(out) != string(wire[:HeaderLen]) {
				t.Fatalf("Encode = %x, want %x", []byte(out), wire[:HeaderLen])
			}
		})
	}
}

func TestRequestToReplyRoundTrip(t *testing.T) {
	req := make(Header, HeaderLen)
	req.Encode(OpRequest, macA, ipA, ethernet.Addr{}, ipB)
	h, err := Parse(req)
	if err != nil {
		t.Fatal(err)
	}
	// Answer in place, as a responder does.
	h.Encode(OpReply, macB, h.TargetIP(), h.SenderHW(), h.SenderIP())
	r, err := Parse(h)
	if err != nil {
		t.Fatal(err)
	}
	if r.Op() != OpReply || r.SenderHW() != macB || r.SenderIP() != ipB || r.TargetHW() != macA || r.TargetIP() != ipA {
		t.Fatalf("reply %d %v %v %v %v", r.Op(), r.SenderHW(), r.SenderIP(), r.TargetHW(), r.TargetIP())
	}
}

func TestParseErrors(t *testing.T) {
	valid := func() []byte {
		b := make([]byte, HeaderLen)
		Header(b).Encode(OpRequest, macA, ipA, ethernet.Addr{}, ipB)
		return b
	}
	tests := []struct {
		name   string
		mutate func([]byte) []byte
		want   error
	}{
		{"empty", func(b []byte) []byte { return b[:0] }, ErrTruncated},
		{"27 bytes", func(b []byte) []byte { return b[:27] }, ErrTruncated},
		{"htype 6 (IEEE 802)", func(b []byte) []byte { b[1] = 6; return b }, ErrUnsupported},
		{"ptype IPv6", func(b []byte) []byte { b[2], b[3] = 0x86, 0xdd; return b }, ErrUnsupported},
		{"hlen 8", func(b []byte) []byte { b[4] = 8; return b }, ErrUnsupported},
		{"plen 16", func(b []byte) []byte { b[5] = 16; return b }, ErrUnsupported},
		{"op 0", func(b []byte) []byte { b[7] = 0; return b }, ErrUnsupported},
		{"op RARP request (3)", func(b []byte) []byte { b[7] = 3; return b }, ErrUnsupported},
		{"op 0x0101", func(b []byte) []byte { b[6] = 1; return b }, ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := Parse(tt.mutate(valid()))
			if !errors.Is(err, tt.want) || h != nil {
				t.Fatalf("Parse = %v, %v; want nil, %v", h, err, tt.want)
			}
		})
	}
}

func TestNoAllocs(t *testing.T) {
	buf := make([]byte, 46)
	var sink int
	n := testing.AllocsPerRun(100, func() {
		Header(buf).Encode(OpRequest, macA, ipA, ethernet.Addr{}, ipB)
		h, err := Parse(buf)
		if err != nil {
			panic(err)
		}
		sha, spa, tha, tpa := h.SenderHW(), h.SenderIP(), h.TargetHW(), h.TargetIP()
		sink += int(h.Op()) + int(sha[5]) + int(spa[3]) + int(tha[0]) + int(tpa[3])
	})
	if n != 0 {
		t.Fatalf("allocations per run = %v, want 0", n)
	}
	_ = sink
}
