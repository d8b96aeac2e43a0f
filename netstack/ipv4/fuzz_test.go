package ipv4

import (
	"testing"
)

// FuzzParse checks that Parse never panics and that an accepted packet
// satisfies the documented invariants: HeaderLen() <= len(h) == TotalLength,
// capacity capped, options and payload within bounds, a verifying checksum,
// and fields that re-encode into a header that parses back to them.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Parse(b)
		if err != nil {
			if h != nil {
				t.Fatalf("non-nil view with error %v", err)
			}
			return
		}
		hl := h.HeaderLen()
		if hl < MinHeaderLen || hl > MaxHeaderLen || hl > len(h) || len(h) != int(h.TotalLength()) ||
			cap(h) != len(h) || len(h) > len(b) {
			t.Fatalf("hl %d len %d cap %d total %d input %d", hl, len(h), cap(h), h.TotalLength(), len(b))
		}
		if len(h.Options()) != hl-MinHeaderLen || len(h.Payload()) != len(h)-hl {
			t.Fatalf("options %d payload %d", len(h.Options()), len(h.Payload()))
		}
		if h.Checksum() != h.ComputeChecksum() {
			t.Fatalf("accepted stored %#04x, computed %#04x", h.Checksum(), h.ComputeChecksum())
		}
		want := Fields{TOS: h.TOS(), TotalLength: uint16(MinHeaderLen + len(h.Payload())), ID: h.ID(),
			DF: h.DF(), TTL: h.TTL(), Protocol: h.Protocol(), Src: h.Src(), Dst: h.Dst()}
		out := make([]byte, want.TotalLength)
		Header(out).Encode(want)
		copy(out[MinHeaderLen:], h.Payload())
		r, err := Parse(out)
		if err != nil {
			t.Fatalf("re-encoded header does not parse: %v", err)
		}
		got := Fields{TOS: r.TOS(), TotalLength: r.TotalLength(), ID: r.ID(), DF: r.DF(),
			TTL: r.TTL(), Protocol: r.Protocol(), Src: r.Src(), Dst: r.Dst()}
		if got != want || string(r.Payload()) != string(h.Payload()) {
			t.Fatalf("re-parsed %+v, want %+v", got, want)
		}
	})
}
