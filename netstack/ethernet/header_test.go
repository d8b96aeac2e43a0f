package ethernet

import (
	"bytes"
	"errors"
	"testing"
)

var (
	macA = Addr{0x02, 0x00, 0x00, 0x00, 0x00, 0x0a}
	macB = Addr{0x02, 0x00, 0x00, 0x00, 0x00, 0x0b}
)

func TestEncodeParseRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		dst     Addr
		typ     uint16
		payload []byte
	}{
		{"ipv4", macB, TypeIPv4, []byte{0x45, 0, 0, 20}},
		{"arp broadcast", Broadcast, TypeARP, make([]byte, 46)},
		{"vlan tag kept", macB, TypeVLAN, []byte{0x00, 0x07, 0x08, 0x00}},
		{"ipv6 empty payload", macB, TypeIPv6, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame := make([]byte, HeaderLen+len(tt.payload))
			Header(frame).Encode(tt.dst, macA, tt.typ)
			copy(frame[HeaderLen:], tt.payload)
			h, err := Parse(frame)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if h.Dst() != tt.dst || h.Src() != macA || h.Type() != tt.typ {
				t.Fatalf("got dst %v src %v type %#04x", h.Dst(), h.Src(), h.Type())
			}
			if !bytes.Equal(h.Payload(), tt.payload) {
				t.Fatalf("payload %x, want %x", h.Payload(), tt.payload)
			}
		})
	}
}

func TestKnownBytes(t *testing.T) {
	frame := []byte{
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // dst
		0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, // src
		0x08, 0x06, // ARP
		0xaa,
	}
	h, err := Parse(frame)
	if err != nil {
		t.Fatal(err)
	}
	if h.Dst() != Broadcast || !h.Dst().IsMulticast() || h.Src() != macA || h.Src().IsMulticast() || h.Type() != TypeARP {
		t.Fatalf("decoded %v %v %#04x", h.Dst(), h.Src(), h.Type())
	}
	if !bytes.Equal(h.Payload(), []byte{0xaa}) {
		t.Fatalf("payload %x", h.Payload())
	}
}

func TestSetAddrs(t *testing.T) {
	frame := make([]byte, HeaderLen)
	h := Header(frame)
	h.Encode(macA, macB, TypeIPv4)
	// Turn it around, as a reply would.
	h.SetDst(h.Src())
	h.SetSrc(macA)
	if h.Dst() != macB || h.Src() != macA || h.Type() != TypeIPv4 {
		t.Fatalf("after swap dst %v src %v type %#04x", h.Dst(), h.Src(), h.Type())
	}
}

func TestParseTruncated(t *testing.T) {
	for n := 0; n < HeaderLen; n++ {
		if _, err := Parse(make([]byte, n)); !errors.Is(err, ErrTruncated) {
			t.Fatalf("len %d: err %v, want ErrTruncated", n, err)
		}
	}
	if _, err := Parse(make([]byte, HeaderLen)); err != nil {
		t.Fatalf("exactly %d bytes: %v", HeaderLen, err)
	}
}

func TestAddrString(t *testing.T) {
	if got := (Addr{0x02, 0xab, 0xcd, 0xef, 0x00, 0x9f}).String(); got != "02:ab:cd:ef:00:9f" {
		t.Fatalf("String = %q", got)
	}
	if got := Broadcast.String(); got != "ff:ff:ff:ff:ff:ff" {
		t.Fatalf("Broadcast.String = %q", got)
	}
}

func TestNoAllocs(t *testing.T) {
	frame := make([]byte, 64)
	var sink int
	n := testing.AllocsPerRun(100, func() {
		Header(frame).Encode(macB, macA, TypeIPv4)
		h, err := Parse(frame)
		if err != nil {
			panic(err)
		}
		d, s := h.Dst(), h.Src()
		h.SetDst(s)
		h.SetSrc(d)
		sink += int(h.Type()) + len(h.Payload()) + int(d[5])
	})
	if n != 0 {
		t.Fatalf("allocations per run = %v, want 0", n)
	}
	_ = sink
}
