package main

import (
	"net/netip"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/labtest"
	"github.com/demixdp/demixdp/internal/priv"
	"github.com/demixdp/demixdp/internal/vethlab"
)

// TestLibOSUDPClientAgainstKernelEcho: the libOS UDP client of udp_rtt (one
// datagram in flight) and udp_pps (many) against a kernel echo: every
// request is answered and matched to its slot, and one RTT sample is kept
// per measured round trip.
func TestLibOSUDPClientAgainstKernelEcho(t *testing.T) {
	priv.Require(t, "veth lab and AF_XDP")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "bu"})
	srv := netip.AddrPortFrom(lab.AddrB.Addr(), 7003)
	echoed := labtest.KernelUDPEcho(t, lab, labtest.B, srv)
	lib := libosOnA(t, lab)
	local := netip.AddrPortFrom(lab.AddrA.Addr(), 9000)
	for _, c := range []udpClientConfig{
		{n: 500, warmup: 50, size: 64, outstanding: 1, timeout: time.Second},
		{n: 5000, warmup: 100, size: 200, outstanding: 32, timeout: time.Second},
	} {
		before := echoed.Load()
		r, err := libosUDPClient(lib, local, srv, c)
		if err != nil {
			t.Fatalf("%d outstanding: %v", c.outstanding, err)
		}
		total := uint64(c.n + c.warmup)
		if uint64(r.received) != total || len(r.samples) != c.n {
			t.Errorf("%d outstanding: %d replies, %d samples; want %d and %d", c.outstanding, r.received, len(r.samples), total, c.n)
		}
		if got := echoed.Load() - before; got < total {
			t.Errorf("%d outstanding: the kernel echoed %d datagrams, fewer than the %d replies counted", c.outstanding, got, total)
		}
		for _, s := range r.samples {
			if s <= 0 {
				t.Fatalf("%d outstanding: RTT sample %d ns", c.outstanding, s)
			}
		}
		t.Logf("%d outstanding: %.0f replies/s, %d lost and resent", c.outstanding, r.rate, r.lost)
	}
}
