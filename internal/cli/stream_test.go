package cli

import (
	"encoding/binary"
	"testing"
)

func TestStreamFormat(t *testing.T) {
	p := make([]byte, 1472)
	FillStream(p, 0x0102030405060708)
	seq, ok := StreamSeq(p)
	if !ok || seq != 0x0102030405060708 || !StreamIntact(p) {
		t.Fatalf("StreamSeq = %#x, %v; intact %v", seq, ok, StreamIntact(p))
	}
	// Every byte after the header is checked, whatever the length.
	for _, j := range []int{StreamHeader, 100, len(p) - 1} {
		q := append([]byte(nil), p...)
		q[j] ^= 1
		if StreamIntact(q) {
			t.Errorf("a flipped byte %d went unnoticed", j)
		}
	}
	if !StreamIntact(p[:StreamHeader+1]) || !StreamIntact(p[:StreamHeader]) {
		t.Error("a shorter stream payload is intact too")
	}
	// Not stream payloads: too short, or an echo request (slot < 1024).
	if _, ok := StreamSeq(p[:StreamHeader-1]); ok {
		t.Error("accepted a payload shorter than the header")
	}
	binary.LittleEndian.PutUint32(p[8:12], 7)
	if _, ok := StreamSeq(p); ok {
		t.Error("accepted an echo request's slot as the mark")
	}
}

func TestStreamAllocatesNothing(t *testing.T) {
	p := make([]byte, 1472)
	var seq uint64
	if a := testing.AllocsPerRun(100, func() {
		FillStream(p, seq)
		StreamSeq(p)
		StreamIntact(p)
		seq++
	}); a != 0 {
		t.Fatalf("%v allocs per run, want 0", a)
	}
}
