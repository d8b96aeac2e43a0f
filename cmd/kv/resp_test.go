package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// parsed is what feeding a stream to a parser produced: the requests (each
// argument copied out) and the error that ended it, if any.
type parsed struct {
	reqs [][][]byte
	err  string
}

func (p parsed) String() string {
	var b strings.Builder
	for _, r := range p.reqs {
		b.WriteString("[")
		for i, a := range r {
			if i > 0 {
				b.WriteString(" ")
			}
			if len(a) > 64 { // keep failure messages readable
				fmt.Fprintf(&b, "%q...(%d bytes, sha %x)", a[:32], len(a), sha256.Sum256(a))
				continue
			}
			fmt.Fprintf(&b, "%q", a)
		}
		b.WriteString("]\n")
	}
	if p.err != "" {
		b.WriteString("error: " + p.err + "\n")
	}
	return b.String()
}

// feed parses segs as the queue server does: each segment parsed in place,
// requests taken as they complete, and at the end of a segment Detach,
// after which the segment's bytes are overwritten, so that an argument
// still pointing into it would show.
func feed(t testing.TB, p *Parser, segs [][]byte) parsed {
	t.Helper()
	var out parsed
	for _, seg := range segs {
		off := 0
		for off < len(seg) {
			n, done, err := p.Parse(seg[off:])
			if err != nil {
				out.err = err.Error()
				return out
			}
			if n == 0 && !done {
				t.Fatalf("Parse consumed nothing at %d of %q", off, seg)
			}
			off += n
			if done {
				var req [][]byte
				for i, a := range p.Args() {
					p.Owned(i) // the owned ones are ours now either way
					req = append(req, bytes.Clone(a))
				}
				out.reqs = append(out.reqs, req)
				p.Release()
			}
		}
		p.Detach()
		for i := range seg {
			seg[i] = '#'
		}
	}
	return out
}

// split cuts s at the given offsets into fresh segments.
func split(s []byte, at ...int) [][]byte {
	var segs [][]byte
	prev := 0
	for _, a := range at {
		segs = append(segs, bytes.Clone(s[prev:a]))
		prev = a
	}
	return append(segs, bytes.Clone(s[prev:]))
}

func multibulk(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}

// pipeline is a stream of requests of every shape the parser knows, with
// the requests it must yield.
func pipeline() (string, [][]string) {
	big := strings.Repeat("0123456789abcdef", bigBulk/16+8) // over bigBulk: a buffer of its own when split
	stream := multibulk("SET", "key", "value") +
		multibulk("GET", "") + // an empty bulk
		"*0\r\n" + "*-1\r\n" + // empty requests: skipped
		multibulk("SET", "bin\x00\r\nkey", "v\r\n\x00\xff") +
		"PING\r\n" + // inline
		"\r\n" + // an empty inline line: skipped
		"set \"quoted \\x41\\n\" 'it\\'s' plain\n" +
		multibulk("SET", "big", big) +
		multibulk("MGET", "a", "b", "c", "d", "e") +
		"  spaced   words  \r\n"
	want := [][]string{
		{"SET", "key", "value"},
		{"GET", ""},
		{"SET", "bin\x00\r\nkey", "v\r\n\x00\xff"},
		{"PING"},
		{"set", "quoted A\n", "it's", "plain"},
		{"SET", "big", big},
		{"MGET", "a", "b", "c", "d", "e"},
		{"spaced", "words"},
	}
	return stream, want
}

func wantParsed(want [][]string) parsed {
	var p parsed
	for _, r := range want {
		var req [][]byte
		for _, a := range r {
			req = append(req, []byte(a))
		}
		p.reqs = append(p.reqs, req)
	}
	return p
}

