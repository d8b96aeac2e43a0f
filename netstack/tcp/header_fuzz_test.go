package tcp

import "testing"

// FuzzParse feeds arbitrary bytes to Parse and ParseOptions. Nothing may
// panic, and the options ParseOptions keeps must survive EncodeOptions and a
// second ParseOptions unchanged (for the kinds allowed on that segment).
func FuzzParse(f *testing.F) {
	f.Add(synAck)
	f.Add([]byte{0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x10, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Parse(b)
		if err != nil {
			return
		}
		if h.DataOffset() < HeaderLen || h.DataOffset() > len(b) || len(h.Options())+len(h.Payload())+HeaderLen != len(b) {
			t.Fatalf("inconsistent view: off %d len %d", h.DataOffset(), len(b))
		}
		// The fixed header survives Encode.
		f := Fields{h.SrcPort(), h.DstPort(), h.Seq(), h.Ack(), uint8(h.DataOffset()), h.Flags(), h.Window(), h.Checksum(), h.Urgent()}
		var re [HeaderLen]byte
		Header(re[:]).Encode(&f)
		re[12] |= b[12] & 0x0f // reserved bits are not in Fields
		if string(re[:]) != string(b[:HeaderLen]) {
			t.Fatalf("Encode(%+v) = %x, want %x", f, re, b[:HeaderLen])
		}
		var o Options
		if err := ParseOptions(h.Options(), &o); err != nil {
			return
		}
		if o.NumSACK < 0 || o.NumSACK > MaxSACKBlocks || o.WScale > MaxWindowScale {
			t.Fatalf("out of range: %+v", o)
		}
		syn := h.Flags().Has(FlagSYN)
		var buf [MaxOptionsLen]byte
		n := EncodeOptions(buf[:], &o, syn)
		if n%4 != 0 || n > MaxOptionsLen {
			t.Fatalf("EncodeOptions wrote %d bytes", n)
		}
		var back Options
		if err := ParseOptions(buf[:n], &back); err != nil {
			t.Fatalf("reparse of our own encoding: %v", err)
		}
		want := Options{HasTS: o.HasTS, TSVal: o.TSVal, TSEcr: o.TSEcr}
		if o.HasTS {
			want.TSVal, want.TSEcr = o.TSVal, o.TSEcr
		}
		if syn {
			want.MSS, want.HasMSS = o.MSS, o.HasMSS
			want.WScale, want.HasWScale = o.WScale, o.HasWScale
			want.SACKPermitted = o.SACKPermitted
		} else {
			limit := MaxSACKBlocks
			if o.HasTS {
				limit = 3
			}
			want.NumSACK = min(o.NumSACK, limit)
			copy(want.SACK[:want.NumSACK], o.SACK[:want.NumSACK])
		}
		if back != want {
			t.Fatalf("round trip: got %+v, want %+v", back, want)
		}
	})
}
