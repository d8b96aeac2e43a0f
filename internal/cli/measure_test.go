package cli

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"
)

func TestPayloadIsDeterministicAndCarriesSeq(t *testing.T) {
	a, b, c := make([]byte, 37), make([]byte, 37), make([]byte, 37)
	Payload(a, 1, 5)
	Payload(b, 1, 5)
	Payload(c, 2, 5)
	if !bytes.Equal(a, b) || bytes.Equal(a, c) {
		t.Fatal("same seed and seq must give the same bytes, another seed others")
	}
	if binary.LittleEndian.Uint64(a) != 5 {
		t.Fatalf("sequence number not at the start: %x", a[:8])
	}
	short := make([]byte, 3)
	Payload(short, 1, 0x0a0b0c)
	if !bytes.Equal(short, []byte{0x0c, 0x0b, 0x0a}) {
		t.Fatalf("truncated sequence number: %x", short)
	}
}

func TestPercentile(t *testing.T) {
	d := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for q, want := range map[float64]time.Duration{0: 1, 0.5: 6, 0.99: 10, 1: 10} {
		if got := Percentile(d, q); got != want {
			t.Errorf("Percentile(%v) = %v, want %v", q, got, want)
		}
	}
	if Percentile(nil, 0.5) != 0 {
		t.Error("empty input")
	}
	if US(1500*time.Nanosecond) != "1.5" {
		t.Errorf("US: %s", US(1500))
	}
}
