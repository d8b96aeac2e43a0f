package tcp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// synAck is a SYN-ACK with MSS 1460, SACK-permitted, timestamps and window
// scale 7 in Linux's layout, followed by no payload.
var synAck = []byte{
	0x1f, 0x90, 0xc3, 0x50, // ports 8080 -> 50000
	0x11, 0x22, 0x33, 0x44, // seq
	0x55, 0x66, 0x77, 0x88, // ack
	0xa0, 0x12, 0xfe, 0x88, // data offset 40, SYN|ACK, window 65160
	0x00, 0x00, 0x00, 0x00, // checksum, urgent
	0x02, 0x04, 0x05, 0xb4, // MSS 1460
	0x04, 0x02, 0x08, 0x0a, // SACK-permitted, TS kind/len
	0x00, 0x00, 0x00, 0x01, // TSval 1
	0x00, 0x00, 0x00, 0x02, // TSecr 2
	0x01, 0x03, 0x03, 0x07, // NOP, WS 7
}

func TestParseAccessors(t *testing.T) {
	seg := append(append([]byte(nil), synAck...), "hello"...)
	h, err := Parse(seg)
	if err != nil {
		t.Fatal(err)
	}
	if h.SrcPort() != 8080 || h.DstPort() != 50000 {
		t.Errorf("ports %d %d", h.SrcPort(), h.DstPort())
	}
	if h.Seq() != 0x11223344 || h.Ack() != 0x55667788 {
		t.Errorf("seq %#x ack %#x", h.Seq(), h.Ack())
	}
	if h.DataOffset() != 40 || h.Flags() != FlagSYN|FlagACK || h.Window() != 65160 {
		t.Errorf("off %d flags %v win %d", h.DataOffset(), h.Flags(), h.Window())
	}
	if !h.Flags().Has(FlagSYN) || h.Flags().Has(FlagFIN) {
		t.Error("Flags.Has wrong")
	}
	if len(h.Options()) != 20 || string(h.Payload()) != "hello" {
		t.Errorf("options %d bytes, payload %q", len(h.Options()), h.Payload())
	}
	if got := (FlagSYN | FlagACK).String(); got != "SYN|ACK" {
		t.Errorf("String = %q", got)
	}
}

