package icmp

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"testing"
)

// echo builds a checksummed echo message.
func echo(typ uint8, id, seq uint16, data []byte) []byte {
	b := make([]byte, HeaderLen+len(data))
	h := Header(b)
	h.SetType(typ)
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], seq)
	copy(b[HeaderLen:], data)
	h.SetChecksum(h.ComputeChecksum())
	return b
}

func TestKnownEchoRequest(t *testing.T) {
	// An echo request, id 1 seq 1, 4 data bytes "abcd": the words
	// 0800 0000 0001 0001 6162 6364 sum to 0xccc8, so the checksum is 0x3337.
	b, _ := hex.DecodeString("0800333700010001" + "61626364")
	h, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.Type() != TypeEchoRequest || h.Code() != 0 || h.Checksum() != 0x3337 || h.ID() != 1 || h.Seq() != 1 ||
		!bytes.Equal(h.Payload(), []byte("abcd")) {
		t.Fatalf("decoded type %d code %d ck %#04x id %d seq %d", h.Type(), h.Code(), h.Checksum(), h.ID(), h.Seq())
	}
	if h.ComputeChecksum() != 0x3337 {
		t.Fatalf("ComputeChecksum = %#04x", h.ComputeChecksum())
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name      string
		typ, code uint8
		data      []byte
	}{
		{"echo request", TypeEchoRequest, 0, []byte("0123456789abcdef")},
		{"echo reply odd length", TypeEchoReply, 0, []byte("xyz")},
		{"port unreachable", TypeDestUnreachable, 3, make([]byte, 28)},
		{"time exceeded", TypeTimeExceeded, 0, make([]byte, 28)},
		{"no data", TypeEchoRequest, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := echo(tt.typ, 0x4d2, 7, tt.data)
			Header(b).SetCode(tt.code)
			Header(b).SetChecksum(Header(b).ComputeChecksum())
			h, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			if h.Type() != tt.typ || h.Code() != tt.code || h.ID() != 0x4d2 || h.Seq() != 7 || !bytes.Equal(h.Payload(), tt.data) {
				t.Fatalf("decoded %d/%d id %d seq %d payload %x", h.Type(), h.Code(), h.ID(), h.Seq(), h.Payload())
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	good := echo(TypeEchoRequest, 1, 2, []byte("data"))
	for n := 0; n < HeaderLen; n++ {
		if _, err := Parse(good[:n]); !errors.Is(err, ErrTruncated) {
			t.Fatalf("len %d: %v, want ErrTruncated", n, err)
		}
	}
	for i := range good {
		b := bytes.Clone(good)
		b[i] ^= 0x40
		if h, err := Parse(b); !errors.Is(err, ErrChecksum) || h != nil {
			t.Fatalf("flipped byte %d: %v, want ErrChecksum", i, err)
		}
	}
	// The checksum covers the whole message: dropping a data byte fails too.
	if _, err := Parse(good[:len(good)-1]); !errors.Is(err, ErrChecksum) {
		t.Fatalf("shortened message: %v, want ErrChecksum", err)
	}
}

func TestEchoToReply(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	check := func(t *testing.T, req []byte) {
		t.Helper()
		b := bytes.Clone(req)
		h := Header(b)
		h.EchoToReply()
		if h.Type() != TypeEchoReply {
			t.Fatalf("type %d after EchoToReply", h.Type())
		}
		if got, want := h.Checksum(), h.ComputeChecksum(); got != want {
			t.Fatalf("incremental %#04x, full recomputation %#04x (request % x)", got, want, req)
		}
		if _, err := Parse(b); err != nil {
			t.Fatalf("reply does not parse: %v", err)
		}
		if !bytes.Equal(b[1:2], req[1:2]) || !bytes.Equal(b[4:], req[4:]) {
			t.Fatal("EchoToReply changed more than the type and checksum")
		}
	}
	// The corner case: everything but the type zero, so the reply is all
	// zero bytes and its checksum must be 0xFFFF, not 0.
	check(t, echo(TypeEchoRequest, 0, 0, nil))
	check(t, echo(TypeEchoRequest, 0, 0, make([]byte, 56)))
	// A reply whose correct checksum is 0x0000: the words after the change
	// sum to 0xFFFF.
	check(t, echo(TypeEchoRequest, 0xffff, 0, nil))
	for i := 0; i < 50000; i++ {
		data := make([]byte, r.IntN(64))
		for j := range data {
			if r.IntN(2) == 0 {
				data[j] = byte(r.Uint32())
			}
		}
		id, seq := uint16(r.Uint32()), uint16(r.Uint32())
		if r.IntN(4) == 0 {
			id, seq = 0, 0
		}
		check(t, echo(TypeEchoRequest, id, seq, data))
	}
}

func TestEchoToReplyIgnoresOtherTypes(t *testing.T) {
	for _, typ := range []uint8{TypeEchoReply, TypeDestUnreachable, TypeTimeExceeded, 13} {
		b := echo(typ, 1, 2, []byte("x"))
		orig := bytes.Clone(b)
		Header(b).EchoToReply()
		if !bytes.Equal(b, orig) {
			t.Fatalf("type %d modified: % x", typ, b)
		}
	}
}

func TestNoAllocs(t *testing.T) {
	buf := echo(TypeEchoRequest, 1, 1, make([]byte, 56))
	var sink int
	n := testing.AllocsPerRun(100, func() {
		h, err := Parse(buf)
		if err != nil {
			panic(err)
		}
		sink += int(h.Type()) + int(h.Code()) + int(h.Checksum()) + int(h.ID()) + int(h.Seq()) + len(h.Payload())
		h.EchoToReply()
		h.SetType(TypeEchoRequest)
		h.SetCode(0)
		h.SetChecksum(h.ComputeChecksum())
	})
	if n != 0 {
		t.Fatalf("allocations per run = %v, want 0", n)
	}
	_ = sink
}

// BenchmarkEchoToReply measures the in-place reply of a 1500-byte ping. The
// checksum drifts across iterations (the type is reset without updating
// it), which does not change the work done.
func BenchmarkEchoToReply(b *testing.B) {
	buf := echo(TypeEchoRequest, 1, 1, make([]byte, 1472))
	b.ReportAllocs()
	for b.Loop() {
		buf[0] = TypeEchoRequest
		Header(buf).EchoToReply()
	}
}

func BenchmarkParse1500(b *testing.B) {
	buf := echo(TypeEchoRequest, 1, 1, make([]byte, 1472))
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(buf); err != nil {
			b.Fatal(err)
		}
	}
}