// TestParseEverySplitPoint: a pipelined stream cut in two at every byte,
// and in three at many pairs of points, yields the same requests as in one
// piece, and the requests the stream holds.
func TestParseEverySplitPoint(t *testing.T) {
	stream, reqs := pipeline()
	want := wantParsed(reqs).String()
	s := []byte(stream)
	if got := feed(t, NewParser(1<<20, 4<<20), split(s)).String(); got != want {
		t.Fatalf("whole:\n%s\nwant:\n%s", got, want)
	}
	bigAt := strings.Index(stream, "$16512\r\n")
	for i := 0; i <= len(s); i++ {
		if i > bigAt+100 && i < bigAt+16400 && i%97 != 0 {
			continue // inside the large bulk every point is alike: a sample
		}
		if got := feed(t, NewParser(1<<20, 4<<20), split(s, i)).String(); got != want {
			t.Fatalf("split at %d:\n%s\nwant:\n%s", i, got, want)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for k := 0; k < 300; k++ {
		i := rng.IntN(len(s) + 1)
		j := i + rng.IntN(len(s)-i+1)
		if got := feed(t, NewParser(1<<20, 4<<20), split(s, i, j)).String(); got != want {
			t.Fatalf("split at %d and %d:\n%s\nwant:\n%s", i, j, got, want)
		}
	}
}

// TestParseByteByByte: one byte per segment, the worst case of splitting.
func TestParseByteByByte(t *testing.T) {
	stream, reqs := pipeline()
	var at []int
	for i := 1; i < len(stream); i++ {
		at = append(at, i)
	}
	if got, want := feed(t, NewParser(1<<20, 4<<20), split([]byte(stream), at...)).String(), wantParsed(reqs).String(); got != want {
		t.Fatalf("byte by byte:\n%s\nwant:\n%s", got, want)
	}
}

// TestParseInPlace: a request wholly inside one segment is parsed in
// place: its arguments are views of the segment, nothing is copied.
func TestParseInPlace(t *testing.T) {
	seg := []byte(multibulk("SET", "key", "value"))
	p := NewParser(1<<20, 4<<20)
	n, done, err := p.Parse(seg)
	if err != nil || !done || n != len(seg) {
		t.Fatalf("Parse = %d, %v, %v", n, done, err)
	}
	for i, a := range p.Args() {
		if len(a) > 0 && !sameMemory(seg, a) {
			t.Errorf("argument %d (%q) is not a view of the segment", i, a)
		}
	}
	if p.Pinned() > 1024 {
		t.Errorf("parser pins %d bytes after an in-place request", p.Pinned())
	}
}

func sameMemory(outer, inner []byte) bool {
	for i := range outer {
		if &outer[i] == &inner[0] {
			return true
		}
	}
	return false
}

// TestParseLargeBulkIsOwned: a large bulk split across segments lands in a
// buffer of its own that the caller may keep (SET adopts it as the value).
func TestParseLargeBulkIsOwned(t *testing.T) {
	val := bytes.Repeat([]byte("v"), 100000)
	s := []byte(multibulk("SET", "k", string(val)))
	p := NewParser(1<<20, 4<<20)
	var args [][]byte
	for _, seg := range split(s, 1000, 50000, 90000) {
		off := 0
		for off < len(seg) {
			n, done, err := p.Parse(seg[off:])
			if err != nil {
				t.Fatal(err)
			}
			off += n
			if done {
				args = p.Args()
				if !p.Owned(2) || p.Owned(1) {
					t.Errorf("Owned(2) should be true (a buffer of its own) and Owned(1) false")
				}
			}
		}
		p.Detach()
		for i := range seg {
			seg[i] = 0
		}
	}
	if len(args) != 3 || !bytes.Equal(args[2], val) {
		t.Fatalf("value lost (%d args)", len(args))
	}
}

// TestProtocolErrors: every kind of bad request gets Redis's error text
// (the lab tests compare the texts with redis-server's), whole or split.
func TestProtocolErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, err string
	}{
		{"count not a number", "*x\r\n", "Protocol error: invalid multibulk length"},
		{"count with a sign inside", "*1-2\r\n", "Protocol error: invalid multibulk length"},
		{"count leading zero", "*01\r\n", "Protocol error: invalid multibulk length"},
		{"count empty", "*\r\n", "Protocol error: invalid multibulk length"},
		{"count minus zero", "*-0\r\n", "Protocol error: invalid multibulk length"},
		{"count too large", "*1048577\r\n", "Protocol error: invalid multibulk length"},
		{"count that never ends", "*" + strings.Repeat("1", 100), "Protocol error: invalid multibulk length"},
		{"count without LF", "*1\rx", "Protocol error: invalid multibulk length"},
		{"no dollar", "*1\r\n+GET\r\n", "Protocol error: expected '$', got '+'"},
		{"bulk negative", "*1\r\n$-1\r\n", "Protocol error: invalid bulk length"},
		{"bulk over maxvalue", "*1\r\n$1048577\r\n", "Protocol error: invalid bulk length"},
		{"bulk not a number", "*1\r\n$abc\r\n", "Protocol error: invalid bulk length"},
		{"bulk length that never ends", "*1\r\n$" + strings.Repeat("9", 40), "Protocol error: invalid bulk length"},
		{"bulk without CRLF", "*1\r\n$3\r\nGETxx", "Protocol error: expected CRLF after bulk data"},
		{"request over max-request", "*3\r\n$1000000\r\n" + strings.Repeat("a", 1000000) + "\r\n$1000000\r\n", "Protocol error: request larger than 1500000 bytes"},
		{"inline too long", strings.Repeat("a", 70000), "Protocol error: too big inline request"},
		{"inline unbalanced", "set \"a b\r\n", "Protocol error: unbalanced quotes in request"},
		{"inline quote not ending the word", "set \"a\"b c\r\n", "Protocol error: unbalanced quotes in request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := []byte(multibulk("PING") + tc.in)
			for _, segs := range [][][]byte{split(s), split(s, len(s)/2), split(s, 5, len(s)-1)} {
				got := feed(t, NewParser(1<<20, 1500000), segs)
				if got.err != tc.err {
					t.Fatalf("error %q, want %q", got.err, tc.err)
				}
				if len(got.reqs) != 1 {
					t.Fatalf("%d requests before the error, want the PING", len(got.reqs))
				}
			}
			d := NewParser(1<<20, 1500000)
			d.Discard = true
			if got := feed(t, d, split(s)); got.err != tc.err {
				t.Fatalf("Discard: error %q, want %q", got.err, tc.err)
			}
		})
	}
}