func TestParseErrors(t *testing.T) {
	mk := func(n int, off byte) []byte {
		b := make([]byte, n)
		if n > 12 {
			b[12] = off << 4
		}
		return b
	}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"19 bytes", mk(19, 5), ErrTruncated},
		{"offset 0", mk(20, 0), ErrDataOffset},
		{"offset 16", mk(20, 4), ErrDataOffset},
		{"offset past end", mk(23, 6), ErrDataOffset},
		{"offset 60 in 59", mk(59, 15), ErrDataOffset},
	}
	for _, tc := range tests {
		if _, err := Parse(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := Parse(mk(60, 15)); err != nil {
		t.Errorf("offset 60 in 60 bytes: %v", err)
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	b := make([]byte, 32)
	f := Fields{SrcPort: 1, DstPort: 2, Seq: 0xFFFFFFFF, Ack: 7, DataOffset: 32,
		Flags: FlagACK | FlagPSH | FlagCWR, Window: 512, Checksum: 0xabcd, Urgent: 9}
	h := Header(b)
	h.Encode(&f)
	p, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	got := Fields{p.SrcPort(), p.DstPort(), p.Seq(), p.Ack(), uint8(p.DataOffset()), p.Flags(), p.Window(), p.Checksum(), p.Urgent()}
	if got != f {
		t.Fatalf("got %+v, want %+v", got, f)
	}
	for _, c := range []struct{ in, out uint8 }{{0, 20}, {4, 20}, {23, 20}, {44, 44}, {200, 60}} {
		f.DataOffset = c.in
		h.Encode(&f)
		if h.DataOffset() != int(c.out) {
			t.Errorf("DataOffset %d encoded as %d, want %d", c.in, h.DataOffset(), c.out)
		}
	}
}

// refChecksum is RFC 1071 written the slow, obvious way, as an oracle.
func refChecksum(src, dst [4]byte, seg []byte) uint16 {
	pseudo := append(append(append([]byte{}, src[:]...), dst[:]...), 0, 6, byte(len(seg)>>8), byte(len(seg)))
	all := append(pseudo, seg...)
	if len(all)%2 == 1 {
		all = append(all, 0)
	}
	var s uint32
	for i := 0; i < len(all); i += 2 {
		s += uint32(binary.BigEndian.Uint16(all[i:]))
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

func TestChecksum(t *testing.T) {
	src, dst := [4]byte{198, 51, 100, 1}, [4]byte{203, 0, 113, 7}
	for n := 0; n < 70; n++ {
		seg := append([]byte(nil), synAck...)
		for i := 0; i < n; i++ {
			seg = append(seg, byte(0xf0+i*37))
		}
		h := Header(seg)
		h.SetChecksum(0x1234) // must be ignored by ComputeChecksum
		c := h.ComputeChecksum(src, dst)
		h.SetChecksum(0)
		if want := refChecksum(src, dst, seg); c != want {
			t.Fatalf("payload %d: checksum %#04x, want %#04x", n, c, want)
		}
		h.SetChecksum(c)
		if !h.VerifyChecksum(src, dst) {
			t.Fatalf("payload %d: VerifyChecksum false after ComputeChecksum", n)
		}
		seg[len(seg)-1] ^= 0x01
		if h.VerifyChecksum(src, dst) {
			t.Fatalf("payload %d: corrupted segment verified", n)
		}
		seg[len(seg)-1] ^= 0x01
		if h.VerifyChecksum(src, [4]byte{203, 0, 113, 9}) {
			t.Fatalf("payload %d: wrong address verified", n)
		}
	}
}

func TestParseOptions(t *testing.T) {
	sack := []byte{1, 1, 5, 18, 0, 0, 0, 10, 0, 0, 0, 20, 0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 0x10}
	tests := []struct {
		name string
		in   []byte
		want Options
		err  error
	}{
		{"empty", nil, Options{}, nil},
		{"syn-ack layout", synAck[20:], Options{MSS: 1460, HasMSS: true, SACKPermitted: true, TSVal: 1, TSEcr: 2, HasTS: true, WScale: 7, HasWScale: true}, nil},
		{"two sack blocks, one across the wrap", sack, Options{NumSACK: 2, SACK: [4]SACKBlock{{10, 20}, {0xfffffff0, 0x10}}}, nil},
		{"eol stops", []byte{0, 2, 4, 5, 0xb4}, Options{}, nil},
		{"nop padding", []byte{1, 1, 1, 2, 4, 1, 0}, Options{MSS: 256, HasMSS: true}, nil},
		{"unknown kind skipped", []byte{30, 4, 9, 9, 3, 3, 20}, Options{WScale: 14, HasWScale: true}, nil},
		{"mss wrong length ignored", []byte{2, 3, 5, 2, 4, 1, 0}, Options{HasMSS: true, MSS: 256}, nil},
		{"ts wrong length ignored", []byte{8, 6, 0, 0, 0, 1, 4, 2}, Options{SACKPermitted: true}, nil},
		{"sack bad length ignored", []byte{5, 6, 0, 0, 0, 1}, Options{}, nil},
		{"sack-perm wrong length ignored", []byte{4, 3, 0}, Options{}, nil},
		{"length missing", []byte{1, 2}, Options{}, ErrBadOption},
		{"length 0", []byte{30, 0, 1, 1}, Options{}, ErrBadOption},
		{"length 1", []byte{2, 1, 1, 1}, Options{}, ErrBadOption},
		{"runs past end", []byte{2, 4, 5}, Options{}, ErrBadOption},
		{"ok then bad", []byte{3, 3, 2, 8, 10, 0}, Options{WScale: 2, HasWScale: true}, ErrBadOption},
	}
	for _, tc := range tests {
		var o Options
		o.NumSACK = 3 // must be cleared
		err := ParseOptions(tc.in, &o)
		if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.err)
		}
		if o != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, o, tc.want)
		}
	}
}

