package nic_test

import (
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/demixdp/demixdp/netstack/checksum"
	"github.com/demixdp/demixdp/netstack/nic"
)

// frame builds an Ethernet/IPv4 frame with an IHL of ihl words, protocol
// proto, the given flags-and-fragment-offset field and l4 bytes after the
// IPv4 header.
func frame(ihl int, proto byte, frag uint16, l4 int) []byte {
	b := make([]byte, 14+ihl*4+l4)
	b[12], b[13] = 0x08, 0x00
	b[14] = 0x40 | byte(ihl)
	binary.BigEndian.PutUint16(b[14+6:], frag)
	b[14+9] = proto
	return b
}

func TestL4Checksum(t *testing.T) {
	for _, tc := range []struct {
		name          string
		pkt           []byte
		start, offset int
		ok            bool
	}{
		{"udp", frame(5, 17, 0, 8), 34, 6, true},
		{"tcp", frame(5, 6, 0, 20), 34, 16, true},
		{"tcp after options", frame(8, 6, 0, 20), 46, 16, true},
		{"tcp, DF set", frame(5, 6, 0x4000, 20), 34, 16, true},
		{"icmp", frame(5, 1, 0, 8), 0, 0, false},
		{"first fragment", frame(5, 17, 0x2000, 8), 0, 0, false},
		{"later fragment", frame(5, 17, 0x0010, 8), 0, 0, false},
		{"tcp header cut", frame(5, 6, 0, 17), 0, 0, false},
		{"bad ihl", frame(4, 17, 0, 8), 0, 0, false},
		{"arp", append([]byte{12: 0x08, 13: 0x06}, make([]byte, 28)...), 0, 0, false},
		{"short", []byte{12: 0x08, 13: 0x00}, 0, 0, false},
	} {
		s, o, ok := nic.L4Checksum(tc.pkt)
		if s != tc.start || o != tc.offset || ok != tc.ok {
			t.Errorf("%s: %d+%d %v, want %d+%d %v", tc.name, s, o, ok, tc.start, tc.offset, tc.ok)
		}
	}
}

// TestCompleteChecksum: completing the pseudo-header's folded sum gives
// the checksum computed in one go, and a zero comes out as 0xffff.
func TestCompleteChecksum(t *testing.T) {
	l4 := []byte{0x10, 0x00, 0x00, 0x09, 0, 12, 0, 0, 'a', 'b', 'c', 'd'}
	pseudo := uint32(0x1234)
	binary.BigEndian.PutUint16(l4[6:], checksum.Fold(pseudo))
	nic.CompleteChecksum(l4, 6)
	got := binary.BigEndian.Uint16(l4[6:])
	binary.BigEndian.PutUint16(l4[6:], 0)
	if want := checksum.Checksum(l4, pseudo); got != want {
		t.Fatalf("completed %#04x, computed %#04x", got, want)
	}
	// Choose the last word so that everything sums to all ones.
	binary.BigEndian.PutUint16(l4[10:], 0)
	binary.BigEndian.PutUint16(l4[10:], ^checksum.Fold(checksum.Sum(l4, pseudo)))
	binary.BigEndian.PutUint16(l4[6:], checksum.Fold(pseudo))
	nic.CompleteChecksum(l4, 6)
	if got := binary.BigEndian.Uint16(l4[6:]); got != 0xffff {
		t.Fatalf("a zero sum completed as %#04x, want 0xffff", got)
	}
}

// FuzzL4Checksum: any bytes; what L4Checksum accepts lies inside them.
func FuzzL4Checksum(f *testing.F) {
	f.Add(frame(5, 17, 0, 8))
	f.Add(frame(15, 6, 0, 20))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		s, o, ok := nic.L4Checksum(pkt)
		if ok && (s < 34 || s+o+2 > len(pkt)) {
			t.Fatalf("start %d offset %d outside a %d-byte packet", s, o, len(pkt))
		}
	})
}

// TestCopyBufCopiesEveryField: CopyBuf must follow Buf.
func TestCopyBufCopiesEveryField(t *testing.T) {
	src := nic.Buf{Frame: 3, Data: make([]byte, 8), Off: 2, Len: 4}
	v := reflect.ValueOf(src)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Fatalf("the test leaves Buf.%s zero: set it", v.Type().Field(i).Name)
		}
	}
	var dst nic.Buf
	nic.CopyBuf(&dst, &src)
	if !reflect.DeepEqual(dst, src) || &dst.Data[0] != &src.Data[0] {
		t.Fatalf("CopyBuf: %+v, want %+v", dst, src)
	}
}
