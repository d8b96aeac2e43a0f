package main

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/vethlab"
)

// corruptingEcho runs a kernel TCP echo in namespace A that reads requests
// of size bytes and flips one bit of every every-th reply.
func corruptingEcho(t *testing.T, lab *vethlab.Lab, addr string, size, every int) (stop func()) {
	t.Helper()
	var ln *net.TCPListener
	if err := lab.RunInA(func() (err error) {
		ln, err = net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.AcceptTCP()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, size)
				for i := 1; ; i++ {
					if _, err := io.ReadFull(c, buf); err != nil {
						return
					}
					if i%every == 0 {
						buf[size/2] ^= 0x04
					}
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	return func() { ln.Close() }
}

func TestFillRequestDependsOnConnSeqAndSeed(t *testing.T) {
	a, b := make([]byte, 32), make([]byte, 32)
	fillRequest(a, 1, 0, 0)
	for _, v := range [][3]int{{2, 0, 0}, {1, 1, 0}, {1, 0, 1}} {
		fillRequest(b, uint64(v[0]), v[1], v[2])
		if string(a) == string(b) {
			t.Errorf("fillRequest(seed %d, conn %d, seq %d) equals (1, 0, 0)", v[0], v[1], v[2])
		}
	}
	fillRequest(b, 1, 0, 0)
	if string(a) != string(b) {
		t.Error("fillRequest is not deterministic")
	}
}

func TestSummaryFormat(t *testing.T) {
	r := result{rtts: []time.Duration{3000, 1000, 2000}, sent: 3, received: 3, conns: 2, elapsed: time.Second}
	got := r.summary()
	want := "rtt_p50_us=2.0 rtt_p99_us=3.0 rtt_p999_us=3.0 rps=3 sent=3 received=3 bad=0 conns=2 elapsed_s=1.000 loop_allocs=0"
	if got != want {
		t.Errorf("summary:\n got %s\nwant %s", got, want)
	}
}
