package main

import (
	"strings"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/cli"
	"github.com/demixdp/demixdp/libos"
)

func TestFillDependsOnSeqAndSeed(t *testing.T) {
	a, b, c := make([]byte, 100), make([]byte, 100), make([]byte, 100)
	cli.Payload(a, 1, 5)
	cli.Payload(b, 1, 6)
	cli.Payload(c, 2, 5)
	if string(a) == string(b) || string(a) == string(c) || string(a[8:]) == string(b[8:]) {
		t.Fatal("payloads of different requests or runs are equal")
	}
	if a[0] != 5 || b[0] != 6 {
		t.Fatalf("sequence number not in front: %d %d", a[0], b[0])
	}
	d := make([]byte, 100)
	cli.Payload(d, 1, 5)
	if string(a) != string(d) {
		t.Fatal("fill is not deterministic")
	}
}

func TestCheckClassifiesReplies(t *testing.T) {
	p := &pinger{cfg: clientConfig{seed: 42}, want: make([]byte, 20), scratch: make([]byte, 20)}
	cli.Payload(p.want, 42, 10)
	p.noteLost(7)
	sga := func(parts ...[]byte) *libos.SGA { return &libos.SGA{Segs: parts} }
	late := make([]byte, 20)
	cli.Payload(late, 42, 7)
	other := make([]byte, 20)
	cli.Payload(other, 42, 8)
	flipped := append([]byte(nil), p.want...)
	flipped[19] ^= 1
	for _, c := range []struct {
		name string
		s    *libos.SGA
		want match
	}{
		{"exact", sga(p.want), matchOK},
		{"exact in two segments", sga(p.want[:5], p.want[5:]), matchOK},
		{"late reply of a lost request", sga(late), matchLate},
		{"reply to a request never lost", sga(other), matchBad},
		{"one bit flipped", sga(flipped), matchBad},
		{"short", sga(p.want[:19]), matchBad},
		{"long", sga(p.want, []byte{0}), matchBad},
		{"empty", sga(), matchBad},
	} {
		if got := p.check(c.s); got != c.want {
			t.Errorf("%s: check = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestSummaryFormat(t *testing.T) {
	r := result{sent: 4, received: 3, lost: 1, rtts: []time.Duration{30 * time.Microsecond, 10 * time.Microsecond, 20 * time.Microsecond}, elapsed: time.Second}
	s := r.summary()
	for _, want := range []string{"rtt_p50_us=20.0 ", "rtt_p99_us=30.0 ", "rtt_p999_us=30.0 ", "pps=3 ", "sent=4 ", "received=3 ", "lost=1 ", "bad=0 "} {
		if !strings.Contains(s, want) {
			t.Errorf("summary %q lacks %q", s, want)
		}
	}
}

func TestFlagErrors(t *testing.T) {
	for _, o := range []options{
		{common: cli.LibOSFlags{Iface: "", Prefix: 24, Mode: "dedicated"}, local: "198.51.100.3:9", remote: "198.51.100.1:7", n: 1, size: 1, timeout: time.Second},
		{common: cli.LibOSFlags{Iface: "x", Prefix: 24, Mode: "dedicated"}, local: "198.51.100.3", remote: "198.51.100.1:7", n: 1, size: 1, timeout: time.Second},
		{common: cli.LibOSFlags{Iface: "x", Prefix: 24, Mode: "dedicated"}, local: "198.51.100.3:9", remote: "198.51.100.1:0", n: 1, size: 1, timeout: time.Second},
		{common: cli.LibOSFlags{Iface: "x", Prefix: 24, Mode: "dedicated"}, local: "198.51.100.3:9", remote: "198.51.100.1:7", n: 0, size: 1, timeout: time.Second},
		{common: cli.LibOSFlags{Iface: "x", Prefix: 24, Mode: "both"}, local: "198.51.100.3:9", remote: "198.51.100.1:7", n: 1, size: 1, timeout: time.Second},
		{common: cli.LibOSFlags{Iface: "x", Prefix: 33, Mode: "shared"}, local: "198.51.100.3:9", remote: "198.51.100.1:7", n: 1, size: 1, timeout: time.Second},
	} {
		if _, _, _, err := o.config(); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}
