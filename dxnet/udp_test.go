package dxnet_test

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/demixdp/demixdp/dxnet"
	"github.com/demixdp/demixdp/internal/labtest"
)

// kernelUDP opens a kernel UDP socket in namespace B on port.
func kernelUDP(t *testing.T, lab interface{ RunInB(func() error) error }, ip netip.Addr, port uint16) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	if err := lab.RunInB(func() (err error) {
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, port)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestUDPPacketConn: a dxnet ListenPacket socket receives datagrams of
// every size from 1 to 1472 bytes from a kernel socket, with the right
// sender, and sends each back with WriteTo; a datagram longer than the
// buffer is cut and the rest dropped, as recvfrom does; oversized and
// empty writes and an expired deadline fail as documented.
func TestUDPPacketConn(t *testing.T) {
	lab := newLab(t)
	st := openStack(t, lab, labtest.A, nil)
	pc, err := st.ListenPacket("udp", ":7500")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	uc := pc.(*dxnet.UDPConn)
	if la := pc.LocalAddr().(*net.UDPAddr); la.Port != 7500 {
		t.Fatalf("LocalAddr %v", la)
	}
	k := kernelUDP(t, lab, lab.AddrB.Addr(), 7501)
	dst := net.UDPAddrFromAddrPort(netip.AddrPortFrom(lab.AddrA.Addr(), 7500))
	buf := make([]byte, 2048)
	kbuf := make([]byte, 2048)
	k.SetDeadline(time.Now().Add(hang))
	for size := 1; size <= 1472; size += 7 {
		want := pattern(size, uint64(size))
		if _, err := k.WriteToUDP(want, dst); err != nil {
			t.Fatal(err)
		}
		n, from, err := uc.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf[:n], want) || from != k.LocalAddr().(*net.UDPAddr).AddrPort() {
			t.Fatalf("datagram of %d bytes: got %d bytes from %v", size, n, from)
		}
		if _, err := pc.WriteTo(buf[:n], net.UDPAddrFromAddrPort(from)); err != nil {
			t.Fatal(err)
		}
		kn, _, err := k.ReadFromUDP(kbuf)
		if err != nil || !bytes.Equal(kbuf[:kn], want) {
			t.Fatalf("reply of %d bytes: %d bytes, %v", size, kn, err)
		}
	}
	// Truncation: 100 bytes into 10; the next datagram is whole.
	k.WriteToUDP(pattern(100, 1), dst)
	k.WriteToUDP([]byte("next"), dst)
	n, _, err := pc.ReadFrom(buf[:10])
	if err != nil || n != 10 || !bytes.Equal(buf[:10], pattern(100, 1)[:10]) {
		t.Fatalf("truncated read: %d %v", n, err)
	}
	n, _, err = pc.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "next" {
		t.Fatalf("read after truncation: %q %v", buf[:n], err)
	}

	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(lab.AddrB.Addr(), 7501))
	_, err = pc.WriteTo(make([]byte, 1473), to)
	checkOpError(t, "oversized datagram", err, "write", syscall.EMSGSIZE)
	_, err = pc.WriteTo(nil, to)
	checkOpError(t, "empty datagram", err, "write", syscall.EINVAL)
	_, err = uc.Write([]byte("no peer"))
	checkOpError(t, "Write on an unconnected socket", err, "write", syscall.EDESTADDRREQ)
	pc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, _, err = pc.ReadFrom(buf)
	checkOpError(t, "ReadFrom past its deadline", err, "read", os.ErrDeadlineExceeded)
}

// TestUDPDial: a connected dxnet UDP socket (Dial) talks to a kernel echo
// in B with Write and Read; RemoteAddr is the peer.
func TestUDPDial(t *testing.T) {
	lab := newLab(t)
	st := openStack(t, lab, labtest.A, nil)
	k := kernelUDP(t, lab, lab.AddrB.Addr(), 7502)
	echoDone := run(func() error {
		b := make([]byte, 2048)
		for {
			n, from, err := k.ReadFromUDPAddrPort(b)
			if err != nil {
				return nil // closed by the cleanup
			}
			k.WriteToUDPAddrPort(b[:n], from)
		}
	})
	t.Cleanup(func() { k.Close(); <-echoDone })
	c, err := st.Dial("udp", netip.AddrPortFrom(lab.AddrB.Addr(), 7502).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ra := c.RemoteAddr().(*net.UDPAddr); ra.AddrPort() != netip.AddrPortFrom(lab.AddrB.Addr(), 7502) {
		t.Fatalf("RemoteAddr %v", ra)
	}
	c.SetDeadline(time.Now().Add(hang))
	buf := make([]byte, 2048)
	for i := 0; i < 500; i++ {
		want := pattern(1+i%1472, uint64(i))
		if _, err := c.Write(want); err != nil {
			t.Fatal(err)
		}
		n, err := c.Read(buf)
		if err != nil || !bytes.Equal(buf[:n], want) {
			t.Fatalf("exchange %d: %d bytes, %v", i, n, err)
		}
	}
	_, err = c.(*dxnet.UDPConn).WriteTo([]byte("x"), net.UDPAddrFromAddrPort(netip.AddrPortFrom(lab.AddrB.Addr(), 9)))
	checkOpError(t, "WriteTo on a connected socket", err, "write", syscall.EISCONN)
}
