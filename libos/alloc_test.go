package libos_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/demixdp/demixdp/internal/vethlab"
	"github.com/demixdp/demixdp/libos"
	"golang.org/x/sys/unix"
)

// kernelReflector runs, in namespace B, a kernel UDP socket connected to
// the libOS that sends back whatever it reads. It uses raw read/write so
// that it allocates nothing itself: AllocsPerRun counts every goroutine.
func kernelReflector(t testing.TB, lab *vethlab.Lab, local, remote netip.AddrPort) {
	t.Helper()
	var fd int
	err := lab.RunInB(func() (err error) {
		if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0); err != nil {
			return err
		}
		if err = unix.Bind(fd, &unix.SockaddrInet4{Addr: local.Addr().As4(), Port: int(local.Port())}); err != nil {
			return err
		}
		return unix.Connect(fd, &unix.SockaddrInet4{Addr: remote.Addr().As4(), Port: int(remote.Port())})
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, err := unix.Read(fd, buf)
			if err != nil {
				if err == unix.EINTR || err == unix.ECONNREFUSED {
					continue
				}
				return
			}
			unix.Write(fd, buf[:n])
		}
	}()
	t.Cleanup(func() { unix.Shutdown(fd, unix.SHUT_RDWR); unix.Close(fd) })
}

// roundTripper sets up a bound libOS queue and a kernel reflector for it.
func roundTripper(t testing.TB, lab *vethlab.Lab, lib *libos.LibOS) (libos.QD, netip.AddrPort) {
	local := netip.AddrPortFrom(lab.AddrA.Addr(), 6000)
	peer := netip.AddrPortFrom(lab.AddrB.Addr(), 6001)
	kernelReflector(t, lab, peer, local)
	qd, err := lib.Socket(libos.AF_INET, libos.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := lib.Bind(qd, local); err != nil {
		t.Fatal(err)
	}
	return qd, peer
}

// echoOnce pushes sga to peer and pops the reflection: Push, Pop, Wait and
// SGAFree, the whole steady-state datapath.
func echoOnce(t testing.TB, lib *libos.LibOS, qd libos.QD, sga *libos.SGA, peer netip.AddrPort) {
	qt, err := lib.PushTo(qd, sga, peer)
	if err != nil {
		t.Fatal(err)
	}
	pop, err := lib.Pop(qd)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := lib.Wait(qt, 5*time.Second); err != nil || r.Opcode != libos.OpPush {
		t.Fatalf("push: %v %v", err, r.Err)
	}
	r, err := lib.Wait(pop, 5*time.Second)
	if err != nil || r.Opcode != libos.OpPop || len(r.SGA.Segs[0]) != len(sga.Segs[0]) {
		t.Fatalf("pop: %v %v", err, r.Err)
	}
	lib.SGAFree(r.SGA)
}

func TestDatapathAllocatesNothing(t *testing.T) {
	lab, lib := labLibOS(t, libos.Dedicated, nil)
	qd, peer := roundTripper(t, lab, lib)
	sga, err := lib.SGAAlloc(64)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ { // warm up: ARP, op table, SGA pool
		echoOnce(t, lib, qd, sga, peer)
	}
	allocs := testing.AllocsPerRun(2000, func() { echoOnce(t, lib, qd, sga, peer) })
	if allocs != 0 {
		t.Fatalf("Push+Pop+Wait+SGAFree: %v allocations per round trip, want 0", allocs)
	}
	allocs = testing.AllocsPerRun(2000, func() {
		s, err := lib.SGAAlloc(100)
		if err != nil {
			t.Fatal(err)
		}
		lib.SGAFree(s)
	})
	if allocs != 0 {
		t.Fatalf("SGAAlloc+SGAFree: %v allocations, want 0", allocs)
	}
}

// BenchmarkRoundTrip measures Push+Pop+Wait+SGAFree of a 64-byte datagram
// against a kernel reflector over the veth: the libOS's per-datagram cost
// plus the kernel's, with allocations reported.
func BenchmarkRoundTrip(b *testing.B) {
	lab, lib := labLibOS(b, libos.Dedicated, nil)
	qd, peer := roundTripper(b, lab, lib)
	sga, err := lib.SGAAlloc(64)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		echoOnce(b, lib, qd, sga, peer)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		echoOnce(b, lib, qd, sga, peer)
	}
}

