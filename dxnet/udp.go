package dxnet

import (
	"net"
	"net/netip"

	"github.com/demixdp/demixdp/libos"
	"golang.org/x/sys/unix"
)

// UDPConn is a UDP socket of a Stack: a net.PacketConn (ListenPacket,
// ReadFrom, WriteTo) and, once connected by Dial, a net.Conn (Read,
// Write), like *net.UDPConn. It is safe for concurrent use.
type UDPConn struct {
	conn // raddr non-nil: connected by Dial
}

func newUDPConn(s *Stack, k *sock, local, remote netip.AddrPort) *UDPConn {
	c := &UDPConn{}
	var la, ra net.Addr
	if a := udpAddr(local); a != nil {
		la = a
	}
	if a := udpAddr(remote); a != nil {
		ra = a
	}
	c.init(s, k, la, ra)
	return c
}

// ListenPacket opens a UDP socket ("udp" or "udp4") bound to address (an
// IPv4 literal that is the stack's address or 0.0.0.0, or an empty host,
// and a port; 0 picks an ephemeral one). The result is a *UDPConn.
func (s *Stack) ListenPacket(nw, address string) (net.PacketConn, error) {
	if _, err := network(nw, "udp"); err != nil {
		return nil, &net.OpError{Op: "listen", Net: nw, Err: err}
	}
	ap, err := parseAddr("udp", address, true)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: nw, Err: err}
	}
	var c *UDPConn
	err = s.call(func() error {
		qd, err := s.lib.Socket(libos.AF_INET, libos.SOCK_DGRAM, 0)
		if err != nil {
			return err
		}
		if err := s.bind(qd, ap); err != nil {
			s.lib.CloseQueue(qd)
			return err
		}
		la, _ := s.lib.LocalAddr(qd)
		k := s.newSock(qd, sockUDP)
		c = newUDPConn(s, k, la, netip.AddrPort{})
		k.udp = c
		s.refill(k)
		return nil
	})
	if err != nil {
		return nil, opError("listen", nw, nil, udpAddr(ap), err)
	}
	return c, nil
}

func (c *UDPConn) opErr(op string, dst net.Addr, err error) error {
	if dst == nil {
		dst = c.raddr
	}
	return opError(op, "udp", c.laddr, dst, err)
}

// ReadFromUDPAddrPort reads one datagram into b (the part that does not
// fit is discarded, as recvfrom(2) does) and returns its length and
// sender. It allocates nothing. Errors are as for TCPConn.Read (no EOF).
//
//demixdp:hotpath — allocates nothing.
func (c *UDPConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.closed.Load() {
		return 0, netip.AddrPort{}, c.opErr("read", nil, net.ErrClosed)
	}
	r := &c.rd
	err := c.run(r, &c.rdl, kRead, b, nil)
	if err == nil {
		err = r.err
	}
	if err != nil {
		return 0, netip.AddrPort{}, c.opErr("read", nil, err)
	}
	return r.n, r.from, nil
}

// ReadFromUDP is ReadFromUDPAddrPort with a *net.UDPAddr.
func (c *UDPConn) ReadFromUDP(b []byte) (int, *net.UDPAddr, error) {
	n, from, err := c.ReadFromUDPAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// ReadFrom implements net.PacketConn; the address is a *net.UDPAddr.
func (c *UDPConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.ReadFromUDP(b)
	if err != nil {
		return n, nil, err
	}
	return n, from, nil
}

// Read reads one datagram from the connected peer (net.Conn).
func (c *UDPConn) Read(b []byte) (int, error) {
	n, _, err := c.ReadFromUDPAddrPort(b)
	return n, err
}

// WriteToUDPAddrPort sends b as one datagram to addr (the zero AddrPort:
// the connected peer) and returns once it is queued for transmission. A
// full TX ring makes it wait, never fail. Errors, in a *net.OpError:
// EMSGSIZE (more than the MTU allows), EINVAL (an empty datagram, which the
// libOS cannot send, or a bad address), EDESTADDRREQ (no address and not
// connected), EISCONN (an address on a connected socket), EHOSTUNREACH (an
// earlier datagram was dropped because its next hop never answered ARP:
// reported once, as Linux reports ICMP errors), os.ErrDeadlineExceeded,
// net.ErrClosed.
//
//demixdp:hotpath — allocates nothing.
func (c *UDPConn) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	fail := func(err error) (int, error) { // the address is made only for an error
		var dst net.Addr
		if addr.IsValid() {
			dst = udpAddr(addr)
		}
		return 0, c.opErr("write", dst, err)
	}
	switch {
	case addr.IsValid() && c.raddr != nil:
		return fail(unix.EISCONN)
	case len(b) > c.s.maxDatagram:
		return fail(unix.EMSGSIZE)
	case len(b) == 0:
		return fail(unix.EINVAL)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return fail(net.ErrClosed)
	}
	r := &c.wr
	r.addr = addr
	err := c.run(r, &c.wdl, kWrite, b, nil)
	if err == nil {
		err = r.err
	}
	if err != nil {
		return fail(err)
	}
	return r.n, nil
}

// WriteToUDP is WriteToUDPAddrPort with a *net.UDPAddr.
func (c *UDPConn) WriteToUDP(b []byte, addr *net.UDPAddr) (int, error) {
	if addr == nil {
		return 0, c.opErr("write", nil, unix.EINVAL)
	}
	return c.WriteToUDPAddrPort(b, addr.AddrPort())
}

// WriteTo implements net.PacketConn; addr must be a *net.UDPAddr.
func (c *UDPConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	a, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, c.opErr("write", addr, unix.EINVAL)
	}
	return c.WriteToUDP(b, a)
}

// Write sends b as one datagram to the connected peer (net.Conn).
func (c *UDPConn) Write(b []byte) (int, error) {
	return c.WriteToUDPAddrPort(b, netip.AddrPort{})
}

// Close closes the socket; blocked reads and writes return net.ErrClosed.
// Closing again returns an error wrapping net.ErrClosed.
func (c *UDPConn) Close() error {
	if !c.close() {
		return c.opErr("close", nil, net.ErrClosed)
	}
	return nil
}
