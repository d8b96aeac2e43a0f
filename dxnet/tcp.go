package dxnet

import (
	"context"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/demixdp/demixdp/libos"
)

// TCPConn is a TCP connection of a Stack. It implements net.Conn, with
// CloseWrite, SetNoDelay, SetKeepAlive, SetKeepAlivePeriod and SetLinger
// as on *net.TCPConn, and ReadSGA/WriteSGA for zero-copy I/O. Like a
// *net.TCPConn it is safe for concurrent use: Reads are serialized among
// themselves, and so are Writes, but a Read and a Write run at the same
// time.
type TCPConn struct {
	conn
}

// newTCPConn makes the application's side of an established connection
// (on the loop goroutine).
func newTCPConn(s *Stack, k *sock, local, remote netip.AddrPort) *TCPConn {
	c := &TCPConn{}
	var la, ra net.Addr
	if a := tcpAddr(local); a != nil {
		la = a
	}
	if a := tcpAddr(remote); a != nil {
		ra = a
	}
	c.init(s, k, la, ra)
	return c
}

func (c *TCPConn) opErr(op string, err error) error {
	return opError(op, "tcp", c.laddr, c.raddr, err)
}

// Read reads up to len(b) bytes, copying them once out of the frames they
// arrived in, and returns as soon as some are there. It returns io.EOF
// once the peer has closed its side and everything before has been read;
// an error satisfying errors.Is(err, syscall.ECONNRESET) (or ETIMEDOUT)
// if the connection failed; os.ErrDeadlineExceeded past the read deadline
// and net.ErrClosed after Close, both wrapped in a *net.OpError.
//
//demixdp:hotpath — allocates nothing.
func (c *TCPConn) Read(b []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.closed.Load() {
		return 0, c.opErr("read", net.ErrClosed)
	}
	if len(b) == 0 {
		return 0, nil
	}
	r := &c.rd
	if err := c.run(r, &c.rdl, kRead, b, nil); err != nil {
		return 0, c.opErr("read", err)
	}
	if r.err != nil && r.err != io.EOF {
		return r.n, c.opErr("read", r.err)
	}
	return r.n, r.err
}

// Write writes b and returns once every byte is queued in the connection's
// send buffer (pushed to the libOS, not yet acknowledged), copying it once
// into frames. A full send buffer makes it wait for acknowledgements, so
// a slow reader slows the writer; it never fails for lack of room. It
// fails with os.ErrDeadlineExceeded past the write deadline and
// net.ErrClosed after Close, returning how many bytes were queued before,
// and with the connection's error (syscall.ECONNRESET, EPIPE after
// CloseWrite...) wrapped in a *net.OpError.
//
//demixdp:hotpath — allocates nothing.
func (c *TCPConn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return 0, c.opErr("write", net.ErrClosed)
	}
	if len(b) == 0 {
		return 0, nil
	}
	r := &c.wr
	err := c.run(r, &c.wdl, kWrite, b, nil)
	if err == nil {
		err = r.err
	}
	if err != nil {
		return r.n, c.opErr("write", err) // r.n bytes were queued before
	}
	return r.n, nil
}

// Close closes the connection as close(2) closes a socket: blocked Reads
// and Writes return net.ErrClosed at once; the bytes already written are
// still delivered, followed by a FIN, unless received data was left
// unread or SetLinger(0) was called, in which case the connection is
// reset. Closing again returns an error wrapping net.ErrClosed and does
// nothing else.
func (c *TCPConn) Close() error {
	if !c.close() {
		return c.opErr("close", net.ErrClosed)
	}
	return nil
}

// CloseWrite shuts down the sending side (shutdown(2) with SHUT_WR): the
// peer reads io.EOF after the bytes already written; reading goes on.
// Later Writes fail with EPIPE.
func (c *TCPConn) CloseWrite() error {
	return c.option("close", func(qd libos.QD) error { return c.s.lib.Shutdown(qd) })
}

