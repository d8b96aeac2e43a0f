package main

import (
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/priv"
	"github.com/demixdp/demixdp/internal/vethlab"
	"github.com/demixdp/demixdp/libos"
	"golang.org/x/sys/unix"
)

// tcpLab starts the libOS TCP server on the lab's A end (base port 7001)
// and returns the lab and the server's base address; the server stops and
// its errors are reported at cleanup.
func tcpLab(t *testing.T) (*vethlab.Lab, netip.AddrPort) {
	priv.Require(t, "veth lab and AF_XDP for the libOS TCP drivers")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "bt"})
	srv := libosOnA(t, lab)
	base := netip.AddrPortFrom(lab.AddrA.Addr(), 7001)
	var stop atomic.Bool
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- libosTCPServer(srv, base, func() { close(ready) }, &stop) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("server: %v", err)
	}
	t.Cleanup(func() {
		stop.Store(true)
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	return lab, base
}

// libosOnA is a libOS on the lab's A end at its address, closed when the
// test ends (after the cleanups registered later).
func libosOnA(t *testing.T, lab *vethlab.Lab) *libos.LibOS {
	t.Helper()
	var lib *libos.LibOS
	if err := lab.RunInA(func() (err error) {
		lib, err = libos.New(libos.Config{Interface: lab.IfA, Addr: lab.AddrA, Mode: libos.Dedicated})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lib.Close() })
	return lib
}

// clientLibOS is a libOS on the lab's B end at 198.51.100.22.
func clientLibOS(t *testing.T, lab *vethlab.Lab) *libos.LibOS {
	var lib *libos.LibOS
	if err := lab.RunInB(func() (err error) {
		lib, err = libos.New(libos.Config{Interface: lab.IfB, Addr: netip.MustParsePrefix("198.51.100.22/24"), Mode: libos.Dedicated})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lib.Close() })
	return lib
}

func port(ap netip.AddrPort, off int) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr(), ap.Port()+uint16(off))
}

// TestLibOSPairTCPWorkloads: the three workloads' libOS clients against the
// libOS server, each checked for what it promises (every echo in order,
// every byte confirmed by the sink, every connection ended by the server).
func TestLibOSPairTCPWorkloads(t *testing.T) {
	lab, base := tcpLab(t)
	lib := clientLibOS(t, lab)
	rtt, err := libosTCPRTT(lib, port(base, tcpEcho), 500, 50, 64, 0)
	if err != nil || rtt.received != 550 || len(rtt.samples) != 500 {
		t.Fatalf("tcp_rtt: %v, %d exchanges, %d samples", err, rtt.received, len(rtt.samples))
	}
	const total = 64 << 20
	bulk, err := libosTCPBulk(lib, port(base, tcpSink), total, 0, 64)
	if err != nil || bulk.received != total || bulk.rate <= 0 {
		t.Fatalf("tcp_bulk: %v, sink confirmed %d of %d bytes, %.2f Gbit/s", err, bulk.received, total, bulk.rate)
	}
	t.Logf("tcp_bulk libOS pair: %.2f Gbit/s", bulk.rate)
	// A time cap ends the stream early, still confirmed exactly.
	capped, err := libosTCPBulk(lib, port(base, tcpSink), 1<<40, 100*time.Millisecond, 8)
	if err != nil || capped.received <= 0 || capped.received >= 1<<40 {
		t.Fatalf("capped tcp_bulk: %v, %d bytes", err, capped.received)
	}
	conn, err := libosTCPConnect(lib, port(base, tcpAcceptClose), 300*time.Millisecond)
	if err != nil || conn.received < 10 {
		t.Fatalf("tcp_connect: %v, %d connections", err, conn.received)
	}
	t.Logf("tcp_connect libOS pair: %.0f/s", conn.rate)
}

