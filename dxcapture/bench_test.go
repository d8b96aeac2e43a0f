package dxcapture_test

import (
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/demixdp/demixdp/dxcapture"
	"github.com/demixdp/demixdp/internal/vethlab"
	"github.com/demixdp/demixdp/libos"
	"golang.org/x/sys/unix"
)

// BenchmarkRoundTrip measures a 64-byte UDP round trip (Push, Pop, Wait,
// SGAFree against a kernel reflector in namespace B) with capture off and
// with every frame captured as pcapng into io.Discard.
func BenchmarkRoundTrip(b *testing.B) {
	for _, capture := range []bool{false, true} {
		name := "off"
		if capture {
			name = "pcapng"
		}
		b.Run("capture="+name, func(b *testing.B) {
			lab := vethlab.ForTest(b, vethlab.Config{Name: "capb"})
			local := netip.AddrPortFrom(lab.AddrA.Addr(), 6000)
			peer := netip.AddrPortFrom(lab.AddrB.Addr(), 6001)
			var fd int
			if err := lab.RunInB(func() (err error) {
				if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0); err != nil {
					return err
				}
				if err = unix.Bind(fd, &unix.SockaddrInet4{Addr: peer.Addr().As4(), Port: int(peer.Port())}); err != nil {
					return err
				}
				return unix.Connect(fd, &unix.SockaddrInet4{Addr: local.Addr().As4(), Port: int(local.Port())})
			}); err != nil {
				b.Fatal(err)
			}
			go func() {
				buf := make([]byte, 2048)
				for {
					n, err := unix.Read(fd, buf)
					if err == unix.EINTR || err == unix.ECONNREFUSED {
						continue
					}
					if err != nil {
						return
					}
					unix.Write(fd, buf[:n])
				}
			}()
			b.Cleanup(func() { unix.Shutdown(fd, unix.SHUT_RDWR); unix.Close(fd) })
			cfg := libos.Config{Interface: lab.IfA, Addr: lab.AddrA}
			if capture {
				w := dxcapture.NewWriter(io.Discard)
				defer w.Close()
				cfg.Capture = w
			}
			var lib *libos.LibOS
			if err := lab.RunInA(func() (err error) { lib, err = libos.New(cfg); return err }); err != nil {
				b.Fatal(err)
			}
			defer lib.Close()
			qd, _ := lib.Socket(libos.AF_INET, libos.SOCK_DGRAM, 0)
			if err := lib.Bind(qd, local); err != nil {
				b.Fatal(err)
			}
			sga, _ := lib.SGAAlloc(64)
			trip := func() {
				qt, err := lib.PushTo(qd, sga, peer)
				if err != nil {
					b.Fatal(err)
				}
				pop, _ := lib.Pop(qd)
				if r, err := lib.Wait(qt, 5*time.Second); err != nil || r.Opcode != libos.OpPush {
					b.Fatalf("push: %v %+v", err, r)
				}
				r, err := lib.Wait(pop, 5*time.Second)
				if err != nil || r.Opcode != libos.OpPop {
					b.Fatalf("pop: %v %+v", err, r)
				}
				lib.SGAFree(r.SGA)
			}
			for range 100 {
				trip()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				trip()
			}
		})
	}
}
