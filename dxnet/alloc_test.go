package dxnet_test

import (
	"io"
	"net"
	"net/netip"
	"testing"

	"github.com/demixdp/demixdp/dxnet"
	"github.com/demixdp/demixdp/internal/labtest"
)

// plainEcho serves one kernel TCP connection with a fixed buffer (io.Copy
// would splice, which allocates): nothing on the peer's side allocates
// per exchange either, so the process-wide count is dxnet's.
func plainEcho(t *testing.T, ln *net.TCPListener) {
	done := run(func() error {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		defer c.Close()
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return nil
			}
			if _, err := c.Write(buf[:n]); err != nil {
				return nil
			}
		}
	})
	t.Cleanup(func() { ln.Close(); <-done })
}

// TestAllocs: a 64-byte Write and the Read of its echo, and a 64-byte UDP
// WriteToUDPAddrPort and ReadFromUDPAddrPort, allocate nothing in steady
// state (the whole process is counted: the loop goroutine, the callers
// and the kernel-side echo).
func TestAllocs(t *testing.T) {
	lab := newLab(t)
	st := openStack(t, lab, labtest.A, nil)
	ln := kernelListen(t, lab, 7700)
	plainEcho(t, ln)
	c, err := st.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out, in := make([]byte, 64), make([]byte, 64)
	for i := range out {
		out[i] = byte(i)
	}
	exchange := func() {
		if _, err := c.Write(out); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, in); err != nil {
			t.Fatal(err)
		}
		if in[63] != 63 {
			t.Fatalf("echo %x", in)
		}
	}
	for i := 0; i < 200; i++ {
		exchange()
	}
	if a := testing.AllocsPerRun(1000, exchange); a != 0 {
		t.Errorf("TCP Write+Read of 64 bytes: %v allocations, want 0", a)
	}

	k := kernelUDP(t, lab, lab.AddrB.Addr(), 7701)
	udpDone := run(func() error {
		b := make([]byte, 2048)
		for {
			n, from, err := k.ReadFromUDPAddrPort(b)
			if err != nil {
				return nil
			}
			k.WriteToUDPAddrPort(b[:n], from)
		}
	})
	t.Cleanup(func() { k.Close(); <-udpDone })
	pc, err := st.ListenPacket("udp", ":7702")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	u := pc.(*dxnet.UDPConn)
	peer := netip.AddrPortFrom(lab.AddrB.Addr(), 7701)
	datagram := func() {
		if _, err := u.WriteToUDPAddrPort(out, peer); err != nil {
			t.Fatal(err)
		}
		n, from, err := u.ReadFromUDPAddrPort(in)
		if err != nil || n != 64 || from != peer {
			t.Fatalf("UDP echo: %d from %v, %v", n, from, err)
		}
	}
	for i := 0; i < 200; i++ {
		datagram()
	}
	if a := testing.AllocsPerRun(1000, datagram); a != 0 {
		t.Errorf("UDP WriteTo+ReadFrom of 64 bytes: %v allocations, want 0", a)
	}
}