func TestEncodeOptions(t *testing.T) {
	full := Options{MSS: 1460, HasMSS: true, SACKPermitted: true, TSVal: 1, TSEcr: 2, HasTS: true, WScale: 7, HasWScale: true}
	var buf [MaxOptionsLen]byte
	n := EncodeOptions(buf[:], &full, true)
	if !bytes.Equal(buf[:n], synAck[20:]) {
		t.Fatalf("SYN layout %x, want %x", buf[:n], synAck[20:])
	}
	blocks := [4]SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}}
	tests := []struct {
		name   string
		o      Options
		syn    bool
		n      int
		blocks int
	}{
		{"mss only", Options{MSS: 536, HasMSS: true}, true, 4, 0},
		{"ts only syn", Options{HasTS: true, TSVal: 5}, true, 12, 0},
		{"sackperm only syn", Options{SACKPermitted: true}, true, 4, 0},
		{"ws only", Options{WScale: 20, HasWScale: true}, true, 4, 0},
		{"syn drops sack blocks", Options{NumSACK: 2, SACK: blocks}, true, 0, 0},
		{"ack ts", Options{HasTS: true}, false, 12, 0},
		{"ack drops syn-only options", Options{MSS: 1, HasMSS: true, SACKPermitted: true, HasWScale: true}, false, 0, 0},
		{"ack 4 sack", Options{NumSACK: 4, SACK: blocks}, false, 36, 4},
		{"ack ts + 4 sack keeps 3", Options{HasTS: true, NumSACK: 4, SACK: blocks}, false, 40, 3},
		{"ack ts + 1 sack", Options{HasTS: true, NumSACK: 1, SACK: blocks}, false, 24, 1},
		{"bogus NumSACK", Options{NumSACK: 99, SACK: blocks}, false, 36, 4},
	}
	for _, tc := range tests {
		n := EncodeOptions(buf[:], &tc.o, tc.syn)
		if n != tc.n || n%4 != 0 {
			t.Errorf("%s: wrote %d bytes, want %d", tc.name, n, tc.n)
			continue
		}
		var back Options
		if err := ParseOptions(buf[:n], &back); err != nil {
			t.Errorf("%s: reparse: %v", tc.name, err)
		}
		if back.NumSACK != tc.blocks || back.SACK != func() (a [4]SACKBlock) { copy(a[:], blocks[:tc.blocks]); return }() {
			t.Errorf("%s: reparsed %d blocks %v", tc.name, back.NumSACK, back.SACK)
		}
		if back.HasTS != (tc.o.HasTS) || back.TSVal != tc.o.TSVal {
			t.Errorf("%s: timestamps lost: %+v", tc.name, back)
		}
		if tc.syn && (back.HasMSS != tc.o.HasMSS || back.HasWScale != tc.o.HasWScale || back.SACKPermitted != tc.o.SACKPermitted) {
			t.Errorf("%s: SYN options lost: %+v", tc.name, back)
		}
		if tc.o.HasWScale && tc.syn && back.WScale != min(tc.o.WScale, MaxWindowScale) {
			t.Errorf("%s: wscale %d", tc.name, back.WScale)
		}
	}
	// A short buffer: only what fits, never a panic.
	for size := 0; size <= MaxOptionsLen; size++ {
		o := full
		o.NumSACK = 4
		o.SACK = blocks
		for _, syn := range []bool{true, false} {
			small := make([]byte, size)
			if n := EncodeOptions(small, &o, syn); n > size || n%4 != 0 {
				t.Fatalf("size %d syn %v: wrote %d", size, syn, n)
			}
		}
	}
}

func TestHeaderNoAllocs(t *testing.T) {
	seg := append([]byte(nil), synAck...)
	var o Options
	var out [MaxOptionsLen]byte
	src, dst := [4]byte{198, 51, 100, 1}, [4]byte{198, 51, 100, 2}
	allocs := testing.AllocsPerRun(100, func() {
		h, err := Parse(seg)
		if err != nil {
			t.Fatal(err)
		}
		_ = ParseOptions(h.Options(), &o)
		_ = EncodeOptions(out[:], &o, true)
		h.SetChecksum(h.ComputeChecksum(src, dst))
		_ = h.VerifyChecksum(src, dst)
		_, _ = Parse(seg[:10])
		_ = ParseOptions([]byte{2, 9}, &o)
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per run, want 0", allocs)
	}
}

func BenchmarkParse(b *testing.B) {
	seg := append(append([]byte(nil), synAck...), make([]byte, 1460)...)
	b.ReportAllocs()
	for b.Loop() {
		h, err := Parse(seg)
		if err != nil || h.DstPort() != 50000 {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseOptions(b *testing.B) {
	ack := []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1, 5, 26, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 6}
	var o Options
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseOptions(ack, &o); err != nil || o.NumSACK != 3 {
			b.Fatal(err, o.NumSACK)
		}
	}
}

func BenchmarkChecksum1460(b *testing.B) {
	seg := append(append([]byte(nil), synAck...), make([]byte, 1460)...)
	h := Header(seg)
	b.SetBytes(int64(len(seg)))
	b.ReportAllocs()
	for b.Loop() {
		h.SetChecksum(h.ComputeChecksum([4]byte{198, 51, 100, 1}, [4]byte{198, 51, 100, 2}))
	}
}
