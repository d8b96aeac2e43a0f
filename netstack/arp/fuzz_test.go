package arp

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzParse checks that Parse never panics, that it accepts exactly the
// Ethernet/IPv4 request/reply form, and that an accepted packet re-encodes
// to the same 28 bytes.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Parse(b)
		wellFormed := len(b) >= HeaderLen &&
			binary.BigEndian.Uint16(b[0:2]) == 1 && binary.BigEndian.Uint16(b[2:4]) == 0x0800 &&
			b[4] == 6 && b[5] == 4 &&
			(binary.BigEndian.Uint16(b[6:8]) == OpRequest || binary.BigEndian.Uint16(b[6:8]) == OpReply)
		if err != nil {
			if wellFormed {
				t.Fatalf("rejected a well-formed packet: %v", err)
			}
			if (len(b) < HeaderLen) != (err == ErrTruncated) {
				t.Fatalf("len %d: error %v", len(b), err)
			}
			return
		}
		if !wellFormed {
			t.Fatalf("accepted a malformed packet %x", b)
		}
		if len(h) != HeaderLen || cap(h) != HeaderLen {
			t.Fatalf("view len %d cap %d", len(h), cap(h))
		}
		out := make(Header, HeaderLen)
		out.Encode(h.Op(), h.SenderHW(), h.SenderIP(), h.TargetHW(), h.TargetIP())
		if !bytes.Equal(out, b[:HeaderLen]) {
			t.Fatalf("re-encoded %x, want %x", []byte(out), b[:HeaderLen])
		}
	})
}