// BenchmarkPush measures PushTo and the Wait for its completion of a 64-byte
// datagram (the kernel peer reads and discards).
func BenchmarkPush(b *testing.B) {
	lab, lib := labLibOS(b, libos.Dedicated, nil)
	qd, peer := roundTripper(b, lab, lib)
	_ = qd
	sink := netip.AddrPortFrom(peer.Addr(), 9) // discard: nobody listens, the kernel drops it
	sga, _ := lib.SGAAlloc(64)
	q2, _ := lib.Socket(libos.AF_INET, libos.SOCK_DGRAM, 0)
	for i := 0; i < 100; i++ {
		qt, _ := lib.PushTo(q2, sga, sink)
		lib.Wait(qt, time.Second)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		qt, err := lib.PushTo(q2, sga, sink)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := lib.Wait(qt, time.Second); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSGAAllocFree measures taking and returning a one-frame SGA.
func BenchmarkSGAAllocFree(b *testing.B) {
	_, lib := labLibOS(b, libos.Dedicated, nil)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s, err := lib.SGAAlloc(64)
		if err != nil {
			b.Fatal(err)
		}
		lib.SGAFree(s)
	}
}

// BenchmarkWaitPoll measures Wait(timeout 0) on a pending pop: one turn of
// the event loop with nothing to do.
func BenchmarkWaitPoll(b *testing.B) {
	_, lib := labLibOS(b, libos.Dedicated, nil)
	qd, _ := lib.Socket(libos.AF_INET, libos.SOCK_DGRAM, 0)
	lib.Bind(qd, netip.MustParseAddrPort("0.0.0.0:7"))
	pop, _ := lib.Pop(qd)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		lib.Wait(pop, 0)
	}
}

// kernelTCPEchoRaw accepts one connection in namespace B and echoes it with
// raw read/write system calls, which allocate nothing.
func kernelTCPEchoRaw(t testing.TB, lab *vethlab.Lab, addr netip.AddrPort) {
	t.Helper()
	var lfd int
	err := lab.RunInB(func() (err error) {
		if lfd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0); err != nil {
			return err
		}
		unix.SetsockoptInt(lfd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		if err = unix.Bind(lfd, &unix.SockaddrInet4{Addr: addr.Addr().As4(), Port: int(addr.Port())}); err != nil {
			return err
		}
		return unix.Listen(lfd, 1)
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		fd, _, err := unix.Accept(lfd)
		if err != nil {
			return
		}
		defer unix.Close(fd)
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		buf := make([]byte, 4096)
		for {
			n, err := unix.Read(fd, buf)
			if err == unix.EINTR {
				continue
			}
			if err != nil || n == 0 {
				return
			}
			if _, err := unix.Write(fd, buf[:n]); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { unix.Shutdown(lfd, unix.SHUT_RDWR); unix.Close(lfd) })
}

// TestTCPDatapathAllocatesNothing: a TCP request/response through the libOS
// (Push, the ACK processing that completes it, Pop, SGAFree) allocates
// nothing in steady state.
func TestTCPDatapathAllocatesNothing(t *testing.T) {
	lab, lib := labLibOS(t, libos.Dedicated, nil)
	srv := netip.AddrPortFrom(lab.AddrB.Addr(), 7100)
	kernelTCPEchoRaw(t, lab, srv)
	qd, _ := lib.Socket(libos.AF_INET, libos.SOCK_STREAM, 0)
	lib.SetNoDelay(qd, true)
	ct, err := lib.Connect(qd, srv)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := lib.Wait(ct, 5*time.Second); err != nil || r.Opcode != libos.OpConnect {
		t.Fatalf("connect: %v %+v", err, r)
	}
	sga, _ := lib.SGAAlloc(64)
	roundTrip := func() {
		qt, err := lib.Push(qd, sga)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for got < 64 {
			pop, _ := lib.Pop(qd)
			r, err := lib.Wait(pop, 5*time.Second)
			if err != nil || r.Opcode != libos.OpPop || len(r.SGA.Segs) == 0 {
				t.Fatalf("pop: %v %+v", err, r)
			}
			got += r.SGA.Len()
			lib.SGAFree(r.SGA)
		}
		if r, err := lib.Wait(qt, 5*time.Second); err != nil || r.Opcode != libos.OpPush {
			t.Fatalf("push: %v %+v", err, r)
		}
	}
	for i := 0; i < 200; i++ {
		roundTrip()
	}
	if allocs := testing.AllocsPerRun(2000, roundTrip); allocs != 0 {
		t.Fatalf("TCP Push+Pop+ACK: %v allocations per round trip, want 0", allocs)
	}
	lib.SGAFree(sga)
}