// TestKernelClientAgainstLibOSServer: the kernel's client drivers against
// the libOS server (the kernel_client/libos rows), and the idle probe on a
// warm connection.
func TestKernelClientAgainstLibOSServer(t *testing.T) {
	lab, base := tcpLab(t)
	dial := func(off int) dialer {
		return func() (c net.Conn, err error) {
			err = lab.RunInB(func() error {
				c, err = net.DialTCP("tcp4", nil, net.TCPAddrFromAddrPort(port(base, off)))
				return err
			})
			return c, err
		}
	}
	if r, err := tcpRTT(dial(tcpEcho), 300, 10, 64, 0); err != nil || len(r.samples) != 300 {
		t.Fatalf("tcp_rtt: %v, %d samples", err, len(r.samples))
	}
	if r, err := tcpBulk(dial(tcpSink), 32<<20, 0); err != nil || r.received != 32<<20 {
		t.Fatalf("tcp_bulk: %v, %d bytes", err, r.received)
	}
	if r, err := tcpConnect(dial(tcpAcceptClose), 200*time.Millisecond); err != nil || r.received < 10 {
		t.Fatalf("tcp_connect: %v, %d", err, r.received)
	}
	c, err := dial(tcpEcho)()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := tcpRTTOn(c, 10, 0, 64, 0); err != nil {
		t.Fatal(err)
	}
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	req, resp := make([]byte, 64), make([]byte, 64)
	time.Sleep(50 * time.Millisecond)
	rtt, err := spinProbe(c, rc, req, resp, 1<<40)
	if err != nil || rtt <= 0 || rtt > time.Second {
		t.Fatalf("probe: %v %v", rtt, err)
	}
}

// TestLibOSClientAgainstKernelSink: the libos_client/kernel tcp_bulk row,
// with the ends swapped (libOS client on A, kernel sink on B: a dedicated
// lab gives the kernel an address on B only); the sink confirms every byte.
func TestLibOSClientAgainstKernelSink(t *testing.T) {
	priv.Require(t, "veth lab and AF_XDP")
	lab := vethlab.ForTest(t, vethlab.Config{Name: "bk"})
	var ln net.Listener
	if err := lab.RunInB(func() (err error) {
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(lab.AddrB.Addr(), 7002).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	go serveTCP(ln, tcpSink)
	t.Cleanup(func() { ln.Close() })
	lib := libosOnA(t, lab)
	const total = 64 << 20
	r, err := libosTCPBulk(lib, netip.AddrPortFrom(lab.AddrB.Addr(), 7002), total, 0, 64)
	if err != nil || r.received != total {
		t.Fatalf("tcp_bulk: %v, %d of %d bytes", err, r.received, total)
	}
	t.Logf("tcp_bulk libOS to kernel: %.2f Gbit/s", r.rate)
}

// cpuTime sums the CPU time of every thread of a process. This thread
// spins for 30 ms of its own CPU time (not of the clock: on a busy machine
// it may wait for a CPU meanwhile) between two readings, so they differ by
// at least that, less the scheduler's tick the kernel may not have
// accounted yet; and by at most what getrusage says the whole process used.
func TestCPUTimeCountsThisProcess(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	threadCPU := func() time.Duration {
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ts.Nano())
	}
	processCPU := func() time.Duration {
		var ru unix.Rusage
		if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	p0 := processCPU()
	a, err := cpuTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for t0 := threadCPU(); threadCPU()-t0 < 30*time.Millisecond; {
	}
	b, err := cpuTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	used := processCPU() - p0
	if d := b - a; d < 20*time.Millisecond || d > used+10*time.Millisecond {
		t.Fatalf("30 ms of this thread's CPU counted as %v (the process used %v)", d, used)
	}
	if _, err := cpuTime(1 << 30); err == nil {
		t.Fatal("no error for a process that does not exist")
	}
}

func TestIdleTargets(t *testing.T) {
	got := idleTargets(map[string]float64{"libos": 0.01, "libos_tcp": 0.03}, map[string]float64{"libos": 80, "libos_tcp": 50})
	if m := got["libos"].Met; m == nil || !*m {
		t.Errorf("libos 1%% and 80 us: %+v", got["libos"])
	}
	if m := got["libos_tcp"].Met; m == nil || *m {
		t.Errorf("libos_tcp 3%%: %+v", got["libos_tcp"])
	}
	got = idleTargets(map[string]float64{"libos": 0.01}, map[string]float64{})
	if got["libos"].Met != nil || got["libos"].Reason == "" {
		t.Errorf("no first RTT measured: %+v", got["libos"])
	}
}
