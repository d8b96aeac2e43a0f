package checksum

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"testing"
)

// naiveSum is the textbook RFC 1071 loop: 16 bits at a time, carries folded
// at the end. It is the reference the fast Sum is checked against.
func naiveSum(b []byte, initial uint32) uint16 {
	s := uint64(initial)
	for i := 0; i+1 < len(b); i += 2 {
		s += uint64(b[i])<<8 | uint64(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint64(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRFC1071Example(t *testing.T) {
	// RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
	b := mustHex(t, "0001f203f4f5f6f7")
	if got := Fold(Sum(b, 0)); got != 0xddf2 {
		t.Fatalf("Fold(Sum) = %#04x, want 0xddf2", got)
	}
	if got := Checksum(b, 0); got != 0x220d {
		t.Fatalf("Checksum = %#04x, want 0x220d", got)
	}
	// Byte-order independence (RFC 1071 1.2.B): the swapped data sums to the
	// swapped result.
	sw := mustHex(t, "010003f2f5f4f7f6")
	if got := Fold(Sum(sw, 0)); got != 0xf2dd {
		t.Fatalf("swapped Fold(Sum) = %#04x, want 0xf2dd", got)
	}
}

func TestKnownIPv4Header(t *testing.T) {
	// A classic IPv4 header (192.168.0.1 -> 192.168.0.199, UDP, TTL 64)
	// whose correct checksum is b861.
	h := mustHex(t, "450000730000400040110000c0a80001c0a800c7")
	if got := Checksum(h, 0); got != 0xb861 {
		t.Fatalf("Checksum = %#04x, want 0xb861", got)
	}
	binary.BigEndian.PutUint16(h[10:], 0xb861)
	if got := Checksum(h, 0); got != 0 {
		t.Fatalf("verifying a correct header gives %#04x, want 0", got)
	}
	h[8]-- // TTL 63: the header no longer verifies
	if got := Checksum(h, 0); got == 0 {
		t.Fatal("a corrupted header verifies")
	}
}

func TestOddLengthsAndEdges(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want uint16 // folded sum
	}{
		{"empty", "", 0},
		{"one byte", "ab", 0xab00},
		{"three bytes", "0102ff", 0x0003}, // 0x0102 + 0xff00 = 0x10002, folded
		{"seven bytes", "00010002000301", 0x0001 + 0x0002 + 0x0003 + 0x0100},
		{"nine bytes", "000100020003000401", 0x000a + 0x0100},
		{"single 0xffff", "ffff", 0xffff},
		{"two 0xffff", "ffffffff", 0xffff},
		{"carry", "ffff0001", 0x0001},
		{"all zero", "0000000000000000000000", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustHex(t, tt.in)
			if got := Fold(Sum(b, 0)); got != tt.want {
				t.Fatalf("Fold(Sum(%s)) = %#04x, want %#04x", tt.in, got, tt.want)
			}
			if got, want := Fold(Sum(b, 0)), naiveSum(b, 0); got != want {
				t.Fatalf("fast %#04x != naive %#04x", got, want)
			}
		})
	}
}

func TestAllOnes(t *testing.T) {
	// All-0xFF data sums to 0xFFFF (negative zero) at every length, and its
	// checksum is 0; the 64-bit accumulator saturates at all ones here.
	for n := 1; n <= 4100; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = 0xff
		}
		want := naiveSum(b, 0)
		if got := Fold(Sum(b, 0)); got != want {
			t.Fatalf("n=%d: Fold(Sum) = %#04x, naive %#04x", n, got, want)
		}
		if got := Fold(Sum(b, 0xffffffff)); got != naiveSum(b, 0xffffffff) {
			t.Fatalf("n=%d initial=0xffffffff: %#04x", n, got)
		}
	}
}

func TestRandomAgainstNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 9100)
	for i := 0; i < 20000; i++ {
		n := r.IntN(200)
		if i%10 == 0 {
			n = r.IntN(len(buf))
		}
		b := buf[:n]
		for j := range b {
			// Bias toward 0x00 and 0xFF bytes to exercise carries.
			switch r.IntN(4) {
			case 0:
				b[j] = 0
			case 1:
				b[j] = 0xff
			default:
				b[j] = byte(r.Uint32())
			}
		}
		// Start the slice at an odd offset sometimes: alignment must not matter.
		if n > 0 && r.IntN(2) == 0 {
			b = b[1:]
		}
		initial := r.Uint32()
		if r.IntN(4) == 0 {
			initial = 0
		}
		if got, want := Fold(Sum(b, initial)), naiveSum(b, initial); got != want {
			t.Fatalf("len %d initial %#x: fast %#04x naive %#04x", len(b), initial, got, want)
		}
		// Chaining over an even split equals one pass.
		k := r.IntN(len(b)/2+1) * 2
		if got, want := Fold(Sum(b[k:], Sum(b[:k], initial))), naiveSum(b, initial); got != want {
			t.Fatalf("chained at %d of %d: %#04x != %#04x", k, len(b), got, want)
		}
	}
}

func TestFold(t *testing.T) {
	tests := []struct {
		in   uint32
		want uint16
	}{
		{0, 0},
		{0xffff, 0xffff},
		{0x10000, 1},
		{0x1fffe, 0xffff},
		{0xffffffff, 0xffff},
		{0xffff0000, 0xffff},
		{0x12345678, 0x68ac},
	}
	for _, tt := range tests {
		if got := Fold(tt.in); got != tt.want {
			t.Errorf("Fold(%#x) = %#x, want %#x", tt.in, got, tt.want)
		}
	}
}

