//go:build cgo

package main

// The C ABI driven from C inside this test process (bench.go's loops):
// nothing on the datapath allocates on the Go heap, and the cost of a call
// across the C-Go boundary, measured.

import (
	"net/netip"
	"runtime"
	"testing"

	"github.com/demixdp/demixdp/internal/labtest"
	"github.com/demixdp/demixdp/internal/priv"
	"github.com/demixdp/demixdp/internal/vethlab"
	"golang.org/x/sys/unix"
)

// inProcess builds a lab with a kernel UDP echo and a kernel TCP echo in
// namespace B (separate processes, so their allocations are not counted
// here) and runs fn on a thread in namespace A after demi_init; the libOS
// is closed afterwards. The libOS belongs to that thread, so fn must make
// all its calls itself.
func inProcess(tb testing.TB, fn func(udpEcho, tcpEcho netip.AddrPort) error) {
	tb.Helper()
	priv.Require(tb, "the C ABI on a veth lab")
	lab := vethlab.ForTest(tb, vethlab.Config{Name: "cp"})
	udpEcho := netip.AddrPortFrom(lab.AddrB.Addr(), 7400)
	tcpEcho := netip.AddrPortFrom(lab.AddrB.Addr(), 7401)
	labtest.Start(tb, lab.CommandB(labtest.Build(tb, "../cmd/kudp"), "echo", "-addr", udpEcho.String()), "listening")
	labtest.Start(tb, lab.CommandB(labtest.Build(tb, "../cmd/ktcp"), "echo", "-addr", tcpEcho.String()), "listening")
	tb.Setenv("LINUX_INTERFACE_NAME", lab.IfA)
	tb.Setenv("LOCAL_IPV4_ADDR", lab.AddrA.Addr().String())
	tb.Setenv("CONFIG_PATH", "")
	err := lab.RunInA(func() error {
		if err := loopInit(); err != nil {
			return err
		}
		defer cabiExit()
		return fn(udpEcho, tcpEcho)
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// mallocs is the number of Go heap allocations so far.
func mallocs() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Mallocs
}

// TestCDatapathAllocatesNothing: UDP round trips (pushto, pop, wait,
// sgafree of the reply) and TCP round trips (sgaalloc, push, sgafree, pops,
// waits), all called from C, allocate nothing on the Go heap once warm;
// nor do arrays larger than a frame, pushed through one copy.
func TestCDatapathAllocatesNothing(t *testing.T) {
	inProcess(t, func(udpEcho, tcpEcho netip.AddrPort) error {
		uqd, err := loopOpen(unix.SOCK_DGRAM)
		if err != nil {
			return err
		}
		tqd, err := loopOpen(unix.SOCK_STREAM)
		if err != nil {
			return err
		}
		if err := loopConnect(tqd, tcpEcho); err != nil {
			return err
		}
		for _, c := range []struct {
			name string
			run  func(n int) error
		}{
			{"UDP 64 B", func(n int) error { return loopUDP(uqd, udpEcho, 64, n) }},
			{"TCP 64 B", func(n int) error { return loopTCP(tqd, 64, n) }},
			{"TCP 65535 B", func(n int) error { return loopTCP(tqd, 65535, n) }},
		} {
			if err := c.run(200); err != nil { // warm: tables grow to their working size
				t.Fatalf("%s: warm-up: %v", c.name, err)
			}
			const runs = 2000
			before := mallocs()
			if err := c.run(runs); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			// Per round trip, rounded down as testing.AllocsPerRun does:
			// the runtime allocates now and then for itself (a new M when
			// a thread sleeping in poll(2) loses its P), never per call.
			n := mallocs() - before
			t.Logf("%s: %d Go heap allocations in %d round trips", c.name, n, runs)
			if n/runs != 0 {
				t.Errorf("%s: %d Go heap allocations per round trip, want 0", c.name, n/runs)
			}
		}
		if live := sgas.live; live != 0 {
			t.Errorf("%d arrays still held after the loops", live)
		}
		loopClose(uqd)
		return loopClose(tqd)
	})
}

// BenchmarkBoundary is one call from C into Go and back (demi_sgafree's
// Go half with NULL, which returns at once): the fixed cost every demi_*
// call adds to the libOS call it makes.
func BenchmarkBoundary(b *testing.B) {
	b.ReportAllocs()
	if err := loopBoundary(b.N); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkBoundaryCThread is BenchmarkBoundary from a thread created by
// C (pthread_create), as a C program's main thread is, rather than from a
// goroutine's thread.
func BenchmarkBoundaryCThread(b *testing.B) {
	b.ReportAllocs()
	if err := loopBoundaryCThread(b.N); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCUDPRoundTrip is a 64-byte UDP round trip with a kernel echo,
// driven from C: four calls into Go (pushto, pop, two waits) and a
// sgafree. Compare with libos's BenchmarkRoundTrip, the same from Go.
func BenchmarkCUDPRoundTrip(b *testing.B) {
	b.ReportAllocs()
	inProcess(b, func(udpEcho, _ netip.AddrPort) error {
		qd, err := loopOpen(unix.SOCK_DGRAM)
		if err != nil {
			return err
		}
		if err := loopUDP(qd, udpEcho, 64, 100); err != nil {
			return err
		}
		b.ResetTimer()
		return loopUDP(qd, udpEcho, 64, b.N)
	})
}
