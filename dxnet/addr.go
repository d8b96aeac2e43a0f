package dxnet

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// network checks a network name and returns its family ("tcp" or "udp").
func network(nw string, allowed ...string) (string, error) {
	for _, a := range allowed {
		if nw == a || nw == a+"4" {
			return a, nil
		}
	}
	return "", net.UnknownNetworkError(nw)
}

// parseAddr turns "host:port" into an address. The host must be an IPv4
// literal (dxnet has no resolver of its own and must not ask the kernel's
// network); an empty host means 0.0.0.0 when listening. The port may be a
// number or a service name.
func parseAddr(family, address string, listen bool) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return netip.AddrPort{}, err
	}
	var ip netip.Addr
	switch {
	case host == "" && listen:
		ip = netip.IPv4Unspecified()
	case host == "":
		return netip.AddrPort{}, &net.AddrError{Err: "missing address", Addr: address}
	default:
		ip, err = netip.ParseAddr(host)
		if err != nil {
			return netip.AddrPort{}, &net.AddrError{Err: "dxnet resolves no host names: use an IPv4 address", Addr: host}
		}
		if ip = ip.Unmap(); !ip.Is4() {
			return netip.AddrPort{}, &net.AddrError{Err: "dxnet speaks IPv4 only", Addr: host}
		}
	}
	p, err := net.LookupPort(family, port)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(ip, uint16(p)), nil
}

func tcpAddr(ap netip.AddrPort) *net.TCPAddr {
	if !ap.IsValid() {
		return nil
	}
	return net.TCPAddrFromAddrPort(ap)
}

func udpAddr(ap netip.AddrPort) *net.UDPAddr {
	if !ap.IsValid() {
		return nil
	}
	return net.UDPAddrFromAddrPort(ap)
}

// syscalls names the system call the net package would name in a
// *os.SyscallError for each operation.
var syscalls = map[string]string{
	"read": "read", "write": "write", "dial": "connect", "accept": "accept",
	"listen": "bind", "close": "close", "set": "setsockopt",
}

// opError wraps err as the net package does: a *net.OpError naming the
// operation and the addresses, around an *os.SyscallError for an errno,
// so that errors.Is works with syscall errnos, net.ErrClosed and
// os.ErrDeadlineExceeded. io.EOF and nil pass through.
func opError(op, nw string, src, dst net.Addr, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	var errno unix.Errno
	if errors.As(err, &errno) && err == error(errno) {
		err = os.NewSyscallError(syscalls[op], errno)
	}
	return &net.OpError{Op: op, Net: nw, Source: src, Addr: dst, Err: err}
}

// The types implement the interfaces the net package's do.
var (
	_ net.Conn       = (*TCPConn)(nil)
	_ net.Listener   = (*TCPListener)(nil)
	_ net.Conn       = (*UDPConn)(nil)
	_ net.PacketConn = (*UDPConn)(nil)
)
