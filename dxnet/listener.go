package dxnet

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/demixdp/demixdp/libos"
	"golang.org/x/sys/unix"
)

// TCPListener is a TCP listener of a Stack; it implements net.Listener.
// Accept may run on one goroutine while others use the connections.
type TCPListener struct {
	s      *Stack
	k      *sock
	addr   net.Addr
	mu     sync.Mutex // serializes Accept
	ac, cl request
	dl     deadline
	closed atomic.Bool
}

// Listen listens for TCP connections on address ("tcp" or "tcp4"): an
// IPv4 literal that is the stack's address or 0.0.0.0, or an empty host,
// and a port (":80"; port 0 picks an ephemeral one). The listener is a
// *TCPListener; its connections have Nagle's algorithm off, as the net
// package's do. Errors are *net.OpError with Op "listen" (EADDRINUSE for
// a port in use, EADDRNOTAVAIL for an address that is not the stack's).
func (s *Stack) Listen(nw, address string) (net.Listener, error) {
	if _, err := network(nw, "tcp"); err != nil {
		return nil, &net.OpError{Op: "listen", Net: nw, Err: err}
	}
	ap, err := parseAddr("tcp", address, true)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: nw, Err: err}
	}
	var ln *TCPListener
	err = s.call(func() error {
		qd, err := s.lib.Socket(libos.AF_INET, libos.SOCK_STREAM, 0)
		if err != nil {
			return err
		}
		if err = s.bind(qd, ap); err == nil {
			s.lib.SetNoDelay(qd, true) // inherited by the accepted connections
			err = s.lib.Listen(qd, backlog)
		}
		if err != nil {
			s.lib.CloseQueue(qd)
			return err
		}
		la, _ := s.lib.LocalAddr(qd)
		k := s.newSock(qd, sockListener)
		ln = &TCPListener{s: s, k: k, addr: tcpAddr(la), ac: newRequest(), cl: newRequest()}
		ln.dl.r = &ln.ac
		s.serveAccept(k) // post the first Accept
		return nil
	})
	if err != nil {
		return nil, opError("listen", nw, nil, tcpAddr(ap), err)
	}
	return ln, nil
}

// bind binds qd to ap; an address that is not the stack's is
// EADDRNOTAVAIL, as bind(2) says (the libOS says EINVAL).
func (s *Stack) bind(qd libos.QD, ap netip.AddrPort) error {
	err := s.lib.Bind(qd, ap)
	if err == unix.EINVAL && !ap.Addr().IsUnspecified() && ap.Addr() != s.ip {
		err = unix.EADDRNOTAVAIL
	}
	return err
}

// Accept waits for the next connection and returns it, a *TCPConn.
func (l *TCPListener) Accept() (net.Conn, error) {
	c, err := l.AcceptTCP()
	if err != nil {
		return nil, err
	}
	return c, nil
}

// AcceptTCP waits for the next connection. It fails with
// os.ErrDeadlineExceeded past the deadline and net.ErrClosed after Close,
// wrapped in a *net.OpError with Op "accept".
func (l *TCPListener) AcceptTCP() (*TCPConn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return nil, l.opErr(net.ErrClosed)
	}
	if l.dl.expired() {
		return nil, l.opErr(errTimeout)
	}
	r := &l.ac
	gen := r.start()
	if err := l.s.do(item{r: r, gen: gen, kind: kAccept, k: l.k}, &l.dl, &l.closed); err != nil {
		return nil, l.opErr(err)
	}
	if r.err != nil {
		return nil, l.opErr(r.err)
	}
	return r.tcp, nil
}

func (l *TCPListener) opErr(err error) error { return opError("accept", "tcp", nil, l.addr, err) }

// Close stops listening: a blocked Accept returns net.ErrClosed, and
// connections that arrived but were not accepted are reset. Connections
// already accepted are not affected. Closing again returns an error
// wrapping net.ErrClosed.
func (l *TCPListener) Close() error {
	if !l.closed.CompareAndSwap(false, true) {
		return opError("close", "tcp", nil, l.addr, net.ErrClosed)
	}
	l.ac.interrupt(net.ErrClosed)
	l.dl.stop()
	r := &l.cl
	gen := r.start()
	if l.s.submit(item{r: r, gen: gen, kind: kClose, k: l.k}) {
		<-r.done
	}
	return nil
}

// Addr returns the listener's address, a *net.TCPAddr.
func (l *TCPListener) Addr() net.Addr { return l.addr }

// SetDeadline sets the deadline of Accept (the zero time: none).
func (l *TCPListener) SetDeadline(t time.Time) error {
	l.dl.set(t)
	return nil
}
