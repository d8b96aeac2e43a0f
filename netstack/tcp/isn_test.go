package tcp

import (
	"testing"
	"time"
)

// Reference outputs of SipHash-2-4 from the SipHash paper's test vectors:
// key 00 01 .. 0f, message 00 01 .. (n-1), output read little-endian.
var sipVectors = map[int]uint64{
	0:  0x726fdb47dd0e0e31,
	1:  0x74f839c593dc67fd,
	2:  0x0d6c8009d9a94f5a,
	3:  0x85676696d7fb7e2d,
	7:  0xab0200f58b01d137,
	8:  0x93f5f5799a932462,
	15: 0xa129ca6149be45e5, // the worked example in the paper's appendix
	16: 0x3f2acc7f57c29bdb,
	63: 0x958a324ceb064572,
}

func TestSipHashVectors(t *testing.T) {
	var key [16]byte
	for i := range key {
		key[i] = byte(i)
	}
	g := NewISNGeneratorKey(key)
	msg := make([]byte, 64)
	for i := range msg {
		msg[i] = byte(i)
	}
	for n, want := range sipVectors {
		if got := sipHash24(g.k0, g.k1, msg[:n]); got != want {
			t.Errorf("SipHash-2-4 of %d bytes = %#016x, want %#016x", n, got, want)
		}
	}
}

func TestISN(t *testing.T) {
	g := NewISNGeneratorKey([16]byte{1, 2, 3})
	tup := Tuple{LocalAddr: [4]byte{198, 51, 100, 1}, LocalPort: 80, RemoteAddr: [4]byte{198, 51, 100, 2}, RemotePort: 40000}
	a := g.ISN(tup, 0)
	// M advances one per 4us.
	if b := g.ISN(tup, 4*time.Millisecond); b.Sub(a) != 1000 {
		t.Fatalf("ISN after 4ms moved by %d, want 1000", b.Sub(a))
	}
	if g.ISN(tup, 3*time.Microsecond) != a {
		t.Fatal("ISN changed within one 4us tick")
	}
	other := tup
	other.RemotePort++
	if g.ISN(other, 0) == a {
		t.Fatal("different tuples share an ISN")
	}
	if NewISNGeneratorKey([16]byte{9}).ISN(tup, 0) == a {
		t.Fatal("different keys give the same ISN")
	}
	g1, g2 := NewISNGenerator(), NewISNGenerator()
	if g1.ISN(tup, 0) == g2.ISN(tup, 0) {
		t.Fatal("two random keys agree (or crypto/rand is not used)")
	}
	if n := testing.AllocsPerRun(100, func() { _ = g.ISN(tup, time.Second) }); n != 0 {
		t.Fatalf("ISN allocates %v", n)
	}
}

func BenchmarkISN(b *testing.B) {
	g := NewISNGeneratorKey([16]byte{1})
	tup := Tuple{LocalPort: 80, RemotePort: 1234}
	b.ReportAllocs()
	for b.Loop() {
		_ = g.ISN(tup, time.Second)
	}
}
