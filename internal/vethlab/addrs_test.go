package vethlab

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestAddAddrB: the extra addresses land on IfB, the kernel in B can send
// from each of them, and A sees each as the source.
func TestAddAddrB(t *testing.T) {
	t.Parallel()
	l := ForTest(t, Config{Name: "addrs", KernelAddrA: true})
	extra := []netip.Prefix{netip.MustParsePrefix("198.51.100.3/24"), netip.MustParsePrefix("198.51.100.4/24")}
	if err := l.AddAddrB(extra...); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []netip.Prefix{
		netip.MustParsePrefix("192.0.2.7/24"),    // the machine's own network
		netip.MustParsePrefix("198.51.100.1/24"), // AddrA
		netip.MustParsePrefix("198.51.100.2/24"), // AddrB
	} {
		if err := l.AddAddrB(bad); !errors.Is(err, ErrBadConfig) {
			t.Errorf("AddAddrB(%v) = %v, want ErrBadConfig", bad, err)
		}
	}
	var server *net.TCPListener
	if err := l.RunInA(func() (err error) {
		server, err = net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(netip.AddrPortFrom(l.AddrA.Addr(), 0)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	for _, p := range extra {
		var c *net.TCPConn
		err := l.RunInB(func() (err error) {
			d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(p.Addr(), 0)), Timeout: 10 * time.Second}
			nc, err := d.Dial("tcp4", server.Addr().String())
			if err == nil {
				c = nc.(*net.TCPConn)
			}
			return err
		})
		if err != nil {
			t.Fatalf("dial from %v: %v", p.Addr(), err)
		}
		server.SetDeadline(time.Now().Add(10 * time.Second)) // a hang guard
		s, err := server.AcceptTCP()
		if err != nil {
			t.Fatal(err)
		}
		from := s.RemoteAddr().(*net.TCPAddr).AddrPort().Addr()
		s.Close()
		c.Close()
		if from.Unmap() != p.Addr() {
			t.Errorf("A saw a connection from %v, want %v", from, p.Addr())
		}
	}
}

// TestAddAddrA: an extra address of the kernel's on IfA serves a kernel
// client in B; the rules are AddAddrB's.
func TestAddAddrA(t *testing.T) {
	t.Parallel()
	l := ForTest(t, Config{Name: "addra"})
	extra := netip.MustParsePrefix("198.51.100.9/24")
	if err := l.AddAddrA(extra); err != nil {
		t.Fatal(err)
	}
	if err := l.AddAddrA(netip.MustParsePrefix("192.0.2.9/24")); !errors.Is(err, ErrBadConfig) {
		t.Errorf("AddAddrA(192.0.2.9/24) = %v, want ErrBadConfig", err)
	}
	var server *net.TCPListener
	if err := l.RunInA(func() (err error) {
		server, err = net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(netip.AddrPortFrom(extra.Addr(), 0)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	var c *net.TCPConn
	if err := l.RunInB(func() (err error) {
		c, err = net.DialTCP("tcp4", nil, server.Addr().(*net.TCPAddr))
		return err
	}); err != nil {
		t.Fatalf("kernel in B to the extra address in A: %v", err)
	}
	c.Close()
}
