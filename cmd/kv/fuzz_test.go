package main

import (
	"testing"
)

// FuzzRESP: any bytes, whole or cut in two anywhere, give the same
// requests or the same protocol error; the Discard parser (redcon's guard)
// agrees on both; and every request runs through the commands against a
// store without a panic.
func FuzzRESP(f *testing.F) {
	stream, _ := pipeline()
	f.Add([]byte(stream), uint16(17))
	f.Add([]byte(multibulk("SET", "k", "v", "EX", "10")+multibulk("INCRBY", "k", "9223372036854775807")), uint16(3))
	f.Add([]byte("*2\r\n$3\r\nGET\r\n$-1\r\n"), uint16(9))
	f.Add([]byte("set \"a\\x4\" 'b\\'c'\r\nmget a b\n"), uint16(5))
	f.Add([]byte(multibulk("MSET", "a", "1", "b")+multibulk("EXPIRE", "a", "-9223372036854775808", "gt")), uint16(30))
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		at := int(cut) % (len(data) + 1)
		whole := feed(t, NewParser(4096, 1<<16), split(data))
		parts := feed(t, NewParser(4096, 1<<16), split(data, at))
		if whole.String() != parts.String() {
			t.Fatalf("whole:\n%s\ncut at %d:\n%s", whole, at, parts)
		}
		for _, in := range [][][]byte{split(data), split(data, at)} {
			d := NewParser(4096, 1<<16)
			d.Discard = true
			n, perr := countRequests(d, in)
			if n != len(whole.reqs) || perr != whole.err {
				t.Fatalf("Discard, %d pieces: %d requests, error %q; want %d, %q", len(in), n, perr, len(whole.reqs), whole.err)
			}
		}
		x := NewDB(NewStore(), 4096).NewSession(0)
		var c Client
		for _, req := range whole.reqs {
			var w BufReply
			x.Exec(&c, &Args{V: req}, &w)
			if len(w.B) == 0 {
				t.Fatalf("no reply to %q", req)
			}
		}
	})
}

func countRequests(p *Parser, segs [][]byte) (int, string) {
	n := 0
	for _, seg := range segs {
		off := 0
		for off < len(seg) {
			k, done, err := p.Parse(seg[off:])
			if err != nil {
				return n, err.Error()
			}
			off += k
			if done {
				n++
			}
		}
		p.Detach()
	}
	return n, ""
}