func TestPseudoIPv4(t *testing.T) {
	src := [4]byte{198, 51, 100, 1}
	dst := [4]byte{203, 0, 113, 9}
	const length = 0x1234
	// Build the 12-byte pseudo-header literally and sum it.
	ph := []byte{198, 51, 100, 1, 203, 0, 113, 9, 0, 17, 0x12, 0x34}
	if got, want := Fold(PseudoIPv4(src, dst, 17, length)), naiveSum(ph, 0); got != want {
		t.Fatalf("PseudoIPv4 = %#04x, want %#04x", got, want)
	}
	max := [4]byte{0xff, 0xff, 0xff, 0xff}
	ph = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0xff}
	if got, want := Fold(PseudoIPv4(max, max, 0xff, 0xffff)), naiveSum(ph, 0); got != want {
		t.Fatalf("PseudoIPv4(max) = %#04x, want %#04x", got, want)
	}
}

// fullChecksum computes the checksum of msg with the 2-byte field at off
// treated as zero, the way a sender fills it in.
func fullChecksum(msg []byte, off int) uint16 {
	return Checksum(msg[off+2:], Sum(msg[:off], 0))
}

func TestUpdate16MatchesRecomputation(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	corner := []uint16{0x0000, 0xffff, 0x0001, 0xfffe, 0x8000}
	pick := func() uint16 {
		if r.IntN(2) == 0 {
			return corner[r.IntN(len(corner))]
		}
		return uint16(r.Uint32())
	}
	for i := 0; i < 100000; i++ {
		n := 2 * (2 + r.IntN(30)) // even, at least 4 bytes
		msg := make([]byte, n)
		for j := range msg {
			if r.IntN(3) != 0 { // sparse data makes zero and 0xFFFF sums likely
				msg[j] = 0
			} else {
				msg[j] = byte(r.Uint32())
			}
		}
		const ck = 0 // checksum field at offset 0
		field := 2 + 2*r.IntN(n/2-1)
		binary.BigEndian.PutUint16(msg[field:], pick())
		old := binary.BigEndian.Uint16(msg[field:])
		binary.BigEndian.PutUint16(msg[ck:], fullChecksum(msg, ck))

		nv := pick()
		binary.BigEndian.PutUint16(msg[field:], nv)
		got := Update16(binary.BigEndian.Uint16(msg[ck:]), old, nv)
		want := fullChecksum(msg, ck)
		binary.BigEndian.PutUint16(msg[ck:], 0)
		allZero := Sum(msg, 0) == 0
		if allZero {
			// The documented exception: full recomputation gives 0xFFFF,
			// the incremental update gives 0.
			if want != 0xffff || got != 0 {
				t.Fatalf("all-zero data: got %#04x want(full) %#04x", got, want)
			}
			continue
		}
		if got != want {
			t.Fatalf("case %d: Update16 = %#04x, full = %#04x (old %#04x new %#04x)", i, got, want, old, nv)
		}
		binary.BigEndian.PutUint16(msg[ck:], got)
		if Checksum(msg, 0) != 0 {
			t.Fatalf("case %d: updated message does not verify", i)
		}
	}
}

func TestUpdate32MatchesRecomputation(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 100000; i++ {
		msg := make([]byte, 20)
		for j := range msg {
			if r.IntN(3) == 0 {
				msg[j] = byte(r.Uint32())
			}
		}
		msg[2] = 0x45 // never all zero, like a real IPv4 header
		var old, nv [4]byte
		for j := range old {
			old[j] = []byte{0, 0xff, byte(r.Uint32())}[r.IntN(3)]
			nv[j] = []byte{0, 0xff, byte(r.Uint32())}[r.IntN(3)]
		}
		copy(msg[12:], old[:])
		binary.BigEndian.PutUint16(msg[0:], fullChecksum(msg, 0))
		copy(msg[12:], nv[:])
		got := Update32(binary.BigEndian.Uint16(msg[0:]), old, nv)
		if want := fullChecksum(msg, 0); got != want {
			t.Fatalf("case %d: Update32 = %#04x, full = %#04x", i, got, want)
		}
	}
}

func TestNoAllocs(t *testing.T) {
	b := make([]byte, 1500)
	var sink uint16
	n := testing.AllocsPerRun(100, func() {
		sink ^= Checksum(b, PseudoIPv4([4]byte{1, 2, 3, 4}, [4]byte{5, 6, 7, 8}, 17, 1500))
		sink ^= Update16(sink, 1, 2)
		sink ^= Update32(sink, [4]byte{1}, [4]byte{2})
	})
	if n != 0 {
		t.Fatalf("allocations per run = %v, want 0", n)
	}
	_ = sink
}

var benchSink uint32

func benchmarkSum(b *testing.B, n int) {
	buf := make([]byte, n)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		benchSink += Sum(buf, 0)
	}
}

func BenchmarkSum64(b *testing.B)   { benchmarkSum(b, 64) }
func BenchmarkSum1500(b *testing.B) { benchmarkSum(b, 1500) }

// BenchmarkNaive1500 is the reference loop, for comparison only.
func BenchmarkNaive1500(b *testing.B) {
	buf := make([]byte, 1500)
	b.SetBytes(1500)
	b.ReportAllocs()
	for b.Loop() {
		benchSink += uint32(naiveSum(buf, 0))
	}
}
