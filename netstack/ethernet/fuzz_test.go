package ethernet

import (
	"bytes"
	"testing"
)

// FuzzParse checks that any input either fails with ErrTruncated or yields a
// view whose fields re-encode to the same bytes.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Parse(b)
		if err != nil {
			if err != ErrTruncated || len(b) >= HeaderLen {
				t.Fatalf("len %d: unexpected error %v", len(b), err)
			}
			return
		}
		if len(h) != len(b) || len(h.Payload()) != len(b)-HeaderLen {
			t.Fatalf("view length %d payload %d for input %d", len(h), len(h.Payload()), len(b))
		}
		out := make([]byte, len(b))
		Header(out).Encode(h.Dst(), h.Src(), h.Type())
		copy(out[HeaderLen:], h.Payload())
		if !bytes.Equal(out, b) {
			t.Fatalf("re-encoded %x, want %x", out, b)
		}
	})
}
