package dxnet_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"

	"github.com/demixdp/demixdp/dxnet"
	"github.com/demixdp/demixdp/internal/labtest"
)

// pattern returns n pseudo-random bytes from seed.
func pattern(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestTCPServeKernelClient: a dxnet listener in A serves a kernel client in
// B: Accept returns a *TCPConn with the right addresses, the client's 4 MB
// come through byte for byte while the server echoes them, the client's
// FIN gives io.EOF after the last byte, and the server's Close gives the
// client its EOF.
func TestTCPServeKernelClient(t *testing.T) {
	lab := newLab(t)
	st := openStack(t, lab, labtest.A, nil)
	ln, err := st.Listen("tcp", ":7000")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if a, ok := ln.Addr().(*net.TCPAddr); !ok || a.Port != 7000 {
		t.Fatalf("listener address %v", ln.Addr())
	}
	srv := netip.AddrPortFrom(lab.AddrA.Addr(), 7000)
	accepted := make(chan *dxnet.TCPConn, 1)
	echoed := run(func() error {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		tc := c.(*dxnet.TCPConn)
		accepted <- tc
		buf := make([]byte, 3000)
		for {
			n, err := tc.Read(buf)
			if n > 0 {
				if _, werr := tc.Write(buf[:n]); werr != nil {
					return werr
				}
			}
			if err == io.EOF {
				return tc.Close()
			}
			if err != nil {
				return err
			}
		}
	})
	kc := kernelDial(t, lab, srv)
	tc := within(t, "accept", accepted)
	if la := tc.LocalAddr().(*net.TCPAddr); la.AddrPort() != srv {
		t.Errorf("LocalAddr %v, want %v", la, srv)
	}
	if ra := tc.RemoteAddr().(*net.TCPAddr); ra.AddrPort() != kc.LocalAddr().(*net.TCPAddr).AddrPort() {
		t.Errorf("RemoteAddr %v, want the client's %v", ra, kc.LocalAddr())
	}
	want := pattern(4<<20, 1)
	sent := run(func() error {
		if _, err := kc.Write(want); err != nil {
			return err
		}
		return kc.CloseWrite()
	})
	got, err := io.ReadAll(kc)
	if err != nil {
		t.Fatalf("client read: %v", err)
	}
	if err := within(t, "client write", sent); err != nil {
		t.Fatal(err)
	}
	if err := within(t, "server", echoed); err != nil {
		t.Fatalf("server: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("echo: %d bytes back, sha256 %x, want %d bytes %x", len(got), sha256.Sum256(got), len(want), sha256.Sum256(want))
	}
}

// TestTCPDialKernelServer: Dial reaches a kernel echo server in B; 4 MB
// written while reading the echo come back equal; CloseWrite makes the
// server close, which Read reports as io.EOF.
func TestTCPDialKernelServer(t *testing.T) {
	lab := newLab(t)
	st := openStack(t, lab, labtest.A, nil)
	kernelEcho(t, kernelListen(t, lab, 7001))
	c, err := st.Dial("tcp", netip.AddrPortFrom(lab.AddrB.Addr(), 7001).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ra := c.RemoteAddr().(*net.TCPAddr); ra.AddrPort() != netip.AddrPortFrom(lab.AddrB.Addr(), 7001) {
		t.Errorf("RemoteAddr %v", ra)
	}
	if la := c.LocalAddr().(*net.TCPAddr); la.AddrPort().Addr() != lab.AddrA.Addr() || la.Port == 0 {
		t.Errorf("LocalAddr %v", la)
	}
	want := pattern(4<<20, 2)
	sent := run(func() error {
		if _, err := c.Write(want); err != nil {
			return err
		}
		return c.(*dxnet.TCPConn).CloseWrite()
	})
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := within(t, "write", sent); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("echo: %d bytes, want %d, equal=%v", len(got), len(want), bytes.Equal(got, want))
	}
	// After EOF, Read keeps saying so.
	if n, err := c.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Fatalf("Read after EOF: %d %v", n, err)
	}
	if _, err := c.Write([]byte("x")); err == nil {
		t.Fatal("Write after CloseWrite succeeded")
	} else {
		var oe *net.OpError
		if !errors.As(err, &oe) || oe.Op != "write" {
			t.Fatalf("Write after CloseWrite: %v, want a *net.OpError with Op write", err)
		}
	}
}
