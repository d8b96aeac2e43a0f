package icmp

import (
	"bytes"
	"testing"
)

// FuzzParse checks that Parse never panics, that it accepts a message only
// when the checksum verifies, and that an accepted echo request turned into a
// reply in place still parses with the checksum a full recomputation gives.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Parse(b)
		if err != nil {
			if h != nil {
				t.Fatalf("non-nil view with error %v", err)
			}
			if (len(b) < HeaderLen) != (err == ErrTruncated) {
				t.Fatalf("len %d: error %v", len(b), err)
			}
			return
		}
		if len(h) != len(b) || len(h.Payload()) != len(b)-HeaderLen {
			t.Fatalf("view %d payload %d input %d", len(h), len(h.Payload()), len(b))
		}
		// The stored checksum equals the recomputation, except that 0 and
		// 0xFFFF (the two zeros of ones'-complement) both verify when the
		// rest of the message sums to a nonzero multiple of 0xFFFF.
		if c, w := h.Checksum(), h.ComputeChecksum(); c != w && c^w != 0xffff {
			t.Fatalf("stored %#04x computed %#04x", c, w)
		}
		if h.Type() == TypeEchoRequest {
			c := bytes.Clone(b)
			r := Header(c)
			r.EchoToReply()
			if _, err := Parse(c); err != nil {
				t.Fatalf("reply does not parse: %v", err)
			}
			if r.Type() != TypeEchoReply || !bytes.Equal(c[4:], b[4:]) || c[1] != b[1] {
				t.Fatalf("EchoToReply changed more than the type: % x", c)
			}
		}
	})
}
