package udp

import (
	"encoding/binary"
	"testing"
)

// FuzzParse checks that Parse never panics, accepts exactly the inputs whose
// Length field fits, returns a capped view of Length bytes, and that
// re-encoding the fields with a fresh checksum yields a datagram that parses
// and verifies.
func FuzzParse(f *testing.F) {
	src, dst := [4]byte{198, 51, 100, 1}, [4]byte{198, 51, 100, 2}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Parse(b)
		fits := len(b) >= HeaderLen &&
			int(binary.BigEndian.Uint16(b[4:6])) >= HeaderLen &&
			int(binary.BigEndian.Uint16(b[4:6])) <= len(b)
		if err != nil {
			if fits || h != nil {
				t.Fatalf("rejected fitting input (len %d): %v", len(b), err)
			}
			// Checksum helpers on the raw bytes must not panic either.
			if len(b) >= HeaderLen {
				_ = Header(b).ComputeChecksum(src, dst)
				_ = Header(b).VerifyChecksum(src, dst)
			}
			return
		}
		if !fits {
			t.Fatalf("accepted input with Length %d, len %d", binary.BigEndian.Uint16(b[4:6]), len(b))
		}
		if len(h) != int(h.Length()) || cap(h) != len(h) || len(h.Payload()) != len(h)-HeaderLen {
			t.Fatalf("view len %d cap %d Length %d", len(h), cap(h), h.Length())
		}
		_ = h.VerifyChecksum(src, dst)
		out := make([]byte, len(h))
		o := Header(out)
		o.Encode(h.SrcPort(), h.DstPort(), h.Length())
		copy(out[HeaderLen:], h.Payload())
		o.SetChecksum(o.ComputeChecksum(src, dst))
		r, err := ParseChecked(out, src, dst)
		if err != nil {
			t.Fatalf("re-encoded datagram: %v", err)
		}
		if r.SrcPort() != h.SrcPort() || r.DstPort() != h.DstPort() || string(r.Payload()) != string(h.Payload()) || r.Checksum() == 0 {
			t.Fatal("re-encoded datagram differs")
		}
	})
}
