package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/cli"
)

// fakeEcho is an in-memory echo peer: each Write comes back to Read after
// passing through mangle, which may alter it or drop it (nil).
type fakeEcho struct {
	q        chan []byte
	deadline time.Time
	writes   int
	mangle   func(i int, p []byte) []byte
}

func newFakeEcho(mangle func(i int, p []byte) []byte) *fakeEcho {
	return &fakeEcho{q: make(chan []byte, 4096), mangle: mangle}
}

func (f *fakeEcho) Write(p []byte) (int, error) {
	b := append([]byte(nil), p...)
	i := f.writes
	f.writes++
	if f.mangle != nil {
		b = f.mangle(i, b)
	}
	if b != nil {
		f.q <- b
	}
	return len(p), nil
}

func (f *fakeEcho) SetReadDeadline(t time.Time) error { f.deadline = t; return nil }

func (f *fakeEcho) Read(b []byte) (int, error) {
	select {
	case p := <-f.q:
		return copy(b, p), nil
	case <-time.After(time.Until(f.deadline)):
		return 0, os.ErrDeadlineExceeded
	}
}

func cfgFor(n, lo, hi, k int) clientConfig {
	return clientConfig{n: n, minSize: lo, maxSize: hi, outstanding: k, verify: true, timeout: 20 * time.Millisecond, retries: 2, seed: 42}
}

func TestClientCleanRun(t *testing.T) {
	for _, k := range []int{1, 32} {
		r, err := runClient(newFakeEcho(nil), cfgFor(5000, 1, 1472, k))
		if err != nil {
			t.Fatal(err)
		}
		if r.sent != 5000 || r.received != 5000 || r.lost != 0 || r.bad != 0 || r.dup != 0 || r.retransmits != 0 {
			t.Fatalf("k=%d: %s", k, r.summary())
		}
		if !strings.Contains(r.summary(), "received=5000 lost=0 bad=0") {
			t.Fatalf("summary: %s", r.summary())
		}
	}
}

func TestClientDetectsEveryCorruptByte(t *testing.T) {
	// Flip one byte, at a different position each time, in the first reply
	// to every 10th request: inside the sequence number and after it.
	seen := map[uint64]bool{}
	corrupt := func(i int, p []byte) []byte {
		seq := seqPrefix(p)
		if seq%10 == 9 && !seen[seq] {
			seen[seq] = true
			p[int(seq/10)%len(p)] ^= 0x40
		}
		return p
	}
	r, err := runClient(newFakeEcho(corrupt), cfgFor(1000, 1, 300, 8))
	if err != nil {
		t.Fatal(err)
	}
	// A reply corrupt past its sequence number is caught by the byte check;
	// one corrupt inside it matches no request (so the request is sent again
	// and answered): either way each corrupt reply counts bad, never dup.
	if r.bad != 100 || r.dup != 0 || r.lost != 0 || r.received+r.bad < 1000 {
		t.Fatalf("want bad=100 dup=0 lost=0: %s", r.summary())
	}
}

func TestClientCatchesTruncatedReply(t *testing.T) {
	r, err := runClient(newFakeEcho(func(i int, p []byte) []byte {
		if i == 3 {
			return p[:len(p)-1]
		}
		return p
	}), cfgFor(10, 100, 100, 1))
	if err != nil {
		t.Fatal(err)
	}
	// The short reply matches nothing; the request times out and is retried.
	if r.bad != 1 || r.received != 10 || r.retransmits != 1 {
		t.Fatalf("%s", r.summary())
	}
}

func TestClientRetransmitsThenCountsLoss(t *testing.T) {
	// Drop the first transmission of every 7th request: all recovered.
	dropFirst := func(i int, p []byte) []byte {
		if seqPrefix(p) == uint64(i) && i%7 == 0 {
			return nil
		}
		return p
	}
	r, err := runClient(newFakeEcho(dropFirst), cfgFor(100, 8, 64, 4))
	if err != nil {
		t.Fatal(err)
	}
	if r.received != 100 || r.lost != 0 || r.retransmits == 0 || r.bad != 0 {
		t.Fatalf("%s", r.summary())
	}
	// Drop request 5 always: lost after 1+retries transmissions, the rest done.
	blackhole := func(i int, p []byte) []byte {
		if seqPrefix(p) == 5 {
			return nil
		}
		return p
	}
	r, err = runClient(newFakeEcho(blackhole), cfgFor(20, 8, 64, 4))
	if err != nil {
		t.Fatal(err)
	}
	if r.received != 19 || r.lost != 1 || r.retransmits != 2 {
		t.Fatalf("%s", r.summary())
	}
}

func TestClientDuplicateIsNotCorruption(t *testing.T) {
	// Echo every reply twice: after a retransmission the second copy is a
	// duplicate; with no retransmission at all it is counted bad (the
	// client cannot tell it from garbage) — here make one retransmission.
	f := newFakeEcho(nil)
	f.mangle = func(i int, p []byte) []byte {
		if i == 0 {
			return nil // forces a retransmission of request 0
		}
		if i == 1 {
			f.q <- append([]byte(nil), p...) // duplicate the retransmitted reply
		}
		return p
	}
	r, err := runClient(f, cfgFor(3, 16, 16, 1))
	if err != nil {
		t.Fatal(err)
	}
	if r.received != 3 || r.bad != 0 || r.dup != 1 || r.lost != 0 {
		t.Fatalf("%s", r.summary())
	}
}

func TestPayloadAndMatch(t *testing.T) {
	cfg := cfgFor(0, 1, 1472, 300)
	a, b := make([]byte, 1000), make([]byte, 1000)
	cli.Payload(a, 1, 77)
	cli.Payload(b, 2, 77)
	if string(a[:8]) != string(b[:8]) || string(a[8:]) == string(b[8:]) {
		t.Fatal("payload: the sequence number leads, the rest depends on the seed")
	}
	if seqPrefix(a) != 77 {
		t.Fatalf("seqPrefix %d", seqPrefix(a))
	}
	// 256 in flight with 1-byte replies possible: every one matched uniquely.
	slots := make([]slot, 256)
	for i := range slots {
		slots[i] = slot{seq: uint64(1000 + i), active: true}
	}
	for i := range slots {
		p := make([]byte, cfg.size(slots[i].seq))
		cli.Payload(p, 9, slots[i].seq)
		if j := match(slots, &cfg, p); j != i {
			t.Fatalf("reply for slot %d matched %d", i, j)
		}
	}
	if j := match(slots, &cfg, make([]byte, 1473)); j != -1 {
		t.Fatalf("oversized reply matched %d", j)
	}
}

func TestParseSizes(t *testing.T) {
	for _, c := range []struct {
		in     string
		lo, hi int
		ok     bool
	}{{"64", 64, 64, true}, {"1-1472", 1, 1472, true}, {"0-10", 0, 0, false}, {"10-5", 0, 0, false}, {"1-1473", 0, 0, false}, {"x", 0, 0, false}} {
		lo, hi, err := parseSizes(c.in)
		if (err == nil) != c.ok || (c.ok && (lo != c.lo || hi != c.hi)) {
			t.Errorf("parseSizes(%q) = %d, %d, %v", c.in, lo, hi, err)
		}
	}
}