// TestParseMemoryBounded: a request that is announced but never ends pins
// no more than what has arrived (plus one growth step), not what it
// announced.
func TestParseMemoryBounded(t *testing.T) {
	p := NewParser(16<<20, 64<<20)
	seg := []byte("*2\r\n$3\r\nSET\r\n$16000000\r\n" + strings.Repeat("x", 1000))
	if _, done, err := p.Parse(seg); done || err != nil {
		t.Fatalf("Parse: %v %v", done, err)
	}
	p.Detach()
	if p.Pinned() > bigStep+4096 {
		t.Errorf("pins %d bytes after 1000 of 16 MB arrived", p.Pinned())
	}
}

// TestParseAllocations: parsing pipelined requests that lie inside their
// segments allocates nothing once warm.
func TestParseAllocations(t *testing.T) {
	seg := []byte(strings.Repeat(multibulk("SET", "key:000001", "xxx")+multibulk("GET", "key:000001"), 8))
	p := NewParser(1<<20, 4<<20)
	run := func() {
		off := 0
		for off < len(seg) {
			n, done, err := p.Parse(seg[off:])
			if err != nil {
				t.Fatal(err)
			}
			off += n
			if done {
				_ = p.Args()
			}
		}
	}
	run()
	if a := testing.AllocsPerRun(100, run); a != 0 {
		t.Errorf("%v allocations per 16 pipelined requests, want 0", a)
	}
}