// option runs fn with the connection's queue on the loop goroutine.
func (c *TCPConn) option(op string, fn func(libos.QD) error) error {
	if c.closed.Load() {
		return c.opErr(op, net.ErrClosed)
	}
	k := c.k
	err := c.s.call(func() error {
		if k.closed {
			return net.ErrClosed
		}
		return fn(k.qd)
	})
	return c.opErr(op, err)
}

// SetNoDelay turns Nagle's algorithm off (true, the default, as in the net
// package) or on.
func (c *TCPConn) SetNoDelay(noDelay bool) error {
	return c.option("set", func(qd libos.QD) error { return c.s.lib.SetNoDelay(qd, noDelay) })
}

// SetKeepAlive turns keepalive probes on or off.
func (c *TCPConn) SetKeepAlive(keepalive bool) error {
	return c.option("set", func(qd libos.QD) error { return c.s.lib.SetKeepAlive(qd, keepalive) })
}

// SetKeepAlivePeriod sets the idle time before the first keepalive probe
// and the interval between probes.
func (c *TCPConn) SetKeepAlivePeriod(d time.Duration) error {
	return c.option("set", func(qd libos.QD) error { return c.s.lib.SetKeepAlivePeriod(qd, d) })
}

// SetLinger chooses what Close does, as net.TCPConn.SetLinger: sec < 0
// (the default) and sec > 0 close gracefully (Close never blocks, so a
// positive time changes nothing); sec == 0 makes Close reset the
// connection and discard unsent data.
func (c *TCPConn) SetLinger(sec int) error {
	return c.option("set", func(qd libos.QD) error { return c.s.lib.SetLinger(qd, sec) })
}

// Dial connects to address on the named network ("tcp", "tcp4", "udp" or
// "udp4"); see DialContext.
func (s *Stack) Dial(nw, address string) (net.Conn, error) {
	return s.DialContext(context.Background(), nw, address)
}

// DialContext connects to address, an IPv4 literal and a port
// ("198.51.100.2:80"); dxnet resolves no names. A TCP dial returns a
// *TCPConn once the handshake completes; cancelling ctx (or its deadline)
// abandons a connect in progress. A UDP dial returns a connected *UDPConn
// at once. Errors are *net.OpError with Op "dial", wrapping the errno
// (syscall.ECONNREFUSED when the peer resets or never answers,
// ENETUNREACH...) or ctx's error.
func (s *Stack) DialContext(ctx context.Context, nw, address string) (net.Conn, error) {
	family, err := network(nw, "tcp", "udp")
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: nw, Err: err}
	}
	ap, err := parseAddr(family, address, false)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: nw, Err: err}
	}
	var raddr net.Addr = tcpAddr(ap)
	if family == "udp" {
		raddr = udpAddr(ap)
	}
	if err := ctx.Err(); err != nil {
		return nil, &net.OpError{Op: "dial", Net: nw, Addr: raddr, Err: err}
	}
	r := &request{done: make(chan struct{}, 1)}
	gen := r.start()
	r.net, r.addr = family, ap
	if !s.submit(item{r: r, gen: gen, kind: kDial}) {
		return nil, &net.OpError{Op: "dial", Net: nw, Addr: raddr, Err: net.ErrClosed}
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		if r.cancel(gen) {
			s.submit(item{r: r, gen: gen, kind: kAbort})
			return nil, &net.OpError{Op: "dial", Net: nw, Addr: raddr, Err: ctx.Err()}
		}
		<-r.done
	case <-s.exited:
		if r.cancel(gen) {
			return nil, &net.OpError{Op: "dial", Net: nw, Addr: raddr, Err: net.ErrClosed}
		}
		<-r.done
	}
	if r.err != nil {
		return nil, opError("dial", nw, nil, raddr, r.err)
	}
	if r.udp != nil {
		return r.udp, nil
	}
	return r.tcp, nil
}
